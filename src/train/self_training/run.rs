//! The self-training loop ([`self_train`]) and its run folder:
//!
//! ```text
//! runs/selftrain-sim-camvid/
//!   config.toml               the experiment as run
//!   source-only/              the source-only run (a train::run folder), evaluated on the target
//!   <method>/seed-<s>/
//!     round-<r>/teacher.safetensors   the weights that pseudo-labelled round r
//!     checkpoint/             weights, optimiser, position (after every epoch)
//!     history.json            per round: portion, λ_k, pseudo-label statistics, epochs
//!                             (source and target loss, seconds, Sinkhorn statistics), evaluation
//!     metrics.json            the last evaluation
//!   results.md, summary.json  Table III: source-only and every method (mean ± sd over seeds)
//! ```
//!
//! Every file is written atomically; an interrupted experiment resumes at its last finished
//! epoch (the teacher's probabilities are recomputed from `round-<r>/teacher.safetensors`),
//! and a finished one is not retrained.

use super::config::{MethodSpec, SelfTrainConfig, TargetLoss};
use super::pseudo_labels::{entropy_at, hard_labels, soft_labels, PseudoLabelStats, StatsAccumulator};
use super::thresholds::{ClassThresholds, ConfidenceSamples};
use super::PseudoLabeling;
use crate::data::{Augment, Loader, LoaderConfig, Split};
use crate::loss::{self, LossConfig, Reduction};
use crate::models::{weights, Segmenter, SegmenterConfig};
use crate::ot::SinkhornStats;
use crate::plot::Table;
use crate::train::report::{read_json, write_json, EvalReport};
use crate::train::{checkpoint, evaluate_resized, ClassFrequencies, Objective, Progress, RunEvent};
use crate::{Error, Result};
use candle_core::{DType, Device, IndexOp, Tensor};
use half::f16;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What happens during [`self_train`], for a progress display.
#[derive(Clone, Debug)]
pub enum SelfTrainEvent<'a> {
    /// The source-only run's events.
    Source(&'a RunEvent<'a>),
    /// A method (at a seed) starts or resumes at global epoch `first_epoch` of `epochs`.
    Started {
        /// The method's name.
        method: &'a str,
        /// The seed.
        seed: u64,
        /// First epoch to train (over all rounds).
        first_epoch: usize,
        /// Epochs over all rounds.
        epochs: usize,
        /// Batches per epoch.
        batches: usize,
    },
    /// A round's pseudo-labels are made.
    PseudoLabels(&'a RoundRecord),
    /// A batch is done.
    Batch {
        /// Batch number in the epoch (from 0).
        batch: usize,
        /// Batches per epoch.
        batches: usize,
        /// Source + weighted target loss.
        loss: f64,
    },
    /// An epoch is done and recorded.
    Epoch(&'a SelfTrainEpoch),
}

/// One adaptation epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SelfTrainEpoch {
    /// Round (from 1).
    pub round: usize,
    /// Epoch over all rounds (from 0).
    pub epoch: usize,
    /// Mean source loss.
    pub source_loss: f64,
    /// Mean target (pseudo-label) loss.
    pub target_loss: f64,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
    /// Seconds spent in the target loss and its backward share (forward of the loss only).
    pub target_loss_seconds: f64,
    /// The Sinkhorn solves of the epoch (`lrent-w` only).
    pub sinkhorn: Option<SinkhornStats>,
}

/// One round: its pseudo-labels, epochs and evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round (from 1).
    pub round: usize,
    /// The thresholds (portion, λ_k, sampled pixels per class).
    pub thresholds: ClassThresholds,
    /// What the pseudo-labels kept.
    pub pseudo_labels: PseudoLabelStats,
    /// Seconds to run the teacher over the target split and make the labels.
    pub pseudo_label_seconds: f64,
    /// The round's epochs.
    pub epochs: Vec<SelfTrainEpoch>,
    /// The evaluation after the round.
    pub eval: Option<EvalReport>,
}

