//! Shared pieces of the crate's CUDA code: run-time compilation of kernel sources by NVRTC
//! (once per process) and contiguous views of storages.

use candle_core::cuda_backend::cudarc::driver::CudaView;
use candle_core::cuda_backend::CudaDType;
use candle_core::{CudaStorage, Layout, Result};
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
