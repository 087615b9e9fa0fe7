//! SegNet (Badrinarayanan, Kendall, Cipolla, "SegNet: A Deep Convolutional Encoder-Decoder
//! Architecture for Image Segmentation", TPAMI 2017).
//!
//! The encoder is VGG-16 with batch-norm (its 13 convolutions), each block ending in a 2×2
//! max-pool whose indices are kept; the decoder mirrors it: max-unpooling with those indices,
//! then 3×3 convolutions with batch-norm and ReLU, the last one producing the classes. 29.4 M
//! parameters. The **latent** map is the encoder's output after the fifth pooling (512
//! channels at 1/32); the **penultimate** map is the last 64-channel decoder convolution (full
//! resolution), before the classifier.

use super::layers::{batch_norm, BatchNorm, Conv, ConvSpec};
use super::vgg::Vgg16;
use super::{Segmenter, SegmenterConfig, SegmenterOutput};
use crate::kernels::pooling::{max_pool2d_with_indices, max_unpool2d};
use crate::Result;
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

/// SegNet (see the [module docs](crate::models)).
#[derive(Clone, Debug)]
pub struct SegNet {
    encoder: Vgg16,
    /// Decoder stages, deepest first: convolutions with batch-norm.
    decoder: Vec<Vec<(Conv, BatchNorm)>>,
    classifier: Conv,
    num_classes: usize,
}

impl SegNet {
    /// SegNet for `cfg.num_classes` classes; `cfg.width` scales every layer.
    pub fn new(cfg: &SegmenterConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let encoder = Vgg16::new(cfg.width, true, vb.pp("encoder"))?;
        let ch = &encoder.channels;
        // Decoder stage k (deepest first) maps the encoder's block channels back down.
        let plan: Vec<Vec<(usize, usize)>> = vec![
            vec![(ch[4], ch[4]), (ch[4], ch[4]), (ch[4], ch[3])],
            vec![(ch[3], ch[3]), (ch[3], ch[3]), (ch[3], ch[2])],
            vec![(ch[2], ch[2]), (ch[2], ch[2]), (ch[2], ch[1])],
            vec![(ch[1], ch[1]), (ch[1], ch[0])],
            vec![(ch[0], ch[0])],
        ];
        let mut decoder = vec![];
        for (s, stage) in plan.iter().enumerate() {
            let mut layers = vec![];
            for (i, &(a, b)) in stage.iter().enumerate() {
                let vbs = vb.pp(format!("decoder.{s}.{i}"));
                layers.push((
                    Conv::new(a, b, ConvSpec::same(3, 1).with_bias(), vbs.pp("conv"))?,
                    batch_norm(b, vbs.pp("bn"))?,
                ));
            }
            decoder.push(layers);
        }
        let classifier = Conv::new(ch[0], cfg.num_classes, ConvSpec::same(3, 1).with_bias(), vb.pp("classifier"))?;
        Ok(SegNet { encoder, decoder, classifier, num_classes: cfg.num_classes })
    }
}

impl Segmenter for SegNet {
    fn name(&self) -> &'static str {
        "segnet"
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn stride(&self) -> usize {
        32
    }

    fn forward_padded(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput> {
        let mut pools = vec![];
        let mut y = x.clone();
        for k in 0..5 {
            y = self.encoder.block(k, &y, train)?;
            let (v, idx) = max_pool2d_with_indices(&y, 2, 2)?;
            pools.push(idx);
            y = v;
        }
        let latent = y.clone();
        for (s, stage) in self.decoder.iter().enumerate() {
            let idx = &pools[4 - s];
            let (_, _, h, w) = idx.dims4()?;
            y = max_unpool2d(&y, idx, 2 * h, 2 * w)?;
            for (conv, bn) in stage {
                y = bn.forward_relu(&conv.forward(&y)?, train)?;
            }
        }
        let logits = self.classifier.forward(&y)?;
        Ok(SegmenterOutput { logits, latent, penultimate: y })
    }
}

impl ModuleT for SegNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Segmenter::forward_t(self, x, train).map_err(candle_core::Error::wrap)
    }
}