/// Everything one method (at one seed) did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodHistory {
    /// The method's name.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// Every round so far.
    pub rounds: Vec<RoundRecord>,
}

impl MethodHistory {
    /// Reads a `history.json`.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        read_json(path.as_ref())
    }

    /// The last evaluation.
    pub fn last_eval(&self) -> Option<&EvalReport> {
        self.rounds.iter().rev().find_map(|r| r.eval.as_ref())
    }
}

/// The outcome of [`self_train`].
#[derive(Clone, Debug)]
pub struct SelfTraining {
    /// The run folder.
    pub dir: PathBuf,
    /// The source-only evaluation on the target.
    pub source_only: EvalReport,
    /// Every method at every seed, in config order.
    pub methods: Vec<MethodHistory>,
}

impl SelfTraining {
    /// Reads a finished (or partly finished) experiment's records from its run folder:
    /// `source-only/metrics.json` and every `history.json` under it, in config order.
    pub fn read(cfg: &SelfTrainConfig, dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let source_only = EvalReport::read(dir.join("source-only/metrics.json"))?;
        let mut methods = vec![];
        for m in &cfg.methods {
            for &seed in &cfg.seeds {
                let p = method_dir(&dir, m, seed).join("history.json");
                if p.is_file() {
                    methods.push(MethodHistory::read(p)?);
                }
            }
        }
        Ok(SelfTraining { dir, source_only, methods })
    }

    /// Every row's last evaluation: source-only, then each method at each seed.
    pub fn rows(&self) -> Vec<(String, EvalReport)> {
        let mut rows = vec![("source only".to_string(), self.source_only.clone())];
        for m in &self.methods {
            if let Some(e) = m.last_eval() {
                let name = if self.methods.iter().filter(|o| o.method == m.method).count() > 1 {
                    format!("{} (seed {})", m.method, m.seed)
                } else {
                    m.method.clone()
                };
                rows.push((name, e.clone()));
            }
        }
        rows
    }

    /// Table III's analogue: per-class IoU, group IoU, mIoU and severity cost per row.
    pub fn table(&self) -> Table {
        crate::train::results_table(&self.rows())
    }

    /// Seconds per adaptation epoch of each method — its fastest epoch (on a shared machine the
    /// least disturbed one) and the mean — the fastest's ratio to soft CE's (`lrent`) in the
    /// same run, the seconds per epoch spent in the target loss's forward pass, and the
    /// Sinkhorn statistics of `lrent-w` rows (pixels solved in closed form, iterations, pixels
    /// at the cap, largest marginal error).
    pub fn timing_table(&self) -> Table {
        let mut names: Vec<&str> = vec![];
        for m in &self.methods {
            if !names.contains(&m.method.as_str()) {
                names.push(&m.method);
            }
        }
        let epochs = |name: &str| -> Vec<&SelfTrainEpoch> {
            self.methods
                .iter()
                .filter(|m| m.method == name)
                .flat_map(|m| m.rounds.iter().flat_map(|r| &r.epochs))
                .collect()
        };
        let fastest = |name: &str| epochs(name).iter().map(|e| e.seconds).reduce(f64::min);
        let soft_ce = self
            .methods
            .iter()
            .find(|m| m.method.contains("LRENT") && epochs(&m.method).iter().all(|e| e.sinkhorn.is_none()))
            .and_then(|m| fastest(&m.method));
        let mut table = Table::new([
            "method",
            "s / epoch (fastest)",
            "s / epoch (mean)",
            "fastest vs soft CE",
            "s / epoch in the target loss",
            "Sinkhorn: closed form / iterated pixels",
            "iterations (mean)",
            "pixels at the cap",
            "max marginal error",
        ]);
        for name in names {
            let e = epochs(name);
            let mean = |f: &dyn Fn(&SelfTrainEpoch) -> f64| e.iter().map(|x| f(x)).sum::<f64>() / e.len().max(1) as f64;
            let stats = e.iter().filter_map(|x| x.sinkhorn).reduce(SinkhornStats::merge);
            let best = fastest(name);
            table.push([
                name.to_string(),
                best.map_or("–".into(), |s| format!("{s:.0}")),
                format!("{:.0}", mean(&|x| x.seconds)),
                match (best, soft_ce) {
                    (Some(s), Some(c)) if c > 0.0 => format!("{:.2}×", s / c),
                    _ => "–".into(),
                },
                format!("{:.1}", mean(&|x| x.target_loss_seconds)),
                stats.map_or("–".into(), |s| format!("{} / {}", s.closed_form, s.problems)),
                stats.map_or("–".into(), |s| format!("{:.1}", s.mean_iterations)),
                stats.map_or("–".into(), |s| s.not_converged.to_string()),
                stats.map_or("–".into(), |s| format!("{:.1e}", s.max_marginal_error)),
            ]);
        }
        table
    }
}

