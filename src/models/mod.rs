//! Segmentation networks in candle: ENet, SegNet, FCN-8s and DeepLab-v2, behind one
//! [`Segmenter`] trait that returns the logits at the input's resolution for any input size,
//! plus the two feature maps the paper needs: the **latent** (bottleneck) map — the driving
//! agent's state (Section III.C) — and the **penultimate** map, the responses of the
//! second-to-last convolution, whose per-class centroids rebuild the learned ground matrix.
//!
//! | network | paper | file | parameters (11 / 19 classes) |
//! |---|---|---|---|
//! | [`Enet`] | Paszke et al. 2016 | `enet.rs` | 0.36 M |
//! | [`SegNet`] | Badrinarayanan et al. 2017 | `segnet.rs` | 29.4 M |
//! | [`Fcn8s`] | Long et al. 2015 | `fcn.rs` | 134.3 M |
//! | [`DeepLabV2`] | Chen et al. 2017 (ResNet-101, ASPP) | `deeplab.rs` | 43.9 M (19 classes) |
//!
//! Max-pooling with indices and max-unpooling (SegNet, ENet) are custom ops in [`ops`] with
//! CPU and CUDA kernels. The fused kernels the networks run on (convolution, batch-norm,
//! PReLU, the ENet bottleneck, pooling) live in [`crate::kernels`]. Parameter names follow
//! PyTorch/torchvision, so ImageNet encoders load by name ([`weights`]).

mod deeplab;
mod enet;
mod fcn;
pub mod layers;
/// Max-pooling with indices and max-unpooling, the operations behind SegNet's and ENet's
/// decoders (kernels and gradients in [`crate::kernels::pooling`]).
pub mod ops {
    pub use crate::kernels::pooling::{max_pool2d_with_indices, max_unpool2d};
}
mod resnet;
mod segnet;
pub mod summary;
mod vgg;
pub mod weights;

pub use deeplab::DeepLabV2;
pub use enet::Enet;
pub use fcn::Fcn8s;
pub use segnet::SegNet;

use crate::{Error, Result};
use candle_core::Tensor;
use candle_nn::VarBuilder;

/// What a segmenter computes for a batch.
#[derive(Clone, Debug)]
pub struct SegmenterOutput {
    /// `[B, N, H, W]` class scores at the input's resolution.
    pub logits: Tensor,
    /// The bottleneck feature map `[B, C_latent, h, w]` (the agent's state).
    pub latent: Tensor,
    /// The second-to-last convolution's responses `[B, C_pen, h', w']` (for class centroids).
    pub penultimate: Tensor,
}

/// Options shared by the networks.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmenterConfig {
    /// Number of classes `N`.
    pub num_classes: usize,
    /// Channel multiplier (1.0 = the published network); smaller widths for quick runs.
    pub width: f64,
    /// Use the published dropout (off for deterministic tests).
    pub dropout: bool,
}

impl SegmenterConfig {
    /// The published network for `num_classes` classes.
    pub fn new(num_classes: usize) -> Self {
        SegmenterConfig { num_classes, width: 1.0, dropout: true }
    }

    /// The same with another channel multiplier.
    pub fn with_width(self, width: f64) -> Self {
        SegmenterConfig { width, ..self }
    }

    /// Checks the fields; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.num_classes == 0 {
            return Err(Error::invalid("num_classes", 0, "must be at least 1"));
        }
        if !(self.width.is_finite() && self.width > 0.0) {
            return Err(Error::invalid("width", self.width, "the channel multiplier must be finite and > 0"));
        }
        Ok(())
    }
}

/// A segmentation network.
pub trait Segmenter: Send + Sync {
    /// A short name (`"enet"`, `"segnet"`, `"fcn8s"`, `"deeplabv2"`).
    fn name(&self) -> &'static str;

    /// Number of classes.
    fn num_classes(&self) -> usize;

    /// Inputs are zero-padded to a multiple of this before the forward pass.
    fn stride(&self) -> usize;

