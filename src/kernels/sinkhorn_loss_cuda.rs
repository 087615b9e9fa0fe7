//! CUDA launch of the per-pixel Sinkhorn solver (`sinkhorn_loss.cu`, compiled once by NVRTC).

use crate::kernels::cuda::{contiguous, Kernels};
use crate::ot::{SinkhornConfig, SinkhornStats, SinkhornValue};
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};
use candle_core::cuda_backend::{CudaDType, WrapErr};
use candle_core::{CudaStorage, DType, Layout, Result, WithDType};

static KERNELS: Kernels = Kernels::new("rwt_sinkhorn", include_str!("sinkhorn_loss.cu"));
const MAX_CLASSES: usize = 64;

/// `[B, N + 1, S]` (value, then the gradient per unit upstream gradient) and the statistics.
pub(super) fn forward(
    cost: &[f64],
    cfg: &SinkhornConfig,
    z: &CudaStorage,
    zl: &Layout,
    t: &CudaStorage,
    tl: &Layout,
    shape: (usize, usize, usize),
) -> Result<(CudaStorage, SinkhornStats)> {
    if shape.1 > MAX_CLASSES {
        candle_core::bail!("rwt soft Wasserstein on CUDA supports at most {MAX_CLASSES} classes, got {}", shape.1);
    }
    match (z.dtype(), t.dtype()) {
        (DType::F32, DType::F32) => run::<f32>(cost, cfg, z, zl, t, tl, shape, "rwt_sinkhorn_f32"),
        (DType::F64, DType::F64) => run::<f64>(cost, cfg, z, zl, t, tl, shape, "rwt_sinkhorn_f64"),
        (a, b) => {
            candle_core::bail!("rwt soft Wasserstein: logits and targets must both be f32 or f64, got {a:?} and {b:?}")
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<T: CudaDType + DeviceRepr + ValidAsZeroBits + WithDType>(
    cost: &[f64],
    cfg: &SinkhornConfig,
    z: &CudaStorage,
    zl: &Layout,
    t: &CudaStorage,
    tl: &Layout,
    (b, n, s): (usize, usize, usize),
    name: &str,
) -> Result<(CudaStorage, SinkhornStats)> {
    let dev = z.device().clone();
    let (zv, tv) = (contiguous::<T>(z, zl, "logits")?, contiguous::<T>(t, tl, "targets")?);
    let max_cost = cost.iter().copied().fold(0.0, f64::max);
    let conv = |v: &[f64]| -> Vec<T> { v.iter().map(|&x| T::from_f64(x)).collect() };
    let mt: Vec<f64> = (0..n * n).map(|k| cost[(k % n) * n + k / n]).collect();
    let schedule = cfg.schedule(max_cost);
    let (m_d, mt_d, sched_d) =
        (dev.clone_htod(&conv(cost))?, dev.clone_htod(&conv(&mt))?, dev.clone_htod(&conv(&schedule))?);
    let pixels = b * s;
    let out = dev.alloc_zeros::<T>((b * (n + 1) * s).max(1))?;
    let iters = dev.alloc_zeros::<u32>(pixels.max(1))?;
    let errs = dev.alloc_zeros::<T>(pixels.max(1))?;
    let func = dev.get_or_load_custom_func(name, KERNELS.module(), KERNELS.ptx()?)?;
    let stages = schedule.len() as u32;
    let stage_iterations = cfg.scaling.map_or(0, |x| x.iterations_per_stage.max(1)) as u32;
    let tolerance = T::from_f64(cfg.tolerance);
    let max_iterations = cfg.max_iterations.min(u32::MAX as usize) as u32;
    let omega = T::from_f64(cfg.relaxation);
    let sharp = i32::from(cfg.value == SinkhornValue::Sharp);
    let (n32, s64, p64) = (n as u32, s as u64, pixels as u64);
    let threads = 128u32;
    let blocks = pixels.div_ceil(threads as usize).max(1) as u32;
    let mut builder = func.builder();
    builder.arg(&zv).arg(&tv).arg(&m_d).arg(&mt_d).arg(&sched_d).arg(&stages).arg(&stage_iterations);
    builder.arg(&tolerance).arg(&max_iterations).arg(&omega).arg(&sharp).arg(&out).arg(&iters).arg(&errs);
    builder.arg(&n32).arg(&s64).arg(&p64);
    // SAFETY: argument types and order match `rwt_sinkhorn_*` in sinkhorn.cu; n <= RWT_MAX_N.
    unsafe {
        builder.launch(LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: 0 })
    }
    .w()?;
    let it: Vec<u32> = dev.clone_dtoh(&iters)?;
    let er: Vec<T> = dev.clone_dtoh(&errs)?;
    let mut stats = SinkhornStats { converged: true, ..Default::default() };
    let mut total = 0usize;
    for (&i, e) in it.iter().zip(&er).take(pixels) {
        if i == 0 {
            stats.ignored += 1;
            continue;
        }
        let e = e.to_f64();
        stats.problems += 1;
        total += i as usize;
        stats.max_iterations = stats.max_iterations.max(i as usize);
        stats.max_marginal_error = stats.max_marginal_error.max(e);
        // NaN counts as not converged.
        if e.is_nan() || e >= cfg.tolerance {
            stats.not_converged += 1;
            stats.converged = false;
        }
    }
    stats.mean_iterations = if stats.problems > 0 { total as f64 / stats.problems as f64 } else { 0.0 };
    Ok((CudaStorage::wrap_cuda_slice(out, dev), stats))
}
