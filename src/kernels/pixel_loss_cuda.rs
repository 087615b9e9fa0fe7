//! CUDA launches of the fused pixel losses (`pixel_loss.cu`, compiled once per process by NVRTC).

use super::pixel_loss::{LabelStats, PixelLoss};
use crate::kernels::cuda::{contiguous, Kernels};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Result, WithDType};

static KERNELS: Kernels = Kernels::new("rwt_pixel_loss", include_str!("pixel_loss.cu"));

/// Constant tables on the device (a dummy one-element buffer where a term is absent).
struct Tables<T: DeviceRepr> {
    ce: candle_core::cuda_backend::cudarc::driver::CudaSlice<T>,
    cost: candle_core::cuda_backend::cudarc::driver::CudaSlice<T>,
    has_ce: i32,
    has_cost: i32,
}

fn tables<T: DeviceRepr + WithDType>(p: &PixelLoss, dev: &CudaDevice) -> Result<Tables<T>> {
    let conv = |v: &Option<Vec<f64>>| -> Vec<T> {
        v.as_ref().map_or(vec![T::from_f64(0.0)], |v| v.iter().map(|&x| T::from_f64(x)).collect())
    };
    Ok(Tables {
        ce: dev.clone_htod(&conv(&p.ce_weights))?,
        cost: dev.clone_htod(&conv(&p.cost))?,
        has_ce: p.ce_weights.is_some() as i32,
        has_cost: p.cost.is_some() as i32,
    })
}

fn launch_cfg(pixels: usize) -> Result<LaunchConfig> {
    let threads = 256u32;
    let blocks = pixels.div_ceil(threads as usize);
    if blocks > u32::MAX as usize {
        candle_core::bail!("rwt pixel loss: {pixels} pixels is too many for one launch");
    }
    Ok(LaunchConfig { grid_dim: (blocks.max(1) as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 })
}

fn forward_t<T: CudaDType + DeviceRepr + WithDType>(
    p: &PixelLoss,
    z: &CudaStorage,
    zl: &Layout,
    labels: &CudaStorage,
    ll: &Layout,
    (b, n, s): (usize, usize, usize),
    name: &str,
) -> Result<(CudaStorage, LabelStats)> {
    let dev = z.device().clone();
    let zv = contiguous::<T>(z, zl, "logits")?;
    let lv = contiguous::<u32>(labels, ll, "labels")?;
    let t = tables::<T>(p, &dev)?;
    let pixels = b * s;
    let out = unsafe { dev.alloc::<T>(pixels.max(1))? };
    // [valid labels, first out-of-range index]; see rwt_pixel_fwd.
    let stats = dev.clone_htod(&[0u64, u64::MAX][..])?;
    let func = dev.get_or_load_custom_func(name, KERNELS.module(), KERNELS.ptx()?)?;
    let (n32, s64, p64) = (n as u32, s as u64, pixels as u64);
    let (ignore, has_ignore) = (p.ignore.unwrap_or(0), p.ignore.is_some() as i32);
    let mut builder = func.builder();
    builder.arg(&zv).arg(&lv).arg(&t.ce).arg(&t.cost).arg(&out).arg(&stats);
    builder.arg(&n32).arg(&s64).arg(&p64).arg(&ignore).arg(&has_ignore).arg(&t.has_ce).arg(&t.has_cost);
    // SAFETY: argument types and order match `rwt_pixel_fwd_*` in pixel_loss.cu; every index
    // the kernel touches is below the lengths checked above.
    unsafe { builder.launch(launch_cfg(pixels)?) }.w()?;
    let st: Vec<u64> = dev.clone_dtoh(&stats)?;
    let first_out_of_range = (st[1] != u64::MAX).then_some(st[1] as usize);
    Ok((CudaStorage::wrap_cuda_slice(out, dev), LabelStats { valid: st[0] as usize, first_out_of_range }))
}

#[allow(clippy::too_many_arguments)]
fn backward_t<T: CudaDType + DeviceRepr + WithDType>(
    p: &PixelLoss,
    z: &CudaStorage,
    zl: &Layout,
    labels: &CudaStorage,
    ll: &Layout,
    go: &CudaStorage,
    gl: &Layout,
    (b, n, s): (usize, usize, usize),
    name: &str,
) -> Result<CudaStorage> {
    let dev = z.device().clone();
    let zv = contiguous::<T>(z, zl, "logits")?;
    let lv = contiguous::<u32>(labels, ll, "labels")?;
    let gv = contiguous::<T>(go, gl, "output gradient")?;
    let t = tables::<T>(p, &dev)?;
    let pixels = b * s;
    let grad = unsafe { dev.alloc::<T>((b * n * s).max(1))? };
    let func = dev.get_or_load_custom_func(name, KERNELS.module(), KERNELS.ptx()?)?;
    let (n32, s64, p64) = (n as u32, s as u64, pixels as u64);
    let (ignore, has_ignore) = (p.ignore.unwrap_or(0), p.ignore.is_some() as i32);
    let mut builder = func.builder();
    builder.arg(&zv).arg(&lv).arg(&gv).arg(&t.ce).arg(&t.cost).arg(&grad);
    builder.arg(&n32).arg(&s64).arg(&p64).arg(&ignore).arg(&has_ignore).arg(&t.has_ce).arg(&t.has_cost);
    // SAFETY: argument types and order match `rwt_pixel_bwd_*` in pixel_loss.cu.
    unsafe { builder.launch(launch_cfg(pixels)?) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(grad, dev))
}

/// Loss map `[B, S]` of logits `[B, N, S]` and `u32` labels `[B, S]`, with the labels'
/// statistics (valid count, first out-of-range position) gathered by the same kernel.
pub(super) fn forward(
    p: &PixelLoss,
    z: &CudaStorage,
    zl: &Layout,
    labels: &CudaStorage,
    ll: &Layout,
    shape: (usize, usize, usize),
) -> Result<(CudaStorage, LabelStats)> {
    check_labels(labels)?;
    match z.dtype() {
        DType::F32 => forward_t::<f32>(p, z, zl, labels, ll, shape, "rwt_pixel_fwd_f32"),
        DType::F64 => forward_t::<f64>(p, z, zl, labels, ll, shape, "rwt_pixel_fwd_f64"),
        d => candle_core::bail!("rwt pixel loss: logits must be f32 or f64 on CUDA, got {d:?}"),
    }
}

/// Gradient `[B, N, S]` for the output gradient `go` `[B, S]`.
#[allow(clippy::too_many_arguments)]
pub(super) fn backward(
    p: &PixelLoss,
    z: &CudaStorage,
    zl: &Layout,
    labels: &CudaStorage,
    ll: &Layout,
    go: &CudaStorage,
    gl: &Layout,
    shape: (usize, usize, usize),
) -> Result<CudaStorage> {
    check_labels(labels)?;
    match z.dtype() {
        DType::F32 => backward_t::<f32>(p, z, zl, labels, ll, go, gl, shape, "rwt_pixel_bwd_f32"),
        DType::F64 => backward_t::<f64>(p, z, zl, labels, ll, go, gl, shape, "rwt_pixel_bwd_f64"),
        d => candle_core::bail!("rwt pixel loss: logits must be f32 or f64 on CUDA, got {d:?}"),
    }
}

fn check_labels(labels: &CudaStorage) -> Result<()> {
    if labels.dtype() != DType::U32 {
        candle_core::bail!(
            "rwt pixel loss: CUDA labels must be u32 (converted by the caller), got {:?}",
            labels.dtype()
        );
    }
    Ok(())
}
