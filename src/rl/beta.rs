//! Independent Beta distributions, one per action dimension: the bounded continuous policy of
//! CARLA-Roach (Chou, Maturana & Scherer, *Improving stochastic policy gradients in continuous
//! control with deep reinforcement learning using the Beta distribution*, ICML 2017), with an
//! exact, differentiable log-density and entropy.
//!
//! For `x ∈ (0, 1)` and concentrations `α, β > 0`:
//!
//! ```text
//! ln p(x) = (α − 1) ln x + (β − 1) ln(1 − x) − ln B(α, β),   ln B(α, β) = ln Γ(α) + ln Γ(β) − ln Γ(α + β)
//! H       = ln B(α, β) − (α − 1) ψ(α) − (β − 1) ψ(β) + (α + β − 2) ψ(α + β)
//! ```
//!
//! with [`lgamma`](super::lgamma) and [`digamma`](super::digamma). The network's raw outputs
//! become concentrations by [`Beta::from_logits`] (`softplus + 1`, as in CARLA-Roach, so every
//! marginal is unimodal and its density finite at the bounds).
//!
//! ```
//! use rwt::candle_core::{Device, Tensor};
//! use rwt::rl::Beta;
//! let dev = Device::Cpu;
//! let one = Tensor::new(&[[2.0f64]], &dev)?;
//! let beta = Beta::new(&one, &one)?; // Beta(2, 2): p(x) = 6x(1 − x)
//! let lp = beta.log_prob(&Tensor::new(&[[0.5f64]], &dev)?)?.to_vec2::<f64>()?;
//! assert!((lp[0][0] - 1.5f64.ln()).abs() < 1e-10);
//! # Ok::<(), rwt::Error>(())
//! ```

use super::special::{check_positive, digamma_unchecked, lgamma_unchecked};
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use rand::Rng;

/// Samples are kept this far inside `(0, 1)`, so that `ln x` and `ln(1 − x)` stay finite.
pub const UNIT_MARGIN: f64 = 1e-5;

/// Independent `Beta(α_ij, β_ij)` distributions.
///
/// # Shapes
/// `alpha`, `beta`: `[B, K]` (batch, action dimensions), `f32` or `f64`, all `> 0`. Values
/// `x` and the results of [`Beta::log_prob`] and [`Beta::entropy`] are `[B, K]` too.
#[derive(Clone, Debug)]
pub struct Beta {
    alpha: Tensor,
    beta: Tensor,
}

/// `softplus(x) = ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^{−|x|})` (no overflow).
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    Ok((x.relu()? + (x.abs()?.neg()?.exp()? + 1.0)?.log()?)?)
}

impl Beta {
    /// The distributions with concentrations `alpha` and `beta` (same `[B, K]` shape, finite,
    /// `> 0`; the error names the bad tensor).
    pub fn new(alpha: &Tensor, beta: &Tensor) -> Result<Self> {
        if alpha.rank() != 2 || alpha.dims() != beta.dims() {
            return Err(Error::shape(
                "Beta concentrations",
                "alpha and beta of one shape [B, K]",
                format!("{:?} and {:?}", alpha.dims(), beta.dims()),
            ));
        }
        check_positive("Beta alpha", alpha)?;
        check_positive("Beta beta", beta)?;
        Ok(Beta { alpha: alpha.clone(), beta: beta.clone() })
    }

    /// The distributions of a policy head: `logits` `[B, 2K]` hold the raw `α` outputs in the
    /// first `K` columns and the raw `β` outputs in the last `K`; `α = softplus + 1`, same for
    /// `β` (CARLA-Roach's parametrisation: concentrations ≥ 1).
    pub fn from_logits(logits: &Tensor) -> Result<Self> {
        let (_, two_k) =
            logits.dims2().map_err(|_| Error::shape("Beta policy head", "[B, 2K]", format!("{:?}", logits.dims())))?;
        if two_k == 0 || two_k % 2 != 0 {
            return Err(Error::shape("Beta policy head columns", "an even number 2K > 0", two_k.to_string()));
        }
        let k = two_k / 2;
        let alpha = (softplus(&logits.narrow(1, 0, k)?)? + 1.0)?;
        let beta = (softplus(&logits.narrow(1, k, k)?)? + 1.0)?;
        Beta::new(&alpha, &beta)
    }

    /// `α`, `[B, K]`.
    pub fn alpha(&self) -> &Tensor {
        &self.alpha
    }

    /// `β`, `[B, K]`.
    pub fn beta(&self) -> &Tensor {
        &self.beta
    }

    /// `ln B(α, β)`, `[B, K]`.
    fn ln_beta_function(&self) -> Result<Tensor> {
        let sum = (&self.alpha + &self.beta)?;
        Ok(((lgamma_unchecked(&self.alpha)? + lgamma_unchecked(&self.beta)?)? - lgamma_unchecked(&sum)?)?)
    }

