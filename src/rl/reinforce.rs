//! The reinforced ground matrix (Section III.C, Fig. 4): the segmenter, the driving agent and
//! the ground matrix `D` learned by alternating optimisation in the simulator.
//!
//! ```text
//! D₀ = f(D_init)                                   (the severity preset, the importance matrix or a CSV)
//! for round r = 0 … R−1:
//!     step 1, D fixed:
//!         fine-tune the segmenter on simulator frames with W under D_r      (train::run)
//!         train the actor-critic on the segmenter's latent                  (rl::train_until)
//!     step 2, networks fixed:
//!         class centroids of the unit-normalised penultimate responses over a fixed set of
//!         frames, d[i][j] = ‖c_i − c_j‖₁ / max                               (ground::learned)
//!         D_{r+1} = (f(d) + α_r·D_r) / (1 + α_r),  α_r: 10 → 0 over the rounds
//! ```
//!
//! The segmenter's fine-tuning is an ordinary [`crate::train::run`] per round (the round's
//! `D_r` as its CSV ground matrix, starting from the previous round's weights), and the agent
//! is one [`super::train()`] run spread over the rounds (each round trains its share of the
//! segments, on the current segmenter's latent), so both resume on their own. `f` is applied
//! once: `D₀ = f(D_init)`, the learned `f(d)` is mixed into `D_r`, and each round's loss reads
//! `D_r` as it is.
//!
//! With the agent's segmenter frozen (as in [`super::StateEncoder`]), the agent does not change the
//! segmenter's features and so does not change `D`: the loop learns `D` from the segmenter
//! trained under it, on the frames the agent drives through, and trains the agent on each
//! round's segmenter. Back-propagating the agent's loss into the segmenter would cost a
//! backward pass of ENet's encoder per environment step; it is not done here.
//!
//! Run folder:
//!
//! | file | what |
//! |---|---|
//! | `config.toml` | the [`ReinforceConfig`] |
//! | `ground/round-<r>.csv` | `D_r`, the ground matrix of round `r` (`round-<R>.csv`: the learned result) |
//! | `round-<r>/segmenter/` | the round's fine-tuning ([`crate::train::run`]'s folder) |
//! | `segmenter.safetensors` | the latest round's segmenter weights (what the agent drives with) |
//! | `agent/` | the agent's run ([`super::train()`]'s folder), when the config has an `[agent]` |
//! | `history.json` | [`ReinforceHistory`]: a [`RoundRecord`] per round (`D` of every round included) |
//! | `fig6.svg` | [`fig6`]: `D₀`, the latest `D` and their difference |
//! | `state.txt` | `next_round` (written last: a round is done when it says so) |
//!
//! Walkthrough: notebook `10-reinforced-ground-matrix`.

use super::config::DriveConfig;
use super::train::{train_until, DriveEvent, DriveHistory};
use crate::data::{Loader, LoaderConfig, Split};
use crate::ground::learned::{reinforced_update, AlphaSchedule, CentroidAccumulator, LearnedDistances};
use crate::ground::GroundMatrix;
use crate::models::Segmenter;
use crate::plot::{self, Heatmap, Svg};
use crate::train::checkpoint::{claim_run_folder, StateFile};
use crate::train::config::{parse_toml, read_ground_csv, read_toml};
use crate::train::report::{write_json, EvalReport};
use crate::train::{RunConfig, RunEvent};
use crate::{Error, Result, Transform};
use candle_core::Device;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

const STATE: &str = "state.txt";
const SEGMENTER: &str = "segmenter.safetensors";

/// The alternating optimisation in one TOML file: the segmenter's fine-tuning per round (a
/// [`RunConfig`] under `[segmenter]`), the agent (a [`DriveConfig`] under `[agent]`, optional),
/// and the ground-matrix update.
///
/// ```toml
/// name = "reinforce-enet"
/// rounds = 6
/// update = true                 # false: D stays D₀ (the fixed-D control, same schedule)
/// alpha = [10.0, 0.0]           # α from the first round's update to the last one's (the paper: 10 → 0)
/// centroid_frames = 200         # the fixed training frames of step 2
///
/// [segmenter]                   # one round's fine-tuning; loss.ground and loss.transform give D₀ = f(D_init)
/// epochs = 1
/// data = { dataset = "synthetic", size = [96, 192], weathers = ["clear-noon", "dusk"] }
/// model = { kind = "enet", init = "runs/sim-enet-ce" }
/// loss = { kind = "w", ground = "severity", transform = "huber", tau = 0.5 }
///
/// [agent]                       # the whole agent run; its segments are shared out over the rounds
/// total_steps = 60_000
/// ```
///
/// Every field has a default; unknown keys are errors that name them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReinforceConfig {
    /// Name of the run (`runs/<name>`, tables).
    pub name: String,
    /// Rounds `R` of steps 1 and 2.
    pub rounds: usize,
    /// Rebuild `D` after every round (step 2); `false` keeps `D₀` throughout — the control
    /// that differs only in the ground matrix (the centroid distances are still recorded).
    pub update: bool,
    /// `[α of the first update, α of the last]`, linear in between ([`AlphaSchedule`]).
    pub alpha: [f64; 2],
    /// Training frames of step 2's centroids (the first ones of the segmenter's training split,
    /// at its `data.size`).
    pub centroid_frames: usize,
    /// One round of the segmenter's fine-tuning. `loss.ground` and `loss.transform` give
    /// `D₀ = f(D_init)` and the `f` of the update; each round runs it with `D_r` (as a CSV, `f`
    /// already applied), from the previous round's weights (round 0: `model.init`), with the
    /// seed `seed + r`.
    pub segmenter: RunConfig,
    /// The agent's whole run, its segments shared out evenly over the rounds. Its `state` is
    /// set by the loop (the latest round's segmenter, its architecture). `None`: no agent (a
    /// segmenter-only comparison row).
    pub agent: Option<DriveConfig>,
}

