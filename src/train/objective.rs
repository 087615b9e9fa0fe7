//! What a segmenter is trained to minimise: the losses of Section III behind one value that
//! a training loop, a config file or an ablation can hold.

use crate::ground::GroundMatrix;
use crate::loss::{self, LossConfig, Reduction};
use crate::ot::SinkhornConfig;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// A training objective on logits `[B, N, H, W]` and labels `[B, H, W]`.
#[derive(Clone, Debug)]
pub enum Objective {
    /// Cross-entropy, the paper's baseline.
    CrossEntropy,
    /// Cross-entropy with one weight per true class, `w[y]·(−log s_y)`, for class balancing
    /// (ENet's or median-frequency weights, [`super::ClassWeighting`]); the mean is over
    /// pixels, as for every loss here.
    WeightedCrossEntropy {
        /// `N` class weights.
        weights: Vec<f64>,
    },
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
    /// `CE + λ·W` (the paper's fine-tuning objective), the CE term optionally class-weighted.
    CePlusWasserstein {
        /// `D[truth][pred]`.
        ground: GroundMatrix,
        /// The weight λ of the Wasserstein term.
        lambda: f64,
        /// `N` weights of the CE term (`None`: all 1).
        class_weights: Option<Vec<f64>>,
    },
    /// The entropic Wasserstein loss to soft targets (Section IV.B–C), solved by Sinkhorn:
    /// each label becomes the smoothed histogram `(1 − σ)·onehot(y) + σ/N` — the smoothed
    /// pseudo-labels of self-training — and [`loss::wasserstein_soft`] compares it with the
    /// softmax. Void pixels get an all-zero target and are ignored.
    SoftWasserstein {
        /// `D[truth][pred]`.
        ground: GroundMatrix,
        /// Label smoothing σ ∈ [0, 1).
        smoothing: f64,
        /// The solver's settings.
        sinkhorn: SinkhornConfig,
    },
}

/// λ of `CE + λ·W`: finite and `≥ 0`.
pub(crate) fn check_lambda(lambda: f64) -> Result<()> {
    if lambda.is_finite() && lambda >= 0.0 {
        return Ok(());
    }
    Err(Error::invalid("loss.lambda", lambda, "the Wasserstein weight must be finite and >= 0"))
}

/// Label smoothing σ: in `[0, 1)`.
pub(crate) fn check_smoothing(smoothing: f64) -> Result<()> {
    if (0.0..1.0).contains(&smoothing) {
        return Ok(());
    }
    Err(Error::invalid("loss.smoothing", smoothing, "label smoothing must be in [0, 1)"))
}

/// `[B, N, H, W]` targets `(1 − σ)·onehot(y) + σ/N` from labels `[B, H, W]`; a pixel whose
/// label is `ignore` (or any label ≥ N) gets all zeros.
pub fn smoothed_targets(labels: &Tensor, n: usize, smoothing: f64, ignore: Option<u32>) -> Result<Tensor> {
    check_smoothing(smoothing)?;
    let (b, h, w) = labels.dims3()?;
    let ys = labels.to_dtype(DType::U32)?.flatten_all()?.to_vec1::<u32>()?;
    let (on, off) = ((1.0 - smoothing + smoothing / n as f64) as f32, (smoothing / n as f64) as f32);
    let plane = h * w;
    let mut out = vec![0f32; b * n * plane];
    for (k, &y) in ys.iter().enumerate() {
        if Some(y) == ignore || y as usize >= n {
            continue;
        }
        let (bi, p) = (k / plane, k % plane);
        for c in 0..n {
            out[(bi * n + c) * plane + p] = if c == y as usize { on } else { off };
        }
    }
    Ok(Tensor::from_vec(out, (b, n, h, w), labels.device())?)
}

