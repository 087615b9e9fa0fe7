//! Batch-norm (+ PReLU) on the GPU as three ops whose state lives in tensors on the device:
//! the batch statistics, the layer, and its gradient. The fused CPU op (`batch_norm.rs`)
//! keeps its statistics on the host between the forward and the backward pass; a GPU op
//! cannot without a copy to the host per layer, so here the statistics are an input:
//!
//! ```text
//! s = Stats(x)                       [2, C]: the batch mean and biased variance (training)
//! t = [γ; β; (α;) μ; σ²]             [rows, C], rows 4 or 5; μ, σ² the running ones at evaluation
//! y = Apply(x, t)                    z = a·x + o with a = γ/√(σ² + ε), o = β − μ·a; PReLU(z) when α is a row
//! [∂x, ∂t] = Grad(x, ∂y, t)          the formulas of `batch_norm.rs`; zeros in the rows of μ and σ²
//! ```
//!
//! Composed from candle ops, a layer with its PReLU costs twelve full-size passes forward and
//! their gradients backward; these ops read the input three times (twice for the statistics)
//! and write once forward, and read input and gradient twice and write once backward. Each op has
//! CPU loops (`f32`, `f64`) that compute the same quantities by the same formulas as the CUDA
//! kernels (`batch_norm.cu`): the tests run this path on the CPU against the layer composed from
//! candle ops, and `tests/cuda.rs` runs it on the GPU against the CPU.

use crate::kernels::numeric::{channel_planes, Floats, Real};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};

/// ε of the variance, as PyTorch's default (and `batch_norm.rs`).
const EPS: f64 = 1e-5;

/// `(B, C, H·W)` of a contiguous, non-empty `[B, C, H, W]` layout (or `[B, C, …]`).
fn bcp(l: &Layout, what: &str) -> candle_core::Result<(usize, usize, usize)> {
    channel_planes(l, "batch-norm", what)
}

/// The rows of a parameter table `[rows, C]` for `c` channels: 4 (γ, β, μ, σ²) or 5 (with α
/// before μ).
fn table_rows(l: &Layout, c: usize) -> candle_core::Result<usize> {
    match l.dims() {
        [r @ (4 | 5), n] if *n == c && l.is_contiguous() => Ok(*r),
        d => candle_core::bail!("rwt batch-norm: the table must be contiguous [4 or 5, {c}], got {d:?}"),
    }
}

/// `((B, C, plane), rows)` of the gradient op's inputs `x`, `∂y` (the same shape) and table.
fn grad_dims(x: &Layout, g: &Layout, table: &Layout) -> candle_core::Result<((usize, usize, usize), usize)> {
    let dims = bcp(x, "input")?;
    if bcp(g, "output gradient")? != dims {
        candle_core::bail!("rwt batch-norm gradient: {:?} against input {:?}", g.dims(), x.dims());
    }
    Ok((dims, table_rows(table, dims.1)?))
}

/// Per-channel batch mean and biased variance `[2, C]` of `x [B, C, H, W]` (no gradient), the
/// sums in f64 and the variance as `E[(x − μ)²]`.
pub(crate) struct Stats;

/// The layer `x [B, C, H, W]`, table `[rows, C]` → `y [B, C, H, W]`; `train` picks the
/// gradient's formula (batch statistics, whose own gradient enters `∂x`, or fixed ones).
pub(crate) struct Apply {
    pub train: bool,
}

/// `(x, ∂y, table)` → `[∂x (B·C·H·W values); ∂table (rows·C values)]` in one flat tensor.
struct Grad {
    train: bool,
}

/// A channel's coefficients from the table, in f64 and in the element type as the kernels use
/// them: `a = γ·inv`, `o = β − μ·a`, `inv = 1/√(σ² + ε)`, the PReLU slope if there is one.
struct Coefficients<T> {
    a: T,
    o: T,
    inv: f64,
    mean: f64,
    slope: Option<T>,
}

fn coefficients<T: Real>(p: &[T], c: usize, nc: usize, rows: usize) -> Coefficients<T> {
    let (mean, var) = (p[(rows - 2) * nc + c].to_f64(), p[(rows - 1) * nc + c].to_f64());
    let inv = 1.0 / (var + EPS).sqrt();
    let k = p[c].to_f64() * inv;
    Coefficients {
        a: T::from_f64(k),
        o: T::from_f64(p[nc + c].to_f64() - mean * k),
        inv,
        mean,
        slope: (rows == 5).then(|| p[2 * nc + c]),
    }
}

impl<T: Real> Coefficients<T> {
    /// `(∂z, α's share)` for the output gradient `g` at input `x`: through the PReLU at
    /// `z = a·x + o` when there is one.
    #[inline]
    fn through(&self, g: T, x: T) -> (T, T) {
        let z = x * self.a + self.o;
        match self.slope {
            Some(_) if z > T::ZERO => (g, T::ZERO),
            Some(s) => (s * g, g * z),
            None => (g, T::ZERO),
        }
    }
}

fn stats_host<T: Real>(x: &[T], (b, nc, plane): (usize, usize, usize)) -> Vec<T> {
    let m = (b * plane) as f64;
    let mut out = vec![T::ZERO; 2 * nc];
    for c in 0..nc {
        let values = || (0..b).flat_map(move |n| x[(n * nc + c) * plane..(n * nc + c + 1) * plane].iter());
        let mean = values().map(|v| v.to_f64()).sum::<f64>() / m;
        let var = values().map(|v| (v.to_f64() - mean) * (v.to_f64() - mean)).sum::<f64>() / m;
        out[c] = T::from_f64(mean);
        out[nc + c] = T::from_f64(var);
    }
    out
}

