//! Optimal transport between a prediction histogram `s` and a target histogram `t`.
//!
//! # The one place where `D[truth][pred]` is translated
//!
//! The paper's transport plan moves mass *from* predicted class `i` (a bin of `s`) *to* true
//! class `j` (a bin of `t`) at price `d_{i,j}`, which in this crate's convention is
//! `D[j][i]`. [`cost_matrix`] builds `M[i][j] = D[j][i]` and every solver of this module takes
//! `M`; nothing else in the crate transposes a ground matrix.
//!
//! | solver | paper | use |
//! |---|---|---|
//! | [`emd`], [`exact_wasserstein`] | Eq. 1, Theorem 1 | reference for tests and notebooks (small `N`) |
//! | [`sinkhorn`], [`sinkhorn_wasserstein`] | Section IV.B–C, Cuturi 2013 | soft targets, batched over pixels |

mod exact;
pub(crate) mod sinkhorn;

pub use exact::{emd, ExactOt};
pub use sinkhorn::{
    sinkhorn, sinkhorn_wasserstein, EpsilonScaling, SinkhornConfig, SinkhornDomain, SinkhornOutput, SinkhornStats,
    SinkhornValue,
};

use crate::{GroundMatrix, Result};
use ndarray::Array2;

/// The transport cost `M[i][j] = D[j][i]`: moving a unit of predicted mass in class `i` to
/// true class `j` costs the severity of predicting `i` when the truth is `j`.
pub fn cost_matrix(ground: &GroundMatrix) -> Array2<f64> {
    ground.to_array().reversed_axes().as_standard_layout().to_owned()
}

/// The exact Wasserstein distance of Eq. 1 between a prediction `pred` (`s`) and a target
/// `target` (`t`) under a ground matrix (already transformed by `f` if wanted). The plan is
/// indexed `[pred class][true class]`.
///
/// With a one-hot target at `y`, Theorem 1 says the only feasible plan moves all of `s` to
/// `y`, so the cost is `Σ_p s_p D[y][p]` — Eq. 2, which [`crate::loss::wasserstein`] computes
/// in O(N).
///
/// ```
/// use rwt::{ot, GroundMatrix, CAMVID};
/// let d = GroundMatrix::severity(&CAMVID);
/// let mut s = vec![0.05; 11];
/// s[8] = 0.5; // mostly car
/// let t: Vec<f64> = (0..11).map(|k| if k == 8 { 1.0 } else { 0.0 }).collect();
/// let exact = ot::exact_wasserstein(&s, &t, &d)?;
/// let eq2: f64 = (0..11).map(|p| s[p] * d.get(8, p)).sum();
/// assert!((exact.cost - eq2).abs() < 1e-12);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn exact_wasserstein(pred: &[f64], target: &[f64], ground: &GroundMatrix) -> Result<ExactOt> {
    let n = ground.num_classes();
    for (what, h) in [("prediction", pred), ("target", target)] {
        if h.len() != n {
            return Err(crate::Error::ClassCount { what, expected: n, got: h.len() });
        }
    }
    emd(pred, target, &cost_matrix(ground))
}
