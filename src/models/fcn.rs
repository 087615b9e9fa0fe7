//! FCN-8s (Long, Shelhamer, Darrell, "Fully Convolutional Networks for Semantic
//! Segmentation", CVPR 2015).
//!
//! VGG-16 (no batch-norm) with its fully connected layers as convolutions (`fc6`: 7×7, 4096;
//! `fc7`: 1×1, 4096; dropout 0.5 after each), class scores from `fc7`, `pool4` and `pool3`,
//! and the fusion of the paper: ×2 upsampling of the `fc7` scores plus the `pool4` scores, ×2
//! again plus the `pool3` scores, then ×8 to the input. The two ×2 upsamplings are learned
//! transposed convolutions initialised to bilinear interpolation; the ×8 is fixed bilinear, as
//! in the paper. Instead of the paper's 100-pixel input padding and cropping, inputs are padded
//! to a multiple of 32 and every layer is "same"-padded, so the score maps align exactly.
//! 134.3 M parameters. The **latent** and **penultimate** maps are both `fc7` (4096 channels at
//! 1/32): the last layer before the scores.

use super::layers::{dropout, Conv, ConvSpec, ConvTranspose};
use super::vgg::Vgg16;
use super::{Segmenter, SegmenterConfig, SegmenterOutput};
use crate::Result;
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

/// FCN-8s (see the [module docs](crate::models)).
#[derive(Clone, Debug)]
pub struct Fcn8s {
    encoder: Vgg16,
    fc6: Conv,
    fc7: Conv,
    score_fr: Conv,
    score_pool4: Conv,
    score_pool3: Conv,
    upscore2: ConvTranspose,
    upscore_pool4: ConvTranspose,
    upscore8: ConvTranspose,
    dropout: bool,
    num_classes: usize,
}

impl Fcn8s {
    /// FCN-8s for `cfg.num_classes` classes; `cfg.width` scales every layer.
    pub fn new(cfg: &SegmenterConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let encoder = Vgg16::new(cfg.width, false, vb.pp("encoder"))?;
        let fc = ((4096.0 * cfg.width).round() as usize).max(8);
        let n = cfg.num_classes;
        let ch = encoder.channels.clone();
        let score = |c: usize, name: &str| Conv::new(c, n, ConvSpec::pointwise().with_bias(), vb.pp(name));
        Ok(Fcn8s {
            fc6: Conv::new(ch[4], fc, ConvSpec::same(7, 1).with_bias(), vb.pp("fc6"))?,
            fc7: Conv::new(fc, fc, ConvSpec::pointwise().with_bias(), vb.pp("fc7"))?,
            score_fr: score(fc, "score_fr")?,
            score_pool4: score(ch[3], "score_pool4")?,
            score_pool3: score(ch[2], "score_pool3")?,
            upscore2: ConvTranspose::bilinear(n, 2, true, vb.pp("upscore2"))?,
            upscore_pool4: ConvTranspose::bilinear(n, 2, true, vb.pp("upscore_pool4"))?,
            upscore8: ConvTranspose::bilinear(n, 8, false, vb.pp("upscore8"))?,
            encoder,
            dropout: cfg.dropout,
            num_classes: n,
        })
    }
}

impl Segmenter for Fcn8s {
    fn name(&self) -> &'static str {
        "fcn8s"
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn stride(&self) -> usize {
        32
    }

    fn forward_padded(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput> {
        let mut y = x.clone();
        let mut pools = vec![];
        for k in 0..5 {
            y = self.encoder.block(k, &y, train)?.max_pool2d(2)?;
            pools.push(y.clone());
        }
        let p = if self.dropout { 0.5 } else { 0.0 };
        let y = dropout(&self.fc6.forward(&y)?.relu()?, p, train)?;
        let fc7 = dropout(&self.fc7.forward(&y)?.relu()?, p, train)?;
        let s = self.upscore2.forward(&self.score_fr.forward(&fc7)?)?;
        let s = (s + self.score_pool4.forward(&pools[3])?)?;
        let s = self.upscore_pool4.forward(&s)?;
        let s = (s + self.score_pool3.forward(&pools[2])?)?;
        let logits = self.upscore8.forward(&s)?;
        Ok(SegmenterOutput { logits, latent: fc7.clone(), penultimate: fc7 })
    }
}

impl ModuleT for Fcn8s {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Segmenter::forward_t(self, x, train).map_err(candle_core::Error::wrap)
    }
}
