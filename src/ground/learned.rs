//! The learned ground matrix (Section III.C, step 2 of the alternating optimisation, Fig. 4).
//!
//! With the networks fixed, the normalised channel responses of the segmenter's
//! second-to-last convolution at each pixel are averaged per ground-truth class (class
//! centroids), the ground distances are `d[i][j] = ‖centroid_i − centroid_j‖₁` (normalised to
//! a largest entry of 1), and the matrix is rebuilt as
//!
//! `D ← (f(d) + α · D_prev) / (1 + α)`,
//!
//! with `α` decreasing from 10 to 0 over training ([`AlphaSchedule`]) so that the matrix moves
//! slowly away from its initialisation and does not collapse.
//!
//! "Normalised responses": each pixel's feature vector is scaled to unit L2 norm before
//! averaging, so that centroids compare directions of responses, not their magnitudes.

use crate::{Error, GroundMatrix, Result, Transform};
use candle_core::{DType, Tensor};
use ndarray::Array2;

/// Running per-class sums of unit-normalised pixel features, over as many batches as you add.
#[derive(Clone, Debug)]
pub struct CentroidAccumulator {
    sums: Array2<f64>,
    counts: Vec<u64>,
    ignore_index: Option<u32>,
}

impl CentroidAccumulator {
    /// An empty accumulator for `num_classes` classes and `channels` feature channels.
    pub fn new(num_classes: usize, channels: usize, ignore_index: Option<u32>) -> Self {
        CentroidAccumulator { sums: Array2::zeros((num_classes, channels)), counts: vec![0; num_classes], ignore_index }
    }

    /// Adds a batch: `features` `[B, C, h, w]` and integer `labels` `[B, H, W]`. Labels are
    /// resampled to `h × w` by nearest neighbour (pixel centres), so features at a lower
    /// resolution than the image are fine.
    pub fn add(&mut self, features: &Tensor, labels: &Tensor) -> Result<()> {
        let (b, c, h, w) =
            features.dims4().map_err(|_| Error::shape("features", "[B, C, h, w]", format!("{:?}", features.dims())))?;
        let (lb, lh, lw) =
            labels.dims3().map_err(|_| Error::shape("labels", "[B, H, W]", format!("{:?}", labels.dims())))?;
        if lb != b {
            return Err(Error::shape("labels batch vs features batch", b.to_string(), lb.to_string()));
        }
        if c != self.sums.ncols() {
            return Err(Error::shape("feature channels", self.sums.ncols().to_string(), c.to_string()));
        }
        let n = self.counts.len();
        let feats = features.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let labs = crate::loss::labels_to_i64(labels)?;
        let mut v = vec![0f64; c];
        for bi in 0..b {
            for y in 0..h {
                let ly = ((y as f64 + 0.5) * lh as f64 / h as f64) as usize;
                for x in 0..w {
                    let lx = ((x as f64 + 0.5) * lw as f64 / w as f64) as usize;
                    let pos = (bi * lh + ly.min(lh - 1)) * lw + lx.min(lw - 1);
                    let label = labs[pos];
                    if self.ignore_index.is_some_and(|i| i as i64 == label) {
                        continue;
                    }
                    if label < 0 || label as usize >= n {
                        return Err(Error::LabelOutOfRange {
                            label,
                            position: pos,
                            num_classes: n,
                            ignore_index: self.ignore_index,
                        });
                    }
                    let mut norm = 0f64;
                    for (ch, vv) in v.iter_mut().enumerate() {
                        *vv = feats[((bi * c + ch) * h + y) * w + x] as f64;
                        norm += *vv * *vv;
                    }
                    let norm = norm.sqrt().max(1e-12);
                    let mut row = self.sums.row_mut(label as usize);
                    for (s, vv) in row.iter_mut().zip(&v) {
                        *s += vv / norm;
                    }
                    self.counts[label as usize] += 1;
                }
            }
        }
        Ok(())
    }

    /// Pixels seen per class.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The centroids (`N × C`; rows of absent classes are zero) and which classes were seen.
    pub fn centroids(&self) -> (Array2<f64>, Vec<bool>) {
        let mut c = self.sums.clone();
        for (k, mut row) in c.rows_mut().into_iter().enumerate() {
            if self.counts[k] > 0 {
                row /= self.counts[k] as f64;
            }
        }
        (c, self.counts.iter().map(|&k| k > 0).collect())
    }

    /// Pairwise L1 distances between the centroids, normalised to a largest entry of 1.
    pub fn distances<S: Into<String>>(&self, names: impl IntoIterator<Item = S>) -> Result<LearnedDistances> {
        let (c, present) = self.centroids();
        centroid_distances(names, &c, &present)
    }
}

/// Distances between class centroids, and which classes had pixels.
#[derive(Clone, Debug)]
pub struct LearnedDistances {
    /// `d[i][j] = ‖c_i − c_j‖₁ / max`, 0 for pairs with an absent class.
    pub distances: GroundMatrix,
    /// Whether each class had at least one pixel.
    pub present: Vec<bool>,
}

/// `d[i][j] = ‖c_i − c_j‖₁`, normalised so that the largest distance between present classes
/// is 1. Pairs involving an absent class are 0 and flagged in [`LearnedDistances::present`].
pub fn centroid_distances<S: Into<String>>(
    names: impl IntoIterator<Item = S>,
    centroids: &Array2<f64>,
    present: &[bool],
) -> Result<LearnedDistances> {
    let names: Vec<String> = names.into_iter().map(Into::into).collect();
    let n = centroids.nrows();
    if names.len() != n || present.len() != n {
        return Err(Error::ClassCount { what: "centroids", expected: names.len(), got: n });
    }
    let mut values = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            if i != j && present[i] && present[j] {
                values[i * n + j] = (&centroids.row(i) - &centroids.row(j)).mapv(f64::abs).sum();
            }
        }
    }
    let d = GroundMatrix::from_flat(names, values)?.normalized();
    Ok(LearnedDistances { distances: d, present: present.to_vec() })
}

