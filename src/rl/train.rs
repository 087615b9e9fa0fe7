//! Training the driving agent: segments of A2C updates over a [`VecEnv`] of the training town,
//! recorded into a run folder so that nothing is lost and an interrupted run resumes to the
//! same curve.
//!
//! ```text
//! for segment k:                       (every `segment` updates)
//!     reset actor i with seed  seed·10⁶ + k·N + i;  sampling RNG ← seeded(seed ⊕ k)
//!     behaviour ← current policy
//!     repeat `segment` times:
//!         collect T steps of N actors with the behaviour policy     (rl::collect)
//!         A2C update of the current policy                         (rl::A2c::update)
//!         every `lag` updates: behaviour ← current policy          (lag = 0: always)
//!     write history.json, then checkpoint/{agent,optimizer}.safetensors, then checkpoint/state.txt
//! ```
//!
//! With `agent.imitation_segments = m > 0` the first `m` segments imitate the scripted
//! [`Autopilot`] instead (DAgger, Ross et al. 2011; the paper's Table VI agents also learn from
//! demonstrations): the rollout stores the Autopilot's action for every state, each actor
//! executes it with probability `β_k = 1 − k/m` (else the policy's sample), and the update is
//! [`A2c::imitation_update`] (negative log-likelihood of the Autopilot's actions, plus A2C's
//! value and entropy terms). The A2C segments then start from the imitating policy and critic.
//! With `agent.imitation_coef = λ > 0` the A2C segments keep the Autopilot as a teacher: it
//! labels every state the policy visits (the policy alone drives) and the loss adds
//! `λ · (−mean log π(a*|s))` ([`A2cConfig::imitation_coef`]; its mean per segment is
//! [`SegmentRecord::imitation_loss`]). `agent.imitation_brake_weight = w` makes both cloning
//! losses weight the states in which the Autopilot brakes fully `w` times
//! ([`A2cConfig::imitation_brake_weight`]), and `agent.imitation_moving_brake_weight = m` those
//! given while the car moves `w · m` times ([`A2cConfig::imitation_moving_brake_weight`]: the
//! brakes that start a stop); every imitation segment records how often the
//! policy's most likely action braked fully where the Autopilot did, and where it did not
//! ([`SegmentRecord::brake_agreement`]). With `agent.dagger_states = n > 0` the imitation
//! updates keep DAgger's aggregated data set ([`super::Aggregate`], up to `n` states by
//! reservoir sampling) and clone from minibatches of it ([`A2c::dagger_update`]) instead of
//! from the rollout just collected.
//!
//! Everything random in a segment is a function of `(seed, k)`, and a segment's checkpoint holds
//! the weights, the optimiser's buffers, the update counter (and DAgger's aggregate), so
//! resuming from it repeats the rest of the run exactly (tested). The price: episodes still running at a segment's end are
//! cut there (they are not recorded; with `segment · T = max_steps` most have ended by then).
//!
//! A known limitation of this seeding: [`crate::sim::VecEnv`] gives actor `i`'s later episodes
//! the seeds `s + i + N`, `s + i + 2N`, …, so consecutive segments (`s = seed·10⁶ + k·N`)
//! replay overlapping episode seeds — a run of `K` segments draws about `K + E` distinct
//! episodes per actor (`E` episodes per actor and segment) instead of `K·E`. The policy differs
//! between replays, so the trajectories do too; a wider stride between segments would fix it at
//! the price of changing the recorded runs' episodes.
//!
//! Run folder:
//!
//! | file | what |
//! |---|---|
//! | `config.toml` | the [`DriveConfig`] |
//! | `history.json` | [`DriveHistory`]: every finished episode, a record per segment |
//! | `checkpoint/` | `agent.safetensors`, `optimizer.safetensors`, `state.txt` (written last); while imitating with `agent.dagger_states`, `dagger.safetensors` (the aggregate) |
//! | `segmenter.safetensors` | a copy of the frozen segmenter's weights (latent state) |
//! | `curves.svg` | episode reward, length and Drive % over steps; the loss terms |
//! | `imitation/` | with `agent.imitation_segments`: the policy when imitation ended, as a run folder |

use super::a2c::{A2c, BrakeAgreement, UpdateStats};
use super::collect::{collect_with, reset_states, CollectTimes, Expert, FinishedEpisode};
use super::config::DriveConfig;
use super::dagger::Aggregate;
use super::network::{ActorCritic, ActorCriticConfig};
use super::rollout::Rollout;
use super::state::{frozen_segmenter, StateEncoder};
use crate::models::weights;
use crate::plot::{self, LineChart, Svg};
use crate::sim::{Autopilot, DrivingEnv, Environment, InfractionKind, Observation, Termination, VecEnv};
use crate::{Error, Result};
use candle_core::Device;
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

const AGENT: &str = "agent.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.txt";
const SEGMENTER: &str = "segmenter.safetensors";
/// DAgger's aggregate in a checkpoint taken during the imitation segments (`agent.dagger_states > 0`).
const DAGGER: &str = "dagger.safetensors";
/// The subfolder holding the policy at the end of the imitation phase.
pub const IMITATION: &str = "imitation";

/// One finished training episode, as the history keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpisodeRecord {
    /// Environment steps of the run (all actors) when it ended.
    pub run_step: usize,
    /// The actor that drove it.
    pub actor: usize,
    /// Steps driven.
    pub steps: usize,
    /// The step limit.
    pub max_steps: usize,
    /// Metres driven.
    pub distance_m: f64,
    /// Sum of rewards.
    pub total_reward: f64,
    /// Why it ended.
    pub termination: Termination,
    /// Infractions per kind, in [`InfractionKind::ALL`]'s order.
    pub infractions: [usize; 5],
}