impl Default for ReinforceConfig {
    fn default() -> Self {
        let mut segmenter = RunConfig { name: "reinforce-segmenter".into(), epochs: 1, ..Default::default() };
        segmenter.data.dataset = "synthetic".into();
        segmenter.data.size = Some([96, 192]);
        segmenter.loss.kind = "w".into();
        ReinforceConfig {
            name: "reinforce".into(),
            rounds: 6,
            update: true,
            alpha: [10.0, 0.0],
            centroid_frames: 200,
            segmenter,
            agent: None,
        }
    }
}

impl ReinforceConfig {
    /// Parses a TOML config; unknown keys are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        parse_toml("reinforce config", text)
    }

    /// Reads and parses a TOML config file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        read_toml("reinforce config", path.as_ref())
    }

    /// The config as TOML (what the run folder records).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("reinforce config", &self.name, e.to_string()))
    }

    /// Checks every field without touching the disk; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.rounds == 0 {
            return Err(Error::invalid("rounds", 0, "must be at least 1"));
        }
        for (name, a) in [("alpha[0]", self.alpha[0]), ("alpha[1]", self.alpha[1])] {
            if !(a.is_finite() && a >= 0.0) {
                return Err(Error::invalid(name, a, "the mixing weight α must be finite and >= 0 (the paper: 10 → 0)"));
            }
        }
        if self.centroid_frames == 0 {
            return Err(Error::invalid("centroid_frames", 0, "must be at least 1"));
        }
        self.segmenter.validate()?;
        if self.segmenter.loss.kind == "soft-w" {
            return Err(Error::invalid(
                "segmenter.loss.kind",
                "soft-w",
                "the loop fine-tunes on one-hot simulator labels: use w, ce+w, ce or ial",
            ));
        }
        if self.segmenter.classes()?.len() != crate::classes::CITYSCAPES.len() {
            return Err(Error::invalid(
                "segmenter.data",
                &self.segmenter.data.dataset,
                "the loop needs the simulator's (Cityscapes') 19 classes",
            ));
        }
        if let Some(agent) = &self.agent {
            let agent = self.agent_config_for(agent, Path::new(SEGMENTER));
            agent.validate()?;
            let segments = agent.total_updates() / agent.segment;
            if segments < self.rounds || segments % self.rounds != 0 {
                return Err(Error::invalid(
                    "agent.total_steps",
                    agent.total_steps,
                    format!(
                        "gives {segments} segments of {} steps, which do not share out evenly over {} rounds",
                        agent.segment * agent.steps_per_update(),
                        self.rounds
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The same loop made small for tests and CI: two rounds of the quick segmenter run
    /// ([`RunConfig::quick`], one epoch), 8 centroid frames, the quick agent (one segment per
    /// round).
    pub fn quick(mut self) -> Self {
        self.rounds = self.rounds.min(2);
        self.centroid_frames = self.centroid_frames.min(8);
        self.segmenter = self.segmenter.quick();
        self.segmenter.epochs = 1;
        self.agent = self.agent.map(|a| {
            let mut a = a.quick();
            a.total_steps = self.rounds * a.segment * a.steps_per_update();
            a
        });
        self
    }

    /// `α` of each round's update.
    pub fn alpha_schedule(&self) -> AlphaSchedule {
        AlphaSchedule { start: self.alpha[0], end: self.alpha[1], rounds: self.rounds }
    }

    /// `f` of the segmenter's loss: applied to `D_init` once and to every learned `d`.
    pub fn transform(&self) -> Result<Transform> {
        self.segmenter.transform()
    }

    /// `D₀ = f(D_init)` over the simulator's classes.
    pub fn initial_ground(&self) -> Result<GroundMatrix> {
        self.segmenter.ground(self.segmenter.classes()?)?.transform(self.transform()?)
    }

    /// Round `r`'s fine-tuning: the segmenter config with `ground` (a CSV holding `D_r`, `f`
    /// applied) and the weights of `init`.
    pub fn round_config(&self, r: usize, ground: &Path, init: Option<PathBuf>) -> RunConfig {
        let mut c = self.segmenter.clone();
        c.name = format!("{}-round-{r}", self.name);
        c.seed = self.segmenter.seed.wrapping_add(r as u64);
        c.loss.ground = ground.display().to_string();
        c.loss.transform = "linear".into();
        c.model.init = init;
        c
    }

    /// The agent's config with its state set to the segmenter at `segmenter` (architecture and
    /// width from `[segmenter]`).
    fn agent_config_for(&self, agent: &DriveConfig, segmenter: &Path) -> DriveConfig {
        let mut a = agent.clone();
        a.state.kind = "latent".into();
        a.state.segmenter = Some(segmenter.to_path_buf());
        a.state.model = self.segmenter.model.kind.clone();
        a.state.width = self.segmenter.model.width;
        a
    }

    /// The agent's config as the loop in `dir` runs it (`None` without an agent).
    pub fn agent_config(&self, dir: &Path) -> Option<DriveConfig> {
        self.agent.as_ref().map(|a| self.agent_config_for(a, &dir.join(SEGMENTER)))
    }

    /// Agent segments per round.
    pub fn agent_segments_per_round(&self) -> usize {
        self.agent.as_ref().map_or(0, |a| a.total_updates() / a.segment / self.rounds)
    }
}

/// What round `r` did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (from 0).
    pub round: usize,
    /// `D_r`, the ground matrix the round's segmenter was trained under (rows = true class).
    pub ground: Vec<Vec<f64>>,
    /// The segmenter's evaluation after the round (held-out simulator frames).
    pub segmenter: EvalReport,
    /// The segmenter's mean training loss in the round's last epoch.
    pub segmenter_loss: Option<f64>,
    /// The agent's training episodes that ended in the round (`None` without an agent).
    pub agent: Option<AgentRound>,
    /// α of the update after this round.
    pub alpha: f64,
    /// Pixels per class in the centroid frames.
    pub pixels: Vec<u64>,
    /// Classes with no pixel in the centroid frames: their rows and columns keep `D_r`.
    pub absent: Vec<String>,
    /// The centroid distances `d` (normalised to a largest entry of 1; 0 with an absent class).
    pub distances: Vec<Vec<f64>>,
    /// `D_{r+1}` (equal to `D_r` when the config does not update).
    pub next_ground: Vec<Vec<f64>>,
    /// `max |D_{r+1} − D_r|`.
    pub change: f64,
    /// Seconds of the segmenter's fine-tuning (with its evaluation), the agent's training and
    /// step 2 (centroids and update).
    pub segmenter_seconds: f64,
    /// See `segmenter_seconds`.
    pub agent_seconds: f64,
    /// See `segmenter_seconds`.
    pub ground_seconds: f64,
}

/// The agent's training in one round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentRound {
    /// Environment steps of the agent's run at the end of the round.
    pub run_steps: usize,
    /// Training episodes that ended in the round.
    pub episodes: usize,
    /// Their mean total reward (`None`: no episode ended).
    pub mean_reward: Option<f64>,
    /// Their mean distance driven (m).
    pub mean_distance_m: Option<f64>,
    /// Environment steps per second of the round's segments.
    pub steps_per_second: f64,
}

impl AgentRound {
    /// The summary of the segments `from..to` of an agent's history.
    fn of(history: &DriveHistory, from: usize, to: usize) -> AgentRound {
        let segments = &history.segments[from.min(history.segments.len())..to.min(history.segments.len())];
        let start = from.checked_sub(1).and_then(|k| history.segments.get(k)).map_or(0, |s| s.run_steps);
        let end = segments.last().map_or(start, |s| s.run_steps);
        let episodes: Vec<_> = history.episodes.iter().filter(|e| e.run_step > start && e.run_step <= end).collect();
        let mean = |f: &dyn Fn(&super::train::EpisodeRecord) -> f64| {
            (!episodes.is_empty()).then(|| episodes.iter().map(|e| f(e)).sum::<f64>() / episodes.len() as f64)
        };
        let seconds: f64 = segments.iter().map(|s| s.seconds).sum();
        AgentRound {
            run_steps: end,
            episodes: episodes.len(),
            mean_reward: mean(&|e| e.total_reward),
            mean_distance_m: mean(&|e| e.distance_m),
            steps_per_second: (end - start) as f64 / seconds.max(1e-9),
        }
    }
}

/// The record of a loop: a [`RoundRecord`] per finished round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ReinforceHistory {
    /// The run's name.
    pub name: String,
    /// The simulator's class names (rows and columns of every matrix).
    pub classes: Vec<String>,
    /// Finished rounds, in order.
    pub rounds: Vec<RoundRecord>,
}

impl ReinforceHistory {
    /// Reads `history.json`; the error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        crate::train::report::read_json(path.as_ref())
    }

    /// `D_r` of every round, then the latest `D` (`R + 1` matrices after `R` rounds).
    pub fn grounds(&self) -> Result<Vec<GroundMatrix>> {
        let mut out = vec![];
        for r in &self.rounds {
            out.push(GroundMatrix::from_rows(self.classes.clone(), &r.ground)?);
        }
        if let Some(r) = self.rounds.last() {
            out.push(GroundMatrix::from_rows(self.classes.clone(), &r.next_ground)?);
        }
        Ok(out)
    }

    /// Per round: mIoU, group 3+4 IoU, person IoU, severity cost of the segmenter; the agent's
    /// mean reward and distance; `max |ΔD|`; seconds of the three parts.
    pub fn table(&self) -> plot::Table {
        let person = self.classes.iter().position(|c| c == "person");
        let mut t = plot::Table::new(
            [
                "round",
                "α",
                "mIoU %",
                "G3+G4 %",
                "person %",
                "severity cost",
                "agent episodes",
                "agent reward",
                "agent m / episode",
                "max |ΔD|",
                "absent classes",
                "s: segmenter / agent / D",
            ]
            .map(String::from)
            .to_vec(),
        );
        let pct = |v: Option<f64>| v.map_or("–".into(), |x| format!("{:.1}", 100.0 * x));
        let one = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.1}"));
        for r in &self.rounds {
            let s = &r.segmenter;
            let (eps, reward, dist) = match &r.agent {
                Some(a) => (a.episodes.to_string(), one(a.mean_reward), one(a.mean_distance_m)),
                None => ("–".into(), "–".into(), "–".into()),
            };
            t.push(vec![
                r.round.to_string(),
                format!("{:.1}", r.alpha),
                pct(s.miou),
                pct(s.group34_iou),
                pct(person.and_then(|k| s.iou.get(k).copied().flatten())),
                s.severity_cost.map_or("–".into(), |c| format!("{c:.4}")),
                eps,
                reward,
                dist,
                format!("{:.3}", r.change),
                if r.absent.is_empty() { "none".into() } else { r.absent.join(", ") },
                format!("{:.0} / {:.0} / {:.1}", r.segmenter_seconds, r.agent_seconds, r.ground_seconds),
            ]);
        }
        t
    }
}

