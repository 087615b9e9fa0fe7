//! Building blocks of the segmenters: convolutions with rectangular kernels and asymmetric
//! padding, transposed convolutions, batch-norm + activation, spatial dropout, bilinear
//! resizing with a gradient. Parameter names follow PyTorch (`weight`, `bias`,
//! `running_mean`, `running_var`), so torchvision checkpoints map onto them by name.

pub use crate::kernels::batch_norm::BatchNorm;
use crate::kernels::numeric::{cpu_f32, cuda_float};
pub use crate::kernels::prelu::PRelu;
use crate::Result;
use candle_core::{DType, Module, ModuleT, Tensor};
use candle_nn::VarBuilder;

/// A 2-d convolution: `(kh, kw)` kernel, per-axis padding, stride, dilation.
#[derive(Clone, Debug)]
pub struct Conv {
    name: String,
    weight: Tensor,
    bias: Option<Tensor>,
    pad: (usize, usize),
    stride: usize,
    dilation: usize,
}

/// Geometry of a [`Conv`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvSpec {
    /// Kernel `(height, width)`.
    pub kernel: (usize, usize),
    /// Zero padding `(rows, columns)` on each side.
    pub pad: (usize, usize),
    /// Stride (both axes).
    pub stride: usize,
    /// Dilation (both axes).
    pub dilation: usize,
    /// Learn a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// A `k × k` convolution with "same" padding for stride 1 and dilation `d`.
    pub fn same(k: usize, dilation: usize) -> Self {
        let p = dilation * (k - 1) / 2;
        ConvSpec { kernel: (k, k), pad: (p, p), stride: 1, dilation, bias: false }
    }

    /// A `1 × 1` convolution.
    pub fn pointwise() -> Self {
        ConvSpec { kernel: (1, 1), pad: (0, 0), stride: 1, dilation: 1, bias: false }
    }

    /// The same geometry with a bias.
    pub fn with_bias(self) -> Self {
        ConvSpec { bias: true, ..self }
    }

    /// The same geometry with another stride.
    pub fn with_stride(self, stride: usize) -> Self {
        ConvSpec { stride, ..self }
    }
}

impl Conv {
    /// `c_in → c_out` with weights `[c_out, c_in, kh, kw]` (Kaiming-normal initialised).
    pub fn new(c_in: usize, c_out: usize, spec: ConvSpec, vb: VarBuilder) -> Result<Self> {
        let (kh, kw) = spec.kernel;
        let weight = vb.get_with_hints((c_out, c_in, kh, kw), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let bias = if spec.bias { Some(vb.get_with_hints(c_out, "bias", candle_nn::init::ZERO)?) } else { None };
        Ok(Conv { name: vb.prefix(), weight, bias, pad: spec.pad, stride: spec.stride, dilation: spec.dilation })
    }

    /// The weight `[c_out, c_in, kh, kw]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (ph, pw) = self.pad;
        let y = self.convolve(x, ph, pw)?;
        let (b, _, h, w) = y.dims4()?;
        self.trace(b, h, w);
        Ok(y)
    }
}

impl Conv {
    /// Records the multiply-adds for a [`super::summary`] trace: one per weight per output
    /// position of the `b × h × w` output.
    pub(crate) fn trace(&self, b: usize, h: usize, w: usize) {
        super::summary::record(&self.name, (b * h * w * self.weight.elem_count()) as u64);
    }

    /// `(padding, stride, dilation, has a bias)`.
    pub(crate) fn geometry(&self) -> ((usize, usize), usize, usize, bool) {
        (self.pad, self.stride, self.dilation, self.bias.is_some())
    }
}

impl Conv {
    fn convolve(&self, x: &Tensor, ph: usize, pw: usize) -> candle_core::Result<Tensor> {
        if cpu_f32(&[x, &self.weight]) {
            let op = crate::kernels::conv::Conv2d { ph, pw, stride: self.stride, dilation: self.dilation };
            let y = x.contiguous()?.apply_op2(&self.weight.contiguous()?, op)?;
            return add_bias(y, self.bias.as_ref());
        }
        let (kh, kw) = (self.weight.dim(2)?, self.weight.dim(3)?);
        if cuda_float(&[x, &self.weight]) && (kh, kw, ph, pw, self.stride) == (1, 1, 0, 0, 1) {
            return add_bias(crate::kernels::conv::pointwise(x, &self.weight)?, self.bias.as_ref());
        }
        // candle pads both axes alike: pad the longer way by hand for asymmetric kernels.
        let (x, pad) =
            if ph == pw { (x.clone(), ph) } else { (x.pad_with_zeros(2, ph, ph)?.pad_with_zeros(3, pw, pw)?, 0) };
        let y = x.conv2d(&self.weight, pad, self.stride, self.dilation, 1)?;
        let y = if crate::kernels::numeric::F64_CONV_VALUES.with(|on| on.get()) && y.dtype() == DType::F32 {
            // The value rounded from f64, the gradient of the f32 convolution (see
            // `kernels::with_f64_convolution_values`): `exact + (y − y)` is `exact` exactly.
            let f64_ = DType::F64;
            let exact = x.to_dtype(f64_)?.conv2d(&self.weight.to_dtype(f64_)?, pad, self.stride, self.dilation, 1)?;
            (exact.to_dtype(DType::F32)?.detach() + (&y - y.detach())?)?
        } else {
            y
        };
        add_bias(y, self.bias.as_ref())
    }
}

