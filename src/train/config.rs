//! A training run described in one TOML file: data, segmenter, objective (loss, ground
//! matrix, `f`), optimiser and schedule. The CLI (`rwt train --config run.toml`), the notebooks
//! and [`super::ablate`] all start from a [`RunConfig`].
//!
//! ```toml
//! name = "enet-huber"
//! seed = 0
//! epochs = 10
//! eval_every = 2
//!
//! [data]
//! dataset = "camvid"          # camvid | cityscapes | gta5 (found by rwt::data::locate) | synthetic (the simulator)
//! size = [180, 240]           # resize (height, width) before anything else
//! hflip = true
//! batch_size = 4
//! eval_split = "test"
//! eval_native = true          # evaluate at the labels' native size (logits upsampled)
//! # classes = "camvid"        # train in another class set, labels mapped (synthetic → CamVid's 11)
//! # eval_dataset = "camvid"   # evaluate on another dataset (train on the simulator, test on CamVid)
//!
//! [model]
//! kind = "enet"               # enet | segnet | fcn8s | deeplabv2
//! init = "runs/enet-ce"       # fine-tune from this run's checkpoint (the paper's protocol)
//!
//! [loss]
//! kind = "w"                  # ce | ial | w | ce+w | soft-w
//! ground = "severity"         # severity | importance | uniform | path to a CSV matrix
//! transform = "linear"        # f(d) = d (the default, recommended with the severity preset:
//!                             # RESULTS.md, issue 16) | power | huber | step
//! # tau = 0.5                 # Huber's τ; rho = 2.0 for power
//! class_weights = "none"      # none | enet | median_frequency | [w1, ..., wN] (CE terms)
//!
//! [optim]
//! kind = "sgd"                # sgd | adam
//! lr = 0.01
//! schedule = "poly"           # poly | linear | constant
//! ```
//!
//! Every field has a default (see each struct), so a config names only what it changes.
//! [`RunConfig::quick`] shrinks a run for tests (`RWT_QUICK=1`).

use super::{ClassFrequencies, ClassWeighting, Objective};
use crate::classes::ClassSet;
use crate::data::{self, Augment, Dataset, Loader, LoaderConfig, Split};
use crate::ground::{GroundMatrix, ImportanceWeights};
use crate::models::{ModelKind, SegmenterConfig};
use crate::optim::{Adam, Optimizer, Schedule, Sgd};
use crate::ot::SinkhornConfig;
use crate::transform::Transform;
use crate::{Error, Result};
use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A whole training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    /// Name of the run (tables, plot titles).
    pub name: String,
    /// Seeds the initial weights, the data order, the augmentations and dropout.
    pub seed: u64,
    /// `cpu`, `cuda` or `cuda:N` (the environment's `RWT_DEVICE`, when set, overrides it).
    pub device: String,
    /// Training epochs.
    pub epochs: usize,
    /// Evaluate every this many epochs (and always after the last).
    pub eval_every: usize,
    /// A log line every this many batches (0: none).
    pub log_every: usize,
    /// The data.
    pub data: DataConfig,
    /// The segmenter.
    pub model: ModelConfig,
    /// The objective.
    pub loss: LossSpec,
    /// The optimiser and learning-rate schedule.
    pub optim: OptimConfig,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            name: "run".into(),
            seed: 0,
            device: "cpu".into(),
            epochs: 10,
            eval_every: 1,
            log_every: 0,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            loss: LossSpec::default(),
            optim: OptimConfig::default(),
        }
    }
}