    /// `ln p(x)` element-wise, `[B, K]`, differentiable in `α` and `β`. `x` must have the
    /// distributions' shape; it is clamped to `[ε, 1 − ε]` with `ε` = [`UNIT_MARGIN`] (where
    /// samples lie), so the bounds give finite values.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        if x.dims() != self.alpha.dims() {
            return Err(Error::shape("Beta values", format!("{:?}", self.alpha.dims()), format!("{:?}", x.dims())));
        }
        let x = x.to_dtype(self.alpha.dtype())?.clamp(UNIT_MARGIN, 1.0 - UNIT_MARGIN)?;
        let ln_x = x.log()?;
        let ln_1mx = x.affine(-1.0, 1.0)?.log()?;
        let density = ((self.alpha.affine(1.0, -1.0)? * ln_x)? + (self.beta.affine(1.0, -1.0)? * ln_1mx)?)?;
        Ok((density - self.ln_beta_function()?)?)
    }

    /// The differential entropy of every marginal, `[B, K]` (nats), differentiable.
    pub fn entropy(&self) -> Result<Tensor> {
        let sum = (&self.alpha + &self.beta)?;
        let a = (self.alpha.affine(1.0, -1.0)? * digamma_unchecked(&self.alpha)?)?;
        let b = (self.beta.affine(1.0, -1.0)? * digamma_unchecked(&self.beta)?)?;
        let ab = (sum.affine(1.0, -2.0)? * digamma_unchecked(&sum)?)?;
        Ok((((self.ln_beta_function()? - a)? - b)? + ab)?)
    }

    /// The means `α / (α + β)`, `[B, K]` (the deterministic action of an evaluation).
    pub fn mean(&self) -> Result<Tensor> {
        Ok((&self.alpha / (&self.alpha + &self.beta)?)?)
    }

    /// One draw of every marginal (rand_distr's Beta sampler), clamped to `[ε, 1 − ε]`;
    /// `[B, K]` in the concentrations' dtype and device, without a graph.
    pub fn sample(&self, rng: &mut impl Rng) -> Result<Tensor> {
        let alpha = self.alpha.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let beta = self.beta.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
        let mut out = Vec::with_capacity(alpha.len());
        for (&a, &b) in alpha.iter().zip(&beta) {
            let d = rand_distr::Beta::new(a, b)
                .map_err(|e| Error::invalid("Beta concentrations", format!("({a}, {b})"), e.to_string()))?;
            out.push(rng.sample(d).clamp(UNIT_MARGIN, 1.0 - UNIT_MARGIN));
        }
        let t = Tensor::from_vec(out, self.alpha.dims(), self.alpha.device())?;
        Ok(t.to_dtype(self.alpha.dtype())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t2(rows: &[[f64; 2]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap()
    }

    fn rows(t: &Tensor) -> Vec<Vec<f64>> {
        t.to_vec2::<f64>().unwrap()
    }

    /// Beta(1, 1) is uniform (density 1, entropy 0); Beta(2, 2) has density `6x(1 − x)` and
    /// entropy `5/3 − ln 6`; Beta(3, 1) has density `3x²` and entropy `2/3 − ln 3`.
    #[test]
    fn closed_forms() {
        let alpha = t2(&[[1.0, 2.0], [3.0, 1.0]]);
        let beta = t2(&[[1.0, 2.0], [1.0, 3.0]]);
        let d = Beta::new(&alpha, &beta).unwrap();
        let x = t2(&[[0.3, 0.3], [0.7, 0.2]]);
        let lp = rows(&d.log_prob(&x).unwrap());
        let want = [[0.0, (6.0 * 0.3 * 0.7f64).ln()], [(3.0 * 0.49f64).ln(), (3.0 * 0.8 * 0.8f64).ln()]];
        let h = rows(&d.entropy().unwrap());
        let want_h = [[0.0, 5.0 / 3.0 - 6f64.ln()], [2.0 / 3.0 - 3f64.ln(), 2.0 / 3.0 - 3f64.ln()]];
        for i in 0..2 {
            for j in 0..2 {
                assert!((lp[i][j] - want[i][j]).abs() < 1e-10, "log p {lp:?} vs {want:?}");
                assert!((h[i][j] - want_h[i][j]).abs() < 1e-10, "H {h:?} vs {want_h:?}");
            }
        }
        let mean = rows(&d.mean().unwrap());
        assert!((mean[0][1] - 0.5).abs() < 1e-12 && (mean[1][0] - 0.75).abs() < 1e-12);
    }

    /// For a non-integer Beta(2.5, 4.2): the density integrates to 1 and `−∫ p ln p` equals
    /// the entropy formula (midpoint rule on 20 000 cells).
    #[test]
    fn density_integrates_to_one_and_entropy_matches_quadrature() {
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|i| (i as f64 + 0.5) / n as f64).collect();
        let x = Tensor::from_vec(xs, (n, 1), &Device::Cpu).unwrap();
        let a = Tensor::full(2.5f64, (n, 1), &Device::Cpu).unwrap();
        let b = Tensor::full(4.2f64, (n, 1), &Device::Cpu).unwrap();
        let d = Beta::new(&a, &b).unwrap();
        let lp = d.log_prob(&x).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let mass: f64 = lp.iter().map(|l| l.exp()).sum::<f64>() / n as f64;
        let quad_h: f64 = -lp.iter().map(|l| l.exp() * l).sum::<f64>() / n as f64;
        let h = d.entropy().unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap()[0];
        assert!((mass - 1.0).abs() < 1e-6, "mass {mass}");
        assert!((h - quad_h).abs() < 1e-6, "entropy {h} vs quadrature {quad_h}");
    }

    /// Gradients of `Σ log p + Σ H` with respect to the raw head outputs, against central
    /// finite differences in f64 (through softplus, lgamma and digamma).
    #[test]
    fn gradients_match_finite_differences() {
        let raw = [0.3, -1.2, 2.0, 0.7];
        let x = t2(&[[0.25, 0.8]]);
        let f = |v: &Tensor| -> Tensor {
            let d = Beta::from_logits(v).unwrap();
            (d.log_prob(&x).unwrap().sum_all().unwrap() + d.entropy().unwrap().sum_all().unwrap()).unwrap()
        };
        let var = Var::from_tensor(&Tensor::new(&[raw], &Device::Cpu).unwrap()).unwrap();
        let grads = f(var.as_tensor()).backward().unwrap();
        let g = grads.get(var.as_tensor()).unwrap().to_vec2::<f64>().unwrap()[0].clone();
        let h = 1e-6;
        for i in 0..raw.len() {
            let mut up = raw;
            let mut down = raw;
            up[i] += h;
            down[i] -= h;
            let fu = f(&Tensor::new(&[up], &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
            let fd = f(&Tensor::new(&[down], &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap();
            let numeric = (fu - fd) / (2.0 * h);
            assert!((g[i] - numeric).abs() < 1e-6, "d/draw[{i}]: autograd {} vs FD {numeric}", g[i]);
        }
    }

    /// Sample means approach `α/(α + β)` (4 000 draws each; the bound is about 6 standard errors).
    #[test]
    fn samples_have_the_right_mean_and_stay_inside() {
        let n = 4000;
        let a = Tensor::full(2.0f64, (n, 2), &Device::Cpu).unwrap();
        let b = Tensor::new(&[5.0f64, 1.5], &Device::Cpu).unwrap().broadcast_as((n, 2)).unwrap().contiguous().unwrap();
        let d = Beta::new(&a, &b).unwrap();
        let s = rows(&d.sample(&mut crate::random::seeded(3)).unwrap());
        for (k, want) in [(0, 2.0 / 7.0), (1, 2.0 / 3.5)] {
            let mean = s.iter().map(|r| r[k]).sum::<f64>() / n as f64;
            assert!((mean - want).abs() < 0.015, "dimension {k}: mean {mean}, want {want}");
        }
        assert!(s.iter().flatten().all(|&v| (UNIT_MARGIN..=1.0 - UNIT_MARGIN).contains(&v)));
    }

    #[test]
    fn bad_shapes_and_values_are_errors() {
        let ok = t2(&[[1.0, 2.0]]);
        assert!(Beta::new(&ok, &t2(&[[1.0, 2.0], [1.0, 1.0]])).is_err());
        let e = Beta::new(&ok, &t2(&[[1.0, -2.0]])).unwrap_err().to_string();
        assert!(e.contains("Beta beta") && e.contains("-2"), "{e}");
        assert!(Beta::new(&t2(&[[f64::NAN, 1.0]]), &ok).is_err());
        assert!(Beta::from_logits(&Tensor::new(&[[1.0f64, 2.0, 3.0]], &Device::Cpu).unwrap()).is_err());
        let d = Beta::new(&ok, &ok).unwrap();
        assert!(d.log_prob(&Tensor::new(&[0.5f64, 0.5], &Device::Cpu).unwrap()).is_err());
        // Softplus does not overflow.
        let sp = softplus(&Tensor::new(&[-1000.0f64, 0.0, 1000.0], &Device::Cpu).unwrap()).unwrap();
        let sp = sp.to_vec1::<f64>().unwrap();
        assert!(sp[0] >= 0.0 && sp[0] < 1e-300 && (sp[1] - 2f64.ln()).abs() < 1e-15 && sp[2] == 1000.0, "{sp:?}");
    }
}