/// `y + bias` broadcast over `[B, C, H, W]` (one op with a lane-summed bias gradient on the
/// CPU).
fn add_bias(y: Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match bias {
        Some(b) if cpu_f32(&[&y, b]) => y.contiguous()?.apply_op2(&b.contiguous()?, crate::kernels::conv::AddBias),
        Some(b) => y.broadcast_add(&b.reshape((1, (), 1, 1))?),
        None => Ok(y),
    }
}

/// A transposed convolution `c_in → c_out`, square kernel, weights `[c_in, c_out, k, k]`.
#[derive(Clone, Debug)]
pub struct ConvTranspose {
    name: String,
    weight: Tensor,
    /// A learned offset added to `weight` at each forward pass (FCN's bilinear start).
    delta: Option<Tensor>,
    bias: Option<Tensor>,
    stride: usize,
    padding: usize,
    output_padding: usize,
}

impl ConvTranspose {
    /// `k × k` kernel with `stride` and `padding` as in PyTorch (no output padding).
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get_with_hints((c_in, c_out, k, k), "weight", candle_nn::init::DEFAULT_KAIMING_NORMAL)?;
        let bias = if bias { Some(vb.get_with_hints(c_out, "bias", candle_nn::init::ZERO)?) } else { None };
        Ok(ConvTranspose { name: vb.prefix(), weight, delta: None, bias, stride, padding, output_padding: 0 })
    }

    /// A `c → c` transposed convolution by `factor` (kernel `2·factor`) that starts as
    /// bilinear interpolation, channel by channel — FCN's upsampling. With `learned`, the
    /// kernel is `bilinear + delta` with a learned `delta` (stored as `delta`, starting at
    /// zero, so learning starts from bilinear as in FCN); without, it stays bilinear.
    pub fn bilinear(c: usize, factor: usize, learned: bool, vb: VarBuilder) -> Result<Self> {
        let k = 2 * factor;
        let center = if k % 2 == 1 { factor as f64 - 1.0 } else { factor as f64 - 0.5 };
        let mut w = vec![0f32; c * c * k * k];
        for ch in 0..c {
            for y in 0..k {
                for x in 0..k {
                    let f = (1.0 - (y as f64 - center).abs() / factor as f64)
                        * (1.0 - (x as f64 - center).abs() / factor as f64);
                    w[((ch * c + ch) * k + y) * k + x] = f as f32;
                }
            }
        }
        let weight = Tensor::from_vec(w, (c, c, k, k), vb.device())?.to_dtype(vb.dtype())?;
        // The sum is formed at each forward pass, so optimiser updates of `delta` take effect.
        let delta = if learned { Some(vb.get_with_hints((c, c, k, k), "delta", candle_nn::init::ZERO)?) } else { None };
        let (stride, padding) = (factor, factor / 2);
        Ok(ConvTranspose { name: vb.prefix(), weight, delta, bias: None, stride, padding, output_padding: 0 })
    }
}

impl ConvTranspose {
    /// Records the multiply-adds for a [`super::summary`] trace: one per weight per input
    /// position of the `b × h × w` input.
    pub(crate) fn trace(&self, b: usize, h: usize, w: usize) {
        super::summary::record(&self.name, (b * h * w * self.weight.elem_count()) as u64);
    }

    /// The weight `[c_in, c_out, k, k]`, stride and padding when the layer is a plain one (no
    /// learned offset, bias or output padding).
    pub(crate) fn plain(&self) -> Option<(&Tensor, usize, usize)> {
        (self.delta.is_none() && self.bias.is_none() && self.output_padding == 0).then_some((
            &self.weight,
            self.stride,
            self.padding,
        ))
    }
}

