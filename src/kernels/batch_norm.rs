//! Batch normalisation over `[B, C, H, W]` (Ioffe & Szegedy 2015) with PyTorch's defaults
//! (ε = 1e-5, momentum 0.1, unbiased running variance) and parameter names (`weight`, `bias`,
//! `running_mean`, `running_var`).
//!
//! On the CPU with `f32` the whole layer is one custom op with the analytic gradient
//!
//! ```text
//! x̂ = (x − μ)·σ⁻¹,  y = γ·x̂ + β
//! ∂β = Σ g,  ∂γ = Σ g·x̂,  ∂x = γσ⁻¹/M · (M·g − ∂β − x̂·∂γ)    (training, M = B·H·W)
//! ∂x = γσ⁻¹·g                                                (evaluation)
//! ```
//!
//! instead of the dozen element-wise candle ops (each a fresh full-size tensor, forward and
//! backward) that a composed layer costs. A PReLU (or a ReLU, slope 0) after the layer folds
//! into the same op ([`BatchNorm::forward_act`], [`BatchNorm::forward_relu`]): `g` above is then
//! the activation's gradient `g·(z > 0 ? 1 : α)` at `z = γ·x̂ + β`, and `∂α = Σ_{z ≤ 0} g·z`.
//! On a CUDA device (`f32`, `f64`) the layer, with its PReLU, is the three ops of
//! `batch_norm_device.rs`, whose statistics stay on the device. Elsewhere the layer is composed
//! from candle ops, and every path agrees with it (tested).

use crate::kernels::numeric::{cpu_f32, cuda_float, f32_part, with_host};
use crate::Result;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Shape, Tensor, Var, D};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

const EPS: f64 = 1e-5;
const MOMENTUM: f64 = 0.1;

/// A 2-d batch-norm layer; `forward_t(x, train)` uses batch statistics (and updates the
/// running ones) in training and the running statistics at evaluation.
#[derive(Clone, Debug)]
pub struct BatchNorm {
    weight: Tensor,
    bias: Tensor,
    running_mean: Var,
    running_var: Var,
}

/// Per-channel statistics of one fused forward pass — the batch's in training, the running
/// ones at evaluation — computed once and shared by the forward pass, the running-statistics
/// update and the backward pass.
#[derive(Debug)]
struct Moments {
    mean: Vec<f64>,
    /// Biased variance.
    var: Vec<f64>,
    /// `1 / sqrt(var + ε)`.
    inv: Vec<f64>,
}

impl BatchNorm {
    /// A layer over `c` channels with parameters under `vb` (γ = 1, β = 0, running mean 0 and
    /// variance 1 when `vb` creates them).
    pub fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        use candle_nn::init::Init::Const;
        let weight = vb.get_with_hints(c, "weight", Const(1.0))?;
        let bias = vb.get_with_hints(c, "bias", Const(0.0))?;
        let running_mean = Var::from_tensor(&vb.get_with_hints(c, "running_mean", Const(0.0))?)?;
        let running_var = Var::from_tensor(&vb.get_with_hints(c, "running_var", Const(1.0))?)?;
        Ok(BatchNorm { weight, bias, running_mean, running_var })
    }

    /// The running mean.
    pub fn running_mean(&self) -> &Tensor {
        self.running_mean.as_tensor()
    }

    /// The running (unbiased) variance.
    pub fn running_var(&self) -> &Tensor {
        self.running_var.as_tensor()
    }

    /// The composed form (any device and dtype); the fused CPU kernel is tested against it.
    pub fn forward_composed(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let c = self.weight.elem_count();
        let shape = (1, c, 1, 1);
        let (mean, var) = if train {
            let xt = x.transpose(0, 1)?.flatten_from(1)?; // [C, M]
            let m = xt.dim(1)?;
            let mean = xt.mean(D::Minus1)?;
            let var = xt.broadcast_sub(&mean.unsqueeze(1)?)?.sqr()?.mean(D::Minus1)?;
            self.blend_running(&mean, &var, m)?;
            (mean, var)
        } else {
            (self.running_mean.as_tensor().to_dtype(x.dtype())?, self.running_var.as_tensor().to_dtype(x.dtype())?)
        };
        let inv = (var + EPS)?.sqrt()?.recip()?;
        let scale = (self.weight.to_dtype(x.dtype())? * inv)?;
        let xh = x.broadcast_sub(&mean.reshape(shape)?)?;
        xh.broadcast_mul(&scale.reshape(shape)?)?.broadcast_add(&self.bias.to_dtype(x.dtype())?.reshape(shape)?)
    }

    /// `γ` and `β`.
    pub(crate) fn affine(&self) -> (&Tensor, &Tensor) {
        (&self.weight, &self.bias)
    }

    /// Blends batch statistics held on the host (`var` biased, over `m` values per channel) into
    /// the running ones ([`BatchNorm::blend_running`]).
    pub(crate) fn update_running(&self, mean: &[f32], var: &[f32], m: usize) -> candle_core::Result<()> {
        let dev = self.running_mean.device();
        self.blend_running(&Tensor::new(mean, dev)?, &Tensor::new(var, dev)?, m)
    }
}