/// The folder of `method` at `seed`.
pub fn method_dir(dir: &Path, method: &MethodSpec, seed: u64) -> PathBuf {
    dir.join(crate::train::ablation::slug(&method.name)).join(format!("seed-{seed}"))
}

/// Runs the experiment of `cfg` into `dir` (see the module docs): the source-only run, then
/// every method at every seed from its weights; writes `results.md` and `summary.json`.
/// Resumes whatever is unfinished.
///
/// # Errors
/// Everything [`SelfTrainConfig::validate`] and [`crate::train::run()`] refuse; a run folder
/// that holds another config; a round whose pseudo-labels keep no pixel at all; a non-finite
/// loss (naming method, epoch and batch).
pub fn self_train(
    cfg: &SelfTrainConfig,
    dir: impl AsRef<Path>,
    mut observe: impl FnMut(&SelfTrainEvent),
) -> Result<SelfTraining> {
    cfg.validate()?;
    let dir = dir.as_ref().to_path_buf();
    let target = cfg.target_run();
    let device = target.device()?;
    let classes = target.classes()?;
    // The data is opened (and every method's loss built) before anything is written.
    let target_train = target.dataset(Split::Train)?;
    let eval_loader = target.eval_loader(&device)?;
    let losses: Vec<TargetLoss> = cfg.methods.iter().map(|m| m.target_loss(classes)).collect::<Result<_>>()?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
    let recorded = dir.join("config.toml").is_file();
    checkpoint::claim_run_folder(&dir, "self-training config", cfg, &cfg.to_toml()?, recorded, |p| {
        SelfTrainConfig::from_file(p)
    })?;

    let source_run = cfg.source_run();
    let source = crate::train::run(&source_run, dir.join("source-only"), |e| observe(&SelfTrainEvent::Source(e)))?;
    let source_objective = source_objective(&source_run, &dir.join("source-only"), classes)?;
    let source_weights = dir.join("source-only/checkpoint/model.safetensors");

    let ctx = Context {
        cfg,
        device: &device,
        classes,
        target_train: &target_train,
        eval_loader: &eval_loader,
        eval_input: target.eval_input_size(),
        source_loader: source_run.train_loader(&device)?,
        source_objective: &source_objective,
        source_weights: &source_weights,
    };
    let mut methods = vec![];
    for (m, target_loss) in cfg.methods.iter().zip(&losses) {
        for &seed in &cfg.seeds {
            methods.push(adapt(&ctx, m, target_loss, seed, &method_dir(&dir, m, seed), &mut observe)?);
        }
    }
    let out = SelfTraining { dir: dir.clone(), source_only: source.report, methods };
    let mut md = format!("# {}: Table III analogue\n\n", cfg.name);
    md += &out.table().to_markdown();
    md += "\n\n## Seconds per adaptation epoch\n\n";
    md += &out.timing_table().to_markdown();
    crate::io::write_atomic(dir.join("results.md"), md.as_bytes())?;
    write_json(dir.join("summary.json"), &serde_json::json!({ "rows": out.rows() }))?;
    Ok(out)
}