fn apply_host<T: Real>(x: &[T], p: &[T], (_, nc, plane): (usize, usize, usize), rows: usize) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    for (pl, (yp, xp)) in y.chunks_mut(plane.max(1)).zip(x.chunks(plane.max(1))).enumerate() {
        let k = coefficients(p, pl % nc, nc, rows);
        for (yv, &xv) in yp.iter_mut().zip(xp) {
            let z = xv * k.a + k.o;
            *yv = match k.slope {
                Some(_) if z > T::ZERO => z,
                Some(s) => s * z,
                None => z,
            };
        }
    }
    y
}

fn grad_host<T: Real>(
    x: &[T],
    g: &[T],
    p: &[T],
    (b, nc, plane): (usize, usize, usize),
    rows: usize,
    train: bool,
) -> Vec<T> {
    let n = x.len();
    let mut out = vec![T::ZERO; n + rows * nc];
    // (Σ ∂z, Σ ∂z·x̂ = ∂γ, Σ_{z ≤ 0} g·z = ∂α) per channel.
    let mut sums = vec![(0f64, 0f64, 0f64); nc];
    for (c, s) in sums.iter_mut().enumerate() {
        let k = coefficients(p, c, nc, rows);
        let (mut sg, mut sgx, mut sa) = (0f64, 0f64, 0f64);
        for i in 0..b {
            let r = (i * nc + c) * plane..(i * nc + c + 1) * plane;
            for (&gv, &xv) in g[r.clone()].iter().zip(&x[r]) {
                let (gz, ga) = k.through(gv, xv);
                sg += gz.to_f64();
                sgx += gz.to_f64() * (xv.to_f64() - k.mean);
                sa += ga.to_f64();
            }
        }
        *s = (sg, sgx * k.inv, sa);
        out[n + c] = T::from_f64(s.1);
        out[n + nc + c] = T::from_f64(sg);
        if rows == 5 {
            out[n + 2 * nc + c] = T::from_f64(sa);
        }
    }
    let m = (b * plane) as f64;
    for (pl, dp) in out[..n].chunks_mut(plane.max(1)).enumerate() {
        let c = pl % nc;
        let k = coefficients(p, c, nc, rows);
        let scale = p[c].to_f64() * k.inv;
        let (off, tilt) = if train {
            (T::from_f64(scale * sums[c].0 / m), T::from_f64(scale * sums[c].1 * k.inv / m))
        } else {
            (T::ZERO, T::ZERO)
        };
        let (kk, mu) = (T::from_f64(scale), T::from_f64(k.mean));
        let r = pl * plane..(pl + 1) * plane;
        for ((d, &gv), &xv) in dp.iter_mut().zip(&g[r.clone()]).zip(&x[r]) {
            *d = kk * k.through(gv, xv).0 - off - tilt * (xv - mu);
        }
    }
    out
}

impl CustomOp1 for Stats {
    fn name(&self) -> &'static str {
        "rwt-batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = bcp(l, "input")?;
        let out = match Floats::of(&[(s, l, "input")], "batch-norm")? {
            Floats::F32(v) => CpuStorage::F32(stats_host(v[0], dims)),
            Floats::F64(v) => CpuStorage::F64(stats_host(v[0], dims)),
        };
        Ok((out, Shape::from((2, dims.1))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let dims = bcp(l, "input")?;
        Ok((super::batch_norm_cuda::stats(s, l, dims)?, Shape::from((2, dims.1))))
    }
}

impl CustomOp2 for Apply {
    fn name(&self) -> &'static str {
        "rwt-batch-norm-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = bcp(l1, "input")?;
        let rows = table_rows(l2, dims.1)?;
        let out = match Floats::of(&[(s1, l1, "input"), (s2, l2, "table")], "batch-norm")? {
            Floats::F32(v) => CpuStorage::F32(apply_host(v[0], v[1], dims, rows)),
            Floats::F64(v) => CpuStorage::F64(apply_host(v[0], v[1], dims, rows)),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let dims = bcp(l1, "input")?;
        let rows = table_rows(l2, dims.1)?;
        Ok((super::batch_norm_cuda::apply(s1, l1, s2, l2, dims, rows)?, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        table: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let n = x.elem_count();
        let flat = x.apply_op3_no_bwd(&grad.contiguous()?, table, &Grad { train: self.train })?;
        let dx = flat.narrow(0, 0, n)?.reshape(x.shape())?;
        let dt = flat.narrow(0, n, table.elem_count())?.reshape(table.shape())?;
        Ok((Some(dx), Some(dt)))
    }
}

impl CustomOp3 for Grad {
    fn name(&self) -> &'static str {
        "rwt-batch-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (dims, rows) = grad_dims(l1, l2, l3)?;
        let inputs = [(s1, l1, "input"), (s2, l2, "output gradient"), (s3, l3, "table")];
        let out = match Floats::of(&inputs, "batch-norm gradient")? {
            Floats::F32(v) => CpuStorage::F32(grad_host(v[0], v[1], v[2], dims, rows, self.train)),
            Floats::F64(v) => CpuStorage::F64(grad_host(v[0], v[1], v[2], dims, rows, self.train)),
        };
        Ok((out, Shape::from(l1.shape().elem_count() + rows * dims.1)))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (dims, rows) = grad_dims(l1, l2, l3)?;
        let out = super::batch_norm_cuda::grad(s1, l1, s2, l2, s3, l3, dims, rows, self.train)?;
        Ok((out, Shape::from(l1.shape().elem_count() + rows * dims.1)))
    }
}
