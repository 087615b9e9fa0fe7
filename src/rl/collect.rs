//! Acting: `T` steps of every actor of a [`VecEnv`] under the current policy, into a
//! [`Rollout`] — the first half of an A2C iteration (the second is [`super::A2c::update`]).
//!
//! Each step renders every camera and advances every simulation ([`VecEnv::step`], in
//! parallel threads), encodes the new observations into states with one batched segmenter
//! pass ([`StateEncoder::encode`]), and runs the actor-critic once on the batch to sample the
//! next actions. The time of each part is measured ([`CollectTimes`]) for the throughput
//! benchmark.

use super::network::ActorCritic;
use super::rollout::Rollout;
use super::state::{State, StateEncoder};
use crate::sim::{Action, Environment, EpisodeLog, VecEnv};
use crate::{Error, Result};
use candle_core::Tensor;
use rand::rngs::StdRng;
use rand::Rng;
use std::time::Instant;

/// Seconds spent in each part of acting.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CollectTimes {
    /// Simulation and rendering ([`VecEnv::step`]).
    pub env_s: f64,
    /// The segmenter's latents and the states ([`StateEncoder::encode`]).
    pub latent_s: f64,
    /// The actor-critic's forward pass and sampling.
    pub policy_s: f64,
}

impl CollectTimes {
    /// Adds another measurement.
    pub fn add(&mut self, other: &CollectTimes) {
        self.env_s += other.env_s;
        self.latent_s += other.latent_s;
        self.policy_s += other.policy_s;
    }
}

/// An episode that ended while acting.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinishedEpisode {
    /// Environment steps of the whole run (all actors) when it ended.
    pub run_step: usize,
    /// Which actor drove it.
    pub actor: usize,
    /// The environment's record (reward, length, termination, infractions).
    pub log: EpisodeLog,
}

/// Resets every environment with `seed` (environment `i` plays seed `seed + i`), clears the
/// encoder's memory and returns the first states (all episodes starting).
pub fn reset_states<E: Environment>(env: &mut VecEnv<E>, encoder: &mut StateEncoder, seed: u64) -> Result<State> {
    let observations = env.reset(seed)?;
    encoder.reset();
    let refs: Vec<_> = observations.iter().collect();
    encoder.encode(&refs, &vec![true; refs.len()])
}

/// Fills `rollout` (which must have begun, with the environments' current states) with
/// `rollout.steps()` steps of sampled actions. `run_steps` counts environment steps (`N` per
/// step) and stamps the finished episodes. An environment error stops with an error naming
/// the rollout step (the rollout is then incomplete and must begin again).
pub fn collect<E: Environment>(
    env: &mut VecEnv<E>,
    encoder: &mut StateEncoder,
    net: &ActorCritic,
    rollout: &mut Rollout,
    rng: &mut StdRng,
    run_steps: &mut usize,
) -> Result<(Vec<FinishedEpisode>, CollectTimes)> {
    collect_with(env, encoder, net, rollout, rng, run_steps, None)
}

/// A driver whose actions label the states: each actor executes the expert's action with
/// probability `share`, else the policy's sample, and the expert's action for every state is
/// stored — as the rollout's actions for imitation (DAgger, Ross et al. 2011; `relabel`), or
/// beside the executed ones ([`Rollout::expert_actions`]) for A2C with a behaviour-cloning
/// term (`agent.imitation_coef`).
pub struct Expert<'a, E> {
    /// The expert's action in an environment's current state.
    pub act: &'a (dyn Fn(&E) -> Action + Sync),
    /// Probability that an actor executes the expert's action instead of the policy's, in `[0, 1]`.
    pub share: f64,
    /// `true`: the expert's actions *are* the rollout's actions (and behaviour
    /// log-probabilities), whoever executed — imitation. `false`: the rollout keeps the
    /// executed actions (the expert's where it drove, in raw form) and the expert's go to
    /// [`Rollout::label`].
    pub relabel: bool,
}

