//! Segmentation metrics from a confusion matrix (rows: true class, columns: predicted class):
//! per-class IoU, mIoU, the paper's group mIoU over importance groups, pixel accuracy, and the
//! **expected severity cost** `Σ_{t,p} C[t][p]·D[t][p] / Σ C` under any ground matrix `D` —
//! the average price of a pixel's mistake, which severity-aware training lowers even where
//! mIoU barely moves.
//!
//! ```
//! use rwt::metrics::ConfusionMatrix;
//! let mut c = ConfusionMatrix::new(3, Some(255));
//! c.update(&[0, 0, 1, 2, 2, 9], &[0, 0, 1, 2, 255, 255])?; // the last two are ignored
//! c.update(&[1], &[0])?;
//! assert_eq!(c.count(0, 1), 1);
//! assert!((c.iou()[0].unwrap() - 2.0 / 3.0).abs() < 1e-12);
//! # Ok::<(), rwt::Error>(())
//! ```

use crate::classes::{ClassSet, ImportanceGroup};
use crate::ground::GroundMatrix;
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use ndarray::Array2;

/// Pixel counts `C[truth][pred]` over `N` classes; pixels whose truth is the ignore label are
/// not counted.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    counts: Array2<u64>,
    ignore: Option<u32>,
}

impl ConfusionMatrix {
    /// An empty `n × n` matrix; `ignore` is the void label (CamVid 11, Cityscapes 255).
    pub fn new(n: usize, ignore: Option<u32>) -> Self {
        ConfusionMatrix { counts: Array2::zeros((n, n)), ignore }
    }

    /// A matrix from counts `C[truth][pred]` (e.g. read back from a run's `metrics.json`).
    /// The matrix must be square, with at least one class.
    pub fn from_counts(counts: Array2<u64>, ignore: Option<u32>) -> Result<Self> {
        if counts.nrows() == 0 {
            return Err(Error::invalid("confusion matrix", "0 classes", "needs at least one class"));
        }
        if counts.nrows() != counts.ncols() {
            return Err(Error::NotSquare { what: "confusion matrix", rows: counts.nrows(), cols: counts.ncols() });
        }
        Ok(ConfusionMatrix { counts, ignore })
    }

    /// An empty matrix for a class set (its size and ignore label).
    pub fn for_classes(classes: &ClassSet) -> Self {
        ConfusionMatrix::new(classes.len(), Some(classes.ignore_index))
    }

    /// Number of classes `N`.
    pub fn num_classes(&self) -> usize {
        self.counts.nrows()
    }

    /// `C[truth][pred]`.
    pub fn count(&self, truth: usize, pred: usize) -> u64 {
        self.counts[[truth, pred]]
    }

    /// The counts as an `N × N` array.
    pub fn counts(&self) -> &Array2<u64> {
        &self.counts
    }

    /// Pixels counted.
    pub fn total(&self) -> u64 {
        self.counts.sum()
    }

    /// Adds pixels: `pred[i]` predicted where `truth[i]` is true. A truth equal to the ignore
    /// label is skipped (whatever the prediction); any other truth or prediction `≥ N` is an
    /// error naming the value and its position, and nothing is added.
    pub fn update(&mut self, pred: &[u32], truth: &[u32]) -> Result<()> {
        if pred.len() != truth.len() {
            return Err(Error::shape("predictions vs labels", truth.len().to_string(), pred.len().to_string()));
        }
        let n = self.num_classes() as u32;
        let mut add = Array2::<u64>::zeros(self.counts.raw_dim());
        for (i, (&p, &t)) in pred.iter().zip(truth).enumerate() {
            if Some(t) == self.ignore {
                continue;
            }
            if t >= n {
                return Err(Error::invalid(
                    "label",
                    t,
                    format!("at pixel {i}: not a class of {n} nor the ignore label"),
                ));
            }
            if p >= n {
                return Err(Error::invalid("prediction", p, format!("at pixel {i}: not a class of {n}")));
            }
            add[[t as usize, p as usize]] += 1;
        }
        self.counts += &add;
        Ok(())
    }