impl From<&FinishedEpisode> for EpisodeRecord {
    fn from(f: &FinishedEpisode) -> Self {
        let mut infractions = [0; 5];
        for i in &f.log.infractions {
            if let Some(k) = InfractionKind::ALL.iter().position(|&k| k == i.kind) {
                infractions[k] += 1;
            }
        }
        EpisodeRecord {
            run_step: f.run_step,
            actor: f.actor,
            steps: f.log.steps,
            max_steps: f.log.max_steps,
            distance_m: f.log.distance_m,
            total_reward: f.log.total_reward,
            termination: f.log.termination,
            infractions,
        }
    }
}

/// What one segment of updates did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// Segment index.
    pub segment: usize,
    /// Updates of the run after this segment.
    pub updates: usize,
    /// Environment steps of the run after this segment.
    pub run_steps: usize,
    /// Mean of the segment's applied updates: total loss, policy term, value MSE, entropy,
    /// gradient norm before clipping.
    pub loss: f64,
    /// See `loss`.
    pub policy_loss: f64,
    /// See `loss`.
    pub value_loss: f64,
    /// See `loss`.
    pub entropy: f64,
    /// See `loss`.
    pub grad_norm: f64,
    /// Learning rate of the segment's last update.
    pub learning_rate: f64,
    /// Why updates were skipped (non-finite loss or gradient), one line each.
    pub skipped: Vec<String>,
    /// Episodes that ended in the segment.
    pub episodes: usize,
    /// Wall-clock seconds of the segment.
    pub seconds: f64,
    /// Environment steps per second of the whole loop.
    pub steps_per_second: f64,
    /// Seconds in simulation + rendering, the segmenter's latent, the policy's forward pass,
    /// and the update.
    pub env_s: f64,
    /// See `env_s`.
    pub latent_s: f64,
    /// See `env_s`.
    pub policy_s: f64,
    /// See `env_s`.
    pub update_s: f64,
    /// Means of the segment's sampled actions in the environment's units: `|steer|`,
    /// throttle, brake — what the policy has become (e.g. a categorical policy that collapses
    /// onto full throttle); in imitation segments, of the Autopilot's actions that label the
    /// states (what the rollout stores). Records written before this field read as zeros.
    #[serde(default)]
    pub action_means: [f64; 3],
    /// Imitation segments (`agent.imitation_segments`): the probability with which an actor
    /// executed the Autopilot's action (DAgger's β); 0 in A2C segments.
    #[serde(default)]
    pub expert_share: f64,
    /// A2C segments with `agent.imitation_coef > 0`: mean of the behaviour-cloning term
    /// `−mean(log π(a*|s))` (nats) over the applied updates; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imitation_loss: Option<f64>,
    /// Imitation segments: how the policy's most likely action agreed with the Autopilot's
    /// labels about braking fully, summed over the segment's updates, each counted before its
    /// first gradient step (on states the update had not yet trained on); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brake_agreement: Option<BrakeAgreement>,
}

/// The record of a run: every finished episode and every segment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DriveHistory {
    /// The run's name.
    pub name: String,
    /// Finished training episodes, in order.
    pub episodes: Vec<EpisodeRecord>,
    /// Segments, in order.
    pub segments: Vec<SegmentRecord>,
}

impl DriveHistory {
    /// Reads `history.json`; the error names the file.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = crate::io::read_text(path)?;
        serde_json::from_str(&text).map_err(|e| Error::invalid("drive history", path.display(), e.to_string()))
    }

    /// Keeps the records of the first `segments` segments (when resuming).
    pub fn truncate(&mut self, segments: usize) {
        self.segments.truncate(segments);
        let end = self.segments.last().map_or(0, |s| s.run_steps);
        self.episodes.retain(|e| e.run_step <= end);
    }

    /// Moving averages over the last `window` episodes of `(run step, value)`.
    pub fn moving_average(&self, window: usize, value: impl Fn(&EpisodeRecord) -> f64) -> Vec<(f64, f64)> {
        let window = window.max(1);
        let values: Vec<f64> = self.episodes.iter().map(&value).collect();
        let mut sum = 0.0;
        let mut out = Vec::with_capacity(values.len());
        for (i, e) in self.episodes.iter().enumerate() {
            sum += values[i];
            if i >= window {
                sum -= values[i - window];
            }
            out.push((e.run_step as f64, sum / (i + 1).min(window) as f64));
        }
        out
    }

    /// The curves: episode reward, length and Drive % (moving average over 100 episodes)
    /// against environment steps, and the segments' loss terms.
    pub fn curves(&self) -> Svg {
        let w = 100;
        let reward = LineChart::new("episode reward", "environment steps", "reward (mean of 100)")
            .size(330, 260)
            .line(&self.name, self.moving_average(w, |e| e.total_reward));
        let length = LineChart::new("episode length", "environment steps", "steps (mean of 100)")
            .size(330, 260)
            .line(&self.name, self.moving_average(w, |e| e.steps as f64));
        let km = LineChart::new("distance per episode", "environment steps", "metres (mean of 100)")
            .size(330, 260)
            .line(&self.name, self.moving_average(w, |e| e.distance_m));
        let at = |s: &SegmentRecord| s.run_steps as f64;
        let losses = LineChart::new("A2C losses", "environment steps", "per segment")
            .size(330, 260)
            .line("value MSE", self.segments.iter().map(|s| (at(s), s.value_loss)))
            .line("entropy", self.segments.iter().map(|s| (at(s), s.entropy)))
            .line("policy", self.segments.iter().map(|s| (at(s), s.policy_loss)));
        plot::hstack(&[reward.to_svg(), length.to_svg(), km.to_svg(), losses.to_svg()])
    }
}