/// What every method's adaptation shares.
struct Context<'a> {
    cfg: &'a SelfTrainConfig,
    device: &'a Device,
    classes: &'static crate::classes::ClassSet,
    target_train: &'a std::sync::Arc<dyn crate::data::Dataset>,
    eval_loader: &'a Loader,
    eval_input: Option<(usize, usize)>,
    source_loader: Loader,
    source_objective: &'a Objective,
    source_weights: &'a Path,
}

/// The source run's objective; class weights counted from the source labels are read back
/// from the run's `class_weights.json` rather than counted again.
fn source_objective(
    run: &crate::train::RunConfig,
    dir: &Path,
    classes: &crate::classes::ClassSet,
) -> Result<Objective> {
    if !run.loss.class_weights.needs_frequencies() {
        return run.objective(classes);
    }
    let path = dir.join("class_weights.json");
    let record: serde_json::Value = read_json(&path)?;
    let freq: ClassFrequencies = serde_json::from_value(record["frequencies"].clone())
        .map_err(|e| Error::invalid("class weights record", path.display(), e.to_string()))?;
    run.objective_with(classes, Some(&freq))
}

/// The teacher's class probabilities over the target training split, `[N, H·W]` per image in
/// `f16` (half the memory of `f32`; they only feed thresholds and pseudo-labels).
struct TeacherMaps {
    probs: Vec<Vec<f16>>,
    dims: (usize, usize),
}

impl TeacherMaps {
    fn image(&self, index: usize) -> Vec<f32> {
        self.probs[index].iter().map(|v| v.to_f32()).collect()
    }
}

/// The target loader (resized, in order or shuffled; augmentation is done here, on images and
/// pseudo-labels together).
fn target_loader(ctx: &Context, shuffle: bool, seed: u64) -> Result<Loader> {
    let cfg = LoaderConfig {
        batch_size: ctx.cfg.target.batch_size,
        shuffle,
        seed,
        augment: Augment { resize: ctx.cfg.target.size.map(|[h, w]| (h, w)), ..Augment::none() },
        limit: ctx.cfg.target.train_limit,
        ..Default::default()
    };
    Loader::new(ctx.target_train.clone(), cfg, ctx.device.clone())
}

/// Runs the teacher (evaluation mode) over the target training split.
fn teacher_maps(ctx: &Context, teacher: &dyn Segmenter) -> Result<TeacherMaps> {
    let loader = target_loader(ctx, false, 0)?;
    let mut probs = vec![vec![]; ctx.target_train.len()];
    let mut dims = (0, 0);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let p = candle_nn::ops::softmax(&teacher.forward_all(&batch.images, false)?.logits, 1)?;
        let (_, n, h, w) = p.dims4()?;
        dims = (h, w);
        for (k, &i) in batch.indices.iter().enumerate() {
            probs[i] = p.i(k)?.reshape((n * h * w,))?.to_dtype(DType::F16)?.to_vec1::<f16>()?;
        }
    }
    Ok(TeacherMaps { probs, dims })
}

/// Thresholds and pseudo-label statistics of round `round` from the teacher's maps.
fn pseudo_label_round(
    ctx: &Context,
    maps: &TeacherMaps,
    labeling: PseudoLabeling,
    round: usize,
) -> Result<(ClassThresholds, PseudoLabelStats)> {
    let n = ctx.classes.len();
    let mut samples = ConfidenceSamples::new(n, ctx.cfg.threshold_stride);
    let used: Vec<usize> = (0..maps.probs.len()).filter(|&i| !maps.probs[i].is_empty()).collect();
    for &i in &used {
        samples.add(&maps.image(i))?;
    }
    let thresholds = ClassThresholds::from_confidences(&samples, ctx.cfg.portion.portion(round))?;
    let mut acc = StatsAccumulator::new(n);
    let void = ctx.classes.ignore_index.min(255) as u8;
    for &i in &used {
        let p = maps.image(i);
        match labeling {
            PseudoLabeling::Hard => {
                let l = hard_labels(&p, &thresholds.lambda, void)?;
                acc.add(&p, |j| (l[j] != void).then_some(0.0));
            }
            PseudoLabeling::Soft { alpha } => {
                let t = soft_labels(&p, &thresholds.lambda, alpha)?;
                let s = t.len() / n;
                acc.add(&p, |j| (0..n).any(|k| t[k * s + j] > 0.0).then(|| entropy_at(&t, n, j)));
            }
        }
    }
    let stats = acc.finish();
    stats.check_kept(round, &thresholds.lambda)?;
    Ok((thresholds, stats))
}