/// [`collect`], or with an `expert`: each step executes the expert's action with probability
/// `expert.share` per actor (drawn from `rng`) and the policy's sample otherwise; the expert's
/// actions, in the policy's raw form ([`super::ActionSpace::raw_of`]), become the rollout's
/// actions (and behaviour log-probabilities) with `expert.relabel`, else its labels
/// ([`Rollout::label`]) beside the executed actions. Errors: as [`collect`]; a share outside
/// `[0, 1]`.
pub fn collect_with<E: Environment>(
    env: &mut VecEnv<E>,
    encoder: &mut StateEncoder,
    net: &ActorCritic,
    rollout: &mut Rollout,
    rng: &mut StdRng,
    run_steps: &mut usize,
    expert: Option<&Expert<'_, E>>,
) -> Result<(Vec<FinishedEpisode>, CollectTimes)> {
    if let Some(e) = expert.filter(|e| !(0.0..=1.0).contains(&e.share)) {
        return Err(Error::invalid("expert share", e.share, "must be in [0, 1]"));
    }
    if env.len() != rollout.actors() {
        return Err(Error::shape("environments", rollout.actors().to_string(), env.len().to_string()));
    }
    let mut finished = vec![];
    let mut times = CollectTimes::default();
    while !rollout.is_full() {
        let state = rollout.last_state().ok_or_else(|| Error::invalid("rollout", "collect", "call begin first"))?;
        let t0 = Instant::now();
        let out = net.forward(&state.latent, &state.measurements)?;
        let policy = net.policy(&out)?;
        let mut raw = policy.sample(rng)?;
        let mut actions = policy.actions(&raw)?;
        let mut beside = None;
        if let Some(expert) = expert {
            let labels: Vec<Action> = env.envs().iter().map(|e| (expert.act)(e)).collect();
            let mut driven = vec![0u8; labels.len()];
            for ((a, &label), d) in actions.iter_mut().zip(&labels).zip(&mut driven) {
                if rng.random::<f64>() < expert.share {
                    *a = label;
                    *d = 1;
                }
            }
            let labels = net.config().action_space.raw_of(&labels, raw.device())?;
            if expert.relabel {
                raw = labels;
            } else {
                if driven.contains(&1) {
                    raw = rows_where(&driven, &labels, &raw)?;
                }
                beside = Some(labels);
            }
        }
        let log_probs = policy.log_prob(&raw)?.detach();
        let t1 = Instant::now();
        let transitions = env.step(&actions).map_err(|e| {
            Error::invalid("environment step", rollout.len(), format!("failed at this rollout step: {e}"))
        })?;
        let t2 = Instant::now();
        *run_steps += env.len();
        let dones: Vec<bool> = transitions.iter().map(|t| t.done()).collect();
        let rewards: Vec<f32> = transitions.iter().map(|t| t.reward).collect();
        for (actor, t) in transitions.iter().enumerate() {
            if let Some(log) = &t.info.episode {
                finished.push(FinishedEpisode { run_step: *run_steps, actor, log: log.clone() });
            }
        }
        let observations: Vec<_> = transitions.iter().map(|t| &t.observation).collect();
        let next = encoder.encode(&observations, &dones)?;
        let t3 = Instant::now();
        rollout.push(&raw, &log_probs, &rewards, &dones, &next)?;
        if let Some(labels) = &beside {
            rollout.label(labels)?;
        }
        times.policy_s += (t1 - t0).as_secs_f64();
        times.env_s += (t2 - t1).as_secs_f64();
        times.latent_s += (t3 - t2).as_secs_f64();
    }
    Ok((finished, times))
}