impl candle_nn::ModuleT for BatchNorm {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.forward_act(x, None, train)
    }
}

impl BatchNorm {
    /// Batch-norm followed by a ReLU — on the CPU and on CUDA the fused ops with zero slopes.
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if cpu_f32(&[x, &self.weight]) || cuda_float(&[x, &self.weight]) {
            let zeros = Tensor::zeros_like(&self.weight)?;
            self.forward_act(x, Some(&zeros), train)
        } else {
            self.forward_composed(x, train)?.relu()
        }
    }

    /// Batch-norm followed by a PReLU with slopes `prelu` (`[C]`) when given — one fused op on
    /// the CPU (the activation's gradient folded into the batch-norm's), composed elsewhere.
    pub fn forward_act(&self, x: &Tensor, prelu: Option<&Tensor>, train: bool) -> candle_core::Result<Tensor> {
        let (b, c, h, w) = x.dims4()?;
        if c != self.weight.elem_count() {
            candle_core::bail!("rwt batch-norm: input has {c} channels, the layer {}", self.weight.elem_count());
        }
        let inputs: Vec<&Tensor> = [Some(x), Some(&self.weight), prelu].into_iter().flatten().collect();
        if cuda_float(&inputs) {
            return self.forward_device(x, prelu, train);
        }
        if !cpu_f32(&inputs) {
            let y = self.forward_composed(x, train)?;
            return match prelu {
                Some(a) => crate::kernels::prelu::PRelu::from_weight(a.clone()).forward_composed(&y),
                None => Ok(y),
            };
        }
        let moments = Arc::new(OnceLock::new());
        let running = if train {
            None
        } else {
            Some((self.running_mean.as_tensor().to_vec1::<f32>()?, self.running_var.as_tensor().to_vec1::<f32>()?))
        };
        let params = match prelu {
            Some(a) => Tensor::stack(&[&self.weight, &self.bias, a], 0)?,
            None => Tensor::stack(&[&self.weight, &self.bias], 0)?,
        };
        let op = FusedBatchNorm { running, moments: moments.clone() };
        let y = x.contiguous()?.apply_op2(&params, op)?;
        if train {
            if let Some(m) = moments.get() {
                let mean: Vec<f32> = m.mean.iter().map(|&v| v as f32).collect();
                let var: Vec<f32> = m.var.iter().map(|&v| v as f32).collect();
                self.update_running(&mean, &var, b * h * w)?;
            }
        }
        Ok(y)
    }
}