/// What [`train`] reports as it goes.
#[derive(Debug)]
pub enum DriveEvent<'a> {
    /// The run (re)starts at `first_update` of `total_updates`.
    Started {
        /// The run's name.
        name: &'a str,
        /// First update of this invocation (0, or where a resumed run continues).
        first_update: usize,
        /// Updates of the whole run.
        total_updates: usize,
    },
    /// An update was made (or skipped).
    Update {
        /// Updates of the run so far (this one included).
        update: usize,
        /// Updates of the whole run.
        total_updates: usize,
        /// What the update did.
        stats: &'a UpdateStats,
        /// Environment steps per second of this segment so far.
        steps_per_second: f64,
        /// Mean reward of the last 100 finished episodes (`None` before the first).
        mean_reward: Option<f64>,
    },
    /// A segment ended and was checkpointed.
    Segment(&'a SegmentRecord),
}

/// A trained (or partly trained) agent with the state encoder it drives with.
pub struct TrainedAgent {
    /// The run folder.
    pub dir: PathBuf,
    /// The agent's variables.
    pub varmap: VarMap,
    /// The agent.
    pub net: ActorCritic,
    /// The state encoder (frozen segmenter or label maps).
    pub encoder: StateEncoder,
    /// The run's record.
    pub history: DriveHistory,
}

impl std::fmt::Debug for TrainedAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedAgent")
            .field("dir", &self.dir)
            .field("segments", &self.history.segments.len())
            .field("episodes", &self.history.episodes.len())
            .finish_non_exhaustive()
    }
}

/// The weights file `state.segmenter` names (a `.safetensors` file, checkpoint or run
/// folder); `None` without one. Errors name the path.
pub fn segmenter_weights(cfg: &DriveConfig) -> Result<Option<PathBuf>> {
    match (&cfg.state.segmenter, cfg.state.kind.as_str()) {
        (Some(path), "latent") => crate::train::init_weights_path(path).map(Some).map_err(|_| {
            Error::invalid(
                "state.segmenter",
                path.display(),
                "is neither a .safetensors file nor a run or checkpoint folder",
            )
        }),
        _ => Ok(None),
    }
}

/// The state encoder `cfg` describes: the frozen segmenter (with the weights of `weights`, or
/// of `state.segmenter` when `weights` is `None`) or the privileged label maps at ENet's
/// stride 8. Errors name a missing or mismatched weights file.
pub fn state_encoder_with(cfg: &DriveConfig, weights_file: Option<&Path>, device: &Device) -> Result<StateEncoder> {
    let encoder = match cfg.state.kind.as_str() {
        "labels" => StateEncoder::label_maps(crate::classes::CITYSCAPES.len(), 8, device),
        _ => {
            let kind = cfg.model_kind()?;
            let seg_cfg = cfg.segmenter_config();
            let (varmap, _) = weights::build_seeded(kind, &seg_cfg, device, cfg.seed)?;
            let file = match weights_file {
                Some(f) => Some(f.to_path_buf()),
                None => segmenter_weights(cfg)?,
            };
            if let Some(file) = file {
                weights::load(&varmap, file, true)?;
            }
            let encoder = StateEncoder::new(frozen_segmenter(kind, &seg_cfg, &varmap, device)?, device);
            if cfg.state.standardize {
                let frames = standardization_frames(cfg)?;
                encoder.with_standardize_from(&frames.iter().collect::<Vec<_>>())
            } else {
                Ok(encoder)
            }
        }
    }?;
    Ok(encoder.with_route(cfg.state.route).with_free_ahead(cfg.state.free_ahead))
}

/// The frames `state.standardize` takes the latent's statistics from: the scripted
/// [`Autopilot`] drives 8 episodes of the run's environment (`env`; seeds 1 000 000 + k, off
/// every training and benchmark seed) and every 15th frame of the first 120 steps is kept —
/// 64 frames when no episode ends early. The same config gives the same frames, so training,
/// resuming and evaluation standardise alike without storing anything. Errors: the
/// environment's.
pub fn standardization_frames(cfg: &DriveConfig) -> Result<Vec<Observation>> {
    let mut env = DrivingEnv::new(cfg.env_config()?)?;
    let pilot = Autopilot::default();
    let mut frames = Vec::with_capacity(64);
    for k in 0..8u64 {
        let mut obs = env.reset(1_000_000 + k)?;
        for step in 0..120 {
            if step % 15 == 0 {
                frames.push(obs.clone());
            }
            let t = env.step(pilot.act(&env))?;
            if t.done() {
                break;
            }
            obs = t.observation;
        }
    }
    Ok(frames)
}

/// [`state_encoder_with`] the weights `state.segmenter` names.
pub fn state_encoder(cfg: &DriveConfig, device: &Device) -> Result<StateEncoder> {
    state_encoder_with(cfg, None, device)
}

/// The agent `cfg` describes for `encoder`'s state, seeded by `cfg.seed` (with the Beta
/// policy's [`super::network::drive_forward_prior`] when `agent.forward_prior`), or with the
/// weights of `agent.init` (whose shapes must match: the error names the tensor).
pub fn agent(cfg: &DriveConfig, encoder: &StateEncoder, device: &Device) -> Result<(VarMap, ActorCritic)> {
    let [h, w] = cfg.env.camera;
    let (c, lh, lw) = encoder.latent_shape(h as usize, w as usize)?;
    let net_cfg = ActorCriticConfig::for_latent(c, lh, lw)
        .with_action_space(cfg.action_space()?)
        .with_measurements(encoder.measurements_len());
    let (varmap, net) = ActorCritic::seeded(&net_cfg, device, cfg.seed)?;
    if cfg.agent.forward_prior {
        super::network::drive_forward_prior(&varmap, net_cfg.action_space, cfg.agent.steer_prior)?;
    }
    if let Some(init) = &cfg.agent.init {
        weights::load(&varmap, agent_weights_path(init)?, true)?;
    }
    Ok((varmap, net))
}

