//! Training and evaluation of a segmenter with any [`Objective`]: one pass over a loader with
//! an optimiser step per batch ([`train_epoch`]), and evaluation into a
//! [`ConfusionMatrix`] ([`evaluate`]) from which IoU, group mIoU and the severity cost follow.
//!
//! The paper's protocol — train with cross-entropy, then fine-tune with IAL or `W` under a
//! ground matrix — is a sequence of these calls with [`crate::optim::Sgd`] and a
//! [`crate::optim::Schedule`].

pub mod ablation;
pub mod checkpoint;
mod class_weights;
pub mod config;
mod objective;
pub mod report;
mod run;
pub mod self_training;

pub use ablation::{ablate, Ablation, AblationConfig, Variant};
pub use class_weights::{ClassFrequencies, ClassWeighting};
pub use config::{quick_mode, RunConfig};
pub use objective::{smoothed_targets, Objective};
pub use report::{confusion_spread, curves, results_table, EpochRecord, EvalReport, History};
pub use run::{epoch_line, eval, init_weights_path, print_progress, run, RunEvent, Trained};
pub use self_training::{self_train, SelfTrainConfig, SelfTraining};

use crate::data::Loader;
use crate::loss::LossConfig;
use crate::metrics::ConfusionMatrix;
use crate::models::Segmenter;
use crate::optim::{Optimizer, Schedule};
use crate::{Error, Result};

/// What one training epoch did.
#[derive(Clone, Debug, PartialEq)]
pub struct EpochStats {
    /// The loss of every batch, in order.
    pub losses: Vec<f64>,
    /// The learning rate of every batch.
    pub rates: Vec<f64>,
}

impl EpochStats {
    /// Mean batch loss.
    pub fn mean_loss(&self) -> f64 {
        self.losses.iter().sum::<f64>() / self.losses.len().max(1) as f64
    }
}

/// The step counter and schedule that set each batch's learning rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    /// Base learning rate.
    pub base_rate: f64,
    /// The decay over the whole run.
    pub schedule: Schedule,
    /// Steps taken so far (updated by [`train_epoch`]).
    pub step: usize,
    /// Steps of the whole run.
    pub total_steps: usize,
    /// A log line every this many batches (0: none).
    pub log_every: usize,
    /// Seeds the dropout masks of each epoch (with the epoch number), so that a run resumed at
    /// an epoch boundary repeats exactly.
    pub seed: u64,
}

/// One training batch done, as [`train_epoch_observed`] reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchEvent {
    /// Epoch number.
    pub epoch: usize,
    /// Batch number within the epoch (from 0).
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// The batch's loss.
    pub loss: f64,
    /// The learning rate used.
    pub rate: f64,
}

/// One epoch: for every batch of `loader.epoch(epoch)`, the objective on the segmenter's logits
/// (training mode), its backward pass and an optimiser step ([`crate::optim::Sgd`] or
/// [`crate::optim::Adam`]) at the scheduled rate. A non-finite loss
/// stops with an error naming the batch (the weights are left as they were before that step).
/// `log` receives one line per `progress.log_every` batches.
pub fn train_epoch(
    net: &dyn Segmenter,
    objective: &Objective,
    opt: &mut dyn Optimizer,
    loader: &Loader,
    epoch: usize,
    progress: &mut Progress,
    mut log: impl FnMut(&str),
) -> Result<EpochStats> {
    let every = progress.log_every;
    train_epoch_observed(net, objective, opt, loader, epoch, progress, |b| {
        if every > 0 && (b.batch + 1) % every == 0 {
            log(&format!("epoch {} batch {} loss {:.4} lr {:.2e}", b.epoch, b.batch + 1, b.loss, b.rate));
        }
    })
}

/// [`train_epoch`] reporting every batch to `on_batch` (a progress bar, a live plot). Calls
/// [`crate::device::retain_freed_memory`].
pub fn train_epoch_observed(
    net: &dyn Segmenter,
    objective: &Objective,
    opt: &mut dyn Optimizer,
    loader: &Loader,
    epoch: usize,
    progress: &mut Progress,
    mut on_batch: impl FnMut(BatchEvent),
) -> Result<EpochStats> {
    objective.validate(net.num_classes())?;
    crate::device::retain_freed_memory();
    let cfg = LossConfig { ignore_index: Some(loader.dataset().classes().ignore_index), ..Default::default() };
    let mut stats = EpochStats { losses: vec![], rates: vec![] };
    let batches = loader.batches_per_epoch();
    crate::random::seed_global(progress.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(epoch as u64));
    for (k, batch) in loader.epoch(epoch).enumerate() {
        let batch = batch?;
        let rate = progress.schedule.rate(progress.base_rate, progress.step, progress.total_steps)?;
        opt.set_learning_rate(rate)?;
        let out = net.forward_all(&batch.images, true)?;
        let loss = objective.loss(&out.logits, &batch.labels, cfg)?;
        let value = loss.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
        if !value.is_finite() {
            return Err(Error::invalid(
                "training loss",
                value,
                format!("at epoch {epoch}, batch {k} ({:?})", batch.names),
            ));
        }
        opt.backward_step(&loss)?;
        progress.step += 1;
        stats.losses.push(value);
        stats.rates.push(rate);
        on_batch(BatchEvent { epoch, batch: k, batches, loss: value, rate });
    }
    Ok(stats)
}

/// The predicted label of every pixel, `[B, H, W]` `u32` (evaluation mode).
pub fn predict(net: &dyn Segmenter, images: &candle_core::Tensor) -> Result<candle_core::Tensor> {
    Ok(net.forward_all(images, false)?.logits.argmax(1)?.to_dtype(candle_core::DType::U32)?)
}

/// Runs the segmenter (evaluation mode) over every batch of `loader.epoch(0)` and counts
/// predictions against labels (the dataset's void label ignored).
pub fn evaluate(net: &dyn Segmenter, loader: &Loader) -> Result<ConfusionMatrix> {
    evaluate_resized(net, loader, None)
}

/// [`evaluate`] where the network sees the images resized (bilinearly) to `input`
/// `(height, width)` and its logits are resized back (bilinearly) to the labels' size before
/// the arg-max: a network trained at a lower resolution, evaluated at the labels' native one
/// so that its figures compare with published ones. `None`: the images as they come.
pub fn evaluate_resized(
    net: &dyn Segmenter,
    loader: &Loader,
    input: Option<(usize, usize)>,
) -> Result<ConfusionMatrix> {
    crate::device::retain_freed_memory();
    let classes = loader.dataset().classes();
    if classes.len() != net.num_classes() {
        return Err(Error::ClassCount {
            what: "dataset vs segmenter classes",
            expected: net.num_classes(),
            got: classes.len(),
        });
    }
    let mut cm = ConfusionMatrix::for_classes(classes);
    for batch in loader.epoch(0) {
        let batch = batch?;
        let logits = match input {
            None => net.forward_all(&batch.images, false)?.logits,
            Some((h, w)) => {
                let (_, _, lh, lw) = batch.images.dims4()?;
                let x = crate::models::layers::resize_bilinear(&batch.images, h, w)?;
                crate::models::layers::resize_bilinear(&net.forward_all(&x, false)?.logits, lh, lw)?
            }
        };
        cm.update_tensors(&logits, &batch.labels)?;
    }
    Ok(cm)
}
