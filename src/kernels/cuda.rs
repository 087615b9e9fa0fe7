//! Shared pieces of the crate's CUDA code: run-time compilation of kernel sources by NVRTC
//! (once per process), contiguous views of storages, and the launch grids of the per-channel
//! kernels (batch-norm, PReLU).

use candle_core::cuda_backend::cudarc::driver::{CudaView, LaunchConfig};
use candle_core::cuda_backend::CudaDType;
use candle_core::{CudaStorage, DType, Layout, Result};
use std::sync::OnceLock;

/// A kernel source compiled to PTX on first use.
pub(crate) struct Kernels {
    name: &'static str,
    source: &'static str,
    ptx: OnceLock<std::result::Result<String, String>>,
}

impl Kernels {
    /// Kernels from `source` (a `.cu` file without includes), known to candle as module `name`.
    pub(crate) const fn new(name: &'static str, source: &'static str) -> Self {
        Kernels { name, source, ptx: OnceLock::new() }
    }

    /// The module name under which candle caches the loaded PTX.
    pub(crate) fn module(&self) -> &'static str {
        self.name
    }

    /// The PTX, compiling it the first time.
    pub(crate) fn ptx(&self) -> Result<&str> {
        self.ptx
            .get_or_init(|| {
                candle_core::cuda_backend::cudarc::nvrtc::compile_ptx(self.source)
                    .map(|p| p.to_src())
                    .map_err(|e| format!("{e:?}"))
            })
            .as_deref()
            .map_err(|e| candle_core::Error::Msg(format!("rwt: NVRTC could not compile {}: {e}", self.name)))
    }
}

/// The contiguous part of a storage that a layout describes.
pub(crate) fn contiguous<'a, T: CudaDType>(s: &'a CudaStorage, l: &Layout, what: &str) -> Result<CudaView<'a, T>> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(s.as_cuda_slice::<T>()?.slice(a..b)),
        None => candle_core::bail!("rwt: {what} must be contiguous"),
    }
}

/// Threads per block of the reduction and plane kernels (a multiple of 32, as
/// `rwt_block_sum` in `block_sum.cuh` needs).
pub(crate) const THREADS: u32 = 256;

/// Blocks per channel for a per-channel reduction over `B·plane` values: about 528 blocks in
/// all (4 per SM of an H100), and no more than leave each thread 8 of the channel's values
/// (each block strides over every image's plane, so small planes leave threads idle).
pub(crate) fn slices(nc: usize, b: usize, plane: usize) -> u32 {
    let want = 528usize.div_ceil(nc.max(1));
    let most = (b * plane).div_ceil(8 * THREADS as usize).max(1);
    want.min(most).clamp(1, 65_535) as u32
}

/// One block row per channel (`blockIdx.x`), `s` slices (`blockIdx.y`): the reductions' grid.
pub(crate) fn reduction_grid(nc: usize, s: u32) -> Result<LaunchConfig> {
    if nc > i32::MAX as usize {
        candle_core::bail!("rwt CUDA kernels: {nc} channels is too many for one launch");
    }
    Ok(LaunchConfig { grid_dim: (nc as u32, s, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}

/// Positions of a plane along x, `planes` planes along y (the kernels loop over what does not
/// fit).
pub(crate) fn plane_grid(planes: usize, plane: usize) -> LaunchConfig {
    let x = plane.div_ceil(THREADS as usize).clamp(1, 1024) as u32;
    let y = planes.clamp(1, 65_535) as u32;
    LaunchConfig { grid_dim: (x, y, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// One thread per channel.
pub(crate) fn channel_grid(nc: usize) -> LaunchConfig {
    let blocks = nc.div_ceil(THREADS as usize).max(1) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// The kernels' name suffix for `dtype` (`f32`, `f64`), an error naming it for any other.
pub(crate) fn suffix(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("f32"),
        DType::F64 => Ok("f64"),
        d => candle_core::bail!("rwt CUDA kernels: f32 or f64, got {d:?}"),
    }
}

/// `v` as a kernel's `unsigned int`, or an error naming `what`.
pub(crate) fn u32_of(v: usize, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("rwt CUDA kernels: {what} {v} exceeds u32")))
}

/// Loads kernel `$name` of `$kernels` (a [`Kernels`]) for `$dtype` on device `$dev` (a macro:
/// candle does not name the type it returns).
macro_rules! load_kernel {
    ($kernels:expr, $dev:expr, $name:expr, $dtype:expr) => {
        $dev.get_or_load_custom_func(
            &format!("{}_{}", $name, $crate::kernels::cuda::suffix($dtype)?),
            $kernels.module(),
            $kernels.ptx()?,
        )
    };
}
pub(crate) use load_kernel;

/// `$f::<f32>(args)` or `$f::<f64>(args)` by the dtype of storage `$first`, after checking that
/// every storage in `[$first, $others…]` has that dtype; an error naming `$op` otherwise.
macro_rules! by_float_dtype {
    ($op:expr, [$first:expr $(, $other:expr)*], $f:ident($($arg:expr),* $(,)?)) => {{
        let dtypes = [$first.dtype() $(, $other.dtype())*];
        let dtype = dtypes[0];
        if dtypes.iter().any(|d| *d != dtype) {
            candle_core::bail!("rwt {} on CUDA: the inputs must be all f32 or all f64", $op);
        }
        match dtype {
            candle_core::DType::F32 => $f::<f32>($($arg),*),
            candle_core::DType::F64 => $f::<f64>($($arg),*),
            d => candle_core::bail!("rwt {} on CUDA: f32 or f64, got {d:?}", $op),
        }
    }};
}
pub(crate) use by_float_dtype;

#[cfg(test)]
mod tests {
    use super::Kernels;

    /// NVRTC (a library: no GPU needed) compiles every kernel source, and the PTX has each
    /// entry point the launch code asks for.
    #[test]
    fn nvrtc_compiles_every_kernel_source() {
        let sources = [
            ("pixel_loss", include_str!("pixel_loss.cu"), &["rwt_pixel_fwd", "rwt_pixel_bwd"][..]),
            ("sinkhorn_loss", include_str!("sinkhorn_loss.cu"), &["rwt_sinkhorn"][..]),
            ("pooling", include_str!("pooling.cu"), &["rwt_argmax_pool", "rwt_gather_plane", "rwt_scatter_plane"][..]),
            (
                "prelu",
                concat!(include_str!("block_sum.cuh"), include_str!("prelu.cu")),
                &["rwt_prelu_apply", "rwt_prelu_grad_sums", "rwt_prelu_grad_slopes", "rwt_prelu_grad_x"][..],
            ),
            (
                "batch_norm",
                concat!(include_str!("block_sum.cuh"), include_str!("batch_norm.cu")),
                &[
                    "rwt_bn_sum",
                    "rwt_bn_sum_sq",
                    "rwt_bn_moments",
                    "rwt_bn_apply",
                    "rwt_bn_grad_sums",
                    "rwt_bn_grad_params",
                    "rwt_bn_grad_x",
                ][..],
            ),
        ];
        for (name, source, entries) in sources {
            let kernels = Kernels::new(name, source);
            let ptx = kernels.ptx().unwrap_or_else(|e| panic!("{e}"));
            for entry in entries {
                for dtype in ["f32", "f64"] {
                    let symbol = format!(".entry {entry}_{dtype}(");
                    assert!(ptx.contains(&symbol), "{name}: no `{symbol}` in the PTX");
                }
            }
        }
    }
}