impl Module for ConvTranspose {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (b, _, h, w) = x.dims4()?;
        self.trace(b, h, w);
        let weight = match &self.delta {
            Some(d) => (&self.weight + d)?,
            None => self.weight.clone(),
        };
        if cpu_f32(&[x, &weight]) && self.output_padding == 0 {
            let op = crate::kernels::conv::ConvTranspose2d { stride: self.stride, padding: self.padding };
            let y = x.contiguous()?.apply_op2(&weight.contiguous()?, op)?;
            return add_bias(y, self.bias.as_ref());
        }
        let y = x.conv_transpose2d(&weight, self.padding, self.output_padding, self.stride, 1)?;
        add_bias(y, self.bias.as_ref())
    }
}

/// Batch normalisation (PyTorch defaults: ε = 1e-5, momentum 0.1); the train flag selects
/// batch statistics (and updates the running ones) or running statistics.
pub fn batch_norm(c: usize, vb: VarBuilder) -> Result<BatchNorm> {
    BatchNorm::new(c, vb)
}

/// Activation after a batch-norm.
#[derive(Clone, Debug)]
pub enum Act {
    /// `max(x, 0)`.
    Relu,
    /// PReLU with one learned slope per channel.
    PRelu(PRelu),
    /// None.
    Identity,
}

impl Act {
    /// Applies the activation.
    pub fn apply(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Act::Relu => x.relu(),
            Act::PRelu(p) => p.forward(x),
            Act::Identity => Ok(x.clone()),
        }
    }

    /// `bn` then this activation; a PReLU is fused into the batch-norm op on the CPU.
    pub fn after(&self, bn: &BatchNorm, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        match self {
            Act::PRelu(p) => bn.forward_act(x, Some(p.weight()), train),
            Act::Relu => bn.forward_relu(x, train),
            Act::Identity => self.apply(&bn.forward_t(x, train)?),
        }
    }

    /// A per-channel PReLU named `name` under `vb`.
    pub fn prelu(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Act::PRelu(PRelu::new(c, vb)?))
    }
}

/// Convolution, batch-norm, activation.
#[derive(Clone, Debug)]
pub struct ConvBnAct {
    /// The convolution.
    pub conv: Conv,
    bn: BatchNorm,
    act: Act,
}

impl ConvBnAct {
    /// `conv` then `bn` then `act`, parameters under `vb.pp(conv_name)` and `vb.pp(bn_name)`.
    pub fn new(conv: Conv, bn: BatchNorm, act: Act) -> Self {
        ConvBnAct { conv, bn, act }
    }
}

impl ModuleT for ConvBnAct {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let y = self.conv.forward(x)?;
        self.act.after(&self.bn, &y, train)
    }
}

/// Spatial dropout: whole channels dropped with probability `p` in training (ENet's
/// regulariser); identity at evaluation. The masks come from [`crate::random`]'s global
/// seeded generator, so training runs are reproducible.
pub fn dropout2d(x: &Tensor, p: f64, train: bool) -> candle_core::Result<Tensor> {
    let (b, c, _, _) = x.dims4()?;
    match channel_mask(b, c, p, train) {
        None => Ok(x.clone()),
        Some(mask) => x.broadcast_mul(&Tensor::from_vec(mask, (b, c, 1, 1), x.device())?.to_dtype(x.dtype())?),
    }
}

/// The `b·c` channel scales of spatial dropout (`0` or `1 / (1 − p)`), from [`crate::random`]'s
/// seeded global generator; `None` at evaluation or for `p ≤ 0`.
pub fn channel_mask(b: usize, c: usize, p: f64, train: bool) -> Option<Vec<f32>> {
    if !train || p <= 0.0 {
        return None;
    }
    let scale = (1.0 / (1.0 - p)) as f32;
    Some(crate::random::bernoulli_mask(b * c, 1.0 - p).into_iter().map(|k| if k { scale } else { 0.0 }).collect())
}

/// Element-wise dropout with probability `p` in training, identity at evaluation; masks from
/// [`crate::random`]'s seeded global generator.
pub fn dropout(x: &Tensor, p: f64, train: bool) -> candle_core::Result<Tensor> {
    if !train || p <= 0.0 {
        return Ok(x.clone());
    }
    let scale = (1.0 / (1.0 - p)) as f32;
    let mask: Vec<f32> = crate::random::bernoulli_mask(x.elem_count(), 1.0 - p)
        .into_iter()
        .map(|k| if k { scale } else { 0.0 })
        .collect();
    x.mul(&Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?)
}

