//! The increasing transforms `f(d)` of the ground metric (Section III.B).
//!
//! The paper trains with `D_f[i][j] = f(D[i][j])` where `f` is a non-negative increasing
//! function: linear (`f(d) = d`, Eq. 2 as is), a power `d^ρ` (Eq. 3; ρ = 2 is the Cramér
//! case), Huber with threshold τ (Eq. 4), or the step `1[d ≠ 0]`, with which the Wasserstein
//! distance becomes `½‖s − t‖₁` (Eq. 5) and loses all severity information.
//!
//! ```
//! use rwt::Transform;
//! assert_eq!(Transform::Power { rho: 2.0 }.apply(0.5), 0.25);
//! assert_eq!(Transform::Huber { tau: 0.5 }.apply(0.25), 0.0625); // d² below τ
//! assert_eq!(Transform::Huber { tau: 0.5 }.apply(1.0), 0.75); // τ(2d − τ) above
//! assert_eq!(Transform::Step.apply(0.3), 1.0);
//! ```
//!
//! # Which `f` with the severity preset
//!
//! Measured on CamVid (ENet fine-tuned from class-weighted CE, six epochs, three seeds each;
//! RESULTS.md, notebook 05): **use `f = d` with [`crate::GroundMatrix::severity`]** — it is the
//! only transform with a significant group-3+4 gain (+0.7 IoU), the largest pedestrian gain
//! (+5.1) and a fifth off the severity cost, at CE's mIoU. `d²` and Huber square the preset's
//! small within-category costs (sky ↔ building 0.1 → 0.01) until that mass moves nearly free:
//! sky falls from 88.9 to 70–71 IoU and mIoU by 2 points. The same transforms on the
//! importance matrix (one cost per true class, so squaring keeps each row's ratios) do not
//! collapse, so it is the preset's scale, not the loss: use `d²` / Huber only with a matrix
//! whose within-category costs are raised first. The step (Eq. 5) drops the severity entirely,
//! as the paper says. `f = d` is the default of [`Transform`] and of every config's
//! `loss.transform`.

use crate::{Error, Result};
use std::fmt;

/// A non-negative increasing transform of the ground metric, applied entry-wise.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Transform {
    /// `f(d) = d`.
    #[default]
    Linear,
    /// `f(d) = d^ρ` (Eq. 3), ρ > 0; ρ = 2 gives the Cramér distance.
    Power {
        /// The exponent ρ.
        rho: f64,
    },
    /// `f(d) = d²` if `d ≤ τ`, else `τ(2d − τ)` (Eq. 4), τ > 0.
    Huber {
        /// The threshold τ.
        tau: f64,
    },
    /// `f(d) = 1[d ≠ 0]`: turns the Wasserstein distance into `½‖s − t‖₁` (Eq. 5).
    Step,
}

impl Transform {
    /// The transforms the paper compares, with the parameters used in the notebooks.
    pub fn paper_set() -> [Transform; 4] {
        [Transform::Linear, Transform::Power { rho: 2.0 }, Transform::Huber { tau: 0.5 }, Transform::Step]
    }

    /// Checks the parameter: ρ and τ must be finite and > 0.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Transform::Power { rho } if !(rho.is_finite() && rho > 0.0) => {
                Err(Error::invalid("rho", rho, "the power transform needs a finite rho > 0"))
            }
            Transform::Huber { tau } if !(tau.is_finite() && tau > 0.0) => {
                Err(Error::invalid("tau", tau, "the Huber transform needs a finite tau > 0"))
            }
            _ => Ok(()),
        }
    }

    /// `f(d)` for one ground distance `d ≥ 0`.
    pub fn apply(&self, d: f64) -> f64 {
        match *self {
            Transform::Linear => d,
            Transform::Power { rho } => d.powf(rho),
            Transform::Huber { tau } => {
                if d <= tau {
                    d * d
                } else {
                    tau * (2.0 * d - tau)
                }
            }
            Transform::Step => {
                if d != 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// A short name for tables and legends, e.g. `d^2` or `huber(0.5)`.
    pub fn label(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Transform::Linear => write!(f, "d"),
            Transform::Power { rho } => write!(f, "d^{rho}"),
            Transform::Huber { tau } => write!(f, "huber({tau})"),
            Transform::Step => write!(f, "1[d!=0]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huber_is_continuous_and_increasing() {
        let h = Transform::Huber { tau: 0.3 };
        let eps = 1e-9;
        assert!((h.apply(0.3 - eps) - h.apply(0.3 + eps)).abs() < 1e-8);
        let mut prev = -1.0;
        for i in 0..=200 {
            let v = h.apply(i as f64 / 100.0);
            assert!(v > prev);
            prev = v;
        }
    }

    #[test]
    fn zero_maps_to_zero() {
        for t in Transform::paper_set() {
            assert_eq!(t.apply(0.0), 0.0, "{t}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let e = Transform::Power { rho: -1.0 }.validate().unwrap_err().to_string();
        assert!(e.contains("rho = -1"), "{e}");
        let e = Transform::Huber { tau: f64::NAN }.validate().unwrap_err().to_string();
        assert!(e.contains("tau = NaN"), "{e}");
    }
}
