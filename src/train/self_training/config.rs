//! A self-training experiment in one TOML file: the source-only run (a whole [`RunConfig`]),
//! the target domain, the rounds, and the methods of Table III compared from the same
//! source-only weights.
//!
//! ```toml
//! name = "selftrain-sim-camvid"
//! seeds = [0]                 # the adaptation's seeds (data order, flips, dropout)
//! rounds = 3                  # pseudo-label → train rounds
//! epochs_per_round = 1        # passes over the target split per round
//! alpha = 0.25                # CRST-LRENT's α
//! portion = { start = 0.2, step = 0.05, max = 0.5 }
//!
//! [source]                    # the source-only run: any run config
//! name = "source-only"
//! epochs = 10
//! [source.data]
//! dataset = "synthetic"
//! classes = "camvid"          # trained in the target's classes (labels mapped)
//! size = [180, 240]
//!
//! [target]                    # unlabelled training split; labels used only to evaluate
//! dataset = "camvid"
//! size = [180, 240]
//! eval_split = "test"
//! eval_native = true
//!
//! [optim]                     # the adaptation's optimiser
//! kind = "adam"
//! lr = 1e-4
//!
//! [[methods]]
//! name = "CBST"
//! kind = "cbst"               # cbst | lrent | lrent-w
//! [[methods]]
//! name = "CRST-LRENT + W, f = d²"
//! kind = "lrent-w"
//! ground = "severity"
//! transform = "power"
//! rho = 2.0
//! ```

use super::{PortionSchedule, PseudoLabeling};
use crate::classes::ClassSet;
use crate::ground::GroundMatrix;
use crate::ot::SinkhornConfig;
use crate::train::config::{read_toml, DataConfig, LossSpec, OptimConfig};
use crate::train::RunConfig;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// What the target pixels are trained with.
#[derive(Clone, Debug, PartialEq)]
pub enum TargetLoss {
    /// CBST: cross-entropy on hard pseudo-labels.
    CrossEntropy,
    /// CRST-LRENT: cross-entropy on soft pseudo-labels ([`crate::loss::cross_entropy_soft`]).
    SoftCrossEntropy,
    /// CRST-LRENT with the Sinkhorn Wasserstein loss ([`crate::loss::wasserstein_soft`]):
    /// the paper's Table III rows.
    SoftWasserstein {
        /// `f(D)`, `D[truth][pred]`, in the target's classes.
        ground: GroundMatrix,
        /// The solver's settings.
        sinkhorn: SinkhornConfig,
    },
}

/// One row of Table III: how pseudo-labels are made and what they are fitted with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MethodSpec {
    /// Name in tables (its slug names the folder).
    pub name: String,
    /// `cbst` (hard labels, CE), `lrent` (soft labels, soft CE) or `lrent-w` (soft labels,
    /// Sinkhorn `W` under `f(D)`).
    pub kind: String,
    /// `D` of `lrent-w`: `severity`, `importance`, `uniform` or a CSV path (as in a run config).
    pub ground: String,
    /// `f(d)` of `lrent-w`: `linear`, `power`, `huber` or `step`.
    pub transform: String,
    /// ρ of the power transform.
    pub rho: f64,
    /// τ of the Huber transform.
    pub tau: f64,
    /// Sinkhorn's ε as a fraction of the largest cost.
    pub epsilon: f64,
    /// Start Sinkhorn at a large ε and decrease it ([`crate::ot::EpsilonScaling`]). Off by
    /// default: at ε ≥ 0.05 of the largest cost, and with the near-one-hot targets
    /// pseudo-labels are, the scaling stages cost more iterations than they save (BENCHMARKS.md:
    /// plain log-domain iterations are 2.4× faster at ε = 0.1).
    pub epsilon_scaling: bool,
}

impl Default for MethodSpec {
    fn default() -> Self {
        MethodSpec {
            name: "CBST".into(),
            kind: "cbst".into(),
            ground: "severity".into(),
            transform: "linear".into(),
            rho: 2.0,
            tau: 0.5,
            epsilon: 0.05,
            epsilon_scaling: false,
        }
    }
}

