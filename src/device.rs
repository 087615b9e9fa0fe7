//! The one place where the compute device is chosen.
//!
//! `RWT_DEVICE=cpu` forces the CPU; `RWT_DEVICE=cuda` or `cuda:N` asks for a GPU (an error if
//! the crate was built without the `cuda` feature); unset, the first GPU is used when the
//! crate has CUDA support and a GPU is present, the CPU otherwise.

use crate::{Error, Result};
use candle_core::Device;

/// The device named by `RWT_DEVICE`, or the best available one.
///
/// ```
/// let dev = rwt::device::default_device()?;
/// println!("{dev:?}");
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn default_device() -> Result<Device> {
    match std::env::var("RWT_DEVICE") {
        Ok(spec) if !spec.trim().is_empty() => parse(&spec),
        _ => Ok(best_available()),
    }
}

/// The first CUDA GPU when available, else the CPU.
pub fn best_available() -> Device {
    if candle_core::utils::cuda_is_available() {
        if let Ok(d) = Device::new_cuda(0) {
            return d;
        }
    }
    Device::Cpu
}

/// Parses `cpu`, `cuda` or `cuda:N`.
pub fn parse(spec: &str) -> Result<Device> {
    let s = spec.trim().to_ascii_lowercase();
    if s == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = match s.as_str() {
        "cuda" | "gpu" => 0,
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => n,
            None => return Err(Error::invalid("RWT_DEVICE", spec, "expected cpu, cuda or cuda:N")),
        },
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(Error::invalid(
            "RWT_DEVICE",
            spec,
            "this build of rwt has no CUDA support (build with --features cuda)",
        ));
    }
    Ok(Device::new_cuda(ordinal)?)
}

/// Makes the C allocator keep freed memory for reuse rather than hand it back to the system
/// (once per process; [`crate::models::Segmenter::forward_all`] on the CPU and the training and
/// evaluation loops call it). A CPU training step
/// allocates and frees hundreds of megabytes of activations and gradients; glibc returns large
/// freed blocks to the kernel and then takes page faults (and zeroed pages) to get them back
/// at the next step — a quarter of an ENet step on the CPU. Here glibc serves blocks up to
/// 32 MiB from its heap and stops trimming the heap, so the process keeps its peak footprint.
/// Returns whether the settings were applied (glibc on Linux only; elsewhere a no-op).
///
/// ```
/// rwt::device::retain_freed_memory();
/// ```
pub fn retain_freed_memory() -> bool {
    static APPLIED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *APPLIED.get_or_init(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only changes allocator parameters; both values are in range
            // (the mmap threshold's maximum is 32 MiB on 64-bit glibc).
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        false
    })
}

/// Every device the tests should run on: the CPU, plus the first GPU when there is one.
pub fn test_devices() -> Vec<Device> {
    let mut v = vec![Device::Cpu];
    let gpu = best_available();
    if !gpu.is_cpu() {
        v.push(gpu);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_bad_values() {
        assert!(parse("cpu").unwrap().is_cpu());
        let e = parse("tpu").unwrap_err().to_string();
        assert!(e.contains("RWT_DEVICE = tpu"), "{e}");
    }
}
