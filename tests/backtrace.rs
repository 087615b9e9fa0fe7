//! Error messages say what was wrong, not where in candle it was noticed: with
//! `RUST_BACKTRACE=1`, candle attaches a backtrace to its errors, and `rwt::Error` drops it.
//! (A test binary of its own: the standard library reads the variable once per process.)

use rwt::candle_core::{DType, Device, Tensor};
use rwt::loss::{self, LossConfig};
use rwt::GroundMatrix;

#[test]
fn errors_carry_no_backtrace() {
    // Before anything captures a backtrace in this process.
    // SAFETY (edition 2021: safe): the only test of this binary, set before any thread reads it.
    std::env::set_var("RUST_BACKTRACE", "1");
    // The test can fail: candle itself does attach one now.
    let raw = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap().dims3().unwrap_err().to_string();
    assert!(raw.lines().count() > 1, "candle attached no backtrace, so this test checks nothing: {raw}");

    // The fused loss's "not finite" error.
    let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1.0, 0.0]]).unwrap();
    let z = Tensor::new(&[[f32::NAN, 0.0]], &Device::Cpu).unwrap();
    let y = Tensor::new(&[0u32], &Device::Cpu).unwrap();
    for e in [
        loss::wasserstein(&z, &y, &d, LossConfig::default()).unwrap_err(),
        loss::cross_entropy(&z, &y, LossConfig::default()).unwrap_err(),
        loss::wasserstein_composed(&z, &y, &d, LossConfig::default()).unwrap_err(),
    ] {
        let text = e.to_string();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains("image 0 at pixel 0"), "{text}");
    }
    // A candle error surfacing through the crate: the same one line as without the variable.
    let e = rwt::train::smoothed_targets(&Tensor::zeros((2, 3), DType::U32, &Device::Cpu).unwrap(), 3, 0.1, None)
        .unwrap_err();
    let text = e.to_string();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("rank"), "{text}");
    // And through the standard error chain (what anyhow prints).
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        assert_eq!(s.to_string().lines().count(), 1, "{s}");
        source = s.source();
    }
}