/// The agent weights file `agent.init` names: a `.safetensors` file, an agent's checkpoint
/// folder or its run folder. The error names the path.
pub fn agent_weights_path(path: &Path) -> Result<PathBuf> {
    [path.to_path_buf(), path.join(AGENT), path.join("checkpoint").join(AGENT)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(
                "agent.init",
                path.display(),
                "is neither a .safetensors file nor an agent's run or checkpoint folder",
            )
        })
}

/// Copies every variable of `from` into the same-named variable of `to`.
pub fn copy_weights(from: &VarMap, to: &VarMap) -> Result<()> {
    let src = from.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let dst = to.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    for (name, var) in dst.iter() {
        let s = src.get(name).ok_or_else(|| Error::invalid("weights", name, "missing in the source network"))?;
        var.set(s.as_tensor())?;
    }
    Ok(())
}

/// The seed of actor `i`'s first episode in segment `k`.
fn segment_env_seed(cfg: &DriveConfig, k: usize) -> u64 {
    cfg.seed.wrapping_mul(1_000_000).wrapping_add((k * cfg.actors) as u64)
}

/// Trains as `cfg` says, recording into `dir` (see the module docs); `observe` sees every
/// update and segment. Resumes from `dir/checkpoint` when it was written by the same config.
/// Errors: an invalid config (naming the field), a run folder holding another config's
/// checkpoint, an unreadable checkpoint, an environment that fails mid-rollout (naming the
/// step); non-finite updates are skipped and recorded, not applied.
pub fn train(cfg: &DriveConfig, dir: impl AsRef<Path>, observe: impl FnMut(&DriveEvent)) -> Result<TrainedAgent> {
    train_for(cfg, dir, usize::MAX, observe)
}

/// [`train`], stopping after at most `max_segments` segments of this invocation (a notebook's
/// "train a little more"; the next call resumes).
pub fn train_for(
    cfg: &DriveConfig,
    dir: impl AsRef<Path>,
    max_segments: usize,
    observe: impl FnMut(&DriveEvent),
) -> Result<TrainedAgent> {
    train_segments(cfg, dir, |first| first.saturating_add(max_segments), observe)
}

/// [`train`] up to segment `end` of the run (exclusive; at most the run's last): the
/// reinforced ground matrix's rounds ([`super::reinforce()`]) each train the agent to the end of
/// their share of one run, so that a round resumed after a stop trains only what is missing.
pub fn train_until(
    cfg: &DriveConfig,
    dir: impl AsRef<Path>,
    end: usize,
    observe: impl FnMut(&DriveEvent),
) -> Result<TrainedAgent> {
    train_segments(cfg, dir, |_| end, observe)
}

