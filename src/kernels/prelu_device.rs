//! PReLU on the GPU as two ops, the layer and its gradient:
//!
//! ```text
//! y = Apply(x, a)                 y = x > 0 ? x : a_c·x
//! [∂x, ∂a] = Grad(x, ∂y, a)       ∂x = ∂y·(x > 0 ? 1 : a_c),  ∂a_c = Σ_{x ≤ 0} ∂y·x
//! ```
//!
//! where composed from candle ops (`relu(x) + a·min(x, 0)`) it costs four full-size passes
//! forward and their gradients backward. It serves [`crate::kernels::prelu::PRelu`] and ENet's
//! bottleneck exits on CUDA (`f32`, `f64`). Each op has CPU loops that compute the same
//! quantities by the same formulas as the CUDA kernels (`prelu.cu`): the tests run this path on
//! the CPU against the composed form, and `tests/cuda.rs` runs it on the GPU against the CPU.

use crate::kernels::numeric::{channel_planes, Floats, Real};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};

/// The layer: `x [B, C, …]`, slopes `[C]` → `y`, the shape of `x`.
pub(crate) struct Apply;

/// `(x, ∂y, a)` → `[∂x (the values of x); ∂a (C values)]` in one flat tensor.
struct Grad;

fn slopes(l: &Layout, c: usize) -> candle_core::Result<()> {
    match l.dims() {
        [n] if *n == c && l.is_contiguous() => Ok(()),
        d => candle_core::bail!("rwt PReLU: the slopes must be contiguous [{c}], got {d:?}"),
    }
}

/// `(B, C, plane)` of the gradient op's inputs `x`, `∂y` (the same shape) and slopes.
fn grad_dims(x: &Layout, g: &Layout, a: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let dims = channel_planes(x, "PReLU", "input")?;
    if g.dims() != x.dims() || !g.is_contiguous() {
        candle_core::bail!("rwt PReLU gradient: {:?} against input {:?}", g.dims(), x.dims());
    }
    slopes(a, dims.1)?;
    Ok(dims)
}

fn apply_host<T: Real>(x: &[T], a: &[T], (_, nc, plane): (usize, usize, usize)) -> Vec<T> {
    let mut y = vec![T::ZERO; x.len()];
    for (pl, (yp, xp)) in y.chunks_mut(plane).zip(x.chunks(plane)).enumerate() {
        let s = a[pl % nc];
        for (yv, &v) in yp.iter_mut().zip(xp) {
            *yv = if v > T::ZERO { v } else { s * v };
        }
    }
    y
}

fn grad_host<T: Real>(x: &[T], g: &[T], a: &[T], (_, nc, plane): (usize, usize, usize)) -> Vec<T> {
    let n = x.len();
    let mut out = vec![T::ZERO; n + nc];
    let mut da = vec![0f64; nc];
    for (pl, d) in out[..n].chunks_mut(plane).enumerate() {
        let s = a[pl % nc];
        let r = pl * plane..(pl + 1) * plane;
        for ((o, &gv), &v) in d.iter_mut().zip(&g[r.clone()]).zip(&x[r]) {
            if v > T::ZERO {
                *o = gv;
            } else {
                *o = s * gv;
                da[pl % nc] += (gv * v).to_f64();
            }
        }
    }
    for (o, d) in out[n..].iter_mut().zip(da) {
        *o = T::from_f64(d);
    }
    out
}

impl CustomOp2 for Apply {
    fn name(&self) -> &'static str {
        "rwt-prelu-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let dims = channel_planes(l1, "PReLU", "input")?;
        slopes(l2, dims.1)?;
        let out = match Floats::of(&[(s1, l1, "input"), (s2, l2, "slopes")], "PReLU")? {
            Floats::F32(v) => CpuStorage::F32(apply_host(v[0], v[1], dims)),
            Floats::F64(v) => CpuStorage::F64(apply_host(v[0], v[1], dims)),
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
        let dims = channel_planes(l1, "PReLU", "input")?;
        slopes(l2, dims.1)?;
        Ok((super::prelu_cuda::apply(s1, l1, s2, l2, dims)?, l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let n = x.elem_count();
        let flat = x.apply_op3_no_bwd(&grad.contiguous()?, a, &Grad)?;
        Ok((Some(flat.narrow(0, 0, n)?.reshape(x.shape())?), Some(flat.narrow(0, n, a.elem_count())?)))
    }
}

impl CustomOp3 for Grad {
    fn name(&self) -> &'static str {
        "rwt-prelu-grad"
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
        let dims = grad_dims(l1, l2, l3)?;
        let inputs = [(s1, l1, "input"), (s2, l2, "output gradient"), (s3, l3, "slopes")];
        let out = match Floats::of(&inputs, "PReLU gradient")? {
            Floats::F32(v) => CpuStorage::F32(grad_host(v[0], v[1], v[2], dims)),
            Floats::F64(v) => CpuStorage::F64(grad_host(v[0], v[1], v[2], dims)),
        };
        Ok((out, Shape::from(l1.shape().elem_count() + dims.1)))
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
        let dims = grad_dims(l1, l2, l3)?;
        let out = super::prelu_cuda::grad(s1, l1, s2, l2, s3, l3, dims)?;
        Ok((out, Shape::from(l1.shape().elem_count() + dims.1)))
    }
}