    /// Forward pass on an input whose sides are multiples of [`Segmenter::stride`]; the logits
    /// have the input's size. `train` reaches batch-norm and dropout.
    fn forward_padded(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput>;

    /// Forward pass on any input size: pads the bottom and right with zeros to a multiple of
    /// the stride, runs [`Segmenter::forward_padded`], and crops the logits back (the feature
    /// maps are cropped in proportion). On the CPU it first makes the C allocator keep freed
    /// memory ([`crate::device::retain_freed_memory`]; without it, an ENet forward pass at
    /// 360×480 spends about 40 % of its time in page faults).
    fn forward_all(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput> {
        let padded = Padded::of(x, self.stride())?;
        let out = self.forward_padded(&padded.input, train)?;
        if padded.is_exact() {
            return Ok(out);
        }
        Ok(SegmenterOutput {
            logits: padded.crop(out.logits)?,
            latent: padded.crop(out.latent)?,
            penultimate: padded.crop(out.penultimate)?,
        })
    }

    /// The logits of [`Segmenter::forward_all`].
    fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        Ok(self.forward_all(x, train)?.logits)
    }

    /// The latent map alone of an input whose sides are multiples of the stride, in
    /// evaluation mode. The default runs the whole network; a network whose latent comes
    /// before its decoder (ENet) stops there.
    fn latent_padded(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward_padded(x, false)?.latent)
    }

    /// The latent map of [`Segmenter::forward_all`] (evaluation mode, any input size, the
    /// same values), computing no more of the network than it needs: the driving agent's
    /// state. Errors as [`Segmenter::forward_all`].
    fn latent(&self, x: &Tensor) -> Result<Tensor> {
        let padded = Padded::of(x, self.stride())?;
        let latent = self.latent_padded(&padded.input)?;
        if padded.is_exact() {
            return Ok(latent);
        }
        padded.crop(latent)
    }
}

/// A segmenter input padded to a multiple of the stride, and how to crop maps back.
struct Padded {
    input: Tensor,
    size: (usize, usize),
    padded: (usize, usize),
}

impl Padded {
    /// Checks `x` is `[B, 3, H, W]`, makes the CPU allocator keep freed memory, pads.
    fn of(x: &Tensor, stride: usize) -> Result<Padded> {
        let (_, c, h, w) =
            x.dims4().map_err(|_| Error::shape("segmenter input", "[B, 3, H, W]", format!("{:?}", x.dims())))?;
        if c != 3 {
            return Err(Error::shape("segmenter input channels", "3 (RGB)", c.to_string()));
        }
        if x.device().is_cpu() {
            crate::device::retain_freed_memory();
        }
        let input = layers::pad_to_multiple(x, stride)?;
        let (_, _, hp, wp) = input.dims4()?;
        Ok(Padded { input, size: (h, w), padded: (hp, wp) })
    }

    /// No padding was needed.
    fn is_exact(&self) -> bool {
        self.size == self.padded
    }

    /// A map of the padded input cropped in proportion to the unpadded size.
    fn crop(&self, t: Tensor) -> Result<Tensor> {
        let ((h, w), (hp, wp)) = (self.size, self.padded);
        let (_, _, th, tw) = t.dims4()?;
        Ok(t.narrow(2, 0, (h * th).div_ceil(hp))?.narrow(3, 0, (w * tw).div_ceil(wp))?)
    }
}

/// The four networks, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ModelKind {
    /// [`Enet`].
    Enet,
    /// [`SegNet`].
    SegNet,
    /// [`Fcn8s`].
    Fcn8s,
    /// [`DeepLabV2`].
    DeepLabV2,
}

impl ModelKind {
    /// All kinds.
    pub const ALL: [ModelKind; 4] = [ModelKind::Enet, ModelKind::SegNet, ModelKind::Fcn8s, ModelKind::DeepLabV2];

    /// Builds the network under `vb`.
    pub fn build(self, cfg: &SegmenterConfig, vb: VarBuilder) -> Result<Box<dyn Segmenter>> {
        Ok(match self {
            ModelKind::Enet => Box::new(Enet::new(cfg, vb)?),
            ModelKind::SegNet => Box::new(SegNet::new(cfg, vb)?),
            ModelKind::Fcn8s => Box::new(Fcn8s::new(cfg, vb)?),
            ModelKind::DeepLabV2 => Box::new(DeepLabV2::new(cfg, vb)?),
        })
    }

    /// The name used in configs and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Enet => "enet",
            ModelKind::SegNet => "segnet",
            ModelKind::Fcn8s => "fcn8s",
            ModelKind::DeepLabV2 => "deeplabv2",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ModelKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::invalid("model", s, "expected enet, segnet, fcn8s or deeplabv2"))
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