impl MethodSpec {
    /// How pseudo-labels are made: hard for `cbst`, soft with `alpha` otherwise.
    pub fn labeling(&self, alpha: f64) -> Result<PseudoLabeling> {
        match self.kind.as_str() {
            "cbst" => Ok(PseudoLabeling::Hard),
            "lrent" | "lrent-w" => Ok(PseudoLabeling::Soft { alpha }),
            other => Err(Error::invalid("methods.kind", other, "expected cbst, lrent or lrent-w")),
        }
    }

    /// The target loss in `classes`; `lrent-w` builds `f(D)` and checks ε.
    pub fn target_loss(&self, classes: &ClassSet) -> Result<TargetLoss> {
        match self.kind.as_str() {
            "cbst" => Ok(TargetLoss::CrossEntropy),
            "lrent" => Ok(TargetLoss::SoftCrossEntropy),
            "lrent-w" => {
                let run = RunConfig {
                    loss: LossSpec {
                        kind: "w".into(),
                        ground: self.ground.clone(),
                        transform: self.transform.clone(),
                        rho: self.rho,
                        tau: self.tau,
                        ..LossSpec::default()
                    },
                    ..RunConfig::default()
                };
                let ground = run.ground(classes)?.transform(run.transform()?)?;
                if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
                    return Err(Error::invalid("methods.epsilon", self.epsilon, "must be finite and > 0"));
                }
                let mut sinkhorn = SinkhornConfig { epsilon: self.epsilon, ..SinkhornConfig::default() };
                if !self.epsilon_scaling {
                    sinkhorn.scaling = None;
                }
                sinkhorn.validate()?;
                sinkhorn.check_schedule(ground.max(), true)?;
                Ok(TargetLoss::SoftWasserstein { ground, sinkhorn })
            }
            other => Err(Error::invalid("methods.kind", other, "expected cbst, lrent or lrent-w")),
        }
    }
}

/// A whole self-training experiment (see the module docs for the file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SelfTrainConfig {
    /// Name of the experiment (the run folder's default name).
    pub name: String,
    /// Seeds of the adaptation; each method runs once per seed from the same source weights.
    pub seeds: Vec<u64>,
    /// The source-only run. Its evaluation is forced onto the target's evaluated split (see
    /// [`Self::source_run`]), so that its metrics are the table's first row.
    pub source: RunConfig,
    /// The target domain: its training split unlabelled (labels never read in training), its
    /// `eval_split` evaluated. `size`, `batch_size`, `train_limit`, `eval_limit`, `hflip` apply.
    pub target: DataConfig,
    /// Pseudo-label → train rounds.
    pub rounds: usize,
    /// Passes over the target training split per round.
    pub epochs_per_round: usize,
    /// CRST-LRENT's α.
    pub alpha: f64,
    /// The portion `p` of each class kept, by round.
    pub portion: PortionSchedule,
    /// Every this many pixels of an image is sampled for the thresholds.
    pub threshold_stride: usize,
    /// Weight of the target loss beside the source loss.
    pub target_weight: f64,
    /// The adaptation's optimiser and schedule (over all rounds).
    pub optim: OptimConfig,
    /// The rows of Table III after source-only.
    pub methods: Vec<MethodSpec>,
}

impl Default for SelfTrainConfig {
    fn default() -> Self {
        SelfTrainConfig {
            name: "self-training".into(),
            seeds: vec![0],
            source: RunConfig { name: "source-only".into(), ..RunConfig::default() },
            target: DataConfig::default(),
            rounds: 3,
            epochs_per_round: 1,
            alpha: 0.25,
            portion: PortionSchedule::default(),
            threshold_stride: 4,
            target_weight: 1.0,
            optim: OptimConfig { kind: "adam".into(), lr: 1e-4, ..OptimConfig::default() },
            methods: vec![],
        }
    }
}

