//! A driving-agent run described in one TOML file: the environment, the state (which segmenter,
//! or the privileged label maps), the actor-critic's learning settings and the evaluation
//! benchmark. `rwt drive train --config drive.toml`, `rwt drive eval`, the notebook and
//! [`super::train`] all start from a [`DriveConfig`].
//!
//! ```toml
//! name = "drive-enet"
//! seed = 0
//! total_steps = 400_000        # environment steps, all actors together
//! actors = 10                  # the paper's 10 actors
//! rollout = 20                 # 20-step rollouts
//! segment = 25                 # updates per segment: actors restart and a checkpoint is written
//!
//! [env]
//! town = 1                     # the training town
//! weather = "clear-noon"
//! max_steps = 500
//! reward_alive = 0.0           # r = a + κ·Δs − α·ol − β·or − ψ·c: the paper's a = 1 pays for
//! reward_progress = 1.0        #   standing still; κ = 1 per metre along the route makes it drive
//!
//! [state]
//! kind = "latent"              # latent (the segmenter's) | labels (privileged ground truth)
//! segmenter = "runs/sim-enet-ce"   # run folder, checkpoint folder or .safetensors; absent: untrained
//! model = "enet"
//! route = false                # true: the route 8 and 20 m ahead in the measurements
//! free_ahead = false           # true: how far the road ahead is free (privileged ground truth)
//!
//! [agent]
//! action_space = "beta"        # beta | discrete (CARLA's 9 A3C actions) | grid (steer × throttle/coast/brake)
//! optimizer = "rmsprop"        # rmsprop | rmsprop-tf (TensorFlow's: average starts at 1) | adam
//! lr = 7e-4                    # decayed linearly to 0
//! lr_warmup = 0                # > 0: the rate rises linearly over this many updates first
//! vtrace = false               # V-trace targets (for lag > 0)
//! lag = 0                      # the actors act with a copy of the policy this many updates old
//! init = "runs/drive-enet"     # optional: start from a trained agent's weights
//! imitation_coef = 0.0         # > 0: A2C plus this weight × the NLL of the Autopilot's actions
//! imitation_brake_weight = 1.0 # cloning weight of the states where the Autopilot brakes fully
//! imitation_moving_brake_weight = 1.0 # × this for those full brakes given while the car moves
//! dagger_states = 0            # > 0: clone from DAgger's aggregate of this many states (imitation segments)
//!
//! [eval]
//! episodes = 10                # per condition and seed
//! seeds = [0, 1, 2]
//! new_town = 2
//! new_weather = "rain"
//! greedy = true               # mean (Beta) / mode (discrete); false: sampled actions
//! expected_action = false      # with greedy: the expected action (discrete policies)
//! marginal_action = false      # with greedy: the mode of each marginal, steer and throttle/brake
//! blocked_s = 10.0             # standing still this long ends an episode as blocked (0: never)
//! ```
//!
//! Every field has a default; unknown keys are errors that name them.

use super::a2c::{A2cConfig, OptimizerKind};
use super::policy::ActionSpace;
use super::returns::VTraceConfig;
use crate::models::{ModelKind, SegmenterConfig};
use crate::sim::{EnvConfig, Weather, NEW_TOWNS, TRAINING_TOWN};
use crate::train::config::{parse_toml, read_toml};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A whole driving-agent run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriveConfig {
    /// Name of the run (tables, plot titles, `runs/<name>`).
    pub name: String,
    /// Seeds the agent's initial weights, the action sampling and the training episodes.
    pub seed: u64,
    /// Environment steps of the run (all actors together; the paper: 5 M).
    pub total_steps: usize,
    /// Parallel actors `N` (the paper: 10).
    pub actors: usize,
    /// Steps per rollout `T` (the paper: 20).
    pub rollout: usize,
    /// Updates per segment. A segment starts every actor on a fresh episode (seeded by the
    /// segment's index) and ends with a checkpoint, so a resumed run repeats the same curve.
    pub segment: usize,
    /// The training environment.
    pub env: EnvSection,
    /// The agent's state.
    pub state: StateSection,
    /// The learning rule.
    pub agent: AgentSection,
    /// The evaluation benchmark.
    pub eval: EvalSection,
}

