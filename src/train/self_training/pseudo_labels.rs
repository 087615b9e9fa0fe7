//! Pseudo-labels from the teacher's class probabilities `p` and the class-balanced thresholds
//! λ ([`super::ClassThresholds`]), as CBST and CRST define them (Zou et al. 2018, 2019):
//!
//! - **hard** (CBST): `k* = argmax_k p_k/λ_k`, kept where `p_{k*}/λ_{k*} ≥ 1`, else void;
//! - **soft** (CRST-LRENT, label regularisation by entropy): `ŷ_k ∝ (p_k/λ_k)^{1/α}`, kept
//!   where `Σ_j (p_j/λ_j)^{1/α} > 1`, else an all-zero target (ignored by the soft losses).
//!   α → 0 gives the hard label back; α = 1 keeps the teacher's own distribution, reweighted.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How target pixels become training targets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PseudoLabeling {
    /// CBST's hard, thresholded arg-max.
    Hard,
    /// CRST-LRENT's soft label with its regularisation weight α (the paper and CRST: 0.25).
    Soft {
        /// α > 0.
        alpha: f64,
    },
}

impl PseudoLabeling {
    /// Checks α (finite, > 0).
    pub fn validate(&self) -> Result<()> {
        match *self {
            PseudoLabeling::Soft { alpha } if !(alpha.is_finite() && alpha > 0.0) => {
                Err(Error::invalid("alpha", alpha, "CRST-LRENT's alpha must be finite and > 0"))
            }
            _ => Ok(()),
        }
    }
}

/// Checks one image's probabilities `[N, S]` against λ (`N` entries in `(0, 1]`).
fn check(probs: &[f32], lambda: &[f64]) -> Result<usize> {
    let n = lambda.len();
    if n == 0 || probs.len() % n != 0 {
        return Err(Error::shape("class probabilities", format!("N·S with N = {n}"), probs.len().to_string()));
    }
    if let Some((k, l)) = lambda.iter().enumerate().find(|(_, l)| !(l.is_finite() && **l > 0.0 && **l <= 1.0)) {
        return Err(Error::invalid("threshold", l, format!("lambda of class {k} must be in (0, 1]")));
    }
    Ok(probs.len() / n)
}

/// CBST's hard pseudo-labels of one image: `probs` `[N, S]` row-major, λ of every class;
/// `S` labels, `void` where the pixel is not kept.
///
/// # Errors
/// Shapes that do not match, a λ outside `(0, 1]`.
pub fn hard_labels(probs: &[f32], lambda: &[f64], void: u8) -> Result<Vec<u8>> {
    let s = check(probs, lambda)?;
    let n = lambda.len();
    Ok((0..s)
        .map(|j| {
            let (mut best, mut arg) = (f64::NEG_INFINITY, 0);
            for (k, l) in lambda.iter().enumerate() {
                let r = probs[k * s + j] as f64 / l;
                if r > best {
                    (best, arg) = (r, k);
                }
            }
            if best >= 1.0 && arg < n {
                arg as u8
            } else {
                void
            }
        })
        .collect())
}

/// CRST-LRENT's soft pseudo-labels of one image: `[N, S]` row-major, each kept pixel a
/// histogram `ŷ_k ∝ (p_k/λ_k)^{1/α}`, the others all zeros.
///
/// # Errors
/// As [`hard_labels`]; α not finite and > 0.
pub fn soft_labels(probs: &[f32], lambda: &[f64], alpha: f64) -> Result<Vec<f32>> {
    PseudoLabeling::Soft { alpha }.validate()?;
    let s = check(probs, lambda)?;
    let n = lambda.len();
    let mut out = vec![0f32; n * s];
    let mut q = vec![0f64; n];
    for j in 0..s {
        let mut sum = 0.0;
        for k in 0..n {
            q[k] = (probs[k * s + j] as f64 / lambda[k]).max(0.0).powf(1.0 / alpha);
            sum += q[k];
        }
        if sum > 1.0 && sum.is_finite() {
            for k in 0..n {
                out[k * s + j] = (q[k] / sum) as f32;
            }
        }
    }
    Ok(out)
}