/// Reverses the last dimension of `x` (`[.., W]`).
fn flip_w(x: &Tensor) -> Result<Tensor> {
    let w = x.dim(x.rank() - 1)?;
    let idx = Tensor::from_vec((0..w as u32).rev().collect::<Vec<u32>>(), w, x.device())?;
    Ok(x.index_select(&idx, x.rank() - 1)?)
}

/// The pseudo-labels of the target images `indices`, as the teacher saw them (unflipped):
/// hard labels `[B, H, W]` (u32) or soft targets `[B, N, H, W]`.
fn batch_targets(
    ctx: &Context,
    maps: &TeacherMaps,
    thresholds: &ClassThresholds,
    labeling: PseudoLabeling,
    indices: &[usize],
) -> Result<Tensor> {
    let n = ctx.classes.len();
    let (h, w) = maps.dims;
    let void = ctx.classes.ignore_index.min(255) as u8;
    match labeling {
        PseudoLabeling::Hard => {
            let mut all = Vec::with_capacity(indices.len() * h * w);
            for &i in indices {
                all.extend(hard_labels(&maps.image(i), &thresholds.lambda, void)?.into_iter().map(u32::from));
            }
            Ok(Tensor::from_vec(all, (indices.len(), h, w), ctx.device)?)
        }
        PseudoLabeling::Soft { alpha } => {
            let mut all = Vec::with_capacity(indices.len() * n * h * w);
            for &i in indices {
                all.extend(soft_labels(&maps.image(i), &thresholds.lambda, alpha)?);
            }
            Ok(Tensor::from_vec(all, (indices.len(), n, h, w), ctx.device)?)
        }
    }
}

