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
/// `dir/<slug>/seed-<s>`; resumable, see [`run`]: finished runs are kept, so a variant added
/// to a finished ablation trains alone) and collects their evaluations; writes the reports of
/// [`Ablation::write_reports`] (`results.md`, with several seeds `summary.md`,
/// `ablation.svg`).
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
    let mut out = Ablation::empty(cfg);
    for k in 0..cfg.variants.len() {
        for &seed in &seeds {
            let (name, folder) = run_folder(cfg, dir, k, seed);
            let trained = run(&cfg.run_config_seeded(k, seed), folder, &mut observe)?;
            out.rows.push((name, trained.report));
            out.histories.push(trained.history);
            out.variant_of_row.push(k);
        }
    }
    out.write_reports(cfg, dir)?;
    Ok(out)
}

/// The row name and run folder of variant `k` with `seed`: `dir/<slug>` with one seed,
/// `dir/<slug>/seed-<s>` with several.
fn run_folder(cfg: &AblationConfig, dir: &Path, k: usize, seed: u64) -> (String, std::path::PathBuf) {
    let v = &cfg.variants[k];
    if cfg.seeds.is_empty() {
        (v.name.clone(), dir.join(slug(&v.name)))
    } else {
        (format!("{} (seed {seed})", v.name), dir.join(slug(&v.name)).join(format!("seed-{seed}")))
    }
}

impl Ablation {
    fn empty(cfg: &AblationConfig) -> Ablation {
        Ablation {
            rows: vec![],
            histories: vec![],
            variant_of_row: vec![],
            variants: cfg.variants.iter().map(|v| v.name.clone()).collect(),
        }
    }

    /// The ablation of `cfg` as recorded in `dir` by [`ablate`] — each run folder's
    /// `metrics.json` and `history.json`, nothing trained — e.g. the committed records under
    /// `notebooks/results/`, which keep no checkpoints.
    ///
    /// # Errors
    /// A config without variants, a run folder without its records ([`crate::Error::Io`]
    /// naming the file), or a record that does not parse.
    pub fn read(cfg: &AblationConfig, dir: impl AsRef<Path>) -> Result<Ablation> {
        if cfg.variants.is_empty() {
            return Err(Error::invalid("ablation", &cfg.base.name, "has no [[variants]]"));
        }
        let dir = dir.as_ref();
        let mut out = Ablation::empty(cfg);
        for k in 0..cfg.variants.len() {
            for seed in cfg.seed_list() {
                let (name, folder) = run_folder(cfg, dir, k, seed);
                out.rows.push((name, EvalReport::read(folder.join("metrics.json"))?));
                out.histories.push(History::read(folder.join("history.json"))?);
                out.variant_of_row.push(k);
            }
        }
        Ok(out)
    }

