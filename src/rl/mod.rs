//! The driving agent of Section III.C (Fig. 4 left): an actor-critic that drives on the
//! segmenter's latent map, trained by synchronous advantage actor-critic over
//! [`crate::sim::VecEnv`], with V-trace corrections for actors that act with a lagging copy
//! of the policy (the paper's "off-policy A3C").
//!
//! | concept | file | source |
//! |---|---|---|
//! | `ln Γ` and `ψ` in candle ([`lgamma`], [`digamma`]) | `special.rs` | Abramowitz & Stegun 6.1.40, 6.3.18 |
//! | a Beta distribution per action dimension ([`Beta`]) | `beta.rs` | CARLA-Roach; Chou et al. 2017 |
//! | a categorical over CARLA's 9 A3C actions ([`Categorical`], [`DISCRETE_ACTIONS`]) or over steer × throttle/coast/brake ([`GRID_ACTIONS`], [`FINE_ACTIONS`]) | `categorical.rs` | Dosovitskiy et al. 2017 |
//! | the action space as one config choice ([`ActionSpace`], [`Policy`]) | `policy.rs` | |
//! | the state: latent maps of the two most recent frames + measurements ([`State`], [`StateEncoder`], [`frozen_segmenter`]); each latent channel standardised when `state.standardize` ([`StateEncoder::with_standardize_from`], [`standardization_frames`]); the route ahead (`state.route`) and, privileged, how far the road ahead is free (`state.free_ahead`, [`StateEncoder::with_free_ahead`]) appended to the measurements | `state.rs` | Section III.C |
//! | the paper's actor-critic network ([`ActorCritic`], [`ActorCriticConfig`]); is its latent branch alive ([`ActorCritic::latent_activity`]) | `network.rs` | Section III.C |
//! | rollout storage `[T + 1, N, …]` ([`Rollout`]) | `rollout.rs` | tch-rs `a2c.rs` |
//! | acting: `T` steps of every actor of a `VecEnv` into a rollout, timed ([`collect`], [`reset_states`]); with an [`Expert`] labelling the states and sharing the driving, or labelling beside the policy's actions ([`collect_with`], [`Rollout::label`]) | `collect.rs` | DAgger, Ross et al. 2011 |
//! | DAgger's aggregated data set: every expert-labelled state of the imitation segments, kept by reservoir sampling, cloned from in minibatches ([`Aggregate`], [`A2c::dagger_update`], `agent.dagger_states`) | `dagger.rs` | Ross et al. 2011, Algorithm 3.1; Vitter 1985 |
//! | n-step returns and V-trace targets ([`n_step_returns`], [`vtrace`]) | `returns.rs` | Espeholt et al. 2018 |
//! | the A2C loss and update: clipping, linear decay, skipped non-finite updates ([`A2c`], [`A2cConfig`]); the imitation update ([`A2c::imitation_update`]); a behaviour-cloning term beside A2C's ([`A2cConfig::imitation_coef`]) | `a2c.rs` | Mnih et al. 2016; OpenAI baselines; DAPG, Rajeswaran et al. 2018 |
//! | a run in one TOML file ([`DriveConfig`]) | `config.rs` | |
//! | training: segments, run folder, atomic checkpoints, exact resume ([`train()`], [`DriveHistory`]); imitation segments before A2C (`agent.imitation_segments`) | `train.rs` | |
//! | the reinforced ground matrix: segmenter, agent and `D` by alternating optimisation, Fig. 6 ([`reinforce()`], [`ReinforceConfig`], [`reinforce::ground_step`], [`reinforce::fig6`]) | `reinforce.rs` | Section III.C, Fig. 4, Fig. 6 |
//! | the seeded benchmark of Tables IV–VI: random (uniform, or without brake), Autopilot and agent drivers, animations ([`Benchmark`], [`Driver`], [`evaluate`], [`animate`]) | `benchmark.rs` | Tables IV–VI |
//! | does a driver brake where the Autopilot would, and for what: person, vehicle, static ([`BrakeRecall`], [`BenchmarkRow::brake_table`]) | `brakes.rs` | |
//! | is a driver's km between infractions above the floor's: exact Poisson intervals and the conditional test of two rates ([`InfractionCount`], [`poisson_interval`], [`rate_below_p`], [`floor_table`], [`pool_by_recipe`], [`with_recipes`]) | `rates.rs` | Garwood 1936; Przyborowski & Wilenski 1940 |
//!
//! The environment ([`crate::sim::VecEnv`]), the network ([`ActorCritic`]) and the algorithm
//! ([`A2c`]) are separate values. One step of acting, then an update:
//!
//! ```
//! use rwt::candle_core::{DType, Device, Tensor};
//! use rwt::rl::{A2c, A2cConfig, ActorCritic, ActorCriticConfig, Rollout, State};
//! let dev = Device::Cpu;
//! let cfg = ActorCriticConfig::for_latent(4, 6, 8); // a [4, 6, 8] latent per frame
//! let (varmap, net) = ActorCritic::seeded(&cfg, &dev, 0)?;
//! let mut a2c = A2c::new(A2cConfig::default(), &varmap)?;
//! let state = State {
//!     latent: Tensor::zeros((2, 8, 6, 8), DType::F32, &dev)?,
//!     measurements: Tensor::zeros((2, 7), DType::F32, &dev)?,
//! };
//! let mut rollout = Rollout::new(1, 2)?;
//! rollout.begin(&state)?;
//! let out = net.forward(&state.latent, &state.measurements)?;
//! let policy = net.policy(&out)?;
//! let raw = policy.sample(&mut rwt::random::seeded(0))?;
//! let actions = policy.actions(&raw)?; // what the environments receive
//! assert_eq!(actions.len(), 2);
//! rollout.push(&raw, &policy.log_prob(&raw)?, &[1.0, 1.0], &[false, false], &state)?;
//! let stats = a2c.update(&net, &rollout)?;
//! assert!(stats.skipped.is_none());
//! # Ok::<(), rwt::Error>(())
//! ```
//!
//! A whole run, as `rwt drive train --config …` does it, then the benchmark:
//!
//! ```no_run
//! use rwt::rl::{self, Benchmark, BenchmarkRow, DriveConfig, Driver};
//! let cfg = DriveConfig::from_file("examples/configs/drive-enet.toml")?;
//! let agent = rl::train(&cfg, "runs/drive-enet", |_| {})?;
//! let bench = Benchmark::of(&cfg)?;
//! let mut driver = Driver::Agent { net: &agent.net, encoder: agent.encoder.clone(), acting: rwt::rl::Acting::Greedy, rng: rwt::random::seeded(0) };
//! let rows = rl::evaluate(&bench, "agent", &mut driver)?;
//! println!("{}", BenchmarkRow::table(&rows).to_markdown());
//! # Ok::<(), rwt::Error>(())
//! ```
//!
//! Walkthrough: notebook `09-driving-agent`.