/// Flips the samples `k` of `x` (`[B, ...]`) where `flips[k]`.
fn flip_samples(x: &Tensor, flips: &[bool]) -> Result<Tensor> {
    if !flips.iter().any(|&f| f) {
        return Ok(x.clone());
    }
    let parts = flips
        .iter()
        .enumerate()
        .map(|(k, &f)| {
            let s = x.narrow(0, k, 1)?;
            if f {
                flip_w(&s)
            } else {
                Ok(s)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&parts, 0)?)
}

/// One method at one seed: rounds of pseudo-labels and training from the source weights.
fn adapt(
    ctx: &Context,
    method: &MethodSpec,
    target_loss: &TargetLoss,
    seed: u64,
    dir: &Path,
    observe: &mut impl FnMut(&SelfTrainEvent),
) -> Result<MethodHistory> {
    let cfg = ctx.cfg;
    let labeling = method.labeling(cfg.alpha)?;
    let target = cfg.target_run();
    let seg_cfg = SegmenterConfig::new(ctx.classes.len()).with_width(cfg.source.model.width);
    let kind = cfg.source.model_kind()?;
    let (varmap, net) = weights::build_seeded(kind, &seg_cfg, ctx.device, seed)?;
    weights::load(&varmap, ctx.source_weights, true)?;
    let mut opt = target.optimizer(&varmap)?;
    let train_loader = target_loader(ctx, true, seed)?;
    let batches = train_loader.batches_per_epoch();
    let epochs = cfg.rounds * cfg.epochs_per_round;
    let mut progress = Progress {
        base_rate: cfg.optim.lr,
        schedule: target.schedule()?,
        step: 0,
        total_steps: epochs * batches,
        log_every: 0,
        seed,
    };
    let ckpt = dir.join("checkpoint");
    let mut history = MethodHistory { method: method.name.clone(), seed, rounds: vec![] };
    let mut first = 0;
    if ckpt.join("state.txt").is_file() {
        first = checkpoint::load(&ckpt, &varmap, opt.as_mut(), &mut progress)?;
        history = MethodHistory::read(dir.join("history.json"))?;
        let done_rounds = first.div_ceil(cfg.epochs_per_round);
        history.rounds.truncate(done_rounds);
        if let Some(r) = history.rounds.last_mut() {
            r.epochs.truncate(first - (done_rounds - 1) * cfg.epochs_per_round);
        }
    }
    observe(&SelfTrainEvent::Started { method: &method.name, seed, first_epoch: first, epochs, batches });
    let loss_cfg = LossConfig { ignore_index: Some(ctx.classes.ignore_index), ..Default::default() };
    let mut round_state: Option<(usize, TeacherMaps, ClassThresholds)> = None;
    for epoch in first..epochs {
        let round = epoch / cfg.epochs_per_round + 1;
        if round_state.as_ref().is_none_or(|(r, _, _)| *r != round) {
            let teacher_path = dir.join(format!("round-{round}/teacher.safetensors"));
            if epoch % cfg.epochs_per_round == 0 {
                weights::save(&varmap, &teacher_path)?;
            } else if !teacher_path.is_file() {
                return Err(Error::invalid(
                    "resume",
                    teacher_path.display(),
                    format!("is missing: round {round} cannot be pseudo-labelled again; delete {}", dir.display()),
                ));
            }
            let t0 = Instant::now();
            let (teacher_vm, teacher) = weights::build_seeded(kind, &seg_cfg, ctx.device, seed)?;
            weights::load(&teacher_vm, &teacher_path, true)?;
            let maps = teacher_maps(ctx, teacher.as_ref())?;
            let (thresholds, stats) = pseudo_label_round(ctx, &maps, labeling, round)?;
            let record = RoundRecord {
                round,
                thresholds: thresholds.clone(),
                pseudo_labels: stats,
                pseudo_label_seconds: t0.elapsed().as_secs_f64(),
                epochs: vec![],
                eval: None,
            };
            if history.rounds.len() < round {
                history.rounds.push(record);
            }
            observe(&SelfTrainEvent::PseudoLabels(&history.rounds[round - 1]));
            round_state = Some((round, maps, thresholds));
        }
        let (_, maps, thresholds) = round_state.as_ref().expect("set above");
        let record = train_epoch(
            ctx,
            &*net,
            opt.as_mut(),
            &mut progress,
            target_loss,
            labeling,
            maps,
            thresholds,
            (&train_loader, epoch, round),
            &loss_cfg,
            observe,
        )
        .map_err(|e| match e {
            Error::InvalidArgument { name: "training loss", value, reason } => Error::InvalidArgument {
                name: "training loss",
                value,
                reason: format!("{reason} of method {:?}, seed {seed}", method.name),
            },
            e => e,
        })?;
        let r = &mut history.rounds[round - 1];
        r.epochs.push(record);
        if (epoch + 1) % cfg.epochs_per_round == 0 {
            let cm = evaluate_resized(&*net, ctx.eval_loader, ctx.eval_input)?;
            r.eval = Some(EvalReport::new(&cm, ctx.classes)?);
        }
        write_json(dir.join("history.json"), &history)?;
        checkpoint::save(&ckpt, &varmap, opt.as_ref(), &progress, epoch + 1)?;
        if let Some(e) = history.rounds[round - 1].epochs.last() {
            observe(&SelfTrainEvent::Epoch(e));
        }
    }
    if let Some(e) = history.last_eval() {
        write_json(dir.join("metrics.json"), e)?;
    }
    Ok(history)
}

/// One adaptation epoch: every target batch (shuffled) beside a source batch of the same
/// epoch number; loss = source objective + `target_weight` × the target loss.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    ctx: &Context,
    net: &dyn Segmenter,
    opt: &mut dyn crate::optim::Optimizer,
    progress: &mut Progress,
    target_loss: &TargetLoss,
    labeling: PseudoLabeling,
    maps: &TeacherMaps,
    thresholds: &ClassThresholds,
    (loader, epoch, round): (&Loader, usize, usize),
    loss_cfg: &LossConfig,
    observe: &mut impl FnMut(&SelfTrainEvent),
) -> Result<SelfTrainEpoch> {
    crate::device::retain_freed_memory();
    crate::random::seed_global(progress.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64));
    let t0 = Instant::now();
    let batches = loader.batches_per_epoch();
    // Source passes epoch·K .. epoch·K + K − 1, K the passes one target epoch needs.
    let passes = batches.div_ceil(ctx.source_loader.batches_per_epoch().max(1));
    let mut pass = epoch * passes;
    let mut source = ctx.source_loader.epoch(pass);
    let (mut src_sum, mut tgt_sum, mut loss_secs) = (0.0, 0.0, 0.0);
    let mut sinkhorn: Option<SinkhornStats> = None;
    for (k, batch) in loader.epoch(epoch).enumerate() {
        let batch = batch?;
        let src = match source.next() {
            Some(b) => b?,
            None => {
                // The source split is shorter than the target's: its next pass.
                pass += 1;
                source = ctx.source_loader.epoch(pass);
                source.next().ok_or_else(|| Error::invalid("source dataset", "empty", "has no batch"))??
            }
        };
        let rate = progress.schedule.rate(progress.base_rate, progress.step, progress.total_steps)?;
        opt.set_learning_rate(rate)?;
        let flips: Vec<bool> = batch
            .indices
            .iter()
            .map(|&i| {
                ctx.cfg.target.hflip
                    && crate::random::seeded(progress.seed ^ ((epoch as u64) << 32) ^ i as u64).random_bool(0.5)
            })
            .collect();
        let images = flip_samples(&batch.images, &flips)?;
        let targets = flip_samples(&batch_targets(ctx, maps, thresholds, labeling, &batch.indices)?, &flips)?;
        let src_logits = net.forward_all(&src.images, true)?.logits;
        let src_loss = ctx.source_objective.loss(&src_logits, &src.labels, *loss_cfg)?;
        let logits = net.forward_all(&images, true)?.logits;
        let tl = Instant::now();
        let tgt_loss = match target_loss {
            TargetLoss::CrossEntropy => loss::cross_entropy(&logits, &targets, *loss_cfg)?,
            TargetLoss::SoftCrossEntropy => loss::cross_entropy_soft(&logits, &targets, Reduction::Mean)?,
            TargetLoss::SoftWasserstein { ground, sinkhorn: s } => {
                let out = loss::wasserstein_soft(&logits, &targets, ground, s, Reduction::Mean)?;
                sinkhorn = Some(sinkhorn.map_or(out.stats, |a| a.merge(out.stats)));
                out.loss
            }
        };
        loss_secs += tl.elapsed().as_secs_f64();
        let total = (&src_loss + (&tgt_loss * ctx.cfg.target_weight)?)?;
        let (sv, tv) = (scalar(&src_loss)?, scalar(&tgt_loss)?);
        let value = sv + ctx.cfg.target_weight * tv;
        if !value.is_finite() {
            return Err(Error::invalid(
                "training loss",
                value,
                format!("source {sv}, target {tv} at round {round}, epoch {epoch}, batch {k} ({:?})", batch.names),
            ));
        }
        opt.backward_step(&total)?;
        progress.step += 1;
        src_sum += sv;
        tgt_sum += tv;
        observe(&SelfTrainEvent::Batch { batch: k, batches, loss: value });
    }
    let b = batches.max(1) as f64;
    Ok(SelfTrainEpoch {
        round,
        epoch,
        source_loss: src_sum / b,
        target_loss: tgt_sum / b,
        seconds: t0.elapsed().as_secs_f64(),
        target_loss_seconds: loss_secs,
        sinkhorn,
    })
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}