/// The segments `first..end(first)` of the run (`first`: where the checkpoint stands).
fn train_segments(
    cfg: &DriveConfig,
    dir: impl AsRef<Path>,
    end: impl FnOnce(usize) -> usize,
    mut observe: impl FnMut(&DriveEvent),
) -> Result<TrainedAgent> {
    cfg.validate()?;
    let device = Device::Cpu;
    let env_cfg = cfg.env_config()?;
    let mut env = VecEnv::driving(&env_cfg, cfg.actors)?;
    let mut encoder = state_encoder(cfg, &device)?;
    let (varmap, net) = agent(cfg, &encoder, &device)?;
    // The lagging copy the actors act with, only when `agent.lag > 0`.
    let behaviour = if cfg.agent.lag > 0 { Some(agent(cfg, &encoder, &device)?) } else { None };
    let mut a2c = A2c::new(cfg.a2c_config()?, &varmap)?;
    let total_updates = cfg.total_updates();

    // Only now, with everything built, is anything written.
    let dir = dir.as_ref().to_path_buf();
    std::fs::create_dir_all(&dir).map_err(|e| Error::Io { path: dir.clone(), source: e })?;
    let ckpt = dir.join("checkpoint");
    let resuming = ckpt.join(STATE).is_file();
    let toml = cfg.to_toml()?;
    crate::train::checkpoint::claim_run_folder(&dir, "drive config", cfg, &toml, resuming, |p| {
        DriveConfig::from_file(p)
    })?;
    // The segmenter the agent drives with travels with the run (`load` prefers this copy).
    if let Some(file) = segmenter_weights(cfg)? {
        let bytes = std::fs::read(&file).map_err(|e| Error::Io { path: file.clone(), source: e })?;
        crate::io::write_atomic(dir.join(SEGMENTER), &bytes)?;
    }
    let mut history = DriveHistory { name: cfg.name.clone(), ..Default::default() };
    let mut first_segment = 0;
    if resuming {
        let (segment, updates) = load_checkpoint(&ckpt, &varmap, &mut a2c)?;
        history = DriveHistory::read(dir.join("history.json"))?;
        if history.segments.len() < segment {
            return Err(Error::invalid(
                "history.json",
                dir.join("history.json").display(),
                format!("holds {} segments but the checkpoint is after segment {segment}", history.segments.len()),
            ));
        }
        history.truncate(segment);
        first_segment = segment;
        a2c.set_updates(updates);
    }
    // DAgger's aggregate (agent.dagger_states): every state of the imitation segments so far.
    let mut aggregate = match cfg.agent.dagger_states {
        0 => None,
        n if first_segment == 0 => Some(Aggregate::new(n)?),
        _ if first_segment >= cfg.agent.imitation_segments => None,
        n => Some(Aggregate::from_tensors(n, &weights::read(ckpt.join(DAGGER))?)?),
    };
    let space = cfg.action_space()?;
    let segments = total_updates / cfg.segment;
    observe(&DriveEvent::Started { name: &cfg.name, first_update: first_segment * cfg.segment, total_updates });
    for k in first_segment..segments.min(end(first_segment)) {
        let t_segment = Instant::now();
        let mut rng = crate::random::seeded(cfg.seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut rollout = Rollout::new(cfg.rollout, cfg.actors)?;
        rollout.begin(&reset_states(&mut env, &mut encoder, segment_env_seed(cfg, k))?)?;
        if let Some((behaviour_vars, _)) = &behaviour {
            copy_weights(&varmap, behaviour_vars)?;
        }
        let mut run_steps = k * cfg.segment * cfg.steps_per_update();
        let (mut times, mut update_s) = (CollectTimes::default(), 0.0);
        let (mut sums, mut applied, mut skipped, mut ended) = ([0.0f64; 5], 0usize, vec![], 0usize);
        let mut imitation_sum = None::<f64>;
        let mut brakes = None::<BrakeAgreement>;
        let mut last_rate = 0.0;
        let (mut action_sums, mut action_count) = ([0.0f64; 3], 0usize);
        // The first `imitation_segments` segments imitate the Autopilot (DAgger): its share of
        // the executed actions falls linearly from 1.
        let imitating = cfg.agent.imitation_segments;
        let share = (k < imitating).then(|| 1.0 - k as f64 / imitating as f64);
        let autopilot = Autopilot { pass_static: cfg.agent.imitation_passes, ..Autopilot::default() };
        let expert_act = |e: &DrivingEnv| autopilot.act(e);
        let expert = match share {
            Some(share) => Some(Expert { act: &expert_act, share, relabel: true }),
            // A2C with a behaviour-cloning term: the policy drives, the Autopilot labels.
            None if cfg.agent.imitation_coef > 0.0 => Some(Expert { act: &expert_act, share: 0.0, relabel: false }),
            None => None,
        };
        for _ in 0..cfg.segment {
            let acting = behaviour.as_ref().map_or(&net, |(_, b)| b);
            let (finished, t) =
                collect_with(&mut env, &mut encoder, acting, &mut rollout, &mut rng, &mut run_steps, expert.as_ref())?;
            times.add(&t);
            for a in space.actions(&rollout.actions()?.flatten(0, 1)?)? {
                for (sum, v) in action_sums.iter_mut().zip([a.steer.abs(), a.throttle, a.brake]) {
                    *sum += v as f64;
                }
                action_count += 1;
            }
            ended += finished.len();
            history.episodes.extend(finished.iter().map(EpisodeRecord::from));
            let t0 = Instant::now();
            let stats = if let (Some(_), Some(aggregate)) = (share, aggregate.as_mut()) {
                a2c.dagger_update(&net, &rollout, cfg.agent.imitation_epochs, aggregate, &mut rng)?
            } else if share.is_some() {
                a2c.imitation_update(&net, &rollout, cfg.agent.imitation_epochs)?
            } else {
                a2c.update(&net, &rollout)?
            };
            update_s += t0.elapsed().as_secs_f64();
            if let Some(b) = &stats.brake_agreement {
                brakes.get_or_insert_with(BrakeAgreement::default).add(b);
            }
            match &stats.skipped {
                Some(why) => skipped.push(why.clone()),
                None => {
                    applied += 1;
                    for (s, v) in sums.iter_mut().zip([
                        stats.loss,
                        stats.policy_loss,
                        stats.value_loss,
                        stats.entropy,
                        stats.grad_norm,
                    ]) {
                        *s += v;
                    }
                    if let Some(v) = stats.imitation_loss {
                        *imitation_sum.get_or_insert(0.0) += v;
                    }
                }
            }
            last_rate = stats.learning_rate;
            if let Some((behaviour_vars, _)) = behaviour.as_ref().filter(|_| a2c.updates() % cfg.agent.lag == 0) {
                copy_weights(&varmap, behaviour_vars)?;
            }
            rollout.carry_over()?;
            let elapsed = t_segment.elapsed().as_secs_f64();
            let done_steps = run_steps - k * cfg.segment * cfg.steps_per_update();
            let recent = &history.episodes[history.episodes.len().saturating_sub(100)..];
            let mean_reward =
                (!recent.is_empty()).then(|| recent.iter().map(|e| e.total_reward).sum::<f64>() / recent.len() as f64);
            observe(&DriveEvent::Update {
                update: a2c.updates(),
                total_updates,
                stats: &stats,
                steps_per_second: done_steps as f64 / elapsed.max(1e-9),
                mean_reward,
            });
        }
        let seconds = t_segment.elapsed().as_secs_f64();
        let mean = |i: usize| if applied > 0 { sums[i] / applied as f64 } else { f64::NAN };
        let steps = cfg.segment * cfg.steps_per_update();
        history.segments.push(SegmentRecord {
            segment: k,
            updates: a2c.updates(),
            run_steps,
            loss: mean(0),
            policy_loss: mean(1),
            value_loss: mean(2),
            entropy: mean(3),
            grad_norm: mean(4),
            learning_rate: last_rate,
            skipped,
            episodes: ended,
            seconds,
            steps_per_second: steps as f64 / seconds.max(1e-9),
            env_s: times.env_s,
            latent_s: times.latent_s,
            policy_s: times.policy_s,
            update_s,
            action_means: action_sums.map(|v| v / action_count.max(1) as f64),
            expert_share: share.unwrap_or(0.0),
            imitation_loss: imitation_sum.map(|v| v / applied.max(1) as f64),
            brake_agreement: brakes,
        });
        // History first, then the checkpoint whose state.txt marks the segment as done.
        crate::train::report::write_json(dir.join("history.json"), &history)?;
        let imitating_after = k + 1 < cfg.agent.imitation_segments;
        if let Some(a) = aggregate.as_ref().filter(|_| imitating_after) {
            weights::save_tensors(&a.tensors()?, ckpt.join(DAGGER))?;
        }
        save_checkpoint(&ckpt, &varmap, &a2c, k + 1)?;
        if !imitating_after && aggregate.take().is_some() {
            // Imitation is over: the aggregate is not needed to resume any more.
            let _ = std::fs::remove_file(ckpt.join(DAGGER));
        }
        crate::io::write_atomic(dir.join("curves.svg"), history.curves().to_svg().as_bytes())?;
        if k + 1 == cfg.agent.imitation_segments {
            save_imitation_snapshot(&dir, cfg, &history, &varmap)?;
        }
        if let Some(s) = history.segments.last() {
            observe(&DriveEvent::Segment(s));
        }
    }
    Ok(TrainedAgent { dir, varmap, net, encoder, history })
}

/// The policy at the end of the imitation phase, kept as a run folder of its own,
/// `<run>/imitation/` (`config.toml`, `history.json` of the imitation segments,
/// `checkpoint/agent.safetensors`; the config named `<name> after imitation`), so that
/// [`load`] and `rwt drive eval` take it as an agent:
/// the benchmark then shows what A2C added to (or took from) the imitating policy.
fn save_imitation_snapshot(run: &Path, cfg: &DriveConfig, history: &DriveHistory, varmap: &VarMap) -> Result<()> {
    let dir = run.join(IMITATION);
    let ckpt = dir.join("checkpoint");
    std::fs::create_dir_all(&ckpt).map_err(|e| Error::Io { path: ckpt.clone(), source: e })?;
    // Named apart from the run, so that benchmark rows tell the two policies apart.
    let snapshot = DriveConfig { name: format!("{} after imitation", cfg.name), ..cfg.clone() };
    crate::io::write_atomic(dir.join("config.toml"), snapshot.to_toml()?.as_bytes())?;
    crate::train::report::write_json(dir.join("history.json"), history)?;
    weights::save(varmap, ckpt.join(AGENT))
}

/// Writes the agent's weights, the optimiser's buffers and `state.txt` (last) into `dir`.
fn save_checkpoint(dir: &Path, varmap: &VarMap, a2c: &A2c, next_segment: usize) -> Result<()> {
    weights::save(varmap, dir.join(AGENT))?;
    weights::save_tensors(&a2c.optimizer().state(), dir.join(OPTIMIZER))?;
    let state = format!("next_segment = {next_segment}\nupdates = {}\nskipped = {}\n", a2c.updates(), a2c.skipped());
    crate::io::write_atomic(dir.join(STATE), state.as_bytes())
}

/// Restores a checkpoint into `varmap` and `a2c`'s optimiser; returns (next segment, updates).
/// Errors name the missing file or field.
fn load_checkpoint(dir: &Path, varmap: &VarMap, a2c: &mut A2c) -> Result<(usize, usize)> {
    let state = crate::train::checkpoint::StateFile::read(dir.join(STATE))?;
    let (segment, updates) = (state.count("next_segment")?, state.count("updates")?);
    for name in [AGENT, OPTIMIZER] {
        if !dir.join(name).is_file() {
            return Err(Error::invalid("checkpoint", dir.join(name).display(), "is missing"));
        }
    }
    weights::load(varmap, dir.join(AGENT), true)?;
    a2c.optimizer_mut().load_state(&weights::read(dir.join(OPTIMIZER))?)?;
    Ok((segment, updates))
}

/// Loads a trained agent from a run folder: its config, state encoder (the run's own copy of
/// the segmenter, `segmenter.safetensors`, when it has one), the checkpoint's weights and the
/// history. Errors name the missing file.
pub fn load(dir: impl AsRef<Path>) -> Result<TrainedAgent> {
    let dir = dir.as_ref().to_path_buf();
    let cfg = DriveConfig::from_file(dir.join("config.toml"))?;
    let device = Device::Cpu;
    let own = dir.join(SEGMENTER);
    let encoder = state_encoder_with(&cfg, own.is_file().then_some(own.as_path()), &device)?;
    let (varmap, net) = agent(&cfg, &encoder, &device)?;
    let file = dir.join("checkpoint").join(AGENT);
    if !file.is_file() {
        return Err(Error::invalid("agent weights", file.display(), "is missing: train the run first"));
    }
    weights::load(&varmap, &file, true)?;
    let history = DriveHistory::read(dir.join("history.json"))?;
    Ok(TrainedAgent { dir, varmap, net, encoder, history })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(name: &str) -> DriveConfig {
        let mut cfg = DriveConfig { name: name.into(), ..Default::default() }.quick();
        cfg.env.max_steps = 6;
        cfg.rollout = 3;
        cfg.segment = 2;
        cfg.total_steps = 3 * cfg.segment * cfg.steps_per_update();
        cfg
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rwt-drive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// Three segments straight through, and the same run stopped after one segment then
    /// resumed: the same episodes, the same losses, bit for bit.
    #[test]
    fn a_resumed_run_repeats_the_curve() {
        let cfg = tiny("resume");
        let (a, b) = (tmp("straight"), tmp("resumed"));
        let straight = train(&cfg, &a, |_| {}).unwrap();
        assert_eq!(straight.history.segments.len(), 3);
        assert!(!straight.history.episodes.is_empty(), "6-step episodes end within 6 steps");

        let first = train_for(&cfg, &b, 1, |_| {}).unwrap();
        assert_eq!(first.history.segments.len(), 1);
        let mut started = None;
        let resumed = train(&cfg, &b, |e| {
            if let DriveEvent::Started { first_update, .. } = e {
                started = Some(*first_update)
            }
        })
        .unwrap();
        assert_eq!(started, Some(cfg.segment));
        assert_eq!(resumed.history.episodes, straight.history.episodes);
        let losses = |h: &DriveHistory| h.segments.iter().map(|s| (s.updates, s.loss, s.entropy)).collect::<Vec<_>>();
        assert_eq!(losses(&resumed.history), losses(&straight.history));
        // The sampled actions' means: the same when resumed, and (6 small updates from the
        // forward prior, 36 samples) near the prior's closed forms — |2u − 1| of Beta(1.5, 1.5)
        // has mean 4 / (3π) (a semicircle density on [−1, 1]), throttle 3 / 4.25, brake
        // 1.25 / 7.25 — within 0.15, over 3 standard errors of 36 samples.
        let means = |h: &DriveHistory| h.segments.iter().map(|s| s.action_means).collect::<Vec<_>>();
        assert_eq!(means(&resumed.history), means(&straight.history));
        let avg = |i: usize| means(&straight.history).iter().map(|m| m[i]).sum::<f64>() / 3.0;
        let want = [4.0 / (3.0 * std::f64::consts::PI), 3.0 / 4.25, 1.25 / 7.25];
        for (i, w) in want.iter().enumerate() {
            assert!((avg(i) - w).abs() < 0.15, "action mean {i}: {} against the prior's {w}", avg(i));
        }
        assert!(b.join("curves.svg").is_file());
        let loaded = load(&b).unwrap();
        assert_eq!(loaded.history.segments.len(), 3);
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    }

    #[test]
    fn another_configs_folder_and_broken_checkpoints_are_errors() {
        let cfg = tiny("clash");
        let d = tmp("clash");
        train_for(&cfg, &d, 1, |_| {}).unwrap();
        let mut other = cfg.clone();
        other.agent.lr = 1e-3;
        let err = train(&other, &d, |_| {}).unwrap_err().to_string();
        assert!(err.contains("different drive config"), "{err}");
        // A checkpoint without its optimiser file names the file.
        std::fs::remove_file(d.join("checkpoint").join(OPTIMIZER)).unwrap();
        let err = train(&cfg, &d, |_| {}).unwrap_err().to_string();
        assert!(err.contains("optimizer.safetensors") && err.contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&d);
        // A segmenter path that holds no weights.
        let mut bad = tiny("bad");
        bad.state.segmenter = Some("no/such/run".into());
        let err = train(&bad, tmp("bad"), |_| {}).unwrap_err().to_string();
        assert!(err.contains("state.segmenter") && err.contains("no/such/run"), "{err}");
    }

    /// `agent.init` starts from another run's weights (the first update sees them, not the
    /// seeded ones); a path without weights is named.
    #[test]
    fn init_from_a_trained_agent() {
        let cfg = tiny("init-src");
        let d = tmp("init-src");
        let src = train(&cfg, &d, |_| {}).unwrap();
        let mut from = tiny("init");
        from.agent.init = Some(d.clone());
        from.total_steps = from.segment * from.steps_per_update();
        let e = tmp("init");
        // No update yet: the weights are the source's.
        let started = train_for(&from, &e, 0, |_| {}).unwrap();
        // Every variable, by name, element for element.
        let get = |v: &VarMap| {
            let mut all: Vec<(String, Vec<f32>)> = v
                .data()
                .lock()
                .unwrap()
                .iter()
                .map(|(k, t)| (k.clone(), t.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };
        assert_eq!(get(&started.varmap), get(&src.varmap));
        let (fresh, _) = agent(&tiny("init"), &started.encoder, &Device::Cpu).unwrap();
        assert_ne!(get(&fresh), get(&src.varmap), "the seeded weights differ from the source's");
        let mut bad = tiny("init-bad");
        bad.agent.init = Some("no/such/agent".into());
        let err = train(&bad, tmp("init-bad"), |_| {}).unwrap_err().to_string();
        assert!(err.contains("agent.init") && err.contains("no/such/agent"), "{err}");
        let _ = (std::fs::remove_dir_all(&d), std::fs::remove_dir_all(&e));
    }

    /// Two imitation segments of three (DAgger shares 1 and ½, recorded), then A2C with a
    /// behaviour-cloning term (`imitation_coef`), the route in the measurements and the
    /// 45-action space; the imitation segments' stored actions are the
    /// Autopilot's, so their action means are its (no brake from rest on an empty start, some
    /// throttle); the run resumes to the same curve after a stop inside the imitation phase.
    #[test]
    fn imitation_segments_then_a2c_resume_to_the_same_curve() {
        let mut cfg = tiny("imitate");
        cfg.state.kind = "labels".into();
        cfg.state.route = true;
        cfg.agent.action_space = "fine".into();
        cfg.agent.imitation_segments = 2;
        cfg.agent.imitation_epochs = 2;
        cfg.agent.reward_scale = 0.1;
        cfg.agent.imitation_coef = 0.5;
        let (a, b) = (tmp("imitate-a"), tmp("imitate-b"));
        let straight = train(&cfg, &a, |_| {}).unwrap();
        let shares: Vec<f64> = straight.history.segments.iter().map(|s| s.expert_share).collect();
        assert_eq!(shares, [1.0, 0.5, 0.0]);
        // The A2C segment carries the behaviour-cloning term (a negative log-likelihood of 45
        // actions: positive), the imitation segments do not record it.
        let cloning: Vec<_> = straight.history.segments.iter().map(|s| s.imitation_loss).collect();
        assert!(cloning[..2].iter().all(Option::is_none), "{cloning:?}");
        assert!(cloning[2].is_some_and(|v| v.is_finite() && v > 0.0), "{cloning:?}");
        assert_eq!(straight.net.config().measurements, crate::sim::Measurements::LEN_WITH_ROUTE);
        assert!(straight.history.segments.iter().all(|s| s.loss.is_finite() && s.skipped.is_empty()));
        // Imitation updates count one scheduled update per rollout, whatever the epochs.
        assert_eq!(straight.history.segments[1].updates, 2 * cfg.segment);
        assert!(straight.history.segments[0].action_means[1] > 0.0);
        // The imitation segments count, over every labelled state of their updates, how the
        // policy's most likely action agreed with the Autopilot's full brakes; A2C segments not.
        for s in &straight.history.segments[..2] {
            let b = s.brake_agreement.expect("an imitation segment's brake agreement");
            assert_eq!(b.expert_brakes + b.expert_goes, cfg.segment * cfg.rollout * cfg.actors);
            assert!(b.both_brake <= b.expert_brakes && b.policy_brakes_alone <= b.expert_goes);
        }
        assert!(straight.history.segments[2].brake_agreement.is_none());
        // The policy at the end of imitation is kept as a run folder: it loads, with the two
        // imitation segments, and differs from the final (A2C-trained) weights.
        let snapshot = load(a.join(IMITATION)).unwrap();
        assert_eq!(snapshot.history.segments.len(), 2);
        assert_eq!(
            DriveConfig::from_file(a.join(IMITATION).join("config.toml")).unwrap().name,
            "imitate after imitation"
        );
        let w = |vm: &VarMap| {
            vm.data().lock().unwrap()["policy.out.weight"].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_ne!(w(&snapshot.varmap), w(&straight.varmap));
        train_for(&cfg, &b, 1, |_| {}).unwrap();
        let resumed = train(&cfg, &b, |_| {}).unwrap();
        assert_eq!(resumed.history.episodes, straight.history.episodes);
        let losses =
            |h: &DriveHistory| h.segments.iter().map(|s| (s.loss, s.entropy, s.expert_share)).collect::<Vec<_>>();
        assert_eq!(losses(&resumed.history), losses(&straight.history));
        let _ = (std::fs::remove_dir_all(&a), std::fs::remove_dir_all(&b));
    }

    /// DAgger's aggregate (`agent.dagger_states`) smaller than the imitation phase's states
    /// (reservoir sampling in play): the checkpoint taken inside the imitation phase holds
    /// it (and the run resumes from it to the same curve, bit for bit), the one after
    /// imitation drops it; the aggregate changes the imitation losses against the same run
    /// without it.
    #[test]
    fn a_dagger_aggregate_resumes_to_the_same_curve() {
        let mut cfg = tiny("dagger");
        cfg.state.kind = "labels".into();
        cfg.agent.action_space = "fine".into();
        cfg.agent.imitation_segments = 2;
        cfg.agent.imitation_epochs = 2;
        let per_segment = cfg.segment * cfg.steps_per_update();
        cfg.agent.dagger_states = per_segment + per_segment / 2;
        let (a, b, c) = (tmp("dagger-a"), tmp("dagger-b"), tmp("dagger-c"));
        let straight = train(&cfg, &a, |_| {}).unwrap();
        assert!(!a.join("checkpoint").join(DAGGER).exists(), "dropped once imitation is over");
        assert!(straight.history.segments.iter().all(|s| s.loss.is_finite() && s.skipped.is_empty()));

        train_for(&cfg, &b, 1, |_| {}).unwrap();
        let saved = weights::read(b.join("checkpoint").join(DAGGER)).unwrap();
        let kept = Aggregate::from_tensors(cfg.agent.dagger_states, &saved).unwrap();
        assert_eq!((kept.len(), kept.seen()), (per_segment, per_segment as u64));
        let resumed = train(&cfg, &b, |_| {}).unwrap();
        assert_eq!(resumed.history.episodes, straight.history.episodes);
        let losses = |h: &DriveHistory| h.segments.iter().map(|s| (s.loss, s.entropy)).collect::<Vec<_>>();
        assert_eq!(losses(&resumed.history), losses(&straight.history));

        let mut online = cfg.clone();
        online.agent.dagger_states = 0;
        let without = train(&online, &c, |_| {}).unwrap();
        assert_eq!(without.history.segments[0].brake_agreement, straight.history.segments[0].brake_agreement);
        assert_ne!(losses(&without.history)[1], losses(&straight.history)[1]);
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }

    /// `state.standardize`: the run trains on standardised latents, and loading it (as
    /// `rwt drive eval` does) rebuilds the same per-channel statistics from the same frames,
    /// bit for bit, without storing them; without the key there are none.
    #[test]
    fn a_standardized_state_is_rebuilt_alike() {
        let mut cfg = tiny("std");
        cfg.state.standardize = true;
        let d = tmp("std");
        let trained = train_for(&cfg, &d, 1, |_| {}).unwrap();
        let stats = trained.encoder.standardization().unwrap().expect("standardised");
        assert_eq!(
            stats.0.len(),
            trained.encoder.latent_shape(cfg.env.camera[0] as usize, cfg.env.camera[1] as usize).unwrap().0
        );
        assert!(stats.1.iter().all(|&s| s as f64 >= StateEncoder::MIN_SD as f32 as f64));
        assert_eq!(load(&d).unwrap().encoder.standardization().unwrap(), Some(stats));
        cfg.state.standardize = false;
        assert!(state_encoder(&cfg, &Device::Cpu).unwrap().standardization().unwrap().is_none());
        let _ = std::fs::remove_dir_all(&d);
    }

    /// The privileged state with a lagging behaviour policy and V-trace trains too.
    #[test]
    fn label_maps_and_a_lagging_policy() {
        let mut cfg = tiny("labels");
        cfg.state.kind = "labels".into();
        cfg.agent.vtrace = true;
        cfg.agent.lag = 2;
        let d = tmp("labels");
        let t = train(&cfg, &d, |_| {}).unwrap();
        assert_eq!(t.history.segments.len(), 3);
        assert!(t.history.segments.iter().all(|s| s.loss.is_finite() && s.skipped.is_empty()));
        let _ = std::fs::remove_dir_all(&d);
    }
}
