//! What a run records: an [`EvalReport`] per evaluation (per-class IoU, group IoU, mIoU,
//! pixel accuracy, severity cost, the confusion matrix) and the [`History`] of every epoch —
//! both serialisable (a run folder's `metrics.json` and `history.json`) and plottable.

use crate::classes::{ClassSet, ImportanceGroup};
use crate::ground::GroundMatrix;
use crate::metrics::ConfusionMatrix;
use crate::plot::{self, BarChart, LineChart, Svg, Table};
use crate::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Metrics of one evaluation, with the confusion matrix they come from.
///
/// The severity cost is measured under the **severity preset** of the class set
/// ([`GroundMatrix::severity`]) whatever the run trained with, so that rows of a table are
/// compared on one scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Class names, in label order.
    pub classes: Vec<String>,
    /// IoU per class (`None`: the class neither occurs nor is predicted).
    pub iou: Vec<Option<f64>>,
    /// Mean IoU over the classes that have one.
    pub miou: Option<f64>,
    /// Mean IoU of importance groups 1 to 4.
    pub group_iou: [Option<f64>; 4],
    /// Mean IoU over groups 3 and 4 together (Table II's columns).
    pub group34_iou: Option<f64>,
    /// Fraction of pixels right.
    pub pixel_accuracy: Option<f64>,
    /// `Σ C[t][p]·D[t][p] / Σ C` under the severity preset.
    pub severity_cost: Option<f64>,
    /// Pixels counted.
    pub pixels: u64,
    /// `C[truth][pred]`.
    pub confusion: Vec<Vec<u64>>,
}

impl EvalReport {
    /// The report of a confusion matrix over `classes`.
    pub fn new(cm: &ConfusionMatrix, classes: &ClassSet) -> Result<Self> {
        if cm.num_classes() != classes.len() {
            return Err(Error::ClassCount {
                what: "confusion matrix vs class set",
                expected: classes.len(),
                got: cm.num_classes(),
            });
        }
        let groups = [ImportanceGroup::G1, ImportanceGroup::G2, ImportanceGroup::G3, ImportanceGroup::G4];
        let g34: Vec<usize> =
            [ImportanceGroup::G3, ImportanceGroup::G4].iter().flat_map(|&g| classes.group_members(g)).collect();
        Ok(EvalReport {
            classes: classes.names.iter().map(|s| s.to_string()).collect(),
            iou: cm.iou(),
            miou: cm.mean_iou(),
            group_iou: groups.map(|g| cm.group_iou(classes, g)),
            group34_iou: cm.mean_iou_of(&g34),
            pixel_accuracy: cm.pixel_accuracy(),
            severity_cost: cm.severity_cost(&GroundMatrix::severity(classes))?,
            pixels: cm.total(),
            confusion: cm.counts().rows().into_iter().map(|r| r.to_vec()).collect(),
        })
    }

    /// The confusion matrix back (ignore label `ignore`).
    pub fn confusion_matrix(&self, ignore: Option<u32>) -> Result<ConfusionMatrix> {
        let n = self.confusion.len();
        let flat: Vec<u64> = self.confusion.iter().flatten().copied().collect();
        let counts = Array2::from_shape_vec((n, n), flat)
            .map_err(|_| Error::invalid("confusion matrix", format!("{n} rows"), "rows of unequal length"))?;
        ConfusionMatrix::from_counts(counts, ignore)
    }

    /// IoU of the class called `name`.
    pub fn iou_of(&self, name: &str) -> Option<f64> {
        self.classes.iter().position(|c| c == name).and_then(|k| self.iou[k])
    }

    /// Reads a report written by [`write_json`].
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        read_json(path.as_ref())
    }
}

/// One epoch of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch number (from 0).
    pub epoch: usize,
    /// Mean training loss.
    pub loss: f64,
    /// Learning rate of the last batch.
    pub rate: f64,
    /// Seconds of training (evaluation excluded).
    pub seconds: f64,
    /// The evaluation after this epoch, when there was one.
    pub eval: Option<EvalReport>,
}

/// Every epoch of a run, in order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The run's name.
    pub name: String,
    /// The objective's short name (`ce`, `w`, …).
    pub objective: String,
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// Reads a `history.json`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        read_json(path.as_ref())
    }

    /// The last evaluation.
    pub fn last_eval(&self) -> Option<&EvalReport> {
        self.epochs.iter().rev().find_map(|e| e.eval.as_ref())
    }

    /// Training curves side by side: mean training loss, evaluation mIoU and severity cost by
    /// epoch (epochs counted from 1).
    pub fn curves(&self) -> Svg {
        curves(&[self])
    }
}