/// Which data and how it is fed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `camvid`, `cityscapes`, `gta5` or `synthetic` (the simulator, [`data::Synthetic`]:
    /// Cityscapes' 19 classes, frames rendered at `size`, no folder needed).
    pub dataset: String,
    /// Its folder; `None`: found by [`crate::data::locate`] (`RWT_DATA`, `../shared/datasets`, …).
    pub root: Option<PathBuf>,
    /// Resize every image to `[height, width]` (train and evaluation); `None`: native size.
    pub size: Option<[u32; 2]>,
    /// Random crop `[height, width]` in training.
    pub crop: Option<[u32; 2]>,
    /// Scale jitter `[min, max]` in training.
    pub scale: Option<[f64; 2]>,
    /// Random horizontal flips in training.
    pub hflip: bool,
    /// Images per batch.
    pub batch_size: usize,
    /// Use only the first this many training images.
    pub train_limit: Option<usize>,
    /// Use only the first this many evaluation images.
    pub eval_limit: Option<usize>,
    /// The split evaluated: `val` or `test`.
    pub eval_split: String,
    /// Evaluate at the labels' native resolution: the network sees the images resized to
    /// `size`, its logits are upsampled bilinearly to the labels (so that figures compare with
    /// published ones). `false`: evaluate at `size`.
    pub eval_native: bool,
    /// `synthetic` only: the weather presets the frames cycle through (names of
    /// [`crate::sim::Weather`]); empty: all four. Leaving some out keeps them "new weather"
    /// for the driving benchmark.
    pub weathers: Vec<String>,
    /// Train (and evaluate) in this class set (`camvid` or `cityscapes`) instead of the
    /// dataset's own: labels are mapped by [`data::LabelMapping::between`] (Cityscapes' 19
    /// classes → CamVid's 11 for `synthetic`, `gta5`, `cityscapes`). `None`: the dataset's.
    pub classes: Option<String>,
    /// Evaluate on this dataset instead of `dataset` (e.g. train on `synthetic`, evaluate on
    /// `camvid`: the source-only row of self-training), its labels mapped into the training
    /// class set. `None`: `dataset`.
    pub eval_dataset: Option<String>,
    /// The folder of `eval_dataset`; `None`: found by [`crate::data::locate`].
    pub eval_root: Option<PathBuf>,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: "camvid".into(),
            root: None,
            size: None,
            crop: None,
            scale: None,
            hflip: true,
            batch_size: 4,
            train_limit: None,
            eval_limit: None,
            eval_split: "val".into(),
            eval_native: false,
            weathers: vec![],
            classes: None,
            eval_dataset: None,
            eval_root: None,
        }
    }
}

/// The segmenter and where its weights start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// `enet`, `segnet`, `fcn8s` or `deeplabv2`.
    pub kind: String,
    /// Channel width multiplier.
    pub width: f64,
    /// Start from the weights of this run folder's checkpoint (or a `.safetensors` file):
    /// fine-tuning, as in the paper. `None`: seeded random initialisation.
    pub init: Option<PathBuf>,
    /// An ImageNet encoder to load first (`vgg16`, `vgg16_bn`, `resnet101`) from this file.
    pub pretrained: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { kind: "enet".into(), width: 1.0, init: None, pretrained: None }
    }
}

/// The objective of Section III: loss kind, ground matrix and `f(d)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LossSpec {
    /// `ce`, `ial`, `w`, `ce+w` or `soft-w`.
    pub kind: String,
    /// `severity` (the crate's severity preset), `importance` (IAL as a ground matrix),
    /// `uniform` (1 off the diagonal), or a path to a CSV file of `N` rows of `N` numbers.
    pub ground: String,
    /// `f(d)`: `linear`, `power` (uses `rho`), `huber` (uses `tau`) or `step`.
    pub transform: String,
    /// ρ of the power transform (Eq. 3).
    pub rho: f64,
    /// τ of the Huber transform (Eq. 4).
    pub tau: f64,
    /// λ of `ce+w`.
    pub lambda: f64,
    /// Group weights (groups 1 to 4) for `ial` and the `importance` ground matrix.
    pub importance: [f64; 4],
    /// Label smoothing σ of `soft-w`.
    pub smoothing: f64,
    /// Sinkhorn's ε (fraction of the largest cost) for `soft-w`.
    pub epsilon: f64,
    /// Class weights of the cross-entropy term of `ce` and `ce+w`: `"none"`, `"enet"`,
    /// `"median_frequency"` (counted from the training labels) or one number per class.
    pub class_weights: ClassWeighting,
}

impl Default for LossSpec {
    fn default() -> Self {
        LossSpec {
            kind: "ce".into(),
            ground: "severity".into(),
            transform: "linear".into(),
            rho: 2.0,
            tau: 0.5,
            lambda: 1.0,
            importance: ImportanceWeights::default().weights,
            smoothing: 0.1,
            epsilon: 0.05,
            class_weights: ClassWeighting::None,
        }
    }
}

/// The optimiser and the learning-rate decay.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// `sgd` or `adam`.
    pub kind: String,
    /// Base learning rate.
    pub lr: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// L2 weight decay.
    pub weight_decay: f64,
    /// `poly`, `linear` or `constant`.
    pub schedule: String,
    /// Exponent of the poly schedule.
    pub power: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: "sgd".into(),
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 2e-4,
            schedule: "poly".into(),
            power: 0.9,
        }
    }
}

