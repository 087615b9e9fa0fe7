//! The VGG-16 encoder (Simonyan & Zisserman 2015) shared by SegNet (with batch-norm, as
//! torchvision's `vgg16_bn`) and FCN-8s (without, as `vgg16`). Parameter names are
//! torchvision's `features.{i}.*`, so ImageNet checkpoints load by name.

use super::layers::{batch_norm, BatchNorm, Conv, ConvSpec};
use crate::Result;
use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

/// Channels of the five blocks and their number of convolutions.
pub(crate) const BLOCKS: [(usize, usize); 5] = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)];

/// VGG-16's 13 convolutions in five blocks (each followed by a 2×2 max-pool, which the
/// networks apply themselves).
#[derive(Clone, Debug)]
pub(crate) struct Vgg16 {
    blocks: Vec<Vec<(Conv, Option<BatchNorm>)>>,
    /// Output channels of each block.
    pub(crate) channels: Vec<usize>,
}

impl Vgg16 {
    /// VGG-16 with channels scaled by `width`; `bn` selects the `vgg16_bn` variant.
    pub(crate) fn new(width: f64, bn: bool, vb: VarBuilder) -> Result<Self> {
        let mut index = 0;
        let mut c_in = 3;
        let mut blocks = vec![];
        let mut channels = vec![];
        for (c, n) in BLOCKS {
            let c = ((c as f64 * width).round() as usize).max(4);
            let mut block = vec![];
            for _ in 0..n {
                let conv = Conv::new(c_in, c, ConvSpec::same(3, 1).with_bias(), vb.pp(format!("features.{index}")))?;
                let norm = if bn { Some(batch_norm(c, vb.pp(format!("features.{}", index + 1)))?) } else { None };
                index += if bn { 3 } else { 2 };
                block.push((conv, norm));
                c_in = c;
            }
            index += 1; // the max-pool
            blocks.push(block);
            channels.push(c);
        }
        Ok(Vgg16 { blocks, channels })
    }

    /// Block `k`'s convolutions (with batch-norm and ReLU) on `x`, before its pooling.
    pub(crate) fn block(&self, k: usize, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut y = x.clone();
        for (conv, bn) in &self.blocks[k] {
            y = conv.forward(&y)?;
            y = match bn {
                Some(bn) => bn.forward_relu(&y, train)?,
                None => y.relu()?,
            };
        }
        Ok(y)
    }
}
