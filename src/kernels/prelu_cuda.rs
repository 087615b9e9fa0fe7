//! CUDA launches of the PReLU ops of `prelu_device.rs` (`prelu.cu`, compiled once per process
//! by NVRTC).

use crate::kernels::cuda::{
    by_float_dtype, channel_grid, contiguous, load_kernel, plane_grid, reduction_grid, slices, u32_of, Kernels,
};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaStorage, Layout, Result};

static KERNELS: Kernels = Kernels::new("rwt_prelu", concat!(include_str!("block_sum.cuh"), include_str!("prelu.cu")));

fn apply_t<T: CudaDType + DeviceRepr>(
    x: &CudaStorage,
    xl: &Layout,
    a: &CudaStorage,
    al: &Layout,
    (b, nc, plane): (usize, usize, usize),
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let xv = contiguous::<T>(x, xl, "PReLU input")?;
    let av = contiguous::<T>(a, al, "PReLU slopes")?;
    let y = unsafe { dev.alloc::<T>(b * nc * plane)? };
    let (planes, nc32, plane64) = (u32_of(b * nc, "planes")?, u32_of(nc, "channels")?, plane as u64);
    let f = load_kernel!(KERNELS, dev, "rwt_prelu_apply", x.dtype())?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&av).arg(&y).arg(&planes).arg(&nc32).arg(&plane64);
    // SAFETY: argument types and order match rwt_prelu_apply_* in prelu.cu; x and y hold
    // planes·plane values, the slopes nc (checked by the caller).
    unsafe { builder.launch(plane_grid(b * nc, plane)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev))
}

/// The layer's output for input `x` (`dims` = `(B, C, plane)`, non-empty) and slopes `a`.
pub(super) fn apply(
    x: &CudaStorage,
    xl: &Layout,
    a: &CudaStorage,
    al: &Layout,
    dims: (usize, usize, usize),
) -> Result<CudaStorage> {
    by_float_dtype!("PReLU", [x, a], apply_t(x, xl, a, al, dims))
}

fn grad_t<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    x: &CudaStorage,
    xl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    a: &CudaStorage,
    al: &Layout,
    (b, nc, plane): (usize, usize, usize),
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let xv = contiguous::<T>(x, xl, "PReLU input")?;
    let gv = contiguous::<T>(g, gl, "PReLU output gradient")?;
    let av = contiguous::<T>(a, al, "PReLU slopes")?;
    let n = b * nc * plane;
    let s = slices(nc, b, plane);
    let partial = dev.alloc_zeros::<f64>(nc * s as usize)?;
    let out = dev.alloc_zeros::<T>(n + nc)?;
    let (b32, nc32, plane64, n64) = (u32_of(b, "batch")?, u32_of(nc, "channels")?, plane as u64, n as u64);
    let planes = u32_of(b * nc, "planes")?;
    let dtype = x.dtype();
    let f = load_kernel!(KERNELS, dev, "rwt_prelu_grad_sums", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&gv).arg(&partial).arg(&b32).arg(&nc32).arg(&plane64);
    // SAFETY: argument types and order match rwt_prelu_grad_sums_* in prelu.cu; the grid has
    // one block row per channel and `s` slices, the partial sums' length.
    unsafe { builder.launch(reduction_grid(nc, s)?) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_prelu_grad_slopes", dtype)?;
    let mut builder = f.builder();
    builder.arg(&partial).arg(&out).arg(&n64).arg(&nc32).arg(&s);
    // SAFETY: as above, for rwt_prelu_grad_slopes_*; it writes out[n..n + nc].
    unsafe { builder.launch(channel_grid(nc)) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_prelu_grad_x", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&gv).arg(&av).arg(&out).arg(&planes).arg(&nc32).arg(&plane64);
    // SAFETY: as above, for rwt_prelu_grad_x_*; it writes out[..n].
    unsafe { builder.launch(plane_grid(b * nc, plane)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// `[∂x; ∂a]` flat, for input `x`, output gradient `g` and slopes `a`.
pub(super) fn grad(
    x: &CudaStorage,
    xl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    a: &CudaStorage,
    al: &Layout,
    dims: (usize, usize, usize),
) -> Result<CudaStorage> {
    by_float_dtype!("PReLU gradient", [x, g, a], grad_t(x, xl, g, gl, a, al, dims))
}
