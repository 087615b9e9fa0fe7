//! Class-balanced confidence thresholds λ_k (CBST, Zou et al. ECCV 2018; kept by CRST): each
//! class keeps its own most confident portion `p` of the target pixels predicted as it, so
//! that the frequent, easy classes (road, sky) do not crowd the rare ones out of the
//! pseudo-labels.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// The portion `p` of each class's pixels that becomes pseudo-labels in round `r` (from 1):
/// `p_r = min(start + step·(r − 1), max)` — CRST's `0.2 + 0.05·r`, capped at `0.5`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortionSchedule {
    /// `p` of the first round.
    pub start: f64,
    /// Added each round.
    pub step: f64,
    /// The cap.
    pub max: f64,
}

impl Default for PortionSchedule {
    /// CRST's schedule: 0.2, 0.25, 0.3, … up to 0.5.
    fn default() -> Self {
        PortionSchedule { start: 0.2, step: 0.05, max: 0.5 }
    }
}

impl PortionSchedule {
    /// Checks `0 < start ≤ max ≤ 1` and `step ≥ 0` (all finite), naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let ok = |v: f64| v.is_finite() && v > 0.0 && v <= 1.0;
        if !ok(self.start) {
            return Err(Error::invalid("portion.start", self.start, "must be in (0, 1]"));
        }
        if !ok(self.max) || self.max < self.start {
            return Err(Error::invalid("portion.max", self.max, "must be in [portion.start, 1]"));
        }
        if !(self.step.is_finite() && self.step >= 0.0) {
            return Err(Error::invalid("portion.step", self.step, "must be finite and >= 0"));
        }
        Ok(())
    }

    /// `p` of round `round` (1-based).
    pub fn portion(&self, round: usize) -> f64 {
        (self.start + self.step * round.saturating_sub(1) as f64).min(self.max)
    }
}

/// Collects, for each class `k`, the confidences `max_c p_c` of the target pixels whose
/// arg-max is `k` (every `stride`-th pixel of each image, as CRST subsamples), from which
/// [`ClassThresholds::from_confidences`] picks λ_k.
#[derive(Clone, Debug)]
pub struct ConfidenceSamples {
    per_class: Vec<Vec<f32>>,
    stride: usize,
}

impl ConfidenceSamples {
    /// Empty samples for `num_classes` classes, keeping every `stride`-th pixel (`stride ≥ 1`).
    pub fn new(num_classes: usize, stride: usize) -> Self {
        ConfidenceSamples { per_class: vec![vec![]; num_classes], stride: stride.max(1) }
    }

    /// Adds one image's class probabilities, `[N, S]` row-major (`probs[k * s + j]`).
    ///
    /// # Errors
    /// `probs.len()` is not a multiple of `N`.
    pub fn add(&mut self, probs: &[f32]) -> Result<()> {
        let n = self.per_class.len();
        if n == 0 || probs.len() % n != 0 {
            return Err(Error::shape("class probabilities", format!("N·S with N = {n}"), probs.len().to_string()));
        }
        let s = probs.len() / n;
        for j in (0..s).step_by(self.stride) {
            let (mut best, mut arg) = (f32::NEG_INFINITY, 0);
            for k in 0..n {
                let p = probs[k * s + j];
                if p > best {
                    (best, arg) = (p, k);
                }
            }
            self.per_class[arg].push(best);
        }
        Ok(())
    }

    /// Pixels sampled per class.
    pub fn counts(&self) -> Vec<usize> {
        self.per_class.iter().map(Vec::len).collect()
    }
}

/// The thresholds λ_k of one round and how they came about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassThresholds {
    /// The portion `p` they were chosen for.
    pub portion: f64,
    /// λ_k, one per class, in `(0, 1]`.
    pub lambda: Vec<f64>,
    /// The sampled pixels predicted as each class (`N_k`).
    pub counts: Vec<usize>,
}

impl ClassThresholds {
    /// λ_k = the `⌊p·N_k⌋`-th largest confidence among the `N_k` sampled pixels predicted as
    /// `k` (ranks from 1); 1 when that rank is 0 (a class predicted too rarely keeps only
    /// pixels of confidence 1) — CRST's `kc_parameters`.
    ///
    /// # Errors
    /// `portion` outside `(0, 1]`.
    pub fn from_confidences(samples: &ConfidenceSamples, portion: f64) -> Result<Self> {
        if !(portion.is_finite() && portion > 0.0 && portion <= 1.0) {
            return Err(Error::invalid("portion", portion, "must be in (0, 1]"));
        }
        let mut lambda = Vec::with_capacity(samples.per_class.len());
        for conf in &samples.per_class {
            let rank = (portion * conf.len() as f64).floor() as usize;
            if rank == 0 {
                lambda.push(1.0);
                continue;
            }
            let mut sorted = conf.clone();
            // The rank-th largest: select_nth on the descending order.
            let (_, v, _) = sorted.select_nth_unstable_by(rank - 1, |a, b| b.total_cmp(a));
            lambda.push((*v as f64).clamp(f64::MIN_POSITIVE, 1.0));
        }
        Ok(ClassThresholds { portion, lambda, counts: samples.counts() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portion_follows_crst() {
        let p = PortionSchedule::default();
        let got: Vec<f64> = (1..=8).map(|r| p.portion(r)).collect();
        let want = [0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.5];
        assert!(got.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{got:?}");
        assert!(PortionSchedule { start: 0.0, ..p }.validate().is_err());
        assert!(PortionSchedule { max: 0.1, ..p }.validate().is_err());
        assert!(PortionSchedule { step: f64::NAN, ..p }.validate().is_err());
    }

    #[test]
    fn thresholds_are_the_ranked_confidences() {
        // Two classes, ten pixels: class 0 wins pixels 0..6 with confidences 0.9 … 0.55;
        // class 1 wins the other four with 0.95, 0.85, 0.75, 0.65.
        let c0 = [0.9f32, 0.8, 0.7, 0.65, 0.6, 0.55];
        let c1 = [0.95f32, 0.85, 0.75, 0.65];
        let mut p0: Vec<f32> = c0.to_vec();
        p0.extend(c1.iter().map(|c| 1.0 - c));
        let mut p1: Vec<f32> = c0.iter().map(|c| 1.0 - c).collect();
        p1.extend(c1);
        let mut probs = p0;
        probs.extend(p1);
        let mut samples = ConfidenceSamples::new(2, 1);
        samples.add(&probs).unwrap();
        assert_eq!(samples.counts(), [6, 4]);
        // p = 0.5: class 0's 3rd largest (0.7), class 1's 2nd largest (0.85).
        let t = ClassThresholds::from_confidences(&samples, 0.5).unwrap();
        assert!((t.lambda[0] - 0.7).abs() < 1e-6 && (t.lambda[1] - 0.85).abs() < 1e-6, "{:?}", t.lambda);
        // p = 0.2: ⌊1.2⌋ = 1 → the largest (0.9); ⌊0.8⌋ = 0 → 1.
        let t = ClassThresholds::from_confidences(&samples, 0.2).unwrap();
        assert!((t.lambda[0] - 0.9).abs() < 1e-6 && t.lambda[1] == 1.0, "{:?}", t.lambda);
        assert!(ClassThresholds::from_confidences(&samples, 0.0).is_err());
        // Stride 2 keeps pixels 0, 2, 4, 6, 8.
        let mut every_other = ConfidenceSamples::new(2, 2);
        every_other.add(&probs).unwrap();
        assert_eq!(every_other.counts(), [3, 2]);
        assert!(ConfidenceSamples::new(3, 1).add(&probs).is_err());
    }
}
