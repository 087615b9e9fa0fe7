//! ResNet-101 (He et al. 2016) with dilated last stages, the encoder of DeepLab-v2. The
//! bottleneck puts its stride on the 3×3 convolution (torchvision's "v1.5"); parameter names
//! are torchvision's (`conv1`, `bn1`, `layer{1..4}.{i}.conv{1,2,3}`, `downsample.{0,1}`), so
//! ImageNet checkpoints load by name.

use super::layers::{batch_norm, BatchNorm, Conv, ConvSpec};
use crate::Result;
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

/// Blocks per stage of ResNet-101.
const LAYERS: [usize; 4] = [3, 4, 23, 3];

#[derive(Clone, Debug)]
struct Bottleneck {
    conv1: Conv,
    bn1: BatchNorm,
    conv2: Conv,
    bn2: BatchNorm,
    conv3: Conv,
    bn3: BatchNorm,
    downsample: Option<(Conv, BatchNorm)>,
}

impl Bottleneck {
    fn new(c_in: usize, planes: usize, stride: usize, dilation: usize, vb: VarBuilder) -> Result<Self> {
        let c_out = planes * 4;
        let downsample = if stride != 1 || c_in != c_out {
            let spec = ConvSpec { kernel: (1, 1), pad: (0, 0), stride, dilation: 1, bias: false };
            Some((Conv::new(c_in, c_out, spec, vb.pp("downsample.0"))?, batch_norm(c_out, vb.pp("downsample.1"))?))
        } else {
            None
        };
        Ok(Bottleneck {
            conv1: Conv::new(c_in, planes, ConvSpec::pointwise(), vb.pp("conv1"))?,
            bn1: batch_norm(planes, vb.pp("bn1"))?,
            conv2: Conv::new(planes, planes, ConvSpec::same(3, dilation).with_stride(stride), vb.pp("conv2"))?,
            bn2: batch_norm(planes, vb.pp("bn2"))?,
            conv3: Conv::new(planes, c_out, ConvSpec::pointwise(), vb.pp("conv3"))?,
            bn3: batch_norm(c_out, vb.pp("bn3"))?,
            downsample,
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = self.bn1.forward_relu(&self.conv1.forward(x)?, train)?;
        let y = self.bn2.forward_relu(&self.conv2.forward(&y)?, train)?;
        let y = self.bn3.forward_t(&self.conv3.forward(&y)?, train)?;
        let shortcut = match &self.downsample {
            Some((c, bn)) => bn.forward_t(&c.forward(x)?, train)?,
            None => x.clone(),
        };
        (y + shortcut)?.relu()
    }
}

/// ResNet-101 with output stride 8: `layer3` and `layer4` keep the resolution of `layer2` and
/// dilate their 3×3 convolutions by 2 and 4 instead (the first block of each keeps the
/// previous dilation, as torchvision does).
#[derive(Clone, Debug)]
pub(crate) struct ResNet101 {
    conv1: Conv,
    bn1: BatchNorm,
    layers: Vec<Vec<Bottleneck>>,
    /// Channels of `layer4`'s output.
    pub(crate) out_channels: usize,
}

impl ResNet101 {
    /// ResNet-101 with channels scaled by `width`.
    pub(crate) fn new(width: f64, vb: VarBuilder) -> Result<Self> {
        let w = |c: usize| ((c as f64 * width).round() as usize).max(2);
        let stem = w(64);
        let conv1 = Conv::new(
            3,
            stem,
            ConvSpec { kernel: (7, 7), pad: (3, 3), stride: 2, dilation: 1, bias: false },
            vb.pp("conv1"),
        )?;
        let bn1 = batch_norm(stem, vb.pp("bn1"))?;
        let mut c_in = stem;
        let mut layers = vec![];
        // (planes, stride, dilation of the later blocks, dilation of the first block)
        let plan = [(w(64), 1, 1, 1), (w(128), 2, 1, 1), (w(256), 1, 2, 1), (w(512), 1, 4, 2)];
        for (k, &(planes, stride, dilation, first_dilation)) in plan.iter().enumerate() {
            let mut blocks = vec![];
            for i in 0..LAYERS[k] {
                let (s, d) = if i == 0 { (stride, first_dilation) } else { (1, dilation) };
                blocks.push(Bottleneck::new(c_in, planes, s, d, vb.pp(format!("layer{}.{i}", k + 1)))?);
                c_in = planes * 4;
            }
            layers.push(blocks);
        }
        Ok(ResNet101 { conv1, bn1, layers, out_channels: c_in })
    }

    /// `layer4`'s output (stride 8).
    pub(crate) fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = self.bn1.forward_relu(&self.conv1.forward(x)?, train)?;
        // 3×3 max-pool, stride 2, padding 1.
        // Replicating the border is the same as padding with −∞ for a max: a window that
        // reaches into the border also holds the border pixel itself.
        let y = y.pad_with_same(2, 1, 1)?.pad_with_same(3, 1, 1)?;
        // candle's own max-pool has no gradient for overlapping windows; ours does.
        let mut y = crate::kernels::pooling::max_pool2d_with_indices(&y, 3, 2).map_err(candle_core::Error::wrap)?.0;
        for layer in &self.layers {
            for b in layer {
                y = b.forward_t(&y, train)?;
            }
        }
        Ok(y)
    }
}