/// What [`reinforce`] reports as it goes.
#[derive(Debug)]
pub enum ReinforceEvent<'a> {
    /// The loop (re)starts at round `first_round` of `rounds`.
    Started {
        /// The run's name.
        name: &'a str,
        /// First round of this invocation.
        first_round: usize,
        /// Rounds of the whole run.
        rounds: usize,
    },
    /// Step 1: the segmenter's fine-tuning of `round`.
    Segmenter {
        /// The round.
        round: usize,
        /// What [`crate::train::run`] reports.
        event: &'a RunEvent<'a>,
    },
    /// Step 1: the agent's training of `round`.
    Agent {
        /// The round.
        round: usize,
        /// What [`super::train()`] reports.
        event: &'a DriveEvent<'a>,
    },
    /// A round is done (step 2 included) and recorded.
    Round(&'a RoundRecord),
}

/// Step 2's result: the centroid distances and the new matrix.
#[derive(Clone, Debug)]
pub struct GroundStep {
    /// The distances between class centroids, and which classes were seen.
    pub learned: LearnedDistances,
    /// Pixels per class.
    pub pixels: Vec<u64>,
    /// `(f(d) + α·D_prev) / (1 + α)` over the pairs of present classes, `D_prev` elsewhere.
    pub next: GroundMatrix,
    /// Seconds of the whole step (the segmenter's forward passes included).
    pub seconds: f64,
}

