//! The driving agent of Section III.C (Fig. 4 left): an actor-critic that drives on the
//! segmenter's latent map, trained by synchronous advantage actor-critic over
//! [`crate::sim::VecEnv`], with V-trace corrections for actors that act with a lagging copy
//! of the policy (the paper's "off-policy A3C").
//!
//! | concept | file | source |
//! |---|---|---|
//! | `ln Γ` and `ψ` in candle ([`lgamma`], [`digamma`]) | `special.rs` | Abramowitz & Stegun 6.1.40, 6.3.18 |
//! | a Beta distribution per action dimension ([`Beta`]) | `beta.rs` | CARLA-Roach; Chou et al. 2017 |
//! | a categorical over CARLA's 9 A3C actions ([`Categorical`], [`DISCRETE_ACTIONS`]) | `categorical.rs` | Dosovitskiy et al. 2017 |
//! | the action space as one config choice ([`ActionSpace`], [`Policy`]) | `policy.rs` | |
//! | the state: latent maps of the two most recent frames + measurements ([`State`], [`StateEncoder`], [`frozen_segmenter`]) | `state.rs` | Section III.C |
//! | the paper's actor-critic network ([`ActorCritic`], [`ActorCriticConfig`]) | `network.rs` | Section III.C |
//! | rollout storage `[T + 1, N, …]` ([`Rollout`]) | `rollout.rs` | tch-rs `a2c.rs` |
//! | acting: `T` steps of every actor of a `VecEnv` into a rollout, timed ([`collect`], [`reset_states`]) | `collect.rs` | |
//! | n-step returns and V-trace targets ([`n_step_returns`], [`vtrace`]) | `returns.rs` | Espeholt et al. 2018 |
//! | the A2C loss and update: clipping, linear decay, skipped non-finite updates ([`A2c`], [`A2cConfig`]) | `a2c.rs` | Mnih et al. 2016; OpenAI baselines |
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
//! Walkthrough: notebook `09-driving-agent` (to come).

mod a2c;
mod beta;
mod categorical;
mod collect;
mod network;
mod policy;
mod returns;
mod rollout;
mod special;
mod state;

pub use a2c::{clip_grad_norm, A2c, A2cConfig, Losses, OptimizerKind, UpdateStats};
pub use beta::{softplus, Beta, UNIT_MARGIN};
pub use categorical::{Categorical, DISCRETE_ACTIONS};
pub use collect::{collect, reset_states, CollectTimes, FinishedEpisode};
pub use network::{init_weights, ActorCritic, ActorCriticConfig, ActorCriticOutput};
pub use policy::{ActionSpace, Policy};
pub use returns::{n_step_returns, vtrace, VTrace, VTraceConfig};
pub use rollout::Rollout;
pub use special::{digamma, lgamma};
pub use state::{frames_tensor, frozen_segmenter, measurements_tensor, State, StateEncoder};