/// Whether `RWT_QUICK=1` asks for the small runs of tests and CI.
pub fn quick_mode() -> bool {
    std::env::var("RWT_QUICK").is_ok_and(|v| v == "1")
}

impl RunConfig {
    /// Parses a TOML config; unknown keys are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        parse_toml("run config", text)
    }

    /// Reads and parses a TOML config file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        read_toml("run config", path.as_ref())
    }

    /// The config as TOML (what a run folder records).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("run config", &self.name, e.to_string()))
    }

    /// The same run made small for tests and CI: 96×128 images, 8 training and 4 evaluation
    /// images, 2 epochs.
    pub fn quick(mut self) -> Self {
        self.data.size = Some([96, 128]);
        self.data.crop = None;
        self.data.scale = None;
        self.data.batch_size = self.data.batch_size.min(4);
        self.data.train_limit = Some(self.data.train_limit.unwrap_or(8).min(8));
        self.data.eval_limit = Some(self.data.eval_limit.unwrap_or(4).min(4));
        self.epochs = self.epochs.min(2);
        self.eval_every = 1;
        self
    }

    /// Checks every field without touching the disk — the loss parameters too, also those
    /// the chosen `loss.kind` does not read — and, for a preset ground matrix, builds the
    /// objective (so that a transform that overflows it, or a Sinkhorn ε that cannot be
    /// iterated with, is caught here); the error names the bad field. A CSV ground matrix is
    /// read and checked by [`RunConfig::objective`], which [`super::run()`] calls before it
    /// writes anything.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::invalid("epochs", 0, "a run needs at least one epoch"));
        }
        if self.eval_every == 0 {
            return Err(Error::invalid("eval_every", 0, "must be >= 1"));
        }
        if self.data.batch_size == 0 {
            return Err(Error::invalid("data.batch_size", 0, "must be >= 1"));
        }
        self.model_kind()?;
        self.eval_split()?;
        self.augment()?.validate()?;
        self.transform()?.validate()?;
        self.schedule()?;
        crate::device::parse(&self.device).map(|_| ())?;
        SegmenterConfig::new(2).with_width(self.model.width).validate()?;
        if !matches!(self.loss.kind.as_str(), "ce" | "ial" | "w" | "ce+w" | "soft-w") {
            return Err(Error::invalid("loss.kind", &self.loss.kind, "expected ce, ial, w, ce+w or soft-w"));
        }
        if !matches!(self.optim.kind.as_str(), "sgd" | "adam") {
            return Err(Error::invalid("optim.kind", &self.optim.kind, "expected sgd or adam"));
        }
        ImportanceWeights::new(self.loss.importance)?;
        self.loss.class_weights.validate()?;
        if self.loss.class_weights != ClassWeighting::None && !matches!(self.loss.kind.as_str(), "ce" | "ce+w") {
            return Err(Error::invalid(
                "loss.class_weights",
                self.loss.class_weights.name(),
                format!("weights the CE term of ce and ce+w; loss.kind = {:?} has none", self.loss.kind),
            ));
        }
        if self.data.eval_native && self.data.size.is_none() {
            return Err(Error::invalid("data.eval_native", true, "needs data.size (the size the network sees)"));
        }
        let l = &self.loss;
        super::objective::check_lambda(l.lambda)?;
        super::objective::check_smoothing(l.smoothing)?;
        if !(l.epsilon.is_finite() && l.epsilon > 0.0) {
            return Err(Error::invalid("loss.epsilon", l.epsilon, "Sinkhorn's epsilon must be finite and > 0"));
        }
        if !(l.rho.is_finite() && l.rho > 0.0) {
            return Err(Error::invalid("loss.rho", l.rho, "the power transform needs a finite rho > 0"));
        }
        if !(l.tau.is_finite() && l.tau > 0.0) {
            return Err(Error::invalid("loss.tau", l.tau, "the Huber transform needs a finite tau > 0"));
        }
        self.check_label_spaces()?;
        let classes = self.classes()?;
        if let ClassWeighting::Explicit(w) = &l.class_weights {
            if w.len() != classes.len() {
                return Err(Error::ClassCount { what: "loss.class_weights", expected: classes.len(), got: w.len() });
            }
        }
        if matches!(l.ground.as_str(), "severity" | "importance" | "uniform") {
            // Weights counted from the labels need the data; everything else is checked here.
            let without_counts = if l.class_weights.needs_frequencies() {
                RunConfig { loss: LossSpec { class_weights: ClassWeighting::None, ..l.clone() }, ..self.clone() }
            } else {
                self.clone()
            };
            without_counts.objective(classes)?;
        }
        Ok(())
    }

    /// The class set trained in: `data.classes` if given, else `data.dataset`'s own (GTA5
    /// and the simulator are labelled with the Cityscapes classes).
    pub fn classes(&self) -> Result<&'static ClassSet> {
        match &self.data.classes {
            None => native_classes("data.dataset", &self.data.dataset),
            Some(name) => match name.as_str() {
                "camvid" => Ok(&crate::classes::CAMVID),
                "cityscapes" => Ok(&crate::classes::CITYSCAPES),
                other => Err(Error::invalid("data.classes", other, "expected camvid or cityscapes")),
            },
        }
    }

    /// Checks that the training and evaluation datasets' labels map into [`Self::classes`].
    fn check_label_spaces(&self) -> Result<()> {
        let classes = self.classes()?;
        native_classes("data.dataset", &self.data.dataset).and_then(|c| data::LabelMapping::between(c, classes))?;
        if let Some(e) = &self.data.eval_dataset {
            native_classes("data.eval_dataset", e).and_then(|c| data::LabelMapping::between(c, classes))?;
        }
        Ok(())
    }

    /// The segmenter kind.
    pub fn model_kind(&self) -> Result<ModelKind> {
        self.model.kind.parse()
    }

    /// The device: `RWT_DEVICE` when it is set (as [`crate::device::default_device`] reads
    /// it), else the config's `device`.
    pub fn device(&self) -> Result<Device> {
        match std::env::var("RWT_DEVICE") {
            Ok(spec) if !spec.trim().is_empty() => crate::device::parse(&spec),
            _ => crate::device::parse(&self.device),
        }
    }

    /// The evaluated split.
    pub fn eval_split(&self) -> Result<Split> {
        match self.data.eval_split.as_str() {
            "val" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            "train" => Ok(Split::Train),
            other => Err(Error::invalid("data.eval_split", other, "expected val, test or train")),
        }
    }

    /// The training augmentation.
    pub fn augment(&self) -> Result<Augment> {
        let a = Augment {
            resize: self.data.size.map(|[h, w]| (h, w)),
            crop: self.data.crop.map(|[h, w]| (h, w)),
            scale: self.data.scale.map(|[a, b]| (a, b)),
            hflip: self.data.hflip,
        };
        a.validate()?;
        Ok(a)
    }

    /// `f(d)`.
    pub fn transform(&self) -> Result<Transform> {
        let t = match self.loss.transform.as_str() {
            "linear" => Transform::Linear,
            "power" => Transform::Power { rho: self.loss.rho },
            "huber" => Transform::Huber { tau: self.loss.tau },
            "step" => Transform::Step,
            other => return Err(Error::invalid("loss.transform", other, "expected linear, power, huber or step")),
        };
        t.validate()?;
        Ok(t)
    }

    /// The learning-rate schedule.
    pub fn schedule(&self) -> Result<Schedule> {
        match self.optim.schedule.as_str() {
            "poly" => Ok(Schedule::Poly { power: self.optim.power }),
            "linear" => Ok(Schedule::Linear),
            "constant" => Ok(Schedule::Constant),
            other => Err(Error::invalid("optim.schedule", other, "expected poly, linear or constant")),
        }
    }

    /// The ground matrix `D` for `classes`, `f(d)` not yet applied.
    pub fn ground(&self, classes: &ClassSet) -> Result<GroundMatrix> {
        match self.loss.ground.as_str() {
            "severity" => Ok(GroundMatrix::severity(classes)),
            "importance" => GroundMatrix::importance_aware(classes, &ImportanceWeights::new(self.loss.importance)?),
            "uniform" => {
                let n = classes.len();
                GroundMatrix::from_rows(
                    classes.names.iter().copied(),
                    (0..n).map(|i| (0..n).map(move |j| if i == j { 0.0 } else { 1.0 }).collect::<Vec<_>>()),
                )
            }
            path => read_ground_csv(Path::new(path), classes),
        }
    }

    /// The objective for `classes`: the loss kind with the ground matrix under `f`, its
    /// parameters checked ([`Objective::check_parameters`]). Class weights counted from the
    /// data (`enet`, `median_frequency`) need [`Self::objective_with`].
    pub fn objective(&self, classes: &ClassSet) -> Result<Objective> {
        self.objective_with(classes, None)
    }

    /// [`Self::objective`] with the training labels' class frequencies, from which `enet` and
    /// `median_frequency` class weights are computed ([`ClassFrequencies::of`]).
    pub fn objective_with(&self, classes: &ClassSet, frequencies: Option<&ClassFrequencies>) -> Result<Objective> {
        let ground = || -> Result<GroundMatrix> { self.ground(classes)?.transform(self.transform()?) };
        let class_weights = || self.loss.class_weights.weights(classes.len(), frequencies);
        let objective = match self.loss.kind.as_str() {
            "ce" => match class_weights()? {
                None => Objective::CrossEntropy,
                Some(weights) => Objective::WeightedCrossEntropy { weights },
            },
            "ial" => Objective::ImportanceAware {
                weights: ImportanceWeights::new(self.loss.importance)?.class_weights(classes),
            },
            "w" => Objective::Wasserstein { ground: ground()? },
            "ce+w" => Objective::CePlusWasserstein {
                ground: ground()?,
                lambda: self.loss.lambda,
                class_weights: class_weights()?,
            },
            "soft-w" => Objective::SoftWasserstein {
                ground: ground()?,
                smoothing: self.loss.smoothing,
                sinkhorn: SinkhornConfig { epsilon: self.loss.epsilon, ..Default::default() },
            },
            other => return Err(Error::invalid("loss.kind", other, "expected ce, ial, w, ce+w or soft-w")),
        };
        objective.check_parameters()?;
        Ok(objective)
    }

    /// The training dataset's `split`, its labels mapped into [`Self::classes`].
    pub fn dataset(&self, split: Split) -> Result<Arc<dyn Dataset>> {
        self.open(&self.data.dataset, self.data.root.as_deref(), split)
    }

    /// The evaluation dataset (`data.eval_dataset`, else `data.dataset`) at the evaluated
    /// split, its labels mapped into [`Self::classes`].
    pub fn eval_dataset(&self) -> Result<Arc<dyn Dataset>> {
        match &self.data.eval_dataset {
            Some(name) => self.open(name, self.data.eval_root.as_deref(), self.eval_split()?),
            None => self.dataset(self.eval_split()?),
        }
    }

    /// Dataset `name` at `split`, relabelled into [`Self::classes`] when its own differ.
    fn open(&self, name: &str, root: Option<&Path>, split: Split) -> Result<Arc<dyn Dataset>> {
        let dataset: Arc<dyn Dataset> = if name == "synthetic" {
            Arc::new(data::Synthetic::new(self.synthetic_config()?, split)?)
        } else {
            if !self.data.weathers.is_empty() && name == self.data.dataset {
                return Err(Error::invalid(
                    "data.weathers",
                    format!("{:?}", self.data.weathers),
                    "is for dataset = \"synthetic\" only",
                ));
            }
            let root = data::locate(name, root)?;
            match name {
                "camvid" => Arc::new(data::CamVid::new(root, split)?),
                "cityscapes" => Arc::new(data::Cityscapes::new(root, split)?),
                "gta5" => Arc::new(data::Gta5::new(root, split)?),
                other => {
                    return Err(Error::invalid("data.dataset", other, "expected camvid, cityscapes, gta5 or synthetic"))
                }
            }
        };
        let classes = self.classes()?;
        if dataset.classes().name == classes.name {
            return Ok(dataset);
        }
        let mapping = data::LabelMapping::between(dataset.classes(), classes)?;
        Ok(Arc::new(data::Relabeled::new(dataset, mapping)?))
    }

    /// The simulator dataset's configuration for `dataset = "synthetic"`: frames rendered at
    /// `data.size` (default 360 × 480) in `data.weathers` (default all four), the default towns
    /// ([`data::SyntheticConfig::default`]). Errors name an unknown weather.
    pub fn synthetic_config(&self) -> Result<data::SyntheticConfig> {
        let mut cfg = data::SyntheticConfig::default();
        if let Some([h, w]) = self.data.size {
            (cfg.height, cfg.width) = (h, w);
        }
        if !self.data.weathers.is_empty() {
            cfg.weathers =
                self.data.weathers.iter().map(|w| w.parse()).collect::<Result<Vec<crate::sim::Weather>>>()?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// The training loader: the train split, shuffled and augmented.
    pub fn train_loader(&self, device: &Device) -> Result<Loader> {
        let cfg = LoaderConfig {
            batch_size: self.data.batch_size,
            shuffle: true,
            seed: self.seed,
            augment: self.augment()?,
            limit: self.data.train_limit,
            ..Default::default()
        };
        Loader::new(self.dataset(Split::Train)?, cfg, device.clone())
    }

    /// The evaluation loader: the evaluated split, in order, resized to `data.size` (at native
    /// size with `data.eval_native`).
    pub fn eval_loader(&self, device: &Device) -> Result<Loader> {
        let resize = if self.data.eval_native { None } else { self.data.size.map(|[h, w]| (h, w)) };
        let cfg = LoaderConfig {
            batch_size: self.data.batch_size,
            shuffle: false,
            seed: self.seed,
            augment: Augment { resize, ..Augment::none() },
            limit: self.data.eval_limit,
            ..Default::default()
        };
        Loader::new(self.eval_dataset()?, cfg, device.clone())
    }

    /// The input size of evaluation: `data.size` when `data.eval_native` (the images are
    /// resized for the network, the logits back), else `None`.
    pub fn eval_input_size(&self) -> Option<(usize, usize)> {
        self.data.size.filter(|_| self.data.eval_native).map(|[h, w]| (h as usize, w as usize))
    }

    /// The optimiser over every variable of `varmap`.
    pub fn optimizer(&self, varmap: &VarMap) -> Result<Box<dyn Optimizer>> {
        let o = &self.optim;
        Ok(match o.kind.as_str() {
            "sgd" => Box::new(Sgd::from_varmap(varmap, o.lr, o.momentum, o.weight_decay)?),
            "adam" => Box::new(Adam::from_varmap(varmap, o.lr, o.weight_decay)?),
            other => return Err(Error::invalid("optim.kind", other, "expected sgd or adam")),
        })
    }
}

/// Parses TOML text into a `what` (a config); the error carries the parser's message.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(what: &'static str, text: &str) -> Result<T> {
    toml::from_str(text).map_err(|e| {
        // The parser's span names the offending line (a wrong type does not name its key).
        let at = e.span().map(|span| {
            let line = text[..span.start.min(text.len())].matches('\n').count();
            format!("line {} (`{}`): ", line + 1, text.lines().nth(line).unwrap_or("").trim())
        });
        Error::invalid(what, "TOML", format!("{}{}", at.unwrap_or_default(), e.message()))
    })
}