impl SelfTrainConfig {
    /// Parses a TOML config; unknown keys are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| Error::invalid("self-training config", "TOML", e.to_string()))
    }

    /// Reads and parses a TOML config file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        read_toml("self-training config", path.as_ref())
    }

    /// The config as TOML (what the run folder records).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("self-training config", &self.name, e.to_string()))
    }

    /// The experiment made small for tests and CI: the source run's [`RunConfig::quick`], 8
    /// target images at 96 × 128, 4 evaluated, two rounds of one epoch.
    pub fn quick(mut self) -> Self {
        self.source = self.source.quick();
        self.target.size = Some([96, 128]);
        self.target.crop = None;
        self.target.scale = None;
        self.target.batch_size = self.target.batch_size.min(4);
        self.target.train_limit = Some(self.target.train_limit.unwrap_or(8).min(8));
        self.target.eval_limit = Some(self.target.eval_limit.unwrap_or(4).min(4));
        self.rounds = self.rounds.min(2);
        self.epochs_per_round = 1;
        self
    }

    /// The source-only run: `source`, evaluated on the target's evaluated split (dataset,
    /// folder, split, native size, limit) in the target's classes.
    pub fn source_run(&self) -> RunConfig {
        let mut run = self.source.clone();
        run.data.eval_dataset = Some(self.target.dataset.clone());
        run.data.eval_root = self.target.root.clone();
        run.data.eval_split = self.target.eval_split.clone();
        run.data.eval_native = self.target.eval_native;
        run.data.eval_limit = self.target.eval_limit;
        run
    }

    /// The target as a run config (the source's model and device): its loaders and classes.
    pub fn target_run(&self) -> RunConfig {
        RunConfig {
            name: self.name.clone(),
            device: self.source.device.clone(),
            data: self.target.clone(),
            model: crate::train::config::ModelConfig { init: None, pretrained: None, ..self.source.model.clone() },
            optim: self.optim.clone(),
            ..RunConfig::default()
        }
    }

    /// Checks everything that can be checked without the data, naming the bad field: the
    /// source run, the target's data, the label spaces (source, target and every method's `D`
    /// in one class set), the rounds and the methods.
    pub fn validate(&self) -> Result<()> {
        let target = self.target_run();
        // The label spaces first: the source run is evaluated on the target.
        let (sc, tc) = (self.source.classes()?, target.classes()?);
        if sc.name != tc.name {
            return Err(Error::invalid(
                "source.data.classes",
                sc.name,
                format!("the source trains in {} classes but the target is labelled in {}; set source.data.classes = \"{}\"", sc.name, tc.name, tc.name),
            ));
        }
        self.source_run().validate()?;
        target.validate()?;
        if self.seeds.is_empty() {
            return Err(Error::invalid("seeds", "[]", "give at least one seed"));
        }
        if self.rounds == 0 {
            return Err(Error::invalid("rounds", 0, "self-training needs at least one round"));
        }
        if self.epochs_per_round == 0 {
            return Err(Error::invalid("epochs_per_round", 0, "must be >= 1"));
        }
        if self.threshold_stride == 0 {
            return Err(Error::invalid("threshold_stride", 0, "must be >= 1"));
        }
        if !(self.target_weight.is_finite() && self.target_weight >= 0.0) {
            return Err(Error::invalid("target_weight", self.target_weight, "must be finite and >= 0"));
        }
        self.portion.validate()?;
        PseudoLabeling::Soft { alpha: self.alpha }.validate()?;
        if self.methods.is_empty() {
            return Err(Error::invalid("methods", "[]", "give at least one [[methods]] entry"));
        }
        let mut slugs = std::collections::HashSet::new();
        for m in &self.methods {
            m.labeling(self.alpha)?;
            m.target_loss(tc)?;
            if !slugs.insert(crate::train::ablation::slug(&m.name)) {
                return Err(Error::invalid("methods.name", &m.name, "two methods share this name (or its folder)"));
            }
        }
        Ok(())
    }
}