/// Step 2 of the alternating optimisation: the class centroids of `net`'s unit-normalised
/// penultimate responses over every batch of `frames` (labels at the features' resolution,
/// [`CentroidAccumulator`]), their L1 distances `d` ([`LearnedDistances`]), and
/// `D ← (f(d) + α·D_prev) / (1 + α)` ([`reinforced_update`]); a class with no pixel keeps its row
/// and column of `prev`.
///
/// # Errors
/// `α` negative or not finite; a label outside the class set; `prev`'s classes not the
/// network's; no pixel of any class at all.
pub fn ground_step(
    net: &dyn Segmenter,
    frames: &Loader,
    prev: &GroundMatrix,
    f: Transform,
    alpha: f64,
) -> Result<GroundStep> {
    let t0 = Instant::now();
    let n = net.num_classes();
    if prev.num_classes() != n {
        return Err(Error::ClassCount {
            what: "ground matrix vs segmenter classes",
            expected: n,
            got: prev.num_classes(),
        });
    }
    let ignore = Some(frames.dataset().classes().ignore_index);
    let mut acc: Option<CentroidAccumulator> = None;
    for batch in frames.epoch(0) {
        let batch = batch?;
        let features = net.forward_all(&batch.images, false)?.penultimate;
        let acc = acc.get_or_insert_with(|| CentroidAccumulator::new(n, features.dim(1).unwrap_or(0), ignore));
        acc.add(&features, &batch.labels)?;
    }
    let acc = acc.ok_or_else(|| Error::invalid("centroid frames", 0, "hold no batch"))?;
    if acc.counts().iter().all(|&c| c == 0) {
        return Err(Error::invalid("centroid frames", frames.len(), "hold no labelled pixel"));
    }
    let learned = acc.distances(prev.names().to_vec())?;
    let next = reinforced_update(prev, &learned, f, alpha)?;
    Ok(GroundStep { learned, pixels: acc.counts().to_vec(), next, seconds: t0.elapsed().as_secs_f64() })
}

/// The fixed frames of step 2: the first `cfg.centroid_frames` frames of the segmenter's
/// training split at its `data.size`, in order, without augmentation.
pub fn centroid_loader(cfg: &ReinforceConfig, device: &Device) -> Result<Loader> {
    let s = &cfg.segmenter;
    let resize = s.data.size.map(|[h, w]| (h, w));
    let lc = LoaderConfig {
        batch_size: s.data.batch_size,
        shuffle: false,
        augment: crate::data::Augment { resize, ..crate::data::Augment::none() },
        limit: Some(cfg.centroid_frames),
        ..Default::default()
    };
    Loader::new(s.dataset(Split::Train)?, lc, device.clone())
}

/// A finished (or partly finished) loop.
#[derive(Clone, Debug)]
pub struct Reinforced {
    /// The run folder.
    pub dir: PathBuf,
    /// The config.
    pub config: ReinforceConfig,
    /// Every finished round.
    pub history: ReinforceHistory,
}