impl Objective {
    /// The mean loss over non-ignored pixels.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor, cfg: LossConfig) -> Result<Tensor> {
        match self {
            Objective::CrossEntropy => loss::cross_entropy(logits, labels, cfg),
            Objective::WeightedCrossEntropy { weights } => {
                loss::importance_aware_cross_entropy(logits, labels, weights, cfg)
            }
            Objective::ImportanceAware { weights } => {
                loss::importance_aware_cross_entropy(logits, labels, weights, cfg)
            }
            Objective::Wasserstein { ground } => loss::wasserstein(logits, labels, ground, cfg),
            Objective::CePlusWasserstein { ground, lambda, class_weights: None } => {
                loss::ce_plus_wasserstein(logits, labels, ground, *lambda, cfg)
            }
            Objective::CePlusWasserstein { ground, lambda, class_weights: Some(w) } => {
                loss::weighted_ce_plus_wasserstein(logits, labels, w, ground, *lambda, cfg)
            }
            Objective::SoftWasserstein { ground, smoothing, sinkhorn } => {
                let n = logits.dim(1)?;
                let targets = smoothed_targets(labels, n, *smoothing, cfg.ignore_index)?.to_dtype(logits.dtype())?;
                Ok(loss::wasserstein_soft(logits, &targets, ground, sinkhorn, Reduction::Mean)?.loss)
            }
        }
    }

    /// A short name for tables and run folders (`ce`, `ial`, `w`, `ce+w`, `soft-w`).
    pub fn name(&self) -> &'static str {
        match self {
            Objective::CrossEntropy | Objective::WeightedCrossEntropy { .. } => "ce",
            Objective::ImportanceAware { .. } => "ial",
            Objective::Wasserstein { .. } => "w",
            Objective::CePlusWasserstein { .. } => "ce+w",
            Objective::SoftWasserstein { .. } => "soft-w",
        }
    }

    /// Checks the parameters the objective holds — λ finite and `≥ 0`, σ in `[0, 1)`, the
    /// Sinkhorn settings (including that ε can be iterated with in `f32` under this ground
    /// matrix), class weights finite and `≥ 0` — so that a training loop built on it does not
    /// fail at its first batch. The error names the bad value.
    pub fn check_parameters(&self) -> Result<()> {
        match self {
            Objective::CrossEntropy | Objective::Wasserstein { .. } => Ok(()),
            Objective::ImportanceAware { weights } | Objective::WeightedCrossEntropy { weights } => {
                check_class_weights(weights)
            }
            Objective::CePlusWasserstein { lambda, class_weights, .. } => {
                check_lambda(*lambda)?;
                class_weights.as_deref().map_or(Ok(()), check_class_weights)
            }
            Objective::SoftWasserstein { ground, smoothing, sinkhorn } => {
                check_smoothing(*smoothing)?;
                sinkhorn.validate()?;
                sinkhorn.check_schedule(ground.max(), true)
            }
        }
    }

    /// Checks the objective against `n` classes, and its parameters
    /// ([`Objective::check_parameters`]); the error names the mismatch.
    pub fn validate(&self, n: usize) -> Result<()> {
        self.check_parameters()?;
        let got = match self {
            Objective::CrossEntropy => return Ok(()),
            Objective::ImportanceAware { weights } | Objective::WeightedCrossEntropy { weights } => weights.len(),
            Objective::CePlusWasserstein { class_weights: Some(w), ground, .. } if w.len() != ground.num_classes() => {
                return Err(Error::ClassCount {
                    what: "CE weights vs ground matrix classes",
                    expected: ground.num_classes(),
                    got: w.len(),
                })
            }
            Objective::Wasserstein { ground }
            | Objective::CePlusWasserstein { ground, .. }
            | Objective::SoftWasserstein { ground, .. } => ground.num_classes(),
        };
        if got != n {
            return Err(Error::ClassCount { what: "objective vs segmenter classes", expected: n, got });
        }
        Ok(())
    }
}

/// Every class weight finite and `≥ 0`; the error names the class.
fn check_class_weights(weights: &[f64]) -> Result<()> {
    match weights.iter().enumerate().find(|(_, w)| !(w.is_finite() && **w >= 0.0)) {
        Some((k, w)) => Err(Error::invalid("class weight", w, format!("weight of class {k} must be finite and >= 0"))),
        None => Ok(()),
    }
}
