//! A whole training run from a [`RunConfig`] into a run folder — what `rwt train` does and
//! what a notebook cell calls:
//!
//! ```text
//! runs/enet-ce/
//!   config.toml        the config as run
//!   class_weights.json the CE class weights and the label counts they came from (when
//!                      loss.class_weights is enet or median_frequency)
//!   checkpoint/        weights, optimiser state, position (written after every epoch)
//!   history.json       loss, rate, time and evaluation of every epoch
//!   metrics.json       the last evaluation (per-class IoU, group IoU, mIoU, severity cost, confusion)
//!   curves.svg         loss, mIoU and severity cost by epoch
//!   confusion.svg      the row-normalised confusion matrix of the last evaluation
//! ```
//!
//! Every file is written atomically. A folder that already holds a checkpoint of the same
//! config is resumed from it (a finished run is not retrained), so an interrupted run loses at
//! most one epoch and ends with the same metrics.

use super::config::RunConfig;
use super::report::{write_json, EpochRecord, EvalReport, History};
use super::{checkpoint, evaluate_resized, train_epoch_observed, BatchEvent, ClassFrequencies, Progress};
use crate::models::{weights, Segmenter, SegmenterConfig};
use crate::{Error, Result};
use candle_nn::VarMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What happens during a run, for a progress display.
#[derive(Clone, Debug)]
pub enum RunEvent<'a> {
    /// The run starts (or resumes) at `first_epoch` of `epochs`, with `batches` per epoch.
    Started {
        /// The run's name.
        name: &'a str,
        /// First epoch to train (> 0 when resumed).
        first_epoch: usize,
        /// Epochs of the whole run.
        epochs: usize,
        /// Batches per epoch.
        batches: usize,
    },
    /// A training batch is done.
    Batch(BatchEvent),
    /// An epoch (and its evaluation, if any) is done and recorded.
    Epoch(&'a EpochRecord),
}

/// Plain progress lines for notebooks and logs: one per `every` batches and one per epoch.
pub fn print_progress(every: usize) -> impl FnMut(&RunEvent) {
    move |event| match event {
        RunEvent::Started { name, first_epoch, epochs, batches } => {
            println!("{name}: epochs {first_epoch}..{epochs}, {batches} batches each")
        }
        RunEvent::Batch(b) if every > 0 && (b.batch + 1) % every == 0 => {
            println!("  epoch {} batch {}/{} loss {:.4} lr {:.2e}", b.epoch + 1, b.batch + 1, b.batches, b.loss, b.rate)
        }
        RunEvent::Epoch(r) => println!("{}", epoch_line(r)),
        _ => {}
    }
}

/// One line summarising an epoch record.
pub fn epoch_line(r: &EpochRecord) -> String {
    let mut s = format!("epoch {} loss {:.4} ({:.0} s)", r.epoch + 1, r.loss, r.seconds);
    if let Some(e) = &r.eval {
        let pct = |v: Option<f64>| v.map_or("–".into(), |x| format!("{:.1}", 100.0 * x));
        s += &format!(
            " | mIoU {} G3+G4 {} severity cost {}",
            pct(e.miou),
            pct(e.group34_iou),
            e.severity_cost.map_or("–".into(), |c| format!("{c:.4}"))
        );
    }
    s
}

/// The outcome of [`run`]: the trained network and what was recorded.
pub struct Trained {
    /// The run folder.
    pub dir: PathBuf,
    /// The weights.
    pub varmap: VarMap,
    /// The network (weights in `varmap`).
    pub net: Box<dyn Segmenter>,
    /// Every epoch.
    pub history: History,
    /// The last evaluation.
    pub report: EvalReport,
}

/// The weights file a `model.init` path names: a `.safetensors` file, a checkpoint folder, or
/// a run folder (its `checkpoint/`).
pub fn init_weights_path(path: &Path) -> Result<PathBuf> {
    let candidates = [path.to_path_buf(), path.join("model.safetensors"), path.join("checkpoint/model.safetensors")];
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        Error::invalid("model.init", path.display(), "is neither a .safetensors file nor a run or checkpoint folder")
    })
}