/// Training curves of several runs on shared axes (loss, mIoU, severity cost by epoch).
pub fn curves(runs: &[&History]) -> Svg {
    let mut loss = LineChart::new("training loss", "epoch", "mean loss").size(330, 260);
    let mut miou = LineChart::new("mIoU", "epoch", "mIoU (%)").size(330, 260);
    let mut cost = LineChart::new("severity cost", "epoch", "Σ C·D / Σ C").size(330, 260);
    for h in runs {
        let name = if h.name.is_empty() { h.objective.as_str() } else { h.name.as_str() };
        loss = loss.line(name, h.epochs.iter().map(|e| ((e.epoch + 1) as f64, e.loss)));
        let evals = || h.epochs.iter().filter_map(|e| e.eval.as_ref().map(|r| ((e.epoch + 1) as f64, r)));
        miou = miou.line(name, evals().filter_map(|(x, r)| r.miou.map(|m| (x, 100.0 * m))));
        cost = cost.line(name, evals().filter_map(|(x, r)| r.severity_cost.map(|c| (x, c))));
    }
    plot::hstack(&[loss.to_svg(), miou.to_svg(), cost.to_svg()])
}

/// A results table, one row per `(name, report)`: per-class IoU, group-3/4 IoU, mIoU (all in
/// %) and severity cost — the layout of the paper's Table II. Renders as HTML in notebooks and
/// as Markdown in a terminal.
pub fn results_table(rows: &[(String, EvalReport)]) -> Table {
    let classes = rows.first().map(|(_, r)| r.classes.clone()).unwrap_or_default();
    let mut headers = vec!["model".to_string()];
    headers.extend(classes.iter().cloned());
    headers.extend(["G3+G4".into(), "mIoU".into(), "pixel acc".into(), "severity cost".into()]);
    let pct = |v: Option<f64>| v.map_or("–".to_string(), |x| format!("{:.1}", 100.0 * x));
    let mut table = Table::new(headers);
    for (name, r) in rows {
        let mut cells = vec![name.clone()];
        cells.extend(r.iou.iter().map(|&v| pct(v)));
        cells.extend([
            pct(r.group34_iou),
            pct(r.miou),
            pct(r.pixel_accuracy),
            r.severity_cost.map_or("–".into(), |c| format!("{c:.4}")),
        ]);
        table.push(cells);
    }
    table
}

/// The paper's Fig. 5: how the pixels of the true class `truth` (e.g. `"car"`) are spread over
/// the *other* predicted classes, in % of that class's pixels, one series of bars per row (model).
pub fn confusion_spread(rows: &[(String, EvalReport)], truth: &str) -> Result<BarChart> {
    let Some((_, first)) = rows.first() else {
        return Err(Error::invalid("confusion spread", truth, "needs at least one report"));
    };
    let t = first
        .classes
        .iter()
        .position(|c| c == truth)
        .ok_or_else(|| Error::invalid("class", truth, format!("is not one of {:?}", first.classes)))?;
    let others: Vec<usize> = (0..first.classes.len()).filter(|&k| k != t).collect();
    let mut chart = BarChart::new(&format!("true {truth}: predicted as (% of {truth} pixels)"), "% of pixels")
        .categories(others.iter().map(|&k| first.classes[k].clone()))
        .size(760, 360);
    for (name, r) in rows {
        if r.classes != first.classes {
            return Err(Error::invalid("confusion spread", name, "reports of different class sets"));
        }
        let row = &r.confusion[t];
        let total = row.iter().sum::<u64>().max(1) as f64;
        chart = chart.series(name, others.iter().map(|&k| 100.0 * row[k] as f64 / total));
    }
    Ok(chart)
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json<T: Serialize>(path: impl AsRef<Path>, value: &T) -> Result<()> {
    let path = path.as_ref();
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::invalid("JSON record", path.display(), e.to_string()))?;
    crate::io::write_atomic(path, text.as_bytes())
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = crate::io::read_text(path)?;
    serde_json::from_str(&text).map_err(|e| Error::invalid("JSON record", path.display(), e.to_string()))
}