    /// Writes what [`ablate`] writes after its runs: `dir/results.md`, with several seeds
    /// (`cfg.seeds` not empty) `dir/summary.md` — the mean ± sd table, every variant against
    /// the first one ([`Ablation::versus`]) and Fig. 5's shares
    /// ([`Ablation::confusion_shares`]) — and `dir/ablation.svg`, each atomically. With
    /// [`Ablation::read`] it rebuilds the reports from recorded runs (`rwt ablate --report-only`),
    /// e.g. after a variant was added to a finished ablation.
    ///
    /// # Errors
    /// An ablation without runs; a file that cannot be written (naming it).
    pub fn write_reports(&self, cfg: &AblationConfig, dir: impl AsRef<Path>) -> Result<()> {
        if self.rows.is_empty() {
            return Err(Error::invalid("ablation", &cfg.base.name, "has no runs to report"));
        }
        let dir = dir.as_ref();
        crate::io::write_atomic(dir.join("results.md"), self.table().to_markdown().as_bytes())?;
        if !cfg.seeds.is_empty() {
            // The first variant is the control the others are compared with.
            let names = self.rows.first().map(|(_, r)| r.classes.clone()).unwrap_or_default();
            let present = |want: &[&'static str]| -> Vec<&'static str> {
                want.iter().copied().filter(|w| names.iter().any(|n| n == w)).collect()
            };
            let mut md = self.summary().to_markdown();
            let road_users = present(&["car", "pedestrian", "bicyclist", "person", "rider", "motorcycle", "bicycle"]);
            md += "\n\n";
            md += &self.versus(&self.variants[0], &road_users)?.to_markdown();
            md += "\n\n";
            md += &self
                .confusion_shares(
                    &present(&["car", "pedestrian", "bicyclist", "person", "rider"]),
                    &present(&["road", "sidewalk", "sky"]),
                )?
                .to_markdown();
            crate::io::write_atomic(dir.join("summary.md"), md.as_bytes())?;
        }
        crate::io::write_atomic(dir.join("ablation.svg"), self.chart().to_svg().as_bytes())?;
        Ok(())
    }

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
            let reports = self.reports_of(k);
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

    /// The evaluations of variant `k` (one per seed).
    fn reports_of(&self, k: usize) -> Vec<&EvalReport> {
        self.rows.iter().zip(&self.variant_of_row).filter(|(_, &v)| v == k).map(|((_, r), _)| r).collect()
    }

    /// Every other variant against `control` (e.g. `"CE"`): the difference of the means over
    /// seeds of mIoU, group 3+4 IoU and the IoU of `classes` (points), and of the severity
    /// cost, each marked `*` where it exceeds twice its standard error
    /// `√(sd_a²/n_a + sd_c²/n_c)` (sample standard deviations over seeds; about a 95 % interval
    /// for normal errors) — which differences exceed the spread. With one seed no difference
    /// is marked.
    ///
    /// # Errors
    /// `control` is not a variant, or a name of `classes` is not a class of the reports.
    pub fn versus(&self, control: &str, classes: &[&str]) -> Result<Table> {
        let c =
            self.variants.iter().position(|v| v == control).ok_or_else(|| {
                Error::invalid("control variant", control, format!("is not one of {:?}", self.variants))
            })?;
        let names = self.rows.first().map(|(_, r)| r.classes.clone()).unwrap_or_default();
        let idx = classes
            .iter()
            .map(|n| {
                names
                    .iter()
                    .position(|m| m == n)
                    .ok_or_else(|| Error::invalid("class", n, "is not a class of the ablation"))
            })
            .collect::<Result<Vec<usize>>>()?;
        let mut metrics: Vec<(String, Metric, f64)> = vec![
            ("Δ mIoU".into(), Box::new(|r: &EvalReport| r.miou), 100.0),
            ("Δ G3+G4".into(), Box::new(|r: &EvalReport| r.group34_iou), 100.0),
        ];
        for (&i, n) in idx.iter().zip(classes) {
            metrics.push((format!("Δ {n}"), Box::new(move |r: &EvalReport| r.iou.get(i).copied().flatten()), 100.0));
        }
        metrics.push(("Δ severity cost".into(), Box::new(|r: &EvalReport| r.severity_cost), 1.0));
        let mut headers = vec!["model".to_string(), "n".to_string()];
        headers.extend(metrics.iter().map(|(h, _, _)| h.clone()));
        let mut table = Table::new(headers).caption(&format!(
            "difference of the means against {control} (IoU in points); * : beyond 2 standard errors of the difference"
        ));
        let base = self.reports_of(c);
        for (k, name) in self.variants.iter().enumerate() {
            let reports = self.reports_of(k);
            if k == c || reports.is_empty() {
                continue;
            }
            let mut cells = vec![name.clone(), reports.len().to_string()];
            for (_, f, scale) in &metrics {
                let values =
                    |rs: &[&EvalReport]| rs.iter().map(|r| f(r).map(|x| scale * x)).collect::<Option<Vec<f64>>>();
                cells.push(match (values(&reports), values(&base)) {
                    (Some(a), Some(b)) => {
                        let ((ma, sa), (mb, sb)) = (mean_and_sd(&a), mean_and_sd(&b));
                        let diff = ma - mb;
                        let digits = if *scale == 1.0 { 4 } else { 1 };
                        let marked = match (sa, sb) {
                            (Some(sa), Some(sb)) => {
                                diff.abs() > 2.0 * (sa * sa / a.len() as f64 + sb * sb / b.len() as f64).sqrt()
                            }
                            _ => false,
                        };
                        format!("{diff:+.digits$}{}", if marked { " *" } else { "" })
                    }
                    _ => "–".into(),
                });
            }
            table.push(cells);
        }
        Ok(table)
    }

    /// Fig. 5's statistics: for each class of `truths`, the share (%) of its pixels predicted
    /// as each class of `preds` (from the evaluation's confusion matrix), mean over the seeds
    /// of each variant — e.g. car, pedestrian, bicyclist predicted as road, sidewalk, sky.
    ///
    /// # Errors
    /// A name that is not a class of the reports.
    pub fn confusion_shares(&self, truths: &[&str], preds: &[&str]) -> Result<Table> {
        let names = self.rows.first().map(|(_, r)| r.classes.clone()).unwrap_or_default();
        let find = |n: &str| {
            names
                .iter()
                .position(|m| m == n)
                .ok_or_else(|| Error::invalid("class", n, "is not a class of the ablation"))
        };
        let (t_idx, p_idx) = (
            truths.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?,
            preds.iter().map(|n| find(n)).collect::<Result<Vec<_>>>()?,
        );
        let mut headers = vec!["model".to_string()];
        for t in truths {
            headers.extend(preds.iter().map(|p| format!("{t} → {p}")));
        }
        let mut table = Table::new(headers)
            .caption("share (%) of each true class's pixels predicted as another (Fig. 5), mean over seeds");
        for (k, name) in self.variants.iter().enumerate() {
            let reports = self.reports_of(k);
            if reports.is_empty() {
                continue;
            }
            let mut cells = vec![name.clone()];
            for &t in &t_idx {
                for &p in &p_idx {
                    let shares: Vec<f64> = reports
                        .iter()
                        .map(|r| {
                            let row = &r.confusion[t];
                            let total: u64 = row.iter().sum();
                            100.0 * row[p] as f64 / total.max(1) as f64
                        })
                        .collect();
                    cells.push(format!("{:.1}", mean_and_sd(&shares).0));
                }
            }
            table.push(cells);
        }
        Ok(table)
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
    match mean_and_sd(&v) {
        (mean, None) => format!("{mean:.digits$}"),
        (mean, Some(sd)) => format!("{mean:.digits$} ± {sd:.digits$}"),
    }
}

/// A number read from an evaluation (`None`: not measured).
type Metric = Box<dyn Fn(&EvalReport) -> Option<f64>>;

/// The mean and the sample standard deviation (`None` for fewer than two values).
fn mean_and_sd(v: &[f64]) -> (f64, Option<f64>) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n.max(1.0);
    if v.len() < 2 {
        return (mean, None);
    }
    (mean, Some((v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classes::CAMVID;
    use crate::metrics::ConfusionMatrix;

    /// A report whose confusion puts `right` of 100 car pixels on car and the rest on road;
    /// every other class perfectly right (10 pixels each).
    fn report(right: u64) -> EvalReport {
        let n = CAMVID.len();
        let mut counts = ndarray::Array2::<u64>::zeros((n, n));
        for c in 0..n {
            counts[[c, c]] = 10;
        }
        let (car, road) = (CAMVID.index_of("car").unwrap(), CAMVID.index_of("road").unwrap());
        counts[[car, car]] = right;
        counts[[car, road]] = 100 - right;
        EvalReport::new(&ConfusionMatrix::from_counts(counts, Some(11)).unwrap(), &CAMVID).unwrap()
    }

    fn ablation(groups: &[(&str, &[u64])]) -> Ablation {
        let mut a = Ablation { rows: vec![], histories: vec![], variant_of_row: vec![], variants: vec![] };
        for (k, (name, values)) in groups.iter().enumerate() {
            a.variants.push(name.to_string());
            for &v in *values {
                a.rows.push((name.to_string(), report(v)));
                a.variant_of_row.push(k);
            }
        }
        a
    }

    #[test]
    fn differences_are_marked_beyond_two_standard_errors() {
        // Car IoU = right / 100: CE seeds 50, 52, 54; W 60, 62, 64 (far beyond the spread);
        // IAL 51, 53, 55 (within it).
        let a = ablation(&[("CE", &[50, 52, 54]), ("W", &[60, 62, 64]), ("IAL", &[51, 53, 55])]);
        let t = a.versus("CE", &["car"]).unwrap();
        assert_eq!(t.rows.len(), 2);
        let car_col = t.headers.iter().position(|h| h == "Δ car").unwrap();
        // Δ car IoU = 62 − 52 = 10 points; sd of each 2, standard error of the difference
        // √(4/3 + 4/3) = 1.63: marked.
        assert_eq!(t.rows[0][car_col], "+10.0 *");
        // IAL: Δ = 1.0 < 2 · 1.63: not marked.
        assert_eq!(t.rows[1][car_col], "+1.0");
        assert!(a.versus("L1", &[]).unwrap_err().to_string().contains("L1"));
        assert!(a.versus("CE", &["lamp"]).unwrap_err().to_string().contains("lamp"));
        // One seed each: nothing is marked.
        let single = ablation(&[("CE", &[50]), ("W", &[90])]);
        assert!(!single.versus("CE", &["car"]).unwrap().rows[0][car_col].contains('*'));
    }

    #[test]
    fn confusion_shares_are_row_shares_averaged_over_seeds() {
        let a = ablation(&[("CE", &[50, 70]), ("W", &[90])]);
        let t = a.confusion_shares(&["car"], &["road", "sky"]).unwrap();
        assert_eq!(t.headers, ["model", "car → road", "car → sky"]);
        // CE: 50 % and 30 % of car pixels on road → mean 40 %; none on sky. W: 10 %.
        assert_eq!(t.rows[0], ["CE", "40.0", "0.0"]);
        assert_eq!(t.rows[1], ["W", "10.0", "0.0"]);
        assert!(a.confusion_shares(&["lorry"], &["road"]).is_err());
    }
}