/// Bilinear resizing to `(h, w)` (align-corners off, as in PyTorch), as two matrix products
/// so that it has a gradient on every device.
pub fn resize_bilinear(x: &Tensor, h: usize, w: usize) -> candle_core::Result<Tensor> {
    let (b, c, ih, iw) = x.dims4()?;
    if (ih, iw) == (h, w) {
        return Ok(x.clone());
    }
    let ry = interpolation_matrix(ih, h, x.device(), x.dtype())?; // [h, ih]
    let rx = interpolation_matrix(iw, w, x.device(), x.dtype())?; // [w, iw]
    let y = x.reshape((b * c, ih, iw))?;
    let y = ry.broadcast_left(b * c)?.matmul(&y)?; // [bc, h, iw]
    let y = y.matmul(&rx.t()?.broadcast_left(b * c)?)?; // [bc, h, w]
    y.reshape((b, c, h, w))
}

/// The `[out, in]` matrix of 1-d linear interpolation with half-pixel centres.
fn interpolation_matrix(
    n_in: usize,
    n_out: usize,
    dev: &candle_core::Device,
    dtype: DType,
) -> candle_core::Result<Tensor> {
    let mut m = vec![0f32; n_out * n_in];
    let scale = n_in as f64 / n_out as f64;
    for o in 0..n_out {
        let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
        let i0 = (src.floor() as usize).min(n_in - 1);
        let i1 = (i0 + 1).min(n_in - 1);
        let t = (src - i0 as f64) as f32;
        m[o * n_in + i0] += 1.0 - t;
        m[o * n_in + i1] += t;
    }
    Tensor::from_vec(m, (n_out, n_in), dev)?.to_dtype(dtype)
}

/// Zero-pads `[B, C, H, W]` at the bottom and right to multiples of `m`.
pub fn pad_to_multiple(x: &Tensor, m: usize) -> candle_core::Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ph, pw) = (h.div_ceil(m) * m - h, w.div_ceil(m) * m - w);
    let x = if ph > 0 { x.pad_with_zeros(2, 0, ph)? } else { x.clone() };
    if pw > 0 {
        x.pad_with_zeros(3, 0, pw)
    } else {
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn f64_convolution_values_round_the_f64_value_and_keep_the_f32_gradient() {
        // Under `with_f64_convolution_values` a convolution's value is the f64 convolution
        // rounded to f32, exactly, and its gradient is the composed f32 convolution's, exactly.
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let conv =
            Conv::new(4, 3, ConvSpec::same(3, 2), VarBuilder::from_varmap(&vm, DType::F32, &dev).pp("c")).unwrap();
        let mut rng = crate::random::seeded(9);
        let x =
            candle_core::Var::from_tensor(&crate::random::normal(&mut rng, (2, 4, 9, 7), 3.0, &dev).unwrap()).unwrap();
        let run = || {
            let y = conv.forward(x.as_tensor()).unwrap();
            let g = y.sum_all().unwrap().backward().unwrap();
            (y, g.get(x.as_tensor()).unwrap().clone())
        };
        let (y_e, g_e) = crate::kernels::with_f64_convolution_values(run);
        let (y_c, g_c) = crate::kernels::with_composed_layers(run);
        let f64_ = DType::F64;
        let exact =
            x.as_tensor().to_dtype(f64_).unwrap().conv2d(&conv.weight().to_dtype(f64_).unwrap(), 2, 1, 2, 1).unwrap();
        let max_diff = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
        };
        assert_eq!(max_diff(&y_e, &exact.to_dtype(DType::F32).unwrap()), 0.0);
        assert_eq!(max_diff(&g_e, &g_c), 0.0);
        // The f32 convolution's values are within rounding of the exact ones.
        assert!(max_diff(&y_c, &y_e) < 1e-4, "{}", max_diff(&y_c, &y_e));
    }

    #[test]
    fn bilinear_resize_matches_candle_forward() {
        let x = Tensor::arange(0f32, 2.0 * 3.0 * 5.0 * 7.0, &Device::Cpu).unwrap().reshape((2, 3, 5, 7)).unwrap();
        for (h, w) in [(10, 14), (9, 20), (3, 4)] {
            let ours = resize_bilinear(&x, h, w).unwrap();
            let theirs = x.upsample_bilinear2d(h, w, false).unwrap();
            let d = (ours - theirs).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(d < 1e-3, "{h}x{w}: {d}");
        }
    }

    #[test]
    fn asymmetric_padding_keeps_size() {
        let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
        let c =
            Conv::new(4, 4, ConvSpec { kernel: (5, 1), pad: (2, 0), stride: 1, dilation: 1, bias: false }, vb).unwrap();
        let y = c.forward(&Tensor::ones((1, 4, 9, 6), DType::F32, &Device::Cpu).unwrap()).unwrap();
        assert_eq!(y.dims(), &[1, 4, 9, 6]);
        let p = pad_to_multiple(&Tensor::ones((1, 1, 45, 60), DType::F32, &Device::Cpu).unwrap(), 32).unwrap();
        assert_eq!(p.dims(), &[1, 1, 64, 64]);
    }
}
