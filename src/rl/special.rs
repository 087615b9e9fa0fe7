//! The special functions a Beta policy needs and candle lacks: `ln Γ(x)` ([`lgamma`]) and the
//! digamma function `ψ(x) = d ln Γ(x) / dx` ([`digamma`]), element-wise, differentiable, on any
//! device.
//!
//! Both are composed of candle's element-wise operations, so autograd differentiates them
//! (the derivative of [`lgamma`] is the digamma series, that of [`digamma`] the trigamma
//! series) and they run wherever candle runs. For `x > 0` the argument is shifted by six with
//! the recurrences `ln Γ(x) = ln Γ(x + 6) − Σ_{k<6} ln(x + k)` and
//! `ψ(x) = ψ(x + 6) − Σ_{k<6} 1/(x + k)`, then the asymptotic (Stirling) series is summed at
//! `z = x + 6 ≥ 6` (Abramowitz & Stegun 6.1.40 and 6.3.18):
//!
//! ```text
//! ln Γ(z) ≈ (z − ½) ln z − z + ½ ln 2π + 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷) + 1/(1188z⁹)
//! ψ(z)    ≈ ln z − 1/(2z) − 1/(12z²) + 1/(120z⁴) − 1/(252z⁶) + 1/(240z⁸) − 1/(132z¹⁰)
//! ```
//!
//! The first omitted terms are below `1e-11` at `z = 6`, so in `f64` both are exact to about
//! `1e-11` (tested against closed forms at integers and half-integers); in `f32` they carry
//! the dtype's rounding.
//!
//! ```
//! use rwt::candle_core::{Device, Tensor};
//! let x = Tensor::new(&[1.0f64, 0.5, 5.0], &Device::Cpu)?;
//! let lg = rwt::rl::lgamma(&x)?.to_vec1::<f64>()?;
//! assert!((lg[2] - 24f64.ln()).abs() < 1e-10); // Γ(5) = 4!
//! let psi = rwt::rl::digamma(&x)?.to_vec1::<f64>()?;
//! assert!((psi[0] + 0.5772156649015329).abs() < 1e-10); // ψ(1) = −γ
//! # Ok::<(), rwt::Error>(())
//! ```

use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// How far the argument is shifted before the asymptotic series.
const SHIFT: usize = 6;

/// `ln Γ(x)` element-wise for `x > 0`, any shape, `f32` or `f64`; differentiable (its gradient
/// is [`digamma`]). An `x` that is not finite and positive is an error naming the value.
pub fn lgamma(x: &Tensor) -> Result<Tensor> {
    check_positive("lgamma argument", x)?;
    lgamma_unchecked(x)
}

/// The digamma function `ψ(x) = Γ'(x)/Γ(x)` element-wise for `x > 0`, any shape, `f32` or
/// `f64`; differentiable (its gradient is the trigamma function). An `x` that is not finite
/// and positive is an error naming the value.
pub fn digamma(x: &Tensor) -> Result<Tensor> {
    check_positive("digamma argument", x)?;
    digamma_unchecked(x)
}

/// Errors unless every element of `x` is finite and `> 0` (one reduction, one read-back).
pub(crate) fn check_positive(what: &'static str, x: &Tensor) -> Result<()> {
    if !matches!(x.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType { what, expected: "f32 or f64", got: x.dtype() });
    }
    if x.elem_count() == 0 {
        return Ok(());
    }
    let flat = x.flatten_all()?;
    // The sum is NaN or infinite if any element is; the minimum must be > 0.
    let probe = Tensor::stack(&[flat.sum_all()?, flat.min_all()?], 0)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    if !probe[0].is_finite() {
        return Err(Error::invalid(what, probe[0], "holds a NaN or infinite value (their sum is shown)"));
    }
    if probe[1] <= 0.0 {
        return Err(Error::invalid(what, probe[1], "must be > 0 everywhere (the smallest element is shown)"));
    }
    Ok(())
}

/// `Σ_{k<6} ln(x + k)`, as three logarithms of pairwise products (no overflow below ~1e19).
fn log_rising(x: &Tensor) -> Result<Tensor> {
    let mut acc: Option<Tensor> = None;
    for k in (0..SHIFT).step_by(2) {
        let pair = (x.affine(1.0, k as f64)? * x.affine(1.0, k as f64 + 1.0)?)?.log()?;
        acc = Some(match acc {
            None => pair,
            Some(a) => (a + pair)?,
        });
    }
    acc.ok_or_else(|| Error::invalid("lgamma shift", SHIFT, "must be > 0"))
}