impl Default for DriveConfig {
    fn default() -> Self {
        DriveConfig {
            name: "drive".into(),
            seed: 0,
            total_steps: 400_000,
            actors: 10,
            rollout: 20,
            segment: 25,
            env: EnvSection::default(),
            state: StateSection::default(),
            agent: AgentSection::default(),
            eval: EvalSection::default(),
        }
    }
}

/// The training environment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSection {
    /// Town seed ([`TRAINING_TOWN`]).
    pub town: u64,
    /// Weather preset name (`clear-noon`, `dusk`, `rain`, `fog`).
    pub weather: String,
    /// Episode step limit (the paper: 500).
    pub max_steps: usize,
    /// Camera `[height, width]` (the agent's 96 × 192).
    pub camera: [u32; 2],
    /// `a`, the reward of every step ([`crate::sim::RewardConfig::alive`]). The paper's
    /// `r = 1 − α·ol − β·or − ψ·c` has `a = 1`, which makes standing still the optimal policy
    /// (1 per step, no infraction ever); the default is 0.
    pub reward_alive: f32,
    /// `κ`, the reward per metre advanced along the route (default 1: about 0.55 per step at
    /// 20 km/h), as in CARLA's A3C baseline.
    pub reward_progress: f32,
}

impl Default for EnvSection {
    fn default() -> Self {
        EnvSection {
            town: TRAINING_TOWN,
            weather: "clear-noon".into(),
            max_steps: 500,
            camera: [96, 192],
            reward_alive: 0.0,
            reward_progress: 1.0,
        }
    }
}

/// Where the state's maps come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateSection {
    /// `latent` (the frozen segmenter's latent map) or `labels` (the simulator's label maps:
    /// the privileged state).
    pub kind: String,
    /// The segmenter's weights: a run folder, checkpoint folder or `.safetensors` file;
    /// `None`: the seeded, untrained network (tests, quick mode).
    pub segmenter: Option<PathBuf>,
    /// The segmenter's architecture.
    pub model: String,
    /// Its width multiplier.
    pub width: f64,
    /// Append where the route goes to the measurements ([`crate::sim::Measurements::route_ahead`]:
    /// the route 8 and 20 m ahead in the car's frame). The paper's agent has only the
    /// planner's command, which says *that* a turn comes, not where the road goes; default
    /// `false` (the paper's state).
    pub route: bool,
    /// Append how far the road ahead is free ([`crate::sim::Measurements::free_ahead`]: the
    /// simulator's ground truth, metres to the first obstacle in the corridor along the route
    /// and along the car's heading, what the Autopilot brakes for) to the measurements, after
    /// the route. Privileged, not a sensor: a probe of whether the agent learns to brake when
    /// it is handed this; default `false`.
    pub free_ahead: bool,
    /// Standardise each latent channel with its mean and standard deviation over Autopilot-
    /// driven frames of the run's town ([`crate::rl::standardization_frames`],
    /// [`crate::rl::StateEncoder::with_standardize_from`]); default `false` (the latent as
    /// the segmenter gives it, as in every run before this option).
    pub standardize: bool,
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            kind: "latent".into(),
            segmenter: None,
            model: "enet".into(),
            width: 1.0,
            route: false,
            free_ahead: false,
            standardize: false,
        }
    }
}