/// What a round's pseudo-labels kept, recorded per round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PseudoLabelStats {
    /// Target pixels looked at.
    pub pixels: u64,
    /// Fraction of them kept.
    pub kept_fraction: f64,
    /// Per class (by the teacher's arg-max): the fraction of its pixels kept (`None`: the
    /// teacher predicted it nowhere).
    pub kept_per_class: Vec<Option<f64>>,
    /// Mean entropy (nats) of the kept soft labels; 0 for hard labels.
    pub mean_entropy: f64,
}

impl PseudoLabelStats {
    /// Fails when round `round` kept no target pixel at all (training on it would fit
    /// nothing), naming the round and the thresholds λ.
    pub fn check_kept(&self, round: usize, lambda: &[f64]) -> Result<()> {
        if self.kept_fraction > 0.0 {
            return Ok(());
        }
        Err(Error::invalid(
            "pseudo-labels",
            format!("round {round}"),
            format!(
                "kept none of the {} target pixels (thresholds {lambda:?}); the teacher is too unsure: raise portion or train the source model longer",
                self.pixels
            ),
        ))
    }
}

/// Accumulates [`PseudoLabelStats`] image by image.
#[derive(Clone, Debug)]
pub struct StatsAccumulator {
    predicted: Vec<u64>,
    kept: Vec<u64>,
    entropy: f64,
}

impl StatsAccumulator {
    /// For `n` classes.
    pub fn new(n: usize) -> Self {
        StatsAccumulator { predicted: vec![0; n], kept: vec![0; n], entropy: 0.0 }
    }

    /// Adds one image: its probabilities `[N, S]` and whether each pixel was kept, with the
    /// entropy of its target (0 for hard labels).
    pub fn add(&mut self, probs: &[f32], kept: impl Fn(usize) -> Option<f64>) {
        let n = self.predicted.len();
        let s = probs.len() / n.max(1);
        for j in 0..s {
            let arg = (0..n).max_by(|&a, &b| probs[a * s + j].total_cmp(&probs[b * s + j])).unwrap_or(0);
            self.predicted[arg] += 1;
            if let Some(h) = kept(j) {
                self.kept[arg] += 1;
                self.entropy += h;
            }
        }
    }

    /// The statistics so far.
    pub fn finish(&self) -> PseudoLabelStats {
        let pixels: u64 = self.predicted.iter().sum();
        let kept: u64 = self.kept.iter().sum();
        PseudoLabelStats {
            pixels,
            kept_fraction: kept as f64 / pixels.max(1) as f64,
            kept_per_class: self
                .predicted
                .iter()
                .zip(&self.kept)
                .map(|(&p, &k)| (p > 0).then(|| k as f64 / p as f64))
                .collect(),
            mean_entropy: self.entropy / kept.max(1) as f64,
        }
    }
}