impl Reinforced {
    /// Reads a loop's run folder (config and history); errors name the missing file.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let config = ReinforceConfig::from_file(dir.join("config.toml"))?;
        let history = ReinforceHistory::read(dir.join("history.json"))?;
        Ok(Reinforced { dir, config, history })
    }

    /// The weights of round `r`'s segmenter.
    pub fn segmenter_weights(&self, r: usize) -> PathBuf {
        round_dir(&self.dir, r).join("segmenter").join("checkpoint").join("model.safetensors")
    }

    /// The weights of the last finished round's segmenter (`None` before the first).
    pub fn final_segmenter(&self) -> Option<PathBuf> {
        self.history.rounds.last().map(|r| self.segmenter_weights(r.round))
    }

    /// The agent's run folder (`None` without an agent).
    pub fn agent_dir(&self) -> Option<PathBuf> {
        self.config.agent.as_ref().map(|_| self.dir.join("agent"))
    }
}

fn round_dir(dir: &Path, r: usize) -> PathBuf {
    dir.join(format!("round-{r}"))
}

fn ground_csv(dir: &Path, r: usize) -> PathBuf {
    dir.join("ground").join(format!("round-{r}.csv"))
}

fn rows(d: &GroundMatrix) -> Vec<Vec<f64>> {
    (0..d.num_classes()).map(|i| d.row(i).to_vec()).collect()
}

/// Runs the alternating optimisation as `cfg` says, recording into `dir` (see the module
/// docs); `observe` sees the segmenter's batches and epochs, the agent's updates and every
/// finished round. Resumes a folder written by the same config at the round (and inside it,
/// the epoch or segment) where it stopped.
///
/// # Errors
/// An invalid config (the field named); a folder holding another config's run; a round's
/// ground-matrix file missing on resume (named); any error of the segmenter's run, the
/// agent's run or step 2.
pub fn reinforce(
    cfg: &ReinforceConfig,
    dir: impl AsRef<Path>,
    observe: impl FnMut(&ReinforceEvent),
) -> Result<Reinforced> {
    reinforce_for(cfg, dir, usize::MAX, observe)
}

/// [`reinforce`], stopping after at most `max_rounds` rounds of this invocation (a notebook's
/// "one more round"; the next call resumes).
pub fn reinforce_for(
    cfg: &ReinforceConfig,
    dir: impl AsRef<Path>,
    max_rounds: usize,
    mut observe: impl FnMut(&ReinforceEvent),
) -> Result<Reinforced> {
    cfg.validate()?;
    let device = cfg.segmenter.device()?;
    let classes = cfg.segmenter.classes()?;
    let d0 = cfg.initial_ground()?;
    let f = cfg.transform()?;
    let frames = centroid_loader(cfg, &device)?;
    // The first round's starting weights, and the agent's network on the segmenter's latent
    // (its shape), are checked before anything is written.
    if let Some(init) = &cfg.segmenter.model.init {
        crate::train::init_weights_path(init)?;
    }
    if let Some(a) = &cfg.agent {
        let mut probe = cfg.agent_config_for(a, Path::new("-"));
        probe.state.segmenter = None;
        super::train::agent(&probe, &super::train::state_encoder(&probe, &Device::Cpu)?, &Device::Cpu)?;
    }

    let dir = dir.as_ref().to_path_buf();
    std::fs::create_dir_all(dir.join("ground")).map_err(|e| Error::Io { path: dir.join("ground"), source: e })?;
    let resuming = dir.join(STATE).is_file();
    claim_run_folder(&dir, "reinforce config", cfg, &cfg.to_toml()?, resuming, |p| ReinforceConfig::from_file(p))?;
    let mut history = ReinforceHistory {
        name: cfg.name.clone(),
        classes: classes.names.iter().map(|s| s.to_string()).collect(),
        rounds: vec![],
    };
    let mut first_round = 0;
    if resuming {
        first_round = StateFile::read(dir.join(STATE))?.count("next_round")?;
        history = ReinforceHistory::read(dir.join("history.json"))?;
        if history.rounds.len() < first_round {
            return Err(Error::invalid(
                "history.json",
                dir.join("history.json").display(),
                format!("holds {} rounds but state.txt says {first_round} are done", history.rounds.len()),
            ));
        }
        history.rounds.truncate(first_round);
    } else {
        crate::io::write_atomic(ground_csv(&dir, 0), d0.to_csv().as_bytes())?;
    }
    observe(&ReinforceEvent::Started { name: &cfg.name, first_round, rounds: cfg.rounds });
    let schedule = cfg.alpha_schedule();
    let agent_cfg = cfg.agent_config(&dir);
    let per_round = cfg.agent_segments_per_round();

    for r in first_round..cfg.rounds.min(first_round.saturating_add(max_rounds)) {
        let csv = ground_csv(&dir, r);
        if !csv.is_file() {
            return Err(Error::invalid(
                "round ground matrix",
                csv.display(),
                format!("is missing: round {r} cannot resume without D_{r}; delete the run folder to start over"),
            ));
        }
        let ground = read_ground_csv(&csv, classes)?;

        // Step 1a: the segmenter under D_r, from the previous round's weights.
        let init = match r {
            0 => cfg.segmenter.model.init.clone(),
            _ => {
                let prev = round_dir(&dir, r - 1).join("segmenter");
                crate::train::init_weights_path(&prev)?;
                Some(prev)
            }
        };
        let t0 = Instant::now();
        let seg_dir = round_dir(&dir, r).join("segmenter");
        let trained = crate::train::run(&cfg.round_config(r, &csv, init), &seg_dir, |e| {
            observe(&ReinforceEvent::Segmenter { round: r, event: e })
        })?;
        let segmenter_seconds = t0.elapsed().as_secs_f64();
        let weights = crate::train::init_weights_path(&seg_dir)?;
        let bytes = std::fs::read(&weights).map_err(|e| Error::Io { path: weights.clone(), source: e })?;
        crate::io::write_atomic(dir.join(SEGMENTER), &bytes)?;

        // Step 1b: the agent on that segmenter's latent, its share of the run's segments.
        let t1 = Instant::now();
        let agent = match &agent_cfg {
            Some(a) => {
                let end = (r + 1) * per_round;
                let run =
                    train_until(a, dir.join("agent"), end, |e| observe(&ReinforceEvent::Agent { round: r, event: e }))?;
                Some(AgentRound::of(&run.history, r * per_round, end))
            }
            None => None,
        };
        let agent_seconds = t1.elapsed().as_secs_f64();

        // Step 2: the networks fixed, D from the class centroids.
        let alpha = schedule.alpha(r);
        let step = ground_step(trained.net.as_ref(), &frames, &ground, f, alpha)?;
        let next = if cfg.update { step.next.clone() } else { ground.clone() };
        let change = ground.values().iter().zip(next.values()).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let record = RoundRecord {
            round: r,
            ground: rows(&ground),
            segmenter: trained.report.clone(),
            segmenter_loss: trained.history.epochs.last().map(|e| e.loss),
            agent,
            alpha,
            absent: step
                .learned
                .present
                .iter()
                .zip(classes.names)
                .filter(|(p, _)| !**p)
                .map(|(_, n)| n.to_string())
                .collect(),
            pixels: step.pixels.clone(),
            distances: rows(&step.learned.distances),
            next_ground: rows(&next),
            change,
            segmenter_seconds,
            agent_seconds,
            ground_seconds: step.seconds,
        };
        // D_{r+1}, then the history, then state.txt: a round is done only when all are written.
        crate::io::write_atomic(ground_csv(&dir, r + 1), next.to_csv().as_bytes())?;
        history.rounds.push(record);
        write_json(dir.join("history.json"), &history)?;
        crate::io::write_atomic(dir.join("fig6.svg"), fig6(&d0, &next, &cfg.name)?.to_svg().as_bytes())?;
        crate::io::write_atomic(dir.join(STATE), format!("next_round = {}\n", r + 1).as_bytes())?;
        if let Some(rec) = history.rounds.last() {
            observe(&ReinforceEvent::Round(rec));
        }
    }
    Ok(Reinforced { dir, config: cfg.clone(), history })
}