/// [`lgamma`] without the domain check.
pub(crate) fn lgamma_unchecked(x: &Tensor) -> Result<Tensor> {
    let z = x.affine(1.0, SHIFT as f64)?;
    let r = z.recip()?;
    let r2 = r.sqr()?;
    // 1/(12z) − 1/(360z³) + 1/(1260z⁵) − 1/(1680z⁷) + 1/(1188z⁹), by Horner in 1/z².
    let mut s = r2.affine(1.0 / 1188.0, -1.0 / 1680.0)?;
    for c in [1.0 / 1260.0, -1.0 / 360.0, 1.0 / 12.0] {
        s = (s * &r2)?.affine(1.0, c)?;
    }
    let series = (s * r)?;
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let stirling = ((z.affine(1.0, -0.5)? * z.log()?)? - z.affine(1.0, -half_ln_2pi)?)?;
    Ok(((stirling + series)? - log_rising(x)?)?)
}

/// [`digamma`] without the domain check.
pub(crate) fn digamma_unchecked(x: &Tensor) -> Result<Tensor> {
    let z = x.affine(1.0, SHIFT as f64)?;
    let r = z.recip()?;
    let r2 = r.sqr()?;
    // 1/(12z²) − 1/(120z⁴) + 1/(252z⁶) − 1/(240z⁸) + 1/(132z¹⁰), by Horner in 1/z².
    let mut s = r2.affine(1.0 / 132.0, -1.0 / 240.0)?;
    for c in [1.0 / 252.0, -1.0 / 120.0, 1.0 / 12.0] {
        s = (s * &r2)?.affine(1.0, c)?;
    }
    let tail = (s * r2)?;
    let asymptotic = ((z.log()? - r.affine(0.5, 0.0)?)? - tail)?;
    let mut shift = x.recip()?;
    for k in 1..SHIFT {
        shift = (shift + x.affine(1.0, k as f64)?.recip()?)?;
    }
    Ok((asymptotic - shift)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use std::f64::consts::{LN_2, PI};

    /// The Euler–Mascheroni constant.
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

    fn eval(f: fn(&Tensor) -> Result<Tensor>, xs: &[f64]) -> Vec<f64> {
        f(&Tensor::new(xs, &Device::Cpu).unwrap()).unwrap().to_vec1::<f64>().unwrap()
    }

    /// `ln Γ(n) = ln (n − 1)!` and `Γ(n + ½) = (2n)! √π / (4ⁿ n!)`.
    #[test]
    fn lgamma_matches_factorials_and_half_integers() {
        let ints: Vec<f64> = (1..=25).map(|n| n as f64).collect();
        let got = eval(lgamma, &ints);
        let mut ln_fact = 0.0f64; // ln (n − 1)!
        for (n, g) in (1..=25).zip(&got) {
            if n > 1 {
                ln_fact += ((n - 1) as f64).ln();
            }
            assert!((g - ln_fact).abs() < 1e-10 * ln_fact.abs().max(1.0), "lgamma({n}) = {g}, want {ln_fact}");
        }
        let halves: Vec<f64> = (0..12).map(|n| n as f64 + 0.5).collect();
        let got = eval(lgamma, &halves);
        for (n, g) in (0..12u32).zip(&got) {
            let ln_fact = |m: u32| (1..=m).map(|k| (k as f64).ln()).sum::<f64>();
            let want = ln_fact(2 * n) + 0.5 * PI.ln() - n as f64 * 4f64.ln() - ln_fact(n);
            assert!((g - want).abs() < 1e-10, "lgamma({}) = {g}, want {want}", n as f64 + 0.5);
        }
        // Small and large arguments: Γ(x) ~ 1/x − γ near 0; Stirling's leading terms far out.
        let tiny = eval(lgamma, &[1e-6])[0];
        assert!((tiny - (1e6f64 - EULER_GAMMA).ln()).abs() < 1e-6, "{tiny}");
        let big = 1e4f64;
        let want = (big - 0.5) * big.ln() - big + 0.5 * (2.0 * PI).ln() + 1.0 / (12.0 * big);
        assert!((eval(lgamma, &[big])[0] - want).abs() < 1e-7);
    }

    /// `ψ(1) = −γ`, `ψ(n) = −γ + H_{n−1}`, `ψ(½) = −γ − 2 ln 2`, `ψ(n + ½) = ψ(½) + Σ 2/(2k − 1)`.
    #[test]
    fn digamma_matches_harmonic_numbers() {
        let got = eval(digamma, &(1..=20).map(|n| n as f64).collect::<Vec<_>>());
        let mut harmonic = 0.0;
        for (n, g) in (1..=20).zip(&got) {
            if n > 1 {
                harmonic += 1.0 / (n - 1) as f64;
            }
            assert!((g - (harmonic - EULER_GAMMA)).abs() < 1e-10, "digamma({n}) = {g}");
        }
        let got = eval(digamma, &(0..10).map(|n| n as f64 + 0.5).collect::<Vec<_>>());
        let mut want = -EULER_GAMMA - 2.0 * LN_2;
        for (n, g) in (0..10).zip(&got) {
            if n > 0 {
                want += 2.0 / (2 * n - 1) as f64;
            }
            assert!((g - want).abs() < 1e-10, "digamma({}) = {g}, want {want}", n as f64 + 0.5);
        }
    }

    /// The gradient of `lgamma` is `digamma` (closed forms above) and that of `digamma` is the
    /// trigamma function: `ψ'(1) = π²/6`, `ψ'(½) = π²/2`, `ψ'(n + 1) = π²/6 − Σ_{k≤n} 1/k²`.
    #[test]
    fn gradients_are_digamma_and_trigamma() {
        let x = Var::new(&[1.0f64, 0.5, 3.0, 7.5], &Device::Cpu).unwrap();
        let g = lgamma(x.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let dlg = g.get(x.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let want = eval(digamma, &[1.0, 0.5, 3.0, 7.5]);
        assert!((dlg[0] + EULER_GAMMA).abs() < 1e-10 && (dlg[2] - (1.5 - EULER_GAMMA)).abs() < 1e-10, "{dlg:?}");
        for (a, b) in dlg.iter().zip(&want) {
            assert!((a - b).abs() < 1e-10, "{dlg:?} vs {want:?}");
        }
        let g = digamma(x.as_tensor()).unwrap().sum_all().unwrap().backward().unwrap();
        let dpsi = g.get(x.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let trigamma_int = |n: usize| PI * PI / 6.0 - (1..n).map(|k| 1.0 / (k * k) as f64).sum::<f64>();
        assert!((dpsi[0] - PI * PI / 6.0).abs() < 1e-9, "{dpsi:?}");
        assert!((dpsi[1] - PI * PI / 2.0).abs() < 1e-9, "{dpsi:?}");
        assert!((dpsi[2] - trigamma_int(3)).abs() < 1e-9, "{dpsi:?}");
        // ψ'(7.5) by central differences of the (closed-form-checked) digamma.
        let h = 1e-5;
        let fd = (eval(digamma, &[7.5 + h])[0] - eval(digamma, &[7.5 - h])[0]) / (2.0 * h);
        assert!((dpsi[3] - fd).abs() < 1e-7, "{} vs {fd}", dpsi[3]);
    }

    #[test]
    fn f32_and_bad_arguments() {
        let x = Tensor::new(&[4.0f32, 0.25], &Device::Cpu).unwrap();
        let lg = lgamma(&x).unwrap().to_vec1::<f32>().unwrap();
        // ln 3! and ln Γ(¼) = 1.2880225246980774 (mpmath.loggamma(0.25)).
        assert!((lg[0] - 6f32.ln()).abs() < 1e-5 && (lg[1] - 1.288_022_5).abs() < 1e-5, "{lg:?}");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let t = Tensor::new(&[1.0, bad], &Device::Cpu).unwrap();
            assert!(lgamma(&t).is_err(), "lgamma accepted {bad}");
            assert!(digamma(&t).is_err(), "digamma accepted {bad}");
        }
        let ints = Tensor::new(&[1u32], &Device::Cpu).unwrap();
        assert!(lgamma(&ints).unwrap_err().to_string().contains("dtype"));
    }
}