    /// Adds a batch: `logits [B, N, H, W]` (argmax over classes) or predicted labels
    /// `[B, H, W]`, against labels `[B, H, W]` (any integer dtype).
    pub fn update_tensors(&mut self, pred: &Tensor, labels: &Tensor) -> Result<()> {
        let pred = if pred.rank() == labels.rank() + 1 { pred.argmax(1)? } else { pred.clone() };
        if pred.dims() != labels.dims() {
            return Err(Error::shape(
                "predictions vs labels",
                format!("{:?}", labels.dims()),
                format!("{:?}", pred.dims()),
            ));
        }
        let p: Vec<u32> = pred.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?;
        let t: Vec<u32> = labels.to_dtype(DType::U32)?.flatten_all()?.to_vec1()?;
        self.update(&p, &t)
    }

    /// Adds another matrix of the same size (e.g. from another worker).
    pub fn merge(&mut self, other: &ConfusionMatrix) -> Result<()> {
        if other.num_classes() != self.num_classes() {
            return Err(Error::shape(
                "confusion matrices",
                self.num_classes().to_string(),
                other.num_classes().to_string(),
            ));
        }
        self.counts += &other.counts;
        Ok(())
    }

    /// Per-class IoU `C[k][k] / (Σ_p C[k][p] + Σ_t C[t][k] − C[k][k])`; `None` for a class
    /// that neither occurs nor is predicted (it takes no part in the means).
    pub fn iou(&self) -> Vec<Option<f64>> {
        (0..self.num_classes())
            .map(|k| {
                let tp = self.counts[[k, k]] as f64;
                let union = self.counts.row(k).sum() as f64 + self.counts.column(k).sum() as f64 - tp;
                (union > 0.0).then(|| tp / union)
            })
            .collect()
    }

    /// Mean IoU over the classes that have one.
    pub fn mean_iou(&self) -> Option<f64> {
        mean(self.iou().into_iter().flatten())
    }

    /// Mean IoU over the given classes (those that have one).
    pub fn mean_iou_of(&self, classes: &[usize]) -> Option<f64> {
        let iou = self.iou();
        mean(classes.iter().filter_map(|&k| iou.get(k).copied().flatten()))
    }

    /// The paper's group mIoU: mean IoU over the members of an importance group.
    pub fn group_iou(&self, classes: &ClassSet, group: ImportanceGroup) -> Option<f64> {
        self.mean_iou_of(&classes.group_members(group))
    }

