//! CUDA launches of the pooling kernels (`pooling.cu`, compiled once by NVRTC).

use crate::kernels::cuda::{contiguous, Kernels};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Layout, Result};

static KERNELS: Kernels = Kernels::new("rwt_pool_ops", include_str!("pooling.cu"));

fn cfg(n: usize) -> LaunchConfig {
    LaunchConfig { grid_dim: (n.div_ceil(256).max(1) as u32, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 }
}

fn suffix(d: DType) -> Result<&'static str> {
    match d {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        d => candle_core::bail!("rwt pooling ops: f32 or f64, got {d:?}"),
    }
}

/// Indices of the window maxima, `u32`.
pub(super) fn argmax_pool(
    x: &CudaStorage,
    l: &Layout,
    (b, c, h, w): (usize, usize, usize, usize),
    k: usize,
    s: usize,
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
    let n = b * c * oh * ow;
    let idx = dev.alloc_zeros::<u32>(n.max(1))?;
    let func = dev.get_or_load_custom_func(
        &format!("rwt_argmax_pool_{}", suffix(x.dtype())?),
        KERNELS.module(),
        KERNELS.ptx()?,
    )?;
    let (planes, h32, w32, oh32, ow32, k32, s32) =
        ((b * c) as u64, h as u32, w as u32, oh as u32, ow as u32, k as u32, s as u32);
    macro_rules! launch {
        ($t:ty) => {{
            let xv = contiguous::<$t>(x, l, "pool input")?;
            let mut builder = func.builder();
            builder.arg(&xv).arg(&idx).arg(&planes).arg(&h32).arg(&w32).arg(&oh32).arg(&ow32).arg(&k32).arg(&s32);
            // SAFETY: argument types and order match rwt_argmax_pool_* in ops.cu.
            unsafe { builder.launch(cfg(n)) }.w()?;
        }};
    }
    match x.dtype() {
        DType::F32 => launch!(f32),
        _ => launch!(f64),
    }
    Ok(CudaStorage::wrap_cuda_slice(idx, dev))
}

/// `out[p, k] = x[p, idx[p, k]]`.
pub(super) fn gather(
    x: &CudaStorage,
    xl: &Layout,
    idx: &CudaStorage,
    il: &Layout,
    plane_in: usize,
) -> Result<CudaStorage> {
    let dev = x.device().clone();
    let (_, _, oh, ow) = il.shape().dims4()?;
    let n = il.shape().elem_count();
    let iv = contiguous::<u32>(idx, il, "pool indices")?;
    let func = dev.get_or_load_custom_func(
        &format!("rwt_gather_plane_{}", suffix(x.dtype())?),
        KERNELS.module(),
        KERNELS.ptx()?,
    )?;
    let (n64, pin, pout) = (n as u64, plane_in as u32, (oh * ow) as u32);
    macro_rules! launch {
        ($t:ty) => {{
            let out = dev.alloc_zeros::<$t>(n.max(1))?;
            let xv = contiguous::<$t>(x, xl, "gather input")?;
            let mut builder = func.builder();
            builder.arg(&xv).arg(&iv).arg(&out).arg(&n64).arg(&pin).arg(&pout);
            // SAFETY: argument types and order match rwt_gather_plane_* in ops.cu.
            unsafe { builder.launch(cfg(n)) }.w()?;
            CudaStorage::wrap_cuda_slice(out, dev)
        }};
    }
    Ok(match x.dtype() {
        DType::F32 => launch!(f32),
        _ => launch!(f64),
    })
}

/// `out[p, idx[p, k]] += v[p, k]` into zeros with `plane_out` elements per plane.
pub(super) fn scatter(
    v: &CudaStorage,
    vl: &Layout,
    idx: &CudaStorage,
    il: &Layout,
    plane_out: usize,
) -> Result<CudaStorage> {
    let dev = v.device().clone();
    let (b, c, h, w) = vl.shape().dims4()?;
    let n = b * c * h * w;
    let iv = contiguous::<u32>(idx, il, "unpool indices")?;
    let func = dev.get_or_load_custom_func(
        &format!("rwt_scatter_plane_{}", suffix(v.dtype())?),
        KERNELS.module(),
        KERNELS.ptx()?,
    )?;
    let (n64, pin, pout) = (n as u64, (h * w) as u32, plane_out as u32);
    macro_rules! launch {
        ($t:ty) => {{
            let out = dev.alloc_zeros::<$t>((b * c * plane_out).max(1))?;
            let vv = contiguous::<$t>(v, vl, "unpool values")?;
            let mut builder = func.builder();
            builder.arg(&vv).arg(&iv).arg(&out).arg(&n64).arg(&pin).arg(&pout);
            // SAFETY: argument types and order match rwt_scatter_plane_* in ops.cu.
            unsafe { builder.launch(cfg(n)) }.w()?;
            CudaStorage::wrap_cuda_slice(out, dev)
        }};
    }
    Ok(match v.dtype() {
        DType::F32 => launch!(f32),
        _ => launch!(f64),
    })
}
