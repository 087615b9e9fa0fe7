//! DeepLab-v2 (Chen, Papandreou, Kokkinos, Murphy, Yuille, "DeepLab: Semantic Image
//! Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs",
//! TPAMI 2017), the ResNet-101 variant used for GTA5 → Cityscapes.
//!
//! A ResNet-101 with output stride 8 (dilated `layer3`/`layer4`), then atrous spatial pyramid
//! pooling (ASPP): four 3×3 convolutions with dilations 6, 12, 18 and 24 straight to the
//! classes, summed; the scores are upsampled bilinearly ×8 to the input. (The dense CRF of the
//! paper is a post-processing step and is not part of the network.) About 43.9 M parameters
//! for 19 classes. The **latent** and **penultimate** maps are both `layer4`'s output (2048
//! channels at 1/8), the last features before the ASPP classifier.

use super::layers::{resize_bilinear, Conv, ConvSpec};
use super::resnet::ResNet101;
use super::{Segmenter, SegmenterConfig, SegmenterOutput};
use crate::Result;
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

/// DeepLab-v2 with a ResNet-101 (see the [module docs](crate::models)).
#[derive(Clone, Debug)]
pub struct DeepLabV2 {
    encoder: ResNet101,
    aspp: Vec<Conv>,
    num_classes: usize,
}

impl DeepLabV2 {
    /// The ASPP dilation rates.
    pub const RATES: [usize; 4] = [6, 12, 18, 24];

    /// DeepLab-v2 for `cfg.num_classes` classes; `cfg.width` scales the ResNet.
    pub fn new(cfg: &SegmenterConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let encoder = ResNet101::new(cfg.width, vb.pp("encoder"))?;
        let aspp = Self::RATES
            .iter()
            .enumerate()
            .map(|(i, &r)| {
                Conv::new(
                    encoder.out_channels,
                    cfg.num_classes,
                    ConvSpec::same(3, r).with_bias(),
                    vb.pp(format!("aspp.{i}")),
                )
            })
            .collect::<Result<_>>()?;
        Ok(DeepLabV2 { encoder, aspp, num_classes: cfg.num_classes })
    }
}

impl Segmenter for DeepLabV2 {
    fn name(&self) -> &'static str {
        "deeplabv2"
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn stride(&self) -> usize {
        8
    }

    fn forward_padded(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput> {
        let (_, _, h, w) = x.dims4()?;
        let features = self.encoder.forward_t(x, train)?;
        let mut scores = self.aspp[0].forward(&features)?;
        for conv in &self.aspp[1..] {
            scores = (scores + conv.forward(&features)?)?;
        }
        let logits = resize_bilinear(&scores, h, w)?;
        Ok(SegmenterOutput { logits, latent: features.clone(), penultimate: features })
    }
}

impl ModuleT for DeepLabV2 {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Segmenter::forward_t(self, x, train).map_err(candle_core::Error::wrap)
    }
}
