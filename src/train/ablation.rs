//! Quick ablations of ground-matrix and `f(d)` choices: the same data, seed, starting weights
//! and schedule, one objective per [`Variant`], and a table and charts that compare them.
//!
//! ```toml
//! # ablate.toml: a RunConfig (the shared settings) plus one [[variants]] per row
//! name = "enet-ablation"
//! epochs = 4
//! [model]
//! init = "runs/enet-ce"          # every variant fine-tunes the same CE network
//!
//! [[variants]]
//! name = "W, D = severity, f = d"
//! loss = { kind = "w", ground = "severity", transform = "linear" }
//!
//! [[variants]]
//! name = "W, f = Huber"
//! loss = { kind = "w", transform = "huber", tau = 0.5 }
//! ```

use super::config::{LossSpec, RunConfig};
use super::report::{curves, results_table, EvalReport, History};
use super::run::{run, RunEvent};
use crate::plot::{BarChart, Svg, Table};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One row of an ablation: a name and the objective it trains with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// The row's name.
    pub name: String,
    /// Its objective (fields not given take [`LossSpec`]'s defaults).
    #[serde(default)]
    pub loss: LossSpec,
}

/// The shared settings and the variants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AblationConfig {
    /// Everything but the objective (its `loss` is ignored).
    #[serde(flatten)]
    pub base: RunConfig,
    /// The rows.
    pub variants: Vec<Variant>,
}

impl AblationConfig {
    /// Parses a TOML ablation config.
    pub fn from_toml(text: &str) -> Result<Self> {
        super::config::parse_toml("ablation config", text)
    }

    /// Reads and parses a TOML ablation config file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        super::config::read_toml("ablation config", path.as_ref())
    }

    /// The run config of variant `k`.
    pub fn run_config(&self, k: usize) -> RunConfig {
        let v = &self.variants[k];
        RunConfig { name: v.name.clone(), loss: v.loss.clone(), ..self.base.clone() }
    }
}

/// The results of an ablation, one row per variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Ablation {
    /// `(variant name, its evaluation)`.
    pub rows: Vec<(String, EvalReport)>,
    /// The training history of each variant.
    pub histories: Vec<History>,
}

/// A folder name for a variant: lowercase ASCII letters and digits (superscripts `²`, `³` as
/// digits), the rest as single `-`: `"W, f = d²"` → `w-f-d2`.
pub fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| match c {
            '²' => '2',
            '³' => '3',
            c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    if s.is_empty() {
        "variant".into()
    } else {
        s
    }
}

/// Runs every variant of `cfg` in `dir/<slug of its name>` (resumable, see [`run`]) and
/// collects their evaluations; writes `dir/results.md` and `dir/ablation.svg`.
pub fn ablate(cfg: &AblationConfig, dir: impl AsRef<Path>, mut observe: impl FnMut(&RunEvent)) -> Result<Ablation> {
    if cfg.variants.is_empty() {
        return Err(Error::invalid("ablation", &cfg.base.name, "has no [[variants]]"));
    }
    let mut seen = std::collections::HashSet::new();
    for v in &cfg.variants {
        if !seen.insert(slug(&v.name)) {
            return Err(Error::invalid("ablation variant", &v.name, "two variants share this name"));
        }
    }
    for k in 0..cfg.variants.len() {
        cfg.run_config(k).validate()?;
    }
    let dir = dir.as_ref();
    let mut out = Ablation { rows: vec![], histories: vec![] };
    for (k, v) in cfg.variants.iter().enumerate() {
        let trained = run(&cfg.run_config(k), dir.join(slug(&v.name)), &mut observe)?;
        out.rows.push((v.name.clone(), trained.report));
        out.histories.push(trained.history);
    }
    crate::io::write_atomic(dir.join("results.md"), out.table().to_markdown().as_bytes())?;
    crate::io::write_atomic(dir.join("ablation.svg"), out.chart().to_svg().as_bytes())?;
    Ok(out)
}

impl Ablation {
    /// The results table (Table II's layout; HTML in notebooks, Markdown in a terminal).
    pub fn table(&self) -> Table {
        results_table(&self.rows).caption("IoU (%) per class, group 3+4, mIoU; severity cost under the severity preset")
    }

    /// Group-3/4 IoU and mIoU per variant as grouped bars, beside the severity cost.
    pub fn chart(&self) -> Svg {
        let pct = |v: Option<f64>| 100.0 * v.unwrap_or(f64::NAN);
        let mut iou = BarChart::new("IoU by variant", "IoU (%)").categories(["G3+G4", "G4", "mIoU"]).size(520, 360);
        let mut cost =
            BarChart::new("severity cost (lower is better)", "Σ C·D / Σ C").categories(["cost"]).size(360, 360);
        for (name, r) in &self.rows {
            iou = iou.series(name, [pct(r.group34_iou), pct(r.group_iou[3]), pct(r.miou)]);
            cost = cost.series(name, [r.severity_cost.unwrap_or(f64::NAN)]);
        }
        crate::plot::hstack(&[iou.to_svg(), cost.to_svg()])
    }

    /// The training curves of every variant on shared axes.
    pub fn curves(&self) -> Svg {
        curves(&self.histories.iter().collect::<Vec<_>>())
    }
}
