//! CUDA launches of the batch-norm ops of `batch_norm_device.rs` (`batch_norm.cu`, compiled
//! once per process by NVRTC).

use crate::kernels::cuda::{
    by_float_dtype, channel_grid, contiguous, load_kernel, plane_grid, reduction_grid, slices, u32_of, Kernels,
};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaStorage, Layout, Result};

static KERNELS: Kernels =
    Kernels::new("rwt_batch_norm", concat!(include_str!("block_sum.cuh"), include_str!("batch_norm.cu")));

fn stats_t<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    x: &CudaStorage,
    l: &Layout,
    (b, nc, plane): (usize, usize, usize),
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let xv = contiguous::<T>(x, l, "batch-norm input")?;
    let s = slices(nc, b, plane);
    let partial = dev.alloc_zeros::<f64>(nc * s as usize)?;
    let partial_sq = dev.alloc_zeros::<f64>(nc * s as usize)?;
    let out = dev.alloc_zeros::<T>(2 * nc)?;
    let (b32, nc32, plane64, m) = (u32_of(b, "batch")?, u32_of(nc, "channels")?, plane as u64, (b * plane) as f64);
    let dtype = x.dtype();
    let f = load_kernel!(KERNELS, dev, "rwt_bn_sum", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&partial).arg(&b32).arg(&nc32).arg(&plane64);
    // SAFETY: argument types and order match rwt_bn_sum_* in batch_norm.cu; the grid has one
    // block row per channel and `s` slices, the partial sums' length.
    unsafe { builder.launch(reduction_grid(nc, s)?) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_bn_sum_sq", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&partial).arg(&partial_sq).arg(&b32).arg(&nc32).arg(&plane64);
    // SAFETY: as above, for rwt_bn_sum_sq_*.
    unsafe { builder.launch(reduction_grid(nc, s)?) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_bn_moments", dtype)?;
    let mut builder = f.builder();
    builder.arg(&partial).arg(&partial_sq).arg(&out).arg(&nc32).arg(&s).arg(&m);
    // SAFETY: as above, for rwt_bn_moments_*; one thread per channel writes out[c], out[nc + c].
    unsafe { builder.launch(channel_grid(nc)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// `[2, C]`: the batch mean and biased variance per channel of `x` (`dims` = `(B, C, H·W)`).
pub(super) fn stats(x: &CudaStorage, l: &Layout, dims: (usize, usize, usize)) -> Result<CudaStorage> {
    by_float_dtype!("batch-norm", [x], stats_t(x, l, dims))
}

fn apply_t<T: CudaDType + DeviceRepr>(
    x: &CudaStorage,
    xl: &Layout,
    p: &CudaStorage,
    pl: &Layout,
    (b, nc, plane): (usize, usize, usize),
    rows: usize,
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let xv = contiguous::<T>(x, xl, "batch-norm input")?;
    let pv = contiguous::<T>(p, pl, "batch-norm table")?;
    let n = b * nc * plane;
    let y = unsafe { dev.alloc::<T>(n.max(1))? };
    let (planes, nc32, plane64, rows32) =
        (u32_of(b * nc, "planes")?, u32_of(nc, "channels")?, plane as u64, rows as u32);
    let f = load_kernel!(KERNELS, dev, "rwt_bn_apply", x.dtype())?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&pv).arg(&y).arg(&planes).arg(&nc32).arg(&plane64).arg(&rows32);
    // SAFETY: argument types and order match rwt_bn_apply_* in batch_norm.cu; x and y hold
    // planes·plane values and the table rows·nc (checked by the caller).
    unsafe { builder.launch(plane_grid(b * nc, plane)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(y, dev))
}

/// The layer's output for input `x` and table `p` (`[rows, C]`).
pub(super) fn apply(
    x: &CudaStorage,
    xl: &Layout,
    p: &CudaStorage,
    pl: &Layout,
    dims: (usize, usize, usize),
    rows: usize,
) -> Result<CudaStorage> {
    by_float_dtype!("batch-norm", [x, p], apply_t(x, xl, p, pl, dims, rows))
}

#[allow(clippy::too_many_arguments)]
fn grad_t<T: CudaDType + DeviceRepr + ValidAsZeroBits>(
    x: &CudaStorage,
    xl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    p: &CudaStorage,
    pl: &Layout,
    (b, nc, plane): (usize, usize, usize),
    rows: usize,
    train: bool,
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let xv = contiguous::<T>(x, xl, "batch-norm input")?;
    let gv = contiguous::<T>(g, gl, "batch-norm output gradient")?;
    let pv = contiguous::<T>(p, pl, "batch-norm table")?;
    let n = b * nc * plane;
    let s = slices(nc, b, plane);
    let partial = dev.alloc_zeros::<f64>(3 * nc * s as usize)?;
    let sums = dev.alloc_zeros::<f64>(3 * nc)?;
    let out = dev.alloc_zeros::<T>(n + rows * nc)?;
    let (b32, nc32, plane64, rows32) = (u32_of(b, "batch")?, u32_of(nc, "channels")?, plane as u64, rows as u32);
    let (n64, planes, train32, m) = (n as u64, u32_of(b * nc, "planes")?, train as i32, (b * plane) as f64);
    let dtype = x.dtype();
    let f = load_kernel!(KERNELS, dev, "rwt_bn_grad_sums", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&gv).arg(&pv).arg(&partial).arg(&b32).arg(&nc32).arg(&plane64).arg(&rows32);
    // SAFETY: argument types and order match rwt_bn_grad_sums_* in batch_norm.cu; the grid has
    // one block row per channel and `s` slices, three partial sums each.
    unsafe { builder.launch(reduction_grid(nc, s)?) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_bn_grad_params", dtype)?;
    let mut builder = f.builder();
    builder.arg(&pv).arg(&partial).arg(&sums).arg(&out).arg(&n64).arg(&nc32).arg(&s).arg(&rows32);
    // SAFETY: as above, for rwt_bn_grad_params_*; it writes out[n..n + rows·nc] and sums.
    unsafe { builder.launch(channel_grid(nc)) }.w()?;
    let f = load_kernel!(KERNELS, dev, "rwt_bn_grad_x", dtype)?;
    let mut builder = f.builder();
    builder.arg(&xv).arg(&gv).arg(&pv).arg(&sums).arg(&out).arg(&planes).arg(&nc32).arg(&plane64);
    builder.arg(&rows32).arg(&train32).arg(&m);
    // SAFETY: as above, for rwt_bn_grad_x_*; it writes out[..n].
    unsafe { builder.launch(plane_grid(b * nc, plane)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

/// `[∂x; ∂table]` flat, for input `x`, output gradient `g` and table `p`.
#[allow(clippy::too_many_arguments)]
pub(super) fn grad(
    x: &CudaStorage,
    xl: &Layout,
    g: &CudaStorage,
    gl: &Layout,
    p: &CudaStorage,
    pl: &Layout,
    dims: (usize, usize, usize),
    rows: usize,
    train: bool,
) -> Result<CudaStorage> {
    by_float_dtype!("batch-norm gradient", [x, g, p], grad_t(x, xl, g, gl, p, pl, dims, rows, train))
}