/// The actor-critic's learning settings ([`A2cConfig`]'s defaults are the paper's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// `beta` (continuous steer, throttle, brake), `discrete` (CARLA's 9 A3C actions) or
    /// `grid` (9 actions that steer and drive at once, [`super::GRID_ACTIONS`]) or `fine` (45
    /// actions, [`super::FINE_ACTIONS`]: fine enough to imitate the Autopilot).
    pub action_space: String,
    /// `rmsprop` (PyTorch's), `rmsprop-tf` (TensorFlow 1's, as OpenAI baselines' A2C: the
    /// squared-gradient average starts at 1) or `adam`.
    pub optimizer: String,
    /// Initial learning rate, decayed linearly to 0 over the run.
    pub lr: f64,
    /// Updates over which the learning rate rises linearly from `lr / lr_warmup` to the
    /// decayed rate ([`A2cConfig::warmup_updates`]); 0 (default): none, as in the paper. Must
    /// be less than the run's updates.
    pub lr_warmup: usize,
    /// Discount `γ`.
    pub gamma: f64,
    /// Entropy bonus weight.
    pub entropy_coef: f64,
    /// Value-loss weight.
    pub value_coef: f64,
    /// Global gradient-norm clip.
    pub max_grad_norm: f64,
    /// V-trace targets (ρ̄ = c̄ = 1) instead of n-step returns.
    pub vtrace: bool,
    /// Standardise each rollout's advantages before the policy term
    /// ([`A2cConfig::normalize_advantages`]); off in the paper's A2C.
    pub normalize_advantages: bool,
    /// The actors act with a copy of the policy refreshed every `lag` updates (0: the current
    /// policy, on-policy A2C); with `vtrace` this is the paper's off-policy A3C.
    pub lag: usize,
    /// Start the Beta policy at a prior that drives forward
    /// ([`super::network::drive_forward_prior`]); `false`: near-uniform Betas.
    pub forward_prior: bool,
    /// The steer Beta's `α = β` at the forward prior (its standard deviation on `[−1, 1]` is
    /// `1 / sqrt(2α + 1)`: 0.5 at the default 1.5, 0.22 at 10); must be > 1.
    pub steer_prior: f64,
    /// Multiplies the rewards the learner sees (not the episodes' recorded rewards), so that
    /// the value targets stay near unit scale ([`A2cConfig::reward_scale`]); default 1.
    pub reward_scale: f64,
    /// Segments at the start of the run that imitate the scripted Autopilot (DAgger, see
    /// [`super::train`]) before A2C takes over; 0 (default): A2C from the first update, as
    /// in the paper's Section III.C. Must leave at least one A2C segment.
    pub imitation_segments: usize,
    /// Gradient steps on each rollout of an imitation segment (default 4): behaviour cloning
    /// needs more steps than one per rollout.
    pub imitation_epochs: usize,
    /// Whether the imitated Autopilot passes static obstacles
    /// ([`crate::sim::Autopilot::pass_static`]; default false: the Autopilot that only brakes,
    /// as in the committed runs).
    pub imitation_passes: bool,
    /// States kept in DAgger's aggregated data set during the imitation segments
    /// ([`super::Aggregate`]; reservoir sampling beyond): each cloning step then trains on
    /// `actors × rollout` states drawn from every state visited so far instead of on the
    /// rollout just collected. 0 (default): no aggregate, as in the committed runs before
    /// it. Needs `imitation_segments > 0`; the aggregate is part of the checkpoint while
    /// imitating (the latents in `f16`: about 22 kB a state for the privileged state, 150 kB for
    /// ENet's latent).
    pub dagger_states: usize,
    /// Weight of a behaviour-cloning term in the A2C segments ([`A2cConfig::imitation_coef`]):
    /// the Autopilot (passing static obstacles with `imitation_passes`) labels every state the
    /// policy visits, and the loss adds this weight times the negative log-likelihood of its
    /// actions, so that A2C improves the policy without drifting from the expert's; 0
    /// (default): plain A2C. Must be finite and ≥ 0.
    pub imitation_coef: f64,
    /// Weight, in behaviour cloning (imitation segments and the `imitation_coef` term), of
    /// the states in which the Autopilot brakes fully for something in its path, relative to
    /// the others ([`A2cConfig::imitation_brake_weight`]); 1 (default): every state alike.
    /// Must be finite and > 0.
    pub imitation_brake_weight: f64,
    /// A further factor on the cloning weight of the full brakes given while the car moves
    /// ([`A2cConfig::imitation_moving_brake_weight`]); 1 (default): moving and standing brakes
    /// alike. Must be finite and > 0.
    pub imitation_moving_brake_weight: f64,
    /// Start from these agent weights (a `.safetensors` file, or an agent's run or checkpoint
    /// folder) instead of the seeded initialisation — e.g. to continue a trained agent on
    /// another segmenter's latent; the optimiser and the learning-rate schedule start afresh.
    /// `None`: the seeded network (with `forward_prior`).
    pub init: Option<PathBuf>,
}