/// Fig. 6: the initial matrix `D₀`, the learned `D` and `D − D₀` side by side, class names on
/// the axes (rows: true class, columns: predicted class).
///
/// # Errors
/// The two matrices have different classes.
pub fn fig6(initial: &GroundMatrix, learned: &GroundMatrix, name: &str) -> Result<Svg> {
    if initial.names() != learned.names() {
        return Err(Error::invalid("fig6", name, "the two ground matrices have different classes"));
    }
    let hi = initial.max().max(learned.max()).max(1e-12);
    let a = initial.heatmap(&format!("{name}: D₀ (initial)")).range(0.0, hi).precision(1);
    let b = learned.heatmap(&format!("{name}: learned D")).range(0.0, hi).precision(1);
    let diff = learned.to_array() - initial.to_array();
    let m = diff.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
    let c = Heatmap::new("learned D − D₀", diff, initial.names().to_vec(), initial.names().to_vec())
        .axis_labels("predicted class", "true class")
        .range(-m, m)
        .precision(2);
    Ok(plot::hstack(&[a.to_svg(), b.to_svg(), c.to_svg()]))
}

/// Fig. 6's evolution: `D` of every round as small multiples on one colour scale, without
/// the values (`grounds` as [`ReinforceHistory::grounds`] gives them).
pub fn evolution(grounds: &[GroundMatrix], name: &str) -> Svg {
    let hi = grounds.iter().map(|d| d.max()).fold(1e-12, f64::max);
    let parts: Vec<String> = grounds
        .iter()
        .enumerate()
        .map(|(r, d)| {
            let mut h = d.heatmap(&format!("{name}: D_{r}")).range(0.0, hi);
            h.annotate = false;
            h.to_svg()
        })
        .collect();
    plot::hstack(&parts)
}

/// One entry of `D` that changed: `D[truth][pred]` before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundChange {
    /// The true class.
    pub truth: String,
    /// The predicted class.
    pub pred: String,
    /// `D[truth][pred]` before.
    pub before: f64,
    /// `D[truth][pred]` after.
    pub after: f64,
}

