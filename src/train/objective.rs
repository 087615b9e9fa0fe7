//! What a segmenter is trained to minimise: the losses of Section III behind one value that
//! a training loop, a config file or an ablation can hold.

use crate::ground::GroundMatrix;
use crate::loss::{self, LossConfig};
use crate::{Error, Result};
use candle_core::Tensor;

/// A training objective on logits `[B, N, H, W]` and labels `[B, H, W]`.
#[derive(Clone, Debug)]
pub enum Objective {
    /// Cross-entropy, the paper's baseline.
    CrossEntropy,
    /// Importance-aware cross-entropy (IAL) with one weight per class.
    ImportanceAware {
        /// `N` class weights.
        weights: Vec<f64>,
    },
    /// The exact one-hot Wasserstein loss (Eq. 2) under a ground matrix, `f(d)` already
    /// applied (see [`GroundMatrix::transform`]).
    Wasserstein {
        /// `D[truth][pred]`.
        ground: GroundMatrix,
    },
    /// `CE + λ·W` (the paper's fine-tuning objective).
    CePlusWasserstein {
        /// `D[truth][pred]`.
        ground: GroundMatrix,
        /// The weight λ of the Wasserstein term.
        lambda: f64,
    },
}

impl Objective {
    /// The mean loss over non-ignored pixels.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor, cfg: LossConfig) -> Result<Tensor> {
        match self {
            Objective::CrossEntropy => loss::cross_entropy(logits, labels, cfg),
            Objective::ImportanceAware { weights } => {
                loss::importance_aware_cross_entropy(logits, labels, weights, cfg)
            }
            Objective::Wasserstein { ground } => loss::wasserstein(logits, labels, ground, cfg),
            Objective::CePlusWasserstein { ground, lambda } => {
                loss::ce_plus_wasserstein(logits, labels, ground, *lambda, cfg)
            }
        }
    }

    /// A short name for tables and run folders (`ce`, `ial`, `w`, `ce+w`).
    pub fn name(&self) -> &'static str {
        match self {
            Objective::CrossEntropy => "ce",
            Objective::ImportanceAware { .. } => "ial",
            Objective::Wasserstein { .. } => "w",
            Objective::CePlusWasserstein { .. } => "ce+w",
        }
    }

    /// Checks the objective against `n` classes; the error names the mismatch.
    pub fn validate(&self, n: usize) -> Result<()> {
        let got = match self {
            Objective::CrossEntropy => return Ok(()),
            Objective::ImportanceAware { weights } => weights.len(),
            Objective::Wasserstein { ground } | Objective::CePlusWasserstein { ground, .. } => ground.num_classes(),
        };
        if got != n {
            return Err(Error::ClassCount { what: "objective vs segmenter classes", expected: n, got });
        }
        Ok(())
    }
}