impl Default for AgentSection {
    fn default() -> Self {
        let a = A2cConfig::default();
        AgentSection {
            action_space: "beta".into(),
            optimizer: "rmsprop".into(),
            lr: a.learning_rate,
            lr_warmup: a.warmup_updates,
            gamma: a.gamma,
            entropy_coef: a.entropy_coef,
            value_coef: a.value_coef,
            max_grad_norm: a.max_grad_norm,
            vtrace: false,
            normalize_advantages: false,
            lag: 0,
            forward_prior: true,
            steer_prior: crate::rl::FORWARD_PRIOR[0].0,
            reward_scale: 1.0,
            imitation_segments: 0,
            imitation_epochs: 4,
            imitation_passes: false,
            dagger_states: 0,
            imitation_coef: a.imitation_coef,
            imitation_brake_weight: a.imitation_brake_weight,
            imitation_moving_brake_weight: a.imitation_moving_brake_weight,
            init: None,
        }
    }
}

/// The fixed, seeded evaluation benchmark of Tables IV–VI.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Episodes per condition and seed.
    pub episodes: usize,
    /// Benchmark seeds: each draws its own routes and traffic (the rows report mean ± sd over
    /// them).
    pub seeds: Vec<u64>,
    /// The "new town" condition's town seed (one of [`NEW_TOWNS`]).
    pub new_town: u64,
    /// The "new weather" condition's weather (in the training town).
    pub new_weather: String,
    /// Act with the policy's mean (Beta) / mode (discrete) instead of sampling.
    pub greedy: bool,
    /// With `greedy`: act with the expected action instead ([`super::Policy::expected_actions`];
    /// differs from the mode for discrete policies).
    pub expected_action: bool,
    /// With `greedy`: act with the mode of each marginal instead, the steering value and the
    /// longitudinal command that each carry the most probability
    /// ([`super::Policy::marginal_modes`]; differs from the mode for discrete policies). Not
    /// with `expected_action`.
    pub marginal_action: bool,
    /// Seconds of standing still (within [`crate::sim::BLOCKED_RADIUS_M`]) that end a
    /// benchmark episode as blocked, a failure that lowers Drive % ([`EnvConfig::blocked_steps`]);
    /// 0: never. 10 s is a fifth of the paper's 50 s episode (CARLA's leaderboard gives 180 s
    /// of routes lasting minutes).
    pub blocked_s: f64,
}

impl Default for EvalSection {
    fn default() -> Self {
        EvalSection {
            episodes: 10,
            seeds: vec![0, 1, 2],
            new_town: NEW_TOWNS[0],
            new_weather: "rain".into(),
            greedy: true,
            expected_action: false,
            marginal_action: false,
            blocked_s: 10.0,
        }
    }
}

impl EvalSection {
    /// How the benchmark's agent acts: sampled unless `greedy`, then the expected action with
    /// `expected_action`, the marginals' modes with `marginal_action`, else the mean / mode.
    /// (`DriveConfig::validate` refuses both at once.)
    pub fn acting(&self) -> super::Acting {
        match (self.greedy, self.expected_action, self.marginal_action) {
            (false, _, _) => super::Acting::Sampled,
            (true, true, _) => super::Acting::Expected,
            (true, false, true) => super::Acting::Marginal,
            (true, false, false) => super::Acting::Greedy,
        }
    }
}