/// The `k` largest increases and the `k` largest decreases from `before` to `after` (off the
/// diagonal), largest first: which confusions the learned matrix made more and less severe.
///
/// # Errors
/// The two matrices have different classes.
pub fn largest_changes(
    before: &GroundMatrix,
    after: &GroundMatrix,
    k: usize,
) -> Result<(Vec<GroundChange>, Vec<GroundChange>)> {
    if before.names() != after.names() {
        return Err(Error::invalid("largest_changes", "after", "the two ground matrices have different classes"));
    }
    let n = before.num_classes();
    let mut all: Vec<GroundChange> = (0..n * n)
        .filter(|i| i / n != i % n)
        .map(|i| GroundChange {
            truth: before.names()[i / n].clone(),
            pred: before.names()[i % n].clone(),
            before: before.get(i / n, i % n),
            after: after.get(i / n, i % n),
        })
        .collect();
    all.sort_by(|a, b| (b.after - b.before).total_cmp(&(a.after - a.before)));
    let up: Vec<GroundChange> = all.iter().take(k).filter(|c| c.after > c.before).cloned().collect();
    let down: Vec<GroundChange> = all.iter().rev().take(k).filter(|c| c.after < c.before).cloned().collect();
    Ok((up, down))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rwt-reinforce-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn tiny(name: &str, agent: bool) -> ReinforceConfig {
        let mut cfg = ReinforceConfig { name: name.into(), ..Default::default() };
        cfg.segmenter.model.width = 0.25;
        cfg.agent = agent.then(|| {
            let mut a = DriveConfig::default();
            a.env.max_steps = 6;
            a
        });
        let mut cfg = cfg.quick();
        cfg.segmenter.data.train_limit = Some(4);
        cfg.segmenter.data.eval_limit = Some(2);
        cfg.segmenter.data.size = Some([32, 64]);
        cfg.centroid_frames = 4;
        if let Some(a) = cfg.agent.as_mut() {
            a.rollout = 3;
            a.segment = 1;
            a.env.camera = [48, 96];
            a.total_steps = cfg.rounds * a.segment * a.steps_per_update();
        }
        cfg
    }

    /// The whole loop, straight through and stopped after its first round then resumed: the
    /// same matrices and the same evaluations; every D a valid ground matrix; the records
    /// and files in place.
    #[test]
    fn a_resumed_loop_repeats_the_rounds() {
        let cfg = tiny("resume", true);
        let (a, b) = (tmp("straight"), tmp("resumed"));
        let straight = reinforce(&cfg, &a, |_| {}).unwrap();
        assert_eq!(straight.history.rounds.len(), 2);
        for r in 0..=2 {
            assert!(ground_csv(&a, r).is_file(), "round-{r}.csv");
        }
        assert!(a.join("fig6.svg").is_file() && a.join("agent/checkpoint/state.txt").is_file());
        let agent = straight.history.rounds[1].agent.as_ref().unwrap();
        assert_eq!(agent.run_steps, 2 * cfg.agent.as_ref().unwrap().steps_per_update());

        // Stopped after its first round, then resumed.
        let first = reinforce_for(&cfg, &b, 1, |_| {}).unwrap();
        assert_eq!(first.history.rounds.len(), 1);
        assert!(!ground_csv(&b, 2).exists());
        let mut started = None;
        let resumed = reinforce(&cfg, &b, |e| {
            if let ReinforceEvent::Started { first_round, .. } = e {
                started = Some(*first_round)
            }
        })
        .unwrap();
        assert_eq!(started, Some(1));
        let key = |h: &ReinforceHistory| {
            h.rounds.iter().map(|r| (r.ground.clone(), r.next_ground.clone(), r.segmenter.miou)).collect::<Vec<_>>()
        };
        assert_eq!(key(&resumed.history), key(&straight.history));
        let grounds = Reinforced::read(&b).unwrap().history.grounds().unwrap();
        assert_eq!(grounds.len(), 3);
        // The CSV files hold the same matrices as the record, bit for bit.
        let classes = cfg.segmenter.classes().unwrap();
        assert_eq!(read_ground_csv(&ground_csv(&b, 2), classes).unwrap(), grounds[2]);
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    }

    #[test]
    fn a_missing_round_file_another_config_and_bad_values_are_errors() {
        let cfg = tiny("missing", false);
        let d = tmp("missing");
        reinforce(&cfg, &d, |_| {}).unwrap();
        // Resume at round 1 with D_1 gone.
        std::fs::write(d.join(STATE), "next_round = 1\n").unwrap();
        std::fs::remove_file(ground_csv(&d, 1)).unwrap();
        let err = reinforce(&cfg, &d, |_| {}).unwrap_err().to_string();
        assert!(err.contains("round-1.csv") && err.contains("missing"), "{err}");
        let mut other = cfg.clone();
        other.alpha = [5.0, 0.0];
        let err = reinforce(&other, &d, |_| {}).unwrap_err().to_string();
        assert!(err.contains("different reinforce config"), "{err}");
        let _ = std::fs::remove_dir_all(&d);

        let err = |f: &dyn Fn(&mut ReinforceConfig)| {
            let mut c = tiny("bad", true);
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(err(&|c| c.alpha = [-1.0, 0.0]).contains("alpha[0]"));
        assert!(err(&|c| c.alpha = [10.0, f64::NAN]).contains("alpha[1]"));
        assert!(err(&|c| c.rounds = 0).contains("rounds"));
        assert!(err(&|c| c.centroid_frames = 0).contains("centroid_frames"));
        assert!(err(&|c| c.segmenter.data.dataset = "camvid".into()).contains("19 classes"));
        assert!(err(&|c| {
            let a = c.agent.as_mut().unwrap();
            a.total_steps = 3 * a.segment * a.steps_per_update();
        })
        .contains("agent.total_steps"));
        assert!(err(&|c| c.segmenter.loss.kind = "soft-w".into()).contains("segmenter.loss.kind"));
        // An agent camera too small for the network on ENet's latent: named before anything is written.
        let mut small = tiny("small", true);
        small.agent.as_mut().unwrap().env.camera = [32, 64];
        let d = tmp("small");
        let e = reinforce(&small, &d, |_| {}).unwrap_err().to_string();
        assert!(e.contains("latent size"), "{e}");
        assert!(!d.exists(), "nothing written");
        let unknown = ReinforceConfig::from_toml("roundz = 3").unwrap_err().to_string();
        assert!(unknown.contains("roundz"), "{unknown}");
        let round = ReinforceConfig::from_toml(&tiny("toml", true).to_toml().unwrap()).unwrap();
        assert_eq!(round, tiny("toml", true));
    }

    /// A class absent from the centroid frames keeps its row and column of D_prev, and the
    /// record names it (the quick frames have no train, for instance).
    #[test]
    fn absent_classes_keep_their_costs() {
        let cfg = tiny("absent", false);
        let d = tmp("absent");
        let run = reinforce(&cfg, &d, |_| {}).unwrap();
        let r = &run.history.rounds[0];
        assert!(!r.absent.is_empty(), "a few 32×64 frames do not show all 19 classes");
        let n = r.ground.len();
        for name in &r.absent {
            let k = run.history.classes.iter().position(|c| c == name).unwrap();
            for j in 0..n {
                assert_eq!(r.next_ground[k][j], r.ground[k][j]);
                assert_eq!(r.next_ground[j][k], r.ground[j][k]);
            }
            assert_eq!(r.pixels[k], 0);
        }
        // The fixed-D control records the distances but keeps D.
        let mut fixed = cfg.clone();
        fixed.update = false;
        let e = tmp("fixed");
        let run = reinforce(&fixed, &e, |_| {}).unwrap();
        assert!(run.history.rounds.iter().all(|r| r.next_ground == r.ground && r.change == 0.0));
        assert!(run.history.rounds[0].distances.iter().flatten().any(|&v| v > 0.0));
        let _ = (std::fs::remove_dir_all(&d), std::fs::remove_dir_all(&e));
    }

    #[test]
    fn csv_round_trip_and_largest_changes() {
        // Huber of the preset: values with no short decimal form survive the CSV bit for bit.
        let classes = &crate::classes::CITYSCAPES;
        let d = GroundMatrix::severity(classes).transform(Transform::Huber { tau: 0.3 }).unwrap();
        let path = tmp("csv.csv");
        std::fs::write(&path, d.to_csv()).unwrap();
        assert_eq!(read_ground_csv(&path, classes).unwrap(), d);
        let _ = std::fs::remove_file(&path);
        let names = ["a", "b", "c"];
        let d0 = GroundMatrix::from_rows(names, [[0.0, 0.1, 0.3], [0.2, 0.0, 0.7], [1.0 / 3.0, 0.5, 0.0]]).unwrap();
        let d1 = GroundMatrix::from_rows(names, [[0.0, 0.4, 0.3], [0.2, 0.0, 0.5], [1.0 / 3.0, 0.5, 0.0]]).unwrap();
        let (up, down) = largest_changes(&d0, &d1, 2).unwrap();
        assert_eq!(up.len(), 1);
        assert_eq!((up[0].truth.as_str(), up[0].pred.as_str()), ("a", "b"));
        assert_eq!(down.len(), 1);
        assert_eq!((down[0].truth.as_str(), down[0].pred.as_str(), down[0].after), ("b", "c", 0.5));
        assert!(fig6(&d0, &d1, "t").unwrap().to_svg().contains("learned D − D₀"));
    }

    proptest! {
        /// Whatever the centroids, the previous matrix, f and α: the update is a valid ground
        /// matrix (zero diagonal, no negative or non-finite entry), between f(d) and D_prev
        /// entry-wise, and equal to D_prev where a class is absent.
        #[test]
        fn the_update_is_a_ground_matrix(
            centroids in proptest::collection::vec(-5.0f64..5.0, 4 * 3),
            prev in proptest::collection::vec(0.0f64..2.0, 16),
            present in proptest::collection::vec(any::<bool>(), 4),
            alpha in 0.0f64..20.0,
            rho in 0.5f64..3.0,
        ) {
            let names = ["a", "b", "c", "d"];
            let prev: Vec<f64> = prev.iter().enumerate().map(|(k, &v)| if k / 4 == k % 4 { 0.0 } else { v }).collect();
            let prev = GroundMatrix::from_flat(names.map(String::from).to_vec(), prev).unwrap();
            let c = ndarray::Array2::from_shape_vec((4, 3), centroids).unwrap();
            let learned = crate::ground::learned::centroid_distances(names, &c, &present).unwrap();
            let f = Transform::Power { rho };
            let next = reinforced_update(&prev, &learned, f, alpha).unwrap();
            let fd = learned.distances.transform(f).unwrap();
            for i in 0..4 {
                prop_assert_eq!(next.get(i, i), 0.0);
                for j in 0..4 {
                    let v = next.get(i, j);
                    prop_assert!(v.is_finite() && v >= 0.0);
                    if present[i] && present[j] {
                        let (lo, hi) = (fd.get(i, j).min(prev.get(i, j)), fd.get(i, j).max(prev.get(i, j)));
                        prop_assert!(v >= lo - 1e-12 && v <= hi + 1e-12);
                    } else {
                        prop_assert_eq!(v, prev.get(i, j));
                    }
                }
            }
        }
    }
}