/// Trains as `cfg` says, recording into `dir` (see the module docs); `observe` sees every
/// batch and epoch. Resumes from `dir/checkpoint` when it was written by the same config.
pub fn run(cfg: &RunConfig, dir: impl AsRef<Path>, mut observe: impl FnMut(&RunEvent)) -> Result<Trained> {
    cfg.validate()?;
    // Everything the config holds (a CSV ground matrix included) is checked, and the data and
    // model built, before the run folder is made.
    let device = cfg.device()?;
    let (train_loader, eval_loader) = (cfg.train_loader(&device)?, cfg.eval_loader(&device)?);
    let classes = train_loader.dataset().classes();
    // Class weights counted from the training labels are computed (and later recorded) here.
    let (objective, weights_record) = if cfg.loss.class_weights.needs_frequencies() {
        let freq = ClassFrequencies::of(train_loader.dataset().as_ref(), cfg.data.train_limit)?;
        let record = serde_json::json!({
            "weighting": cfg.loss.class_weights.name(),
            "classes": classes.names,
            "weights": cfg.loss.class_weights.weights(classes.len(), Some(&freq))?,
            "frequencies": freq,
        });
        (cfg.objective_with(classes, Some(&freq))?, Some(record))
    } else {
        (cfg.objective(classes)?, None)
    };
    let seg_cfg = SegmenterConfig::new(classes.len()).with_width(cfg.model.width);
    let (varmap, net) = weights::build_seeded(cfg.model_kind()?, &seg_cfg, &device, cfg.seed)?;
    if let Some(p) = &cfg.model.pretrained {
        let which = match cfg.model_kind()? {
            crate::models::ModelKind::Fcn8s => weights::Pretrained::Vgg16,
            crate::models::ModelKind::SegNet => weights::Pretrained::Vgg16Bn,
            crate::models::ModelKind::DeepLabV2 => weights::Pretrained::ResNet101,
            crate::models::ModelKind::Enet => {
                return Err(Error::invalid("model.pretrained", p.display(), "ENet has no ImageNet encoder to load"))
            }
        };
        which.load(&varmap, p)?;
    }
    if let Some(init) = &cfg.model.init {
        weights::load(&varmap, init_weights_path(init)?, true)?;
    }
    objective.validate(classes.len())?;
    let mut opt = cfg.optimizer(&varmap)?;
    // Only now, with the data found and the model built, is anything written.
    let dir = dir.as_ref().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
    let ckpt = dir.join("checkpoint");
    let resuming = ckpt.join("state.txt").is_file();
    checkpoint::claim_run_folder(&dir, "config", cfg, &cfg.to_toml()?, resuming, |p| RunConfig::from_file(p))?;
    if let Some(record) = &weights_record {
        write_json(dir.join("class_weights.json"), record)?;
    }

    let batches = train_loader.batches_per_epoch();
    let mut progress = Progress {
        base_rate: cfg.optim.lr,
        schedule: cfg.schedule()?,
        step: 0,
        total_steps: cfg.epochs * batches,
        log_every: 0,
        seed: cfg.seed,
    };
    let mut history = History { name: cfg.name.clone(), objective: objective.name().into(), epochs: vec![] };
    let mut first_epoch = 0;
    if resuming {
        first_epoch = checkpoint::load(&ckpt, &varmap, opt.as_mut(), &mut progress)?;
        history = History::read(dir.join("history.json"))?;
        history.epochs.truncate(first_epoch);
    }
    observe(&RunEvent::Started { name: &cfg.name, first_epoch, epochs: cfg.epochs, batches });
    for epoch in first_epoch..cfg.epochs {
        let t0 = Instant::now();
        let stats =
            train_epoch_observed(net.as_ref(), &objective, opt.as_mut(), &train_loader, epoch, &mut progress, |b| {
                observe(&RunEvent::Batch(b))
            })?;
        let seconds = t0.elapsed().as_secs_f64();
        let eval = if (epoch + 1) % cfg.eval_every == 0 || epoch + 1 == cfg.epochs {
            Some(EvalReport::new(&evaluate_resized(net.as_ref(), &eval_loader, cfg.eval_input_size())?, classes)?)
        } else {
            None
        };
        let record = EpochRecord {
            epoch,
            loss: stats.mean_loss(),
            rate: stats.rates.last().copied().unwrap_or(0.0),
            seconds,
            eval,
        };
        history.epochs.push(record);
        // History first, then the checkpoint whose state.txt marks the epoch as done.
        write_json(dir.join("history.json"), &history)?;
        checkpoint::save(&ckpt, &varmap, opt.as_ref(), &progress, epoch + 1)?;
        if let Some(r) = history.epochs.last() {
            observe(&RunEvent::Epoch(r));
        }
    }
    let report = match history.last_eval() {
        Some(r) => r.clone(),
        None => EvalReport::new(&evaluate_resized(net.as_ref(), &eval_loader, cfg.eval_input_size())?, classes)?,
    };
    write_json(dir.join("metrics.json"), &report)?;
    crate::io::write_atomic(dir.join("curves.svg"), history.curves().to_svg().as_bytes())?;
    let names: Vec<&str> = classes.names.to_vec();
    let confusion = report.confusion_matrix(Some(classes.ignore_index))?.heatmap(
        &format!("{}: confusion (rows: truth)", cfg.name),
        &names,
        true,
    )?;
    crate::io::write_atomic(dir.join("confusion.svg"), confusion.to_svg().as_bytes())?;
    Ok(Trained { dir, varmap, net, history, report })
}

/// Evaluates the weights at `weights` (a `.safetensors` file, checkpoint or run folder) as
/// `cfg` describes the network and data; returns the report.
pub fn eval(cfg: &RunConfig, weights_path: &Path) -> Result<EvalReport> {
    cfg.validate()?;
    let device = cfg.device()?;
    let eval_loader = cfg.eval_loader(&device)?;
    let classes = eval_loader.dataset().classes();
    let seg_cfg = SegmenterConfig::new(classes.len()).with_width(cfg.model.width);
    let (varmap, net) = weights::build_seeded(cfg.model_kind()?, &seg_cfg, &device, cfg.seed)?;
    weights::load(&varmap, init_weights_path(weights_path)?, true)?;
    EvalReport::new(&evaluate_resized(net.as_ref(), &eval_loader, cfg.eval_input_size())?, classes)
}