/// Row `i` of `on_true` where `mask[i] = 1`, else of `on_false` (`[N, …]`, same shape).
fn rows_where(mask: &[u8], on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
    let mut dims = vec![1; on_true.rank()];
    dims[0] = mask.len();
    let mask = Tensor::from_slice(mask, mask.len(), on_true.device())?.reshape(dims)?.broadcast_as(on_true.dims())?;
    Ok(mask.where_cond(on_true, on_false)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{ModelKind, SegmenterConfig};
    use crate::rl::{frozen_segmenter, A2c, A2cConfig, ActorCriticConfig};
    use crate::sim::{CameraConfig, EnvConfig, TRAINING_TOWN};
    use candle_core::Device;

    /// Two actors in the training town with a narrow ENet at a small camera: a rollout of 3
    /// steps fills storage of the documented shapes, counts 6 environment steps, and an A2C
    /// update on it is applied; with a 1-step episode limit every step ends an episode.
    #[test]
    fn a_rollout_in_the_simulator_and_an_update() {
        let dev = Device::Cpu;
        let mut env_cfg = EnvConfig::new(TRAINING_TOWN).with_camera(CameraConfig::agent().with_size(96, 48));
        env_cfg.max_steps = 2;
        let mut env = VecEnv::driving(&env_cfg, 2).unwrap();
        let seg_cfg = SegmenterConfig { num_classes: 19, width: 0.25, dropout: false };
        let (vm, _) = crate::models::weights::build(ModelKind::Enet, &seg_cfg, &dev).unwrap();
        let mut encoder = StateEncoder::new(frozen_segmenter(ModelKind::Enet, &seg_cfg, &vm, &dev).unwrap(), &dev);
        let (c, h, w) = encoder.latent_shape(48, 96).unwrap();
        assert_eq!((h, w), (6, 12));
        let net_cfg = ActorCriticConfig::for_latent(c, h, w);
        let (agent_vm, net) = ActorCritic::seeded(&net_cfg, &dev, 0).unwrap();
        let mut rollout = Rollout::new(3, 2).unwrap();
        rollout.begin(&reset_states(&mut env, &mut encoder, 11).unwrap()).unwrap();
        let (mut rng, mut steps) = (crate::random::seeded(0), 0);
        let (finished, times) = collect(&mut env, &mut encoder, &net, &mut rollout, &mut rng, &mut steps).unwrap();
        assert_eq!(steps, 6);
        assert_eq!(rollout.latents().unwrap().dims(), [4, 2, 2 * c, 6, 12]);
        assert!(times.env_s > 0.0 && times.latent_s > 0.0 && times.policy_s > 0.0);
        // Every episode lasts at most 2 steps: at least one per actor ended within 3 steps.
        assert!(finished.len() >= 2 && finished.iter().all(|f| f.log.steps <= 2), "{finished:?}");
        let ends = rollout.masks().iter().filter(|&&m| m == 0.0).count();
        assert_eq!(ends, finished.len());
        let mut a2c = A2c::new(A2cConfig::default(), &agent_vm).unwrap();
        let stats = a2c.update(&net, &rollout).unwrap();
        assert!(stats.skipped.is_none() && stats.loss.is_finite(), "{stats:?}");
        rollout.carry_over().unwrap();
        collect(&mut env, &mut encoder, &net, &mut rollout, &mut rng, &mut steps).unwrap();
        assert_eq!(steps, 12);
    }

    /// With an expert at share 1 every executed action is the expert's (full brake from rest:
    /// the car never moves) and the rollout stores it in raw form (CARLA's "full brake" is
    /// index 4); a share outside [0, 1] is an error naming it.
    #[test]
    fn an_expert_at_share_one_drives_and_labels() {
        let dev = Device::Cpu;
        let env_cfg = EnvConfig::new(TRAINING_TOWN).with_camera(CameraConfig::agent().with_size(96, 48));
        let mut env = VecEnv::driving(&env_cfg, 2).unwrap();
        let mut encoder = StateEncoder::label_maps(19, 8, &dev).unwrap();
        let (c, h, w) = encoder.latent_shape(48, 96).unwrap();
        let cfg = ActorCriticConfig::for_latent(c, h, w).with_action_space(crate::rl::ActionSpace::Discrete);
        let (_, net) = ActorCritic::seeded(&cfg, &dev, 0).unwrap();
        let mut rollout = Rollout::new(4, 2).unwrap();
        rollout.begin(&reset_states(&mut env, &mut encoder, 3).unwrap()).unwrap();
        let brake = |_: &crate::sim::DrivingEnv| Action::new(0.0, 0.0, 1.0);
        let (mut rng, mut steps) = (crate::random::seeded(0), 0);
        let expert = Expert { act: &brake, share: 1.0, relabel: true };
        collect_with(&mut env, &mut encoder, &net, &mut rollout, &mut rng, &mut steps, Some(&expert)).unwrap();
        assert!(env.envs().iter().all(|e| e.distance() == 0.0));
        assert_eq!(rollout.actions().unwrap().flatten_all().unwrap().to_vec1::<u32>().unwrap(), vec![4; 8]);
        rollout.carry_over().unwrap();
        let bad = Expert { act: &brake, share: 1.5, relabel: true };
        let err = collect_with(&mut env, &mut encoder, &net, &mut rollout, &mut rng, &mut steps, Some(&bad));
        assert!(err.unwrap_err().to_string().contains("expert share"));
    }

    /// Labels beside the executed actions (`relabel: false`): at share 0 the policy drives
    /// exactly as with `relabel: true` (same random draws, same rewards), the rollout keeps its
    /// sampled actions, and the expert's full brake (index 4) labels every step; at share 1 the
    /// stored actions are the expert's too.
    #[test]
    fn an_expert_beside_the_policy_labels_without_driving() {
        let dev = Device::Cpu;
        let env_cfg = EnvConfig::new(TRAINING_TOWN).with_camera(CameraConfig::agent().with_size(96, 48));
        let mut encoder = StateEncoder::label_maps(19, 8, &dev).unwrap();
        let (c, h, w) = encoder.latent_shape(48, 96).unwrap();
        let cfg = ActorCriticConfig::for_latent(c, h, w).with_action_space(crate::rl::ActionSpace::Discrete);
        let (_, net) = ActorCritic::seeded(&cfg, &dev, 0).unwrap();
        let brake = |_: &crate::sim::DrivingEnv| Action::new(0.0, 0.0, 1.0);
        let run = |share: f64, relabel: bool, encoder: &mut StateEncoder| {
            let mut env = VecEnv::driving(&env_cfg, 2).unwrap();
            let mut rollout = Rollout::new(6, 2).unwrap();
            rollout.begin(&reset_states(&mut env, encoder, 3).unwrap()).unwrap();
            let (mut rng, mut steps) = (crate::random::seeded(5), 0);
            let expert = Expert { act: &brake, share, relabel };
            collect_with(&mut env, encoder, &net, &mut rollout, &mut rng, &mut steps, Some(&expert)).unwrap();
            rollout
        };
        let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<u32>().unwrap();
        let (imitating, beside) = (run(0.0, true, &mut encoder), run(0.0, false, &mut encoder));
        assert_eq!(imitating.rewards(), beside.rewards());
        assert_eq!(flat(imitating.actions().unwrap()), vec![4; 12]);
        assert_eq!(flat(beside.expert_actions().unwrap()), vec![4; 12]);
        assert!(imitating.expert_actions().is_err(), "relabel stores no labels beside");
        let sampled = flat(beside.actions().unwrap());
        assert!(sampled.iter().any(|&a| a != 4), "{sampled:?}");
        let driven = run(1.0, false, &mut encoder);
        assert_eq!(flat(driven.actions().unwrap()), vec![4; 12]);
        assert_eq!(flat(driven.expert_actions().unwrap()), vec![4; 12]);
    }

    /// An environment that fails at its third step.
    struct Failing(crate::sim::DrivingEnv, usize);

    impl Environment for Failing {
        fn reset(&mut self, seed: u64) -> Result<crate::sim::Observation> {
            self.0.reset(seed)
        }
        fn step(&mut self, action: crate::sim::Action) -> Result<crate::sim::Transition> {
            self.1 += 1;
            if self.1 == 3 {
                return Err(Error::invalid("simulator", "Failing", "lost its connection"));
            }
            self.0.step(action)
        }
    }

    /// An environment error mid-rollout is an error naming the rollout step and the cause.
    #[test]
    fn an_environment_error_mid_rollout_names_the_step() {
        let dev = Device::Cpu;
        let env_cfg = EnvConfig::new(TRAINING_TOWN).with_camera(CameraConfig::agent().with_size(96, 48));
        let mut env = VecEnv::new(vec![Failing(crate::sim::DrivingEnv::new(env_cfg).unwrap(), 0)]);
        let mut encoder = StateEncoder::label_maps(19, 8, &dev).unwrap();
        let (c, h, w) = encoder.latent_shape(48, 96).unwrap();
        let (_, net) = ActorCritic::seeded(&ActorCriticConfig::for_latent(c, h, w), &dev, 0).unwrap();
        let mut rollout = Rollout::new(5, 1).unwrap();
        rollout.begin(&reset_states(&mut env, &mut encoder, 0).unwrap()).unwrap();
        let (mut rng, mut steps) = (crate::random::seeded(0), 0);
        let err = collect(&mut env, &mut encoder, &net, &mut rollout, &mut rng, &mut steps).unwrap_err().to_string();
        assert!(err.contains("environment step") && err.contains('2') && err.contains("lost its connection"), "{err}");
        assert_eq!(steps, 2);
    }
}