impl BatchNorm {
    /// The layer (and its PReLU, slopes `prelu` `[C]`) through the ops of
    /// `batch_norm_device.rs`: the path on CUDA, which also runs on the CPU (for the tests). In
    /// training the running statistics are blended on the device, without a copy to the host.
    pub(crate) fn forward_device(
        &self,
        x: &Tensor,
        prelu: Option<&Tensor>,
        train: bool,
    ) -> candle_core::Result<Tensor> {
        use crate::kernels::batch_norm_device::{Apply, Stats};
        let (b, _, h, w) = x.dims4()?;
        let dt = x.dtype();
        let x = x.contiguous()?;
        let (mean, var) = if train {
            let s = x.apply_op1_no_bwd(&Stats)?;
            let (mean, var) = (s.get(0)?, s.get(1)?);
            self.blend_running(&mean, &var, b * h * w)?;
            (mean, var)
        } else {
            (self.running_mean.as_tensor().to_dtype(dt)?, self.running_var.as_tensor().to_dtype(dt)?)
        };
        let mut rows = vec![self.weight.to_dtype(dt)?, self.bias.to_dtype(dt)?];
        rows.extend(prelu.map(|a| a.to_dtype(dt)).transpose()?);
        rows.extend([mean, var]);
        x.apply_op2(&Tensor::stack(&rows, 0)?, Apply { train })
    }

    /// Blends batch statistics (`var` biased, over `m` values per channel) into the running
    /// ones, PyTorch's `(1 − momentum)·running + momentum·batch` with the variance unbiased by
    /// `m/(m − 1)`: on the statistics' device, in f64, rounded once to the running statistics'
    /// dtype.
    fn blend_running(&self, mean: &Tensor, var: &Tensor, m: usize) -> candle_core::Result<()> {
        let unbias = m as f64 / (m.max(2) - 1) as f64;
        let blend = |old: &Var, new: &Tensor, scale: f64| -> candle_core::Result<()> {
            let (t, f64_) = (old.as_tensor(), DType::F64);
            let v = ((t.to_dtype(f64_)? * (1.0 - MOMENTUM))? + ((new.to_dtype(f64_)? * scale)? * MOMENTUM)?)?;
            old.set(&v.to_dtype(t.dtype())?)
        };
        blend(&self.running_mean, mean, 1.0)?;
        blend(&self.running_var, var, unbias)
    }
}

/// The fused op: inputs `x [B, C, H, W]` and `[γ; β]` (`[2, C]`) or `[γ; β; α]` (`[3, C]`,
/// then a PReLU with slopes α follows).
struct FusedBatchNorm {
    /// `Some((running mean, running variance))` at evaluation; `None` in training.
    running: Option<(Vec<f32>, Vec<f32>)>,
    /// Set by the forward pass, read by the caller and by the backward pass.
    moments: Arc<OnceLock<Moments>>,
}

/// `(mean, biased variance)` of channel `c`'s `b` planes of `plane` values: sums in f32 over
/// chunks of 256, accumulated in f64, and the variance as E[(x − μ)²] in a second pass (no
/// cancellation as in E[x²] − μ²).
fn channel_stats(x: &[f32], c: usize, nc: usize, b: usize, plane: usize) -> (f64, f64) {
    let planes = || (0..b).map(move |n| &x[(n * nc + c) * plane..(n * nc + c + 1) * plane]);
    let chunked = |f: &dyn Fn(f32) -> f32| -> f64 {
        planes().flat_map(|p| p.chunks(256)).map(|ch| ch.iter().map(|&v| f(v)).sum::<f32>() as f64).sum()
    };
    let m = (b * plane) as f64;
    let mean = chunked(&|v| v) / m;
    let mu = mean as f32;
    let var = chunked(&|v| (v - mu) * (v - mu)) / m;
    (mean, var)
}

