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
//!
//! With `seeds = [0, 1, 2]` every variant runs once per seed (the seed changes the data order,
//! the augmentations and dropout; the starting weights are the same), in
//! `dir/<variant>/seed-<s>`, and [`Ablation::summary`] reports mean ± sd over the seeds.

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
    /// Run every variant once per seed (empty: once, with `base.seed`).
    #[serde(default)]
    pub seeds: Vec<u64>,
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

    /// The run config of variant `k` with `seed`.
    pub fn run_config_seeded(&self, k: usize, seed: u64) -> RunConfig {
        RunConfig { seed, ..self.run_config(k) }
    }

    /// The seeds every variant runs with: `seeds`, or `[base.seed]` when empty.
    pub fn seed_list(&self) -> Vec<u64> {
        if self.seeds.is_empty() {
            vec![self.base.seed]
        } else {
            self.seeds.clone()
        }
    }
}

/// The results of an ablation, one row per run (variant × seed).
#[derive(Clone, Debug, PartialEq)]
pub struct Ablation {
    /// `(run name, its evaluation)`: the variant's name, with ` (seed s)` when there are
    /// several seeds.
    pub rows: Vec<(String, EvalReport)>,
    /// The training history of each run.
    pub histories: Vec<History>,
    /// The index of each row's variant in [`AblationConfig::variants`].
    pub variant_of_row: Vec<usize>,
    /// The variant names, in config order.
    pub variants: Vec<String>,
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

/// Runs every variant of `cfg` in `dir/<slug of its name>` (with several seeds,
/// `dir/<slug>/seed-<s>`; resumable, see [`run`]) and collects their evaluations; writes
/// `dir/results.md` (with several seeds also the mean ± sd table `dir/summary.md`) and
/// `dir/ablation.svg`.
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
    let seeds = cfg.seed_list();
    if let Some(s) = seeds.iter().enumerate().find_map(|(i, s)| seeds[..i].contains(s).then_some(s)) {
        return Err(Error::invalid("ablation seeds", s, "appears twice"));
    }
    let dir = dir.as_ref();
    let many = !cfg.seeds.is_empty();
    let mut out = Ablation {
        rows: vec![],
        histories: vec![],
        variant_of_row: vec![],
        variants: cfg.variants.iter().map(|v| v.name.clone()).collect(),
    };
    for (k, v) in cfg.variants.iter().enumerate() {
        for &seed in &seeds {
            let (name, folder) = if many {
                (format!("{} (seed {seed})", v.name), dir.join(slug(&v.name)).join(format!("seed-{seed}")))
            } else {
                (v.name.clone(), dir.join(slug(&v.name)))
            };
            let trained = run(&cfg.run_config_seeded(k, seed), folder, &mut observe)?;
            out.rows.push((name, trained.report));
            out.histories.push(trained.history);
            out.variant_of_row.push(k);
        }
    }
    crate::io::write_atomic(dir.join("results.md"), out.table().to_markdown().as_bytes())?;
    if many {
        crate::io::write_atomic(dir.join("summary.md"), out.summary().to_markdown().as_bytes())?;
    }
    crate::io::write_atomic(dir.join("ablation.svg"), out.chart().to_svg().as_bytes())?;
    Ok(out)
}

impl Ablation {
    /// The results table (Table II's layout; HTML in notebooks, Markdown in a terminal).
    pub fn table(&self) -> Table {
        results_table(&self.rows).caption("IoU (%) per class, group 3+4, mIoU; severity cost under the severity preset")
    }

    /// Mean ± sample standard deviation over the seeds of each variant: per-class IoU, group
    /// 3+4 IoU, mIoU, pixel accuracy (all %) and the severity cost; `n` = runs averaged.
    pub fn summary(&self) -> Table {
        let classes = self.rows.first().map(|(_, r)| r.classes.clone()).unwrap_or_default();
        let mut headers = vec!["model".to_string(), "n".to_string()];
        headers.extend(classes.iter().cloned());
        headers.extend(["G3+G4".into(), "mIoU".into(), "pixel acc".into(), "severity cost".into()]);
        let mut table = Table::new(headers)
            .caption("mean ± sd over seeds: IoU (%) per class, group 3+4, mIoU, pixel accuracy; severity cost");
        for (k, name) in self.variants.iter().enumerate() {
            let reports: Vec<&EvalReport> =
                self.rows.iter().zip(&self.variant_of_row).filter(|(_, &v)| v == k).map(|((_, r), _)| r).collect();
            if reports.is_empty() {
                continue;
            }
            let pct = |f: &dyn Fn(&EvalReport) -> Option<f64>| mean_sd(&reports, f, 100.0, 1);
            let mut cells = vec![name.clone(), reports.len().to_string()];
            cells.extend((0..classes.len()).map(|c| pct(&|r: &EvalReport| r.iou.get(c).copied().flatten())));
            cells.push(pct(&|r: &EvalReport| r.group34_iou));
            cells.push(pct(&|r: &EvalReport| r.miou));
            cells.push(pct(&|r: &EvalReport| r.pixel_accuracy));
            cells.push(mean_sd(&reports, &|r: &EvalReport| r.severity_cost, 1.0, 4));
            table.push(cells);
        }
        table
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

    /// The training curves of every run on shared axes.
    pub fn curves(&self) -> Svg {
        curves(&self.histories.iter().collect::<Vec<_>>())
    }
}

/// `mean ± sd` of `f` over `reports` (scaled, with `digits` decimals); `–` when any is missing.
fn mean_sd(reports: &[&EvalReport], f: &dyn Fn(&EvalReport) -> Option<f64>, scale: f64, digits: usize) -> String {
    let Some(v) = reports.iter().map(|r| f(r).map(|x| scale * x)).collect::<Option<Vec<f64>>>() else {
        return "–".into();
    };
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return format!("{mean:.digits$}");
    }
    let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    format!("{mean:.digits$} ± {sd:.digits$}")
}