/// The class set a dataset is labelled in (`field` names the config key in errors).
fn native_classes(field: &'static str, dataset: &str) -> Result<&'static ClassSet> {
    match dataset {
        "camvid" => Ok(&crate::classes::CAMVID),
        "cityscapes" | "gta5" | "synthetic" => Ok(&crate::classes::CITYSCAPES),
        other => Err(Error::invalid(field, other, "expected camvid, cityscapes, gta5 or synthetic")),
    }
}

/// Reads and parses a TOML file into a `what`; errors name the file (and the line, from the
/// parser).
pub(crate) fn read_toml<T: serde::de::DeserializeOwned>(what: &'static str, path: &Path) -> Result<T> {
    let text = crate::io::read_text(path)?;
    toml::from_str(&text).map_err(|e| Error::invalid(what, path.display(), e.to_string()))
}

/// A ground matrix from a CSV file: `N` lines of `N` comma-separated numbers, rows = true class,
/// in the class order of `classes`; lines starting with `#` are comments.
pub fn read_ground_csv(path: &Path, classes: &ClassSet) -> Result<GroundMatrix> {
    let text = crate::io::read_text(path)?;
    let mut rows = vec![];
    for (k, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let row = line
            .split(',')
            .map(|v| {
                v.trim().parse::<f64>().map_err(|_| {
                    Error::invalid(
                        "ground matrix CSV",
                        path.display(),
                        format!("line {}: {v:?} is not a number", k + 1),
                    )
                })
            })
            .collect::<Result<Vec<f64>>>()?;
        rows.push(row);
    }
    GroundMatrix::from_rows(classes.names.iter().copied(), rows)
}