/// One step of the learned ground matrix: `D ← (f(d) + α D_prev) / (1 + α)` for pairs of
/// classes both present in `learned`, `D_prev` elsewhere.
pub fn reinforced_update(
    prev: &GroundMatrix,
    learned: &LearnedDistances,
    f: Transform,
    alpha: f64,
) -> Result<GroundMatrix> {
    if !(alpha.is_finite() && alpha >= 0.0) {
        return Err(Error::invalid("alpha", alpha, "the mixing weight must be finite and >= 0"));
    }
    let n = prev.num_classes();
    if learned.distances.num_classes() != n {
        return Err(Error::ClassCount { what: "learned distances", expected: n, got: learned.distances.num_classes() });
    }
    let fd = learned.distances.transform(f)?;
    let values = (0..n * n)
        .map(|k| {
            let (i, j) = (k / n, k % n);
            if learned.present[i] && learned.present[j] {
                (fd.get(i, j) + alpha * prev.get(i, j)) / (1.0 + alpha)
            } else {
                prev.get(i, j)
            }
        })
        .collect();
    GroundMatrix::from_flat(prev.names().to_vec(), values)
}

/// The schedule of `α` over the rounds of the alternating optimisation: linear from `start` to
/// `end` (the paper: 10 → 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlphaSchedule {
    /// α at the first round.
    pub start: f64,
    /// α at the last round.
    pub end: f64,
    /// Number of rounds.
    pub rounds: usize,
}

impl AlphaSchedule {
    /// The paper's schedule, 10 → 0 over `rounds` rounds.
    pub fn paper(rounds: usize) -> Self {
        AlphaSchedule { start: 10.0, end: 0.0, rounds }
    }

    /// α at round `r` (0-based); rounds past the end keep `end`.
    pub fn alpha(&self, r: usize) -> f64 {
        if self.rounds <= 1 {
            return self.end;
        }
        let t = (r as f64 / (self.rounds - 1) as f64).min(1.0);
        self.start + (self.end - self.start) * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn centroids_and_distances_by_hand() {
        // 1 image, 2 channels, 1×3 features; labels 1×3: classes 0, 1, 1.
        // Pixel features (3,4) → (0.6,0.8); (1,0) → (1,0); (0,2) → (0,1).
        let f = Tensor::from_slice(&[3f32, 1., 0., 4., 0., 2.], (1, 2, 1, 3), &Device::Cpu).unwrap();
        let l = Tensor::from_slice(&[0u32, 1, 1], (1, 1, 3), &Device::Cpu).unwrap();
        let mut acc = CentroidAccumulator::new(3, 2, None);
        acc.add(&f, &l).unwrap();
        let (c, present) = acc.centroids();
        assert_eq!(present, vec![true, true, false]);
        assert!((c[[0, 0]] - 0.6).abs() < 1e-6 && (c[[0, 1]] - 0.8).abs() < 1e-6);
        assert!((c[[1, 0]] - 0.5).abs() < 1e-6 && (c[[1, 1]] - 0.5).abs() < 1e-6);
        let d = acc.distances(["a", "b", "c"]).unwrap();
        // |0.6-0.5| + |0.8-0.5| = 0.4, normalised to 1.
        assert!((d.distances.get(0, 1) - 1.0).abs() < 1e-6);
        assert_eq!(d.distances.get(0, 2), 0.0);

        let prev =
            GroundMatrix::from_rows(["a", "b", "c"], [[0.0, 0.5, 0.7], [0.1, 0.0, 0.7], [0.2, 0.2, 0.0]]).unwrap();
        let next = reinforced_update(&prev, &d, Transform::Power { rho: 2.0 }, 1.0).unwrap();
        assert!((next.get(0, 1) - (1.0 + 0.5) / 2.0).abs() < 1e-9);
        assert!((next.get(1, 0) - (1.0 + 0.1) / 2.0).abs() < 1e-9);
        assert_eq!(next.get(0, 2), 0.7, "absent class keeps D_prev");
        let at0 = reinforced_update(&prev, &d, Transform::Linear, 0.0).unwrap();
        assert!((at0.get(0, 1) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn labels_resampled_to_feature_resolution() {
        // 2×2 labels onto 1×1 features: the pixel centre (0.5, 0.5)·2 = (1, 1) → label[1][1].
        let f = Tensor::ones((1, 1, 1, 1), DType::F32, &Device::Cpu).unwrap();
        let l = Tensor::from_slice(&[0u8, 0, 0, 1], (1, 2, 2), &Device::Cpu).unwrap();
        let mut acc = CentroidAccumulator::new(2, 1, None);
        acc.add(&f, &l).unwrap();
        assert_eq!(acc.counts(), &[0, 1]);
        let bad = Tensor::from_slice(&[5u8, 5, 5, 5], (1, 2, 2), &Device::Cpu).unwrap();
        let e = acc.add(&f, &bad).unwrap_err().to_string();
        assert!(e.contains("label 5"), "{e}");
    }

    #[test]
    fn alpha_schedule() {
        let s = AlphaSchedule::paper(11);
        assert_eq!(s.alpha(0), 10.0);
        assert!((s.alpha(5) - 5.0).abs() < 1e-12);
        assert_eq!(s.alpha(10), 0.0);
        assert_eq!(s.alpha(20), 0.0);
    }
}
