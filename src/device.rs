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