impl FusedBatchNorm {
    /// The per-channel statistics for input `x`, computed on first use (the forward pass) and
    /// reused by the backward pass, which sees the same input.
    fn moments(&self, x: &[f32], dims: &[usize]) -> &Moments {
        self.moments.get_or_init(|| {
            let (b, nc, plane) = (dims[0], dims[1], dims[2] * dims[3]);
            let (mean, var): (Vec<f64>, Vec<f64>) = match &self.running {
                Some((rm, rv)) => (rm.iter().map(|&m| m as f64).collect(), rv.iter().map(|&v| v as f64).collect()),
                None => (0..nc).into_par_iter().map(|c| channel_stats(x, c, nc, b, plane)).unzip(),
            };
            let inv = var.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
            Moments { mean, var, inv }
        })
    }
}

/// `[γ, β, Some(α)]` rows of the parameter tensor.
fn rows(p: &[f32], nc: usize) -> (&[f32], &[f32], Option<&[f32]>) {
    let alpha = (p.len() == 3 * nc).then(|| &p[2 * nc..]);
    (&p[..nc], &p[nc..2 * nc], alpha)
}

impl CustomOp2 for FusedBatchNorm {
    fn name(&self) -> &'static str {
        "rwt-batch-norm"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = xl.shape().dims().to_vec();
        let x = f32_part(xs, xl, "batch-norm input")?;
        let (nc, plane) = (dims[1], dims[2] * dims[3]);
        let (gamma, beta, alpha) = rows(f32_part(ps, pl, "batch-norm parameters")?, nc);
        let Moments { mean, inv, .. } = self.moments(x, &dims);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(plane).zip(x.par_chunks(plane)).enumerate().for_each(|(i, (yo, xi))| {
            let c = i % nc;
            let a = (gamma[c] as f64 * inv[c]) as f32;
            let o = (beta[c] as f64 - mean[c] * gamma[c] as f64 * inv[c]) as f32;
            match alpha {
                Some(al) => {
                    let s = al[c];
                    for (yv, &xv) in yo.iter_mut().zip(xi) {
                        let z = xv * a + o;
                        *yv = if z > 0.0 { z } else { s * z };
                    }
                }
                None => {
                    for (yv, &xv) in yo.iter_mut().zip(xi) {
                        *yv = xv * a + o;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = x.dims().to_vec();
        let (b, nc, plane) = (dims[0], dims[1], dims[2] * dims[3]);
        with_host(&[x, grad], |v| {
            let (xv, gv) = (v[0], v[1]);
            let pv = params.flatten_all()?.to_vec1::<f32>()?;
            let (gam, beta, alpha) = rows(&pv, nc);
            let Moments { mean, inv, .. } = self.moments(xv, &dims);
            // The gradient reaching the batch-norm output: through the PReLU when there is one
            // (z = γx̂ + β recomputed), with α's gradient Σ_{z ≤ 0} g·z.
            let pre = |c: usize| {
                let a = (gam[c] as f64 * inv[c]) as f32;
                let o = (beta[c] as f64 - mean[c] * gam[c] as f64 * inv[c]) as f32;
                (a, o, alpha.map(|al| al[c]))
            };
            #[inline]
            fn through(g: f32, xx: f32, (a, o, s): (f32, f32, Option<f32>)) -> (f32, f32) {
                match s {
                    Some(s) => {
                        let z = xx * a + o;
                        if z > 0.0 {
                            (g, 0.0)
                        } else {
                            (s * g, g * z)
                        }
                    }
                    None => (g, 0.0),
                }
            }
            // Σ g_z, Σ g_z·x̂ and Σ g·z (z ≤ 0) per channel.
            let sums: Vec<(f64, f64, f64)> = (0..nc)
                .into_par_iter()
                .map(|c| {
                    let (mut sg, mut sgx, mut sa) = (0f64, 0f64, 0f64);
                    let mu = mean[c] as f32;
                    let k = pre(c);
                    for n in 0..b {
                        let r = (n * nc + c) * plane..(n * nc + c + 1) * plane;
                        let (mut a, mut a2, mut a3) = (0f32, 0f32, 0f32);
                        for (&g, &xx) in gv[r.clone()].iter().zip(&xv[r]) {
                            let (gz, ga) = through(g, xx, k);
                            a += gz;
                            a2 += gz * (xx - mu);
                            a3 += ga;
                        }
                        sg += a as f64;
                        sgx += a2 as f64;
                        sa += a3 as f64;
                    }
                    (sg, sgx * inv[c], sa)
                })
                .collect();
            let m = (b * plane) as f64;
            let train = self.running.is_none();
            let mut dx = vec![0f32; xv.len()];
            dx.par_chunks_mut(plane).enumerate().for_each(|(i, d)| {
                let c = i % nc;
                let r = i * plane..(i + 1) * plane;
                let k = gam[c] as f64 * inv[c];
                let p = pre(c);
                let a = k as f32;
                if train {
                    // ∂x = k·(g_z − ∂β/M − x̂·∂γ/M) with x̂ = (x − μ)·σ⁻¹.
                    let (db, dg, _) = sums[c];
                    let off = (k * db / m) as f32;
                    let slope = (k * dg * inv[c] / m) as f32;
                    let mu = mean[c] as f32;
                    for ((o, &g), &xx) in d.iter_mut().zip(&gv[r.clone()]).zip(&xv[r]) {
                        *o = a * through(g, xx, p).0 - off - slope * (xx - mu);
                    }
                } else {
                    for ((o, &g), &xx) in d.iter_mut().zip(&gv[r.clone()]).zip(&xv[r]) {
                        *o = a * through(g, xx, p).0;
                    }
                }
            });
            let dev = x.device();
            let dx = Tensor::from_vec(dx, dims.as_slice(), dev)?;
            let mut dp: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
            dp.extend(sums.iter().map(|s| s.0 as f32));
            if alpha.is_some() {
                dp.extend(sums.iter().map(|s| s.2 as f32));
            }
            let dp = Tensor::from_vec(dp, params.shape(), dev)?;
            Ok((Some(dx), Some(dp)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{ModuleT, VarMap};

    /// The fused CPU op against the layer composed from candle ops (candle's autograd as the
    /// reference), in training and evaluation: outputs, input/γ/β gradients, running stats.
    #[test]
    fn fused_matches_composed_values_gradients_and_running_stats() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(3);
        let x = (crate::random::normal(&mut rng, (3, 5, 7, 6), 2.0, &dev).unwrap() + 1.5).unwrap();
        let g = crate::random::normal(&mut rng, (3, 5, 7, 6), 1.0, &dev).unwrap();
        let w = crate::random::normal(&mut rng, 5, 1.0, &dev).unwrap();
        for train in [true, false] {
            let mut grads = vec![];
            let mut stats = vec![];
            for fused in [true, false] {
                let vm = VarMap::new();
                let bn = BatchNorm::new(5, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
                for (name, var) in vm.data().lock().unwrap().iter() {
                    if name == "weight" {
                        var.set(&w).unwrap();
                    }
                    if name == "running_var" {
                        var.set(&(w.abs().unwrap() + 0.5).unwrap()).unwrap();
                    }
                }
                let xv = Var::from_tensor(&x).unwrap();
                let y = if fused {
                    bn.forward_t(xv.as_tensor(), train)
                } else {
                    bn.forward_composed(xv.as_tensor(), train)
                };
                let y = y.unwrap();
                let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                grads.push([
                    v(&y),
                    v(gs.get(xv.as_tensor()).unwrap()),
                    v(gs.get(&bn.weight).unwrap()),
                    v(gs.get(&bn.bias).unwrap()),
                ]);
                stats.push([v(bn.running_mean()), v(bn.running_var())]);
            }
            for (k, (a, b)) in grads[0].iter().zip(&grads[1]).enumerate() {
                let d = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(d < 2e-4, "train={train} quantity {k}: max diff {d}");
            }
            for (a, b) in stats[0].iter().zip(&stats[1]) {
                let d = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(d < 1e-5, "train={train} running stats differ by {d}");
            }
        }
    }

    /// Batch-norm + PReLU as one op against the two composed layers, training and evaluation.
    #[test]
    fn fused_prelu_matches_composed() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(4);
        let x = Var::from_tensor(&crate::random::normal(&mut rng, (2, 3, 5, 4), 1.5, &dev).unwrap()).unwrap();
        let g = crate::random::normal(&mut rng, (2, 3, 5, 4), 1.0, &dev).unwrap();
        let vm = VarMap::new();
        let bn = BatchNorm::new(3, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
        bn.running_var.set(&Tensor::new(&[0.5f32, 2.0, 1.0], &dev).unwrap()).unwrap();
        let alpha = Var::from_tensor(&Tensor::new(&[0.25f32, -0.5, 1.5], &dev).unwrap()).unwrap();
        let prelu = crate::kernels::prelu::PRelu::from_weight(alpha.as_tensor().clone());
        for train in [true, false] {
            let run = |y: Tensor| {
                let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                [
                    v(&y),
                    v(gs.get(x.as_tensor()).unwrap()),
                    v(gs.get(&bn.weight).unwrap()),
                    v(gs.get(&bn.bias).unwrap()),
                    v(gs.get(alpha.as_tensor()).unwrap()),
                ]
            };
            let fused = run(bn.forward_act(x.as_tensor(), Some(alpha.as_tensor()), train).unwrap());
            let composed = run(prelu.forward_composed(&bn.forward_composed(x.as_tensor(), train).unwrap()).unwrap());
            for (k, (a, b)) in fused.iter().zip(&composed).enumerate() {
                let d = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(d < 2e-4, "train={train} quantity {k}: max diff {d}");
            }
        }
    }

    /// The device path (`batch_norm_device.rs`, run here by its CPU loops, which compute what
    /// the CUDA kernels compute) against the layer composed from candle ops: outputs, the
    /// gradients of the input, γ, β and α, and the running statistics, with and without a PReLU,
    /// in training and evaluation, in f64 (to rounding) and f32.
    #[test]
    fn device_path_matches_composed() {
        let dev = Device::Cpu;
        for (dtype, tol) in [(DType::F64, 1e-11), (DType::F32, 2e-4)] {
            let mut rng = crate::random::seeded(5);
            let normal = |rng: &mut _, shape: (usize, usize, usize, usize), s: f64| {
                crate::random::normal(rng, shape, s, &dev).unwrap().to_dtype(dtype).unwrap()
            };
            let x = (normal(&mut rng, (3, 4, 5, 6), 2.0) + 0.7).unwrap();
            let g = normal(&mut rng, (3, 4, 5, 6), 1.0);
            let gamma = Tensor::new(&[1.5f64, -0.5, 0.8, 2.0], &dev).unwrap().to_dtype(dtype).unwrap();
            let beta = Tensor::new(&[0.3f64, -1.0, 0.0, 0.6], &dev).unwrap().to_dtype(dtype).unwrap();
            let alpha = Tensor::new(&[0.25f64, -0.5, 1.5, 0.0], &dev).unwrap().to_dtype(dtype).unwrap();
            for train in [true, false] {
                for with_prelu in [false, true] {
                    let run = |device_path: bool| {
                        let vm = VarMap::new();
                        let bn = BatchNorm::new(4, VarBuilder::from_varmap(&vm, dtype, &dev)).unwrap();
                        for (name, var) in vm.data().lock().unwrap().iter() {
                            match name.as_str() {
                                "weight" => var.set(&gamma).unwrap(),
                                "bias" => var.set(&beta).unwrap(),
                                "running_mean" => var.set(&(&beta * 2.0).unwrap()).unwrap(),
                                _ => var.set(&(gamma.abs().unwrap() + 0.5).unwrap()).unwrap(),
                            }
                        }
                        let (xv, av) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&alpha).unwrap());
                        let prelu = with_prelu.then(|| av.as_tensor());
                        let y = if device_path {
                            bn.forward_device(xv.as_tensor(), prelu, train).unwrap()
                        } else {
                            let y = bn.forward_composed(xv.as_tensor(), train).unwrap();
                            match prelu {
                                Some(a) => {
                                    crate::kernels::prelu::PRelu::from_weight(a.clone()).forward_composed(&y).unwrap()
                                }
                                None => y,
                            }
                        };
                        let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                        let v = |t: Option<&Tensor>| {
                            t.map_or(vec![], |t| {
                                t.flatten_all().unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
                            })
                        };
                        [
                            v(Some(&y)),
                            v(gs.get(xv.as_tensor())),
                            v(gs.get(&bn.weight)),
                            v(gs.get(&bn.bias)),
                            if with_prelu { v(gs.get(av.as_tensor())) } else { vec![] },
                            v(Some(bn.running_mean())),
                            v(Some(bn.running_var())),
                        ]
                    };
                    let (ours, composed) = (run(true), run(false));
                    let names = ["output", "∂x", "∂γ", "∂β", "∂α", "running mean", "running variance"];
                    for ((name, a), b) in names.iter().zip(&ours).zip(&composed) {
                        assert_eq!(a.len(), b.len(), "{dtype:?} train={train} prelu={with_prelu} {name}: missing");
                        let scale = b.iter().fold(1f64, |m, v| m.max(v.abs()));
                        let d = a.iter().zip(b).map(|(p, q)| (p - q).abs()).fold(0f64, f64::max);
                        assert!(d <= tol * scale, "{dtype:?} train={train} prelu={with_prelu} {name}: max diff {d:e}");
                    }
                }
            }
        }
    }

    /// The device path names the bad input: a table of the wrong shape, an integer input, a
    /// vector, an empty batch.
    #[test]
    fn device_ops_reject_bad_shapes() {
        use crate::kernels::batch_norm_device::{Apply, Stats};
        let dev = Device::Cpu;
        let x = Tensor::ones((2, 3, 4, 4), DType::F32, &dev).unwrap();
        let err = x.apply_op2(&Tensor::ones((3, 3), DType::F32, &dev).unwrap(), Apply { train: true }).unwrap_err();
        assert!(err.to_string().contains("[4 or 5, 3]"), "{err}");
        let err = x.to_dtype(DType::U32).unwrap().apply_op1_no_bwd(&Stats).unwrap_err();
        assert!(err.to_string().contains("all f32 or all f64"), "{err}");
        let err = Tensor::ones(6, DType::F32, &dev).unwrap().apply_op1_no_bwd(&Stats).unwrap_err();
        assert!(err.to_string().contains("[B, C, ...]"), "{err}");
        let err = Tensor::ones((0, 3, 4, 4), DType::F32, &dev).unwrap().apply_op1_no_bwd(&Stats).unwrap_err();
        assert!(err.to_string().contains("non-empty"), "{err}");
    }

    /// PyTorch's running-statistics update, computed once:
    /// `bn = torch.nn.BatchNorm2d(1); bn(torch.tensor([1.,2.,4.,9.]).view(1,1,2,2))`
    /// → `running_mean = 0.4`, `running_var = 0.9 + 0.1·(38/3) = 2.1666667`.
    #[test]
    fn running_statistics_follow_pytorch() {
        let dev = Device::Cpu;
        let bn = BatchNorm::new(1, VarBuilder::from_varmap(&candle_nn::VarMap::new(), DType::F32, &dev)).unwrap();
        let x = Tensor::new(&[1f32, 2., 4., 9.], &dev).unwrap().reshape((1, 1, 2, 2)).unwrap();
        bn.forward_t(&x, true).unwrap();
        assert!((bn.running_mean().to_vec1::<f32>().unwrap()[0] - 0.4).abs() < 1e-6);
        assert!((bn.running_var().to_vec1::<f32>().unwrap()[0] - 2.1666667).abs() < 1e-5);
    }
}