mod a2c;
mod benchmark;
mod beta;
mod brakes;
mod categorical;
mod collect;
mod config;
mod dagger;
mod network;
mod policy;
mod rates;
pub mod reinforce;
mod returns;
mod rollout;
mod special;
mod state;
mod train;

pub use a2c::{
    brake_agreement, clip_grad_norm, A2c, A2cConfig, BrakeAgreement, Losses, OptimizerKind, UpdateStats, FULL_BRAKE,
};
pub use benchmark::{
    animate, animate_pair, drive, drive_observed, evaluate, mean_sd, Acting, Benchmark, BenchmarkRow, Condition,
    Driver, RecordedFrame,
};
pub use beta::{softplus, Beta, UNIT_MARGIN};
pub use brakes::{BrakeCount, BrakeRecall};
pub use categorical::{Categorical, DISCRETE_ACTIONS, FINE_ACTIONS, FINE_LONGITUDINAL, FINE_STEER, GRID_ACTIONS};
pub use collect::{collect, collect_with, reset_states, CollectTimes, Expert, FinishedEpisode};
pub use config::{AgentSection, DriveConfig, EnvSection, EvalSection, StateSection};
pub use dagger::{Aggregate, DaggerBatch};
pub use network::{
    drive_forward_prior, init_weights, ActorCritic, ActorCriticConfig, ActorCriticOutput, FORWARD_PRIOR,
};
pub use policy::{ActionSpace, Policy, RAW_MARGIN};
pub use rates::{floor_table, poisson_interval, pool_by_recipe, rate_below_p, with_recipes, Counted, InfractionCount};
pub use reinforce::{
    reinforce, reinforce_for, ReinforceConfig, ReinforceEvent, ReinforceHistory, Reinforced, RoundRecord,
};
pub use returns::{n_step_returns, vtrace, VTrace, VTraceConfig};
pub use rollout::Rollout;
pub use special::{digamma, lgamma};
pub use state::{frames_tensor, frozen_segmenter, label_maps_tensor, measurements_tensor, State, StateEncoder};
pub use train::{
    agent, agent_weights_path, copy_weights, load, segmenter_weights, standardization_frames, state_encoder,
    state_encoder_with, train, train_for, train_until, DriveEvent, DriveHistory, EpisodeRecord, SegmentRecord,
    TrainedAgent,
};