    /// Fraction of counted pixels predicted correctly.
    pub fn pixel_accuracy(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.counts.diag().sum() as f64 / total as f64)
    }

    /// The expected severity cost `Σ C[t][p]·D[t][p] / Σ C` under ground matrix `d`.
    pub fn severity_cost(&self, d: &GroundMatrix) -> Result<Option<f64>> {
        if d.num_classes() != self.num_classes() {
            return Err(Error::shape(
                "ground matrix vs confusion matrix",
                self.num_classes().to_string(),
                d.num_classes().to_string(),
            ));
        }
        let total = self.total();
        if total == 0 {
            return Ok(None);
        }
        let cost: f64 = self.counts.indexed_iter().map(|((t, p), &c)| c as f64 * d.get(t, p)).sum();
        Ok(Some(cost / total as f64))
    }

    /// Rows normalised to sum 1 (how each true class spreads over predictions, Fig. 5); a row
    /// with no pixels stays zero.
    pub fn row_normalized(&self) -> Array2<f64> {
        let mut out = self.counts.mapv(|c| c as f64);
        for mut row in out.rows_mut() {
            let s = row.sum();
            if s > 0.0 {
                row /= s;
            }
        }
        out
    }

    /// The matrix as a heatmap with `names` on both axes: counts, or (`normalized`) each row
    /// as fractions of the true class's pixels.
    pub fn heatmap(&self, title: &str, names: &[&str], normalized: bool) -> Result<crate::plot::Heatmap> {
        if names.len() != self.num_classes() {
            return Err(Error::shape("class names", self.num_classes().to_string(), names.len().to_string()));
        }
        let values = if normalized { self.row_normalized() } else { self.counts.mapv(|c| c as f64) };
        let labels: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let map = crate::plot::Heatmap::new(title, values, labels.clone(), labels).axis_labels("predicted", "true");
        Ok(if normalized { map.range(0.0, 1.0).precision(2) } else { map.precision(0) })
    }
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::CAMVID;

    /// A 3-class case by hand. Truth 0 0 0 1 1 2, prediction 0 0 1 1 2 2:
    /// C = [[2,1,0],[0,1,1],[0,0,1]]; IoU_0 = 2/3, IoU_1 = 1/(2+2−1) = 1/3, IoU_2 = 1/2;
    /// mIoU = (2/3 + 1/3 + 1/2)/3 = 1/2; accuracy 4/6.
    #[test]
    fn hand_computed_case() {
        let mut c = ConfusionMatrix::new(3, None);
        c.update(&[0, 0, 1, 1, 2, 2], &[0, 0, 0, 1, 1, 2]).unwrap();
        let iou: Vec<f64> = c.iou().into_iter().map(Option::unwrap).collect();
        for (a, b) in iou.iter().zip([2.0 / 3.0, 1.0 / 3.0, 0.5]) {
            assert!((a - b).abs() < 1e-12);
        }
        assert!((c.mean_iou().unwrap() - 0.5).abs() < 1e-12);
        assert!((c.pixel_accuracy().unwrap() - 4.0 / 6.0).abs() < 1e-12);
        // D = 1 off the diagonal: the severity cost is the error rate.
        let d = GroundMatrix::from_rows(["a", "b", "c"], vec![vec![0., 1., 1.], vec![1., 0., 1.], vec![1., 1., 0.]])
            .unwrap();
        assert!((c.severity_cost(&d).unwrap().unwrap() - 2.0 / 6.0).abs() < 1e-12);
        let rn = c.row_normalized();
        assert!((rn[[0, 1]] - 1.0 / 3.0).abs() < 1e-12 && (rn[[2, 2]] - 1.0).abs() < 1e-12);
    }

    /// torchmetrics' multiclass Jaccard index (torchmetrics 1.9.0), computed once:
    /// ```text
    /// import torch; from torchmetrics.classification import MulticlassJaccardIndex
    /// p = torch.tensor([0,1,2,3,3,1,0,2,2,3,1,0]); t = torch.tensor([0,1,1,3,2,1,0,2,255,3,0,0])
    /// MulticlassJaccardIndex(4, average=None, ignore_index=255)(p, t)
    ///   → tensor([0.7500, 0.5000, 0.3333, 0.6667]);  average="macro" → 0.5625
    /// ```
    #[test]
    fn matches_torchmetrics_jaccard() {
        let mut c = ConfusionMatrix::new(4, Some(255));
        c.update(&[0, 1, 2, 3, 3, 1, 0, 2, 2, 3, 1, 0], &[0, 1, 1, 3, 2, 1, 0, 2, 255, 3, 0, 0]).unwrap();
        let iou: Vec<f64> = c.iou().into_iter().map(Option::unwrap).collect();
        for (a, b) in iou.iter().zip([0.75, 0.5, 0.3333, 0.6667]) {
            assert!((a - b).abs() < 1e-4, "{iou:?}");
        }
        assert!((c.mean_iou().unwrap() - 0.5625).abs() < 1e-4);
    }

    #[test]
    fn bad_input_is_an_error_and_adds_nothing() {
        let mut c = ConfusionMatrix::for_classes(&CAMVID);
        assert!(c.update(&[0, 1], &[0]).is_err());
        let e = c.update(&[0, 1], &[0, 12]).unwrap_err().to_string();
        assert!(e.contains("12") && e.contains("pixel 1"), "{e}");
        assert!(c.update(&[11], &[0]).is_err());
        assert_eq!(c.total(), 0);
        c.update(&[3, 3], &[11, 11]).unwrap(); // void pixels: ignored
        assert_eq!(c.total(), 0);
        assert_eq!(c.mean_iou(), None);
        assert!(c.severity_cost(&GroundMatrix::severity(&crate::classes::CITYSCAPES)).is_err());
    }

    #[test]
    fn groups_and_tensors() {
        let dev = candle_core::Device::Cpu;
        let mut c = ConfusionMatrix::for_classes(&CAMVID);
        // Logits [1, 11, 1, 3] whose argmax is 0, 8, 8; labels 0, 8, 9.
        let mut v = vec![0f32; 33];
        v[0] = 1.0;
        v[8 * 3 + 1] = 1.0;
        v[8 * 3 + 2] = 1.0;
        let logits = Tensor::from_vec(v, (1, 11, 1, 3), &dev).unwrap();
        let labels = Tensor::new(&[[[0u32, 8, 9]]], &dev).unwrap();
        c.update_tensors(&logits, &labels).unwrap();
        assert_eq!((c.count(0, 0), c.count(8, 8), c.count(9, 8)), (1, 1, 1));
        let g4 = CAMVID.group_members(ImportanceGroup::G4);
        let expected = c.mean_iou_of(&g4);
        assert_eq!(c.group_iou(&CAMVID, ImportanceGroup::G4), expected);
    }
}