/// The entropy (nats) of pixel `j` of a soft target `[N, S]`.
pub(crate) fn entropy_at(target: &[f32], n: usize, j: usize) -> f64 {
    let s = target.len() / n.max(1);
    (0..n).map(|k| target[k * s + j] as f64).filter(|&t| t > 0.0).map(|t| -t * t.ln()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One image, three classes, three pixels; λ = (0.5, 0.8, 1.0).
    const LAMBDA: [f64; 3] = [0.5, 0.8, 1.0];
    // Pixel 0: p = (0.6, 0.3, 0.1) → ratios (1.2, 0.375, 0.1): kept as class 0.
    // Pixel 1: p = (0.3, 0.5, 0.2) → (0.6, 0.625, 0.2): no ratio reaches 1, void.
    // Pixel 2: p = (0.05, 0.85, 0.1) → (0.1, 1.0625, 0.1): kept as class 1.
    const PROBS: [f32; 9] = [0.6, 0.3, 0.05, 0.3, 0.5, 0.85, 0.1, 0.2, 0.1];

    #[test]
    fn hard_labels_are_the_thresholded_ratio_argmax() {
        assert_eq!(hard_labels(&PROBS, &LAMBDA, 255).unwrap(), [0, 255, 1]);
        // λ ≡ 1 keeps only pixels of probability 1: none here.
        assert_eq!(hard_labels(&PROBS, &[1.0; 3], 9).unwrap(), [9, 9, 9]);
        assert!(hard_labels(&PROBS, &[0.5, 0.0, 1.0], 9).unwrap_err().to_string().contains("class 1"));
        assert!(hard_labels(&PROBS[..8], &LAMBDA, 9).is_err());
    }

    #[test]
    fn soft_labels_follow_the_closed_form() {
        let t = soft_labels(&PROBS, &LAMBDA, 0.25).unwrap();
        // Pixel 0: q = (1.2⁴, 0.375⁴, 0.1⁴) = (2.0736, 0.019775…, 1e-4), Σ > 1: kept.
        let q = [1.2f64.powi(4), 0.375f64.powi(4), 0.1f64.powi(4)];
        let sum: f64 = q.iter().sum();
        for k in 0..3 {
            assert!((t[k * 3] as f64 - q[k] / sum).abs() < 1e-6, "class {k}: {}", t[k * 3]);
        }
        // Pixel 1: Σ q = 0.6⁴ + 0.625⁴ + 0.2⁴ = 0.2880… < 1: dropped (all zeros).
        assert!((0..3).all(|k| t[k * 3 + 1] == 0.0));
        // Pixel 2 kept; every kept pixel sums to 1.
        let s2: f32 = (0..3).map(|k| t[k * 3 + 2]).sum();
        assert!((s2 - 1.0).abs() < 1e-6);
        // α → 0 approaches the hard label; α = 1 keeps the ratios' proportions.
        let sharp = soft_labels(&PROBS, &LAMBDA, 0.01).unwrap();
        assert!(sharp[0] > 0.999);
        let flat = soft_labels(&PROBS, &LAMBDA, 1.0).unwrap();
        assert!((flat[0] as f64 - 1.2 / (1.2 + 0.375 + 0.1)).abs() < 1e-6);
        assert!(soft_labels(&PROBS, &LAMBDA, 0.0).unwrap_err().to_string().contains("alpha"));
    }

    #[test]
    fn stats_count_kept_pixels_per_predicted_class() {
        let hard = hard_labels(&PROBS, &LAMBDA, 255).unwrap();
        let mut acc = StatsAccumulator::new(3);
        acc.add(&PROBS, |j| (hard[j] != 255).then_some(0.0));
        let s = acc.finish();
        // Teacher arg-max: pixel 0 → 0, pixel 1 → 1, pixel 2 → 1; kept: pixels 0 and 2.
        assert_eq!(s.pixels, 3);
        assert!((s.kept_fraction - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.kept_per_class, [Some(1.0), Some(0.5), None]);
        s.check_kept(1, &LAMBDA).unwrap();
        // λ ≡ 1 keeps nothing here: the round is refused, naming it.
        let none = hard_labels(&PROBS, &[1.0; 3], 255).unwrap();
        let mut acc = StatsAccumulator::new(3);
        acc.add(&PROBS, |j| (none[j] != 255).then_some(0.0));
        let err = acc.finish().check_kept(3, &[1.0; 3]).unwrap_err().to_string();
        assert!(err.contains("round 3") && err.contains("kept none of the 3"), "{err}");
        let soft = soft_labels(&PROBS, &LAMBDA, 1.0).unwrap();
        let h = entropy_at(&soft, 3, 0);
        let p: Vec<f64> = [1.2, 0.375, 0.1].iter().map(|v| v / 1.675).collect();
        assert!((h - p.iter().map(|v| -v * v.ln()).sum::<f64>()).abs() < 1e-6);
    }
}