impl DriveConfig {
    /// Parses a TOML config; unknown keys are errors that name them.
    pub fn from_toml(text: &str) -> Result<Self> {
        parse_toml("drive config", text)
    }

    /// Reads and parses a TOML config file; errors name the file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        read_toml("drive config", path.as_ref())
    }

    /// The config as TOML (what a run folder records).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::invalid("drive config", &self.name, e.to_string()))
    }

    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("actors", self.actors), ("rollout", self.rollout), ("segment", self.segment)] {
            if v == 0 {
                return Err(Error::invalid(name, 0, "must be >= 1"));
            }
        }
        if self.total_steps < self.steps_per_update() {
            return Err(Error::invalid(
                "total_steps",
                self.total_steps,
                format!("must be at least one update's actors x rollout = {}", self.steps_per_update()),
            ));
        }
        self.env_config()?.validate()?;
        match self.state.kind.as_str() {
            "latent" => {
                self.model_kind()?;
                if !(self.state.width.is_finite() && self.state.width > 0.0) {
                    return Err(Error::invalid("state.width", self.state.width, "must be finite and > 0"));
                }
            }
            "labels" => {
                if let Some(p) = &self.state.segmenter {
                    return Err(Error::invalid(
                        "state.segmenter",
                        p.display(),
                        "is unused with state.kind = \"labels\"",
                    ));
                }
            }
            other => return Err(Error::invalid("state.kind", other, "expected latent or labels")),
        }
        let a2c = self.a2c_config()?;
        a2c.validate()?;
        if !(self.agent.steer_prior.is_finite() && self.agent.steer_prior > 1.0) {
            return Err(Error::invalid(
                "agent.steer_prior",
                self.agent.steer_prior,
                "the steer Beta's α = β must be finite and > 1",
            ));
        }
        let segments = self.total_updates() / self.segment;
        if self.agent.imitation_segments >= segments {
            return Err(Error::invalid(
                "agent.imitation_segments",
                self.agent.imitation_segments,
                format!("must leave at least one A2C segment of the run's {segments}"),
            ));
        }
        if self.agent.dagger_states > 0 && self.agent.imitation_segments == 0 {
            return Err(Error::invalid(
                "agent.dagger_states",
                self.agent.dagger_states,
                "aggregates the imitation segments' states: set agent.imitation_segments > 0 (or dagger_states = 0)",
            ));
        }
        if self.agent.imitation_epochs == 0 {
            return Err(Error::invalid("agent.imitation_epochs", 0, "must be >= 1"));
        }
        if self.eval.episodes == 0 {
            return Err(Error::invalid("eval.episodes", 0, "must be >= 1"));
        }
        if self.eval.seeds.is_empty() {
            return Err(Error::invalid("eval.seeds", "[]", "give at least one benchmark seed"));
        }
        if self.eval.expected_action && self.eval.marginal_action {
            return Err(Error::invalid(
                "eval.marginal_action",
                true,
                "pick one of eval.expected_action and eval.marginal_action",
            ));
        }
        if !(self.eval.blocked_s.is_finite() && self.eval.blocked_s >= 0.0) {
            return Err(Error::invalid("eval.blocked_s", self.eval.blocked_s, "must be finite and >= 0 (0: never)"));
        }
        self.weather(&self.eval.new_weather).map_err(|_| {
            Error::invalid("eval.new_weather", &self.eval.new_weather, "expected one of clear-noon, dusk, rain, fog")
        })?;
        Ok(())
    }

    /// Environment steps per update: `actors × rollout`.
    pub fn steps_per_update(&self) -> usize {
        self.actors * self.rollout
    }

    /// Updates of the whole run: `⌈total_steps / (actors × rollout)⌉`, rounded up to whole
    /// segments.
    pub fn total_updates(&self) -> usize {
        let updates = self.total_steps.div_ceil(self.steps_per_update().max(1));
        updates.div_ceil(self.segment.max(1)) * self.segment.max(1)
    }

    fn weather(&self, name: &str) -> Result<Weather> {
        name.parse()
    }

    /// The training environment.
    pub fn env_config(&self) -> Result<EnvConfig> {
        let weather = self.weather(&self.env.weather).map_err(|_| {
            Error::invalid("env.weather", &self.env.weather, "expected one of clear-noon, dusk, rain, fog")
        })?;
        let [h, w] = self.env.camera;
        let mut cfg = EnvConfig::new(self.env.town).with_weather(weather);
        cfg.camera = cfg.camera.with_size(w, h);
        cfg.max_steps = self.env.max_steps;
        cfg.reward.alive = self.env.reward_alive;
        cfg.reward.progress = self.env.reward_progress;
        Ok(cfg)
    }

    /// The segmenter's architecture.
    pub fn model_kind(&self) -> Result<ModelKind> {
        self.state.model.parse()
    }

    /// The segmenter's configuration: Cityscapes' 19 classes (the simulator's labels), no
    /// dropout (it is frozen).
    pub fn segmenter_config(&self) -> SegmenterConfig {
        SegmenterConfig { num_classes: crate::classes::CITYSCAPES.len(), width: self.state.width, dropout: false }
    }

    /// The policy's action space.
    pub fn action_space(&self) -> Result<ActionSpace> {
        match self.agent.action_space.as_str() {
            "beta" => Ok(ActionSpace::Beta),
            "discrete" => Ok(ActionSpace::Discrete),
            "grid" => Ok(ActionSpace::Grid),
            "fine" => Ok(ActionSpace::Fine),
            other => Err(Error::invalid("agent.action_space", other, "expected beta, discrete, grid or fine")),
        }
    }

    /// The A2C settings: the agent section, the run's update count for the linear decay.
    pub fn a2c_config(&self) -> Result<A2cConfig> {
        let optimizer = match self.agent.optimizer.as_str() {
            "rmsprop" => OptimizerKind::RmsProp,
            "adam" => OptimizerKind::Adam,
            "rmsprop-tf" => OptimizerKind::RmsPropTf,
            other => return Err(Error::invalid("agent.optimizer", other, "expected rmsprop, rmsprop-tf or adam")),
        };
        self.action_space()?;
        Ok(A2cConfig {
            gamma: self.agent.gamma,
            entropy_coef: self.agent.entropy_coef,
            value_coef: self.agent.value_coef,
            max_grad_norm: self.agent.max_grad_norm,
            learning_rate: self.agent.lr,
            total_updates: self.total_updates().max(1),
            warmup_updates: self.agent.lr_warmup,
            optimizer,
            vtrace: self.agent.vtrace.then(VTraceConfig::default),
            normalize_advantages: self.agent.normalize_advantages,
            reward_scale: self.agent.reward_scale,
            imitation_coef: self.agent.imitation_coef,
            imitation_brake_weight: self.agent.imitation_brake_weight,
            imitation_moving_brake_weight: self.agent.imitation_moving_brake_weight,
        })
    }

    /// The same run made small for tests and CI (`RWT_QUICK=1`): 2 actors, 5-step rollouts,
    /// 2 segments of 2 updates, 48 × 96 camera, 60-step episodes, a narrow untrained segmenter
    /// when none is given, no `agent.init`, 2 benchmark episodes per condition and one seed.
    pub fn quick(mut self) -> Self {
        self.actors = 2;
        self.rollout = 5;
        self.segment = 2;
        self.total_steps = 2 * self.segment * self.steps_per_update();
        self.env.camera = [48, 96];
        // Trained weights are for the full camera's latent: the quick run starts untrained.
        self.agent.init = None;
        self.env.max_steps = self.env.max_steps.min(60);
        if self.state.segmenter.is_none() {
            self.state.width = self.state.width.min(0.25);
        }
        // One imitation segment at most: the quick run has two.
        self.agent.imitation_segments = self.agent.imitation_segments.min(1);
        // A warm-up of two updates at most: the quick run has four.
        self.agent.lr_warmup = self.agent.lr_warmup.min(2);
        self.eval.episodes = self.eval.episodes.min(2);
        self.eval.seeds.truncate(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_papers() {
        let c = DriveConfig::default();
        assert_eq!((c.actors, c.rollout), (10, 20));
        let a = c.a2c_config().unwrap();
        assert_eq!((a.gamma, a.entropy_coef, a.value_coef, a.learning_rate), (0.99, 0.01, 0.5, 7e-4));
        // 400 000 steps / 200 per update = 2000 updates = 80 segments of 25.
        assert_eq!(c.total_updates(), 2000);
        c.validate().unwrap();
        let round = DriveConfig::from_toml(&c.to_toml().unwrap()).unwrap();
        assert_eq!(round, c);
        // The imitated Autopilot only brakes unless asked to pass.
        assert!(!c.agent.imitation_passes);
        assert!(DriveConfig::from_toml("[agent]\nimitation_passes = true").unwrap().agent.imitation_passes);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let err = |text: &str| DriveConfig::from_toml(text).and_then(|c| c.validate()).unwrap_err().to_string();
        assert!(err("actorz = 3").contains("actorz"));
        assert!(err("[agent]\nlr = 0.0").contains("learning_rate"));
        assert!(err("[agent]\nlr_warmup = 2000").contains("warmup_updates"));
        assert!(err("[agent]\noptimizer = \"sgd\"").contains("agent.optimizer"));
        assert!(err("[agent]\naction_space = \"gaussian\"").contains("agent.action_space"));
        assert!(err("[state]\nkind = \"pixels\"").contains("state.kind"));
        assert!(err("[state]\nkind = \"labels\"\nsegmenter = \"x\"").contains("state.segmenter"));
        assert!(err("[env]\nweather = \"snow\"").contains("env.weather"));
        assert!(err("[eval]\nnew_weather = \"snow\"").contains("eval.new_weather"));
        assert!(err("[eval]\nseeds = []").contains("eval.seeds"));
        assert!(err("[eval]\nblocked_s = -1.0").contains("eval.blocked_s"));
        assert!(err("[eval]\nexpected_action = true\nmarginal_action = true").contains("eval.marginal_action"));
        assert!(err("[agent]\nimitation_moving_brake_weight = 0.0").contains("imitation_moving_brake_weight"));
        assert!(err("total_steps = 10").contains("total_steps"));
        assert!(err("[env]\nreward_progress = -1.0").contains("reward.progress"));
        assert!(err("rollout = 0").contains("rollout"));
        assert!(err("[state]\nmodel = \"unet\"").contains("unet"));
        assert!(err("[agent]\nsteer_prior = 0.5").contains("agent.steer_prior"));
        assert!(err("[agent]\nreward_scale = 0.0").contains("reward_scale"));
        assert!(err("[state]\nroute = 1").contains("route"));
        assert!(err("[state]\nfree_ahead = \"yes\"").contains("free_ahead"));
        assert!(err("[agent]\nimitation_segments = 80").contains("agent.imitation_segments"));
        assert!(err("[agent]\ndagger_states = 1000").contains("agent.dagger_states"));
        assert!(err("[agent]\ndagger_states = -1").contains("dagger_states"));
    }

    #[test]
    fn quick_is_small_and_valid() {
        let q = DriveConfig::default().quick();
        q.validate().unwrap();
        assert_eq!(q.total_updates(), 4);
        assert_eq!(q.env_config().unwrap().camera.width, 96);
    }
}
