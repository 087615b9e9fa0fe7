//! Synchronous advantage actor-critic (A2C; Mnih et al. 2016, made synchronous as in OpenAI
//! baselines), the paper's learning rule, with optional V-trace targets for a lagging
//! behaviour policy (IMPALA; the paper's "off-policy A3C").
//!
//! One update from a full [`Rollout`] of `T` steps of `N` actors:
//!
//! ```text
//! V, π        = network(s_0 … s_T)                      one batched forward pass, [(T+1)·N]
//! targets, A  = n-step returns R_t and R_t − V(s_t)      or V-trace v_t and ρ_t(r_t + γ m_t v_{t+1} − V(s_t))
//! A           ← (A − mean A) / (sd A + 1e-8)              only with normalize_advantages (off: the paper's A2C)
//! loss        = value_coef · ½ · mean((targets − V)²) − mean(A.detach() · log π(a_t|s_t)) − entropy_coef · mean(H(π))
//!               [+ imitation_coef · (−mean_w(log π(a*_t|s_t)))]   with an expert's actions a*_t (Rollout::label)
//! g           = ∇ loss, clipped to global norm max_grad_norm
//! step        = RMSprop (α = 0.99, ε = 1e-5) or Adam, lr decayed linearly to 0 over total_updates
//!               (after an optional linear warm-up over warmup_updates, optim::warmup_factor)
//! ```
//!
//! The bracketed behaviour-cloning term (`imitation_coef > 0`) keeps the policy near an
//! expert's while A2C improves it: the demonstration-augmented policy gradient of Rajeswaran
//! et al. 2018 (DAPG) with a constant weight, the expert labelling the states the policy
//! visits (as DAgger) instead of a fixed set of demonstrations.
//!
//! Behaviour cloning (the bracketed term, and [`A2c::imitation_losses`]) may weight the states
//! in which the expert brakes fully ([`FULL_BRAKE`]: the Autopilot's brake for something in
//! its path) `imitation_brake_weight` times: `mean_w(x) = Σ_t w_t x_t / Σ_t w_t` with
//! `w_t = imitation_brake_weight` where `a*_t` brakes fully and 1 elsewhere (a class-weighted
//! negative log-likelihood; 1, the default, is the plain mean). `imitation_moving_brake_weight`
//! multiplies the weight of those full brakes given while the car moves (the state's speed
//! entry, [`Measurements::is_moving`]): the brakes that start a stop, rarer than the brakes that
//! hold a car at rest. [`brake_agreement`] counts how often the policy's most likely action
//! brakes where the expert's does.
//!
//! Non-finite network outputs, loss or gradient norm skip the update: nothing is applied, the returned
//! [`UpdateStats::skipped`] says why, and [`A2c::skipped`] counts them.

use super::dagger::{Aggregate, DaggerBatch};
use super::network::{ActorCritic, ActorCriticOutput};
use super::policy::Policy;
use super::returns::{n_step_returns, vtrace, VTraceConfig};
use super::rollout::Rollout;
use crate::optim::{warmup_factor, Adam, Optimizer, RmsProp, Schedule};
use crate::sim::Measurements;
use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;
use rand::Rng;

/// Which optimiser the update uses.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum OptimizerKind {
    /// `torch.optim.RMSprop` with A2C's `α = 0.99`, `ε = 1e-5`.
    #[default]
    RmsProp,
    /// `torch.optim.Adam` with PyTorch's defaults.
    Adam,
    /// TensorFlow 1's RMSprop (OpenAI baselines' A2C) with `α = 0.99`, `ε = 1e-5`: its running
    /// average starts at one, not zero ([`crate::optim::RmsForm::TensorFlow`]).
    RmsPropTf,
}

/// A2C's hyper-parameters; [`Default`] is the paper's setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct A2cConfig {
    /// Discount `γ` (0.99).
    pub gamma: f64,
    /// Weight of the entropy bonus `β` (0.01).
    pub entropy_coef: f64,
    /// Weight of the value loss (0.5; the loss also halves the squared error, as CleanRL).
    pub value_coef: f64,
    /// Global gradient-norm clip (0.5, OpenAI baselines' A2C).
    pub max_grad_norm: f64,
    /// Initial learning rate (7e-4), decayed linearly to 0 over `total_updates`.
    pub learning_rate: f64,
    /// Updates of the whole run, for the decay (25 000 = 5 M steps / (10 actors · 20 steps)).
    pub total_updates: usize,
    /// Updates over which the rate rises linearly to the decayed rate
    /// ([`crate::optim::warmup_factor`]): update `u < warmup_updates` takes
    /// `(u + 1) / warmup_updates` of it. 0 (default, the paper's A2C): no warm-up. Must be
    /// less than `total_updates`.
    pub warmup_updates: usize,
    /// The optimiser.
    pub optimizer: OptimizerKind,
    /// V-trace targets (for actors acting with a lagging policy) instead of n-step returns.
    pub vtrace: Option<VTraceConfig>,
    /// Standardise the advantages over the rollout's `T·N` entries before the policy term
    /// (zero mean, unit population sd; CleanRL's PPO `norm_adv`). Off in the paper's A2C. It
    /// makes the policy gradient's scale independent of the reward's, so the entropy bonus and
    /// the value term keep their relative weights whatever the returns' size.
    pub normalize_advantages: bool,
    /// Multiplies the rollout's rewards before the returns (1: the rewards as they are). With
    /// returns of tens (1 per metre driven), the value loss outweighs the policy term under
    /// the shared trunk's global-norm clip; a scale of 0.1 keeps the targets near 1 (as
    /// reward scaling in Stable-Baselines' `VecNormalize`, here a constant).
    pub reward_scale: f64,
    /// Weight of the behaviour-cloning term `−mean(log π(a*|s))` added to the loss, over the
    /// expert's actions that label the rollout ([`Rollout::expert_actions`]); 0 (off) by
    /// default. Needs a rollout collected with an expert beside the policy.
    pub imitation_coef: f64,
    /// Weight, in behaviour cloning, of the states whose expert action brakes fully (brake ≥
    /// [`FULL_BRAKE`]) relative to the others: the cloning loss is the weighted mean
    /// `Σ w_t (−log π(a*_t|s_t)) / Σ w_t` (module docs). 1 (default): the plain mean. Must be
    /// finite and > 0.
    pub imitation_brake_weight: f64,
    /// A further factor on the cloning weight of the full brakes given while the car moves
    /// (the state's first measurement, speed / 25 km/h, says at least 1 km/h:
    /// [`Measurements::is_moving`]): such a state weighs `imitation_brake_weight ×
    /// imitation_moving_brake_weight`, a full brake at rest `imitation_brake_weight`, any other
    /// state 1. 1 (default): moving and standing brakes alike. Must be finite and > 0.
    pub imitation_moving_brake_weight: f64,
}

/// An action brakes fully when its brake is at least this (the Autopilot brakes with 1 for
/// something in its path, with 0.3 to slow down).
pub const FULL_BRAKE: f32 = 0.5;

impl Default for A2cConfig {
    fn default() -> Self {
        A2cConfig {
            gamma: 0.99,
            entropy_coef: 0.01,
            value_coef: 0.5,
            max_grad_norm: 0.5,
            learning_rate: 7e-4,
            total_updates: 25_000,
            warmup_updates: 0,
            optimizer: OptimizerKind::RmsProp,
            vtrace: None,
            normalize_advantages: false,
            reward_scale: 1.0,
            imitation_coef: 0.0,
            imitation_brake_weight: 1.0,
            imitation_moving_brake_weight: 1.0,
        }
    }
}

impl A2cConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.gamma) {
            return Err(Error::invalid("gamma", self.gamma, "must be in [0, 1]"));
        }
        for (name, v) in [
            ("entropy_coef", self.entropy_coef),
            ("value_coef", self.value_coef),
            ("imitation_coef", self.imitation_coef),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, v, "must be finite and >= 0"));
            }
        }
        if !(self.max_grad_norm.is_finite() && self.max_grad_norm > 0.0) {
            return Err(Error::invalid("max_grad_norm", self.max_grad_norm, "must be finite and > 0"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::invalid("learning_rate", self.learning_rate, "must be finite and > 0"));
        }
        if self.total_updates == 0 {
            return Err(Error::invalid("total_updates", 0, "must be >= 1"));
        }
        if self.warmup_updates >= self.total_updates {
            return Err(Error::invalid(
                "warmup_updates",
                self.warmup_updates,
                format!("must be less than the run's {} updates", self.total_updates),
            ));
        }
        for (name, v) in [
            ("imitation_brake_weight", self.imitation_brake_weight),
            ("imitation_moving_brake_weight", self.imitation_moving_brake_weight),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::invalid(name, v, "must be finite and > 0"));
            }
        }
        if !(self.reward_scale.is_finite() && self.reward_scale > 0.0) {
            return Err(Error::invalid("reward_scale", self.reward_scale, "must be finite and > 0"));
        }
        if let Some(v) = self.vtrace {
            v.validate()?;
        }
        Ok(())
    }
}

/// The terms of the loss for one rollout (scalars with their graph).
#[derive(Clone, Debug)]
pub struct Losses {
    /// `value_coef·½·mean((target − V)²) + policy − entropy_coef·entropy`.
    pub total: Tensor,
    /// `−mean(A · log π)`.
    pub policy: Tensor,
    /// `mean((target − V)²)`.
    pub value: Tensor,
    /// `mean(H(π))`.
    pub entropy: Tensor,
    /// `−mean_w(log π(a*|s))` over the expert's actions (weighted by
    /// [`A2cConfig::imitation_brake_weight`]), when `imitation_coef > 0`.
    pub imitation: Option<Tensor>,
}

/// How the policy's most likely action agrees with an expert's about braking fully
/// ([`FULL_BRAKE`]), counted over states; see [`brake_agreement`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrakeAgreement {
    /// States in which the expert brakes fully.
    pub expert_brakes: usize,
    /// Of those, the states in which the policy's most likely action brakes fully too.
    pub both_brake: usize,
    /// States in which the expert does not brake fully.
    pub expert_goes: usize,
    /// Of those, the states in which the policy's most likely action brakes fully.
    pub policy_brakes_alone: usize,
}

impl BrakeAgreement {
    /// Share of the expert's full-brake states in which the policy brakes fully too
    /// (`both_brake / expert_brakes`); `None` without any.
    pub fn recall(&self) -> Option<f64> {
        (self.expert_brakes > 0).then(|| self.both_brake as f64 / self.expert_brakes as f64)
    }

    /// Share of the other states in which the policy brakes fully
    /// (`policy_brakes_alone / expert_goes`); `None` without any.
    pub fn false_brakes(&self) -> Option<f64> {
        (self.expert_goes > 0).then(|| self.policy_brakes_alone as f64 / self.expert_goes as f64)
    }

    /// The counts of both, added.
    pub fn add(&mut self, other: &BrakeAgreement) {
        self.expert_brakes += other.expert_brakes;
        self.both_brake += other.both_brake;
        self.expert_goes += other.expert_goes;
        self.policy_brakes_alone += other.policy_brakes_alone;
    }
}

/// Compares the most likely action of `policy` (`[B]` rows; [`Policy::greedy`]: the mode of a
/// discrete policy, the mean of a Beta one) with the expert's raw actions `expert` (`[B]`
/// indices or `[B, 3]` unit values of the same action space) about braking fully.
///
/// Errors: `expert` of another length than the policy's rows.
pub fn brake_agreement(policy: &Policy, expert: &Tensor) -> Result<BrakeAgreement> {
    let mine = policy.actions(&policy.greedy()?)?;
    let theirs = policy.actions(expert)?;
    if mine.len() != theirs.len() {
        return Err(Error::shape(
            "expert actions",
            format!("{} rows (the policy's)", mine.len()),
            format!("{} rows", theirs.len()),
        ));
    }
    let mut out = BrakeAgreement::default();
    for (m, e) in mine.iter().zip(&theirs) {
        let m = m.brake >= FULL_BRAKE;
        if e.brake >= FULL_BRAKE {
            out.expert_brakes += 1;
            out.both_brake += m as usize;
        } else {
            out.expert_goes += 1;
            out.policy_brakes_alone += m as usize;
        }
    }
    Ok(out)
}

/// What one update did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpdateStats {
    /// Total loss.
    pub loss: f64,
    /// Policy-gradient term `−mean(A · log π)`.
    pub policy_loss: f64,
    /// Mean squared error of the critic.
    pub value_loss: f64,
    /// Mean policy entropy (nats).
    pub entropy: f64,
    /// The behaviour-cloning term `−mean_w(log π(a*|s))` (nats), when `imitation_coef > 0`.
    pub imitation_loss: Option<f64>,
    /// In an imitation update ([`A2c::imitation_update`]): how the policy's most likely
    /// action agreed with the expert's labels about braking fully, before the update's first
    /// step.
    pub brake_agreement: Option<BrakeAgreement>,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the step.
    pub learning_rate: f64,
    /// `Some(reason)` when the update was skipped (non-finite loss or gradient): no variable
    /// changed.
    pub skipped: Option<String>,
}

/// The A2C learner: its configuration, the optimiser over the network's variables, and the
/// update counter that drives the learning-rate decay.
pub struct A2c {
    config: A2cConfig,
    vars: Vec<Var>,
    optimizer: Box<dyn Optimizer>,
    updates: usize,
    skipped: usize,
}

impl A2c {
    /// A learner for the network whose variables are in `varmap`.
    pub fn new(config: A2cConfig, varmap: &VarMap) -> Result<Self> {
        config.validate()?;
        let optimizer: Box<dyn Optimizer> = match config.optimizer {
            OptimizerKind::RmsProp => Box::new(RmsProp::a2c(varmap, config.learning_rate)?),
            OptimizerKind::Adam => Box::new(Adam::from_varmap(varmap, config.learning_rate, 0.0)?),
            OptimizerKind::RmsPropTf => Box::new(RmsProp::a2c_tensorflow(varmap, config.learning_rate)?),
        };
        Ok(A2c { config, vars: varmap.all_vars(), optimizer, updates: 0, skipped: 0 })
    }

    /// The configuration.
    pub fn config(&self) -> &A2cConfig {
        &self.config
    }

    /// The optimiser (its state is what a checkpoint saves).
    pub fn optimizer(&self) -> &dyn Optimizer {
        self.optimizer.as_ref()
    }

    /// The optimiser, to restore its state.
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer {
        self.optimizer.as_mut()
    }

    /// Updates attempted so far (applied or skipped).
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// Sets the update counter (when resuming).
    pub fn set_updates(&mut self, updates: usize) {
        self.updates = updates;
    }

    /// Updates skipped for a non-finite loss or gradient.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The loss of `rollout` under `net` (see the module docs), with its graph.
    pub fn losses(&self, net: &ActorCritic, rollout: &Rollout) -> Result<Losses> {
        let out = forward(net, rollout)?;
        self.losses_of(net, rollout, &out, None)
    }

    /// The imitation loss of a rollout whose actions are an expert's
    /// ([`super::collect_with`]): the policy term is the negative log-likelihood of the stored
    /// actions, `−mean_w(log π(a*|s))` (behaviour cloning; the advantages set to the
    /// normalised weights `w_t / mean(w)` of [`A2cConfig::imitation_brake_weight`], all 1 by
    /// default), the value and entropy terms are A2C's (the critic learns the returns of the
    /// executed actions).
    pub fn imitation_losses(&self, net: &ActorCritic, rollout: &Rollout) -> Result<Losses> {
        let out = forward(net, rollout)?;
        let values = out.value.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        self.losses_of(net, rollout, &out, Some(&values))
    }

    /// The loss terms; `imitation`: the behaviour-cloning loss, with the value targets
    /// bootstrapped from these values `[(T + 1)·N]` (held fixed over an imitation update's
    /// epochs: re-bootstrapping from a critic trained on the same batch diverges).
    fn losses_of(
        &self,
        net: &ActorCritic,
        rollout: &Rollout,
        out: &ActorCriticOutput,
        imitation: Option<&[f64]>,
    ) -> Result<Losses> {
        let (t, n) = (rollout.steps(), rollout.actors());
        let values = out.value.to_dtype(DType::F32)?;
        let policy = net.config().action_space.policy(&out.head.narrow(0, 0, t * n)?)?;
        let actions = rollout.actions()?.flatten(0, 1)?;
        let log_probs = policy.log_prob(&actions)?.to_dtype(DType::F32)?;
        let entropy = policy.entropy()?.to_dtype(DType::F32)?.mean_all()?;

        let v_all = match imitation {
            Some(v) => v.to_vec(),
            None => values.to_dtype(DType::F64)?.to_vec1::<f64>()?,
        };
        let rewards = self.scaled_rewards(rollout);
        let rewards = rewards.as_ref();
        let (targets, advantages) = match self.config.vtrace {
            None => {
                let returns = n_step_returns(rewards, rollout.masks(), &v_all[t * n..], self.config.gamma)?;
                let adv = returns.iter().zip(&v_all).map(|(r, v)| r - v).collect::<Vec<_>>();
                (returns, adv)
            }
            Some(cfg) => {
                let behaviour = rollout.behaviour_log_probs()?.flatten_all()?.to_dtype(DType::F64)?;
                let current = log_probs.to_dtype(DType::F64)?.to_vec1::<f64>()?;
                let log_ratios: Vec<f64> =
                    current.iter().zip(behaviour.to_vec1::<f64>()?).map(|(c, b)| c - b).collect();
                let v = vtrace(rewards, rollout.masks(), &v_all, &log_ratios, self.config.gamma, cfg)?;
                (v.targets, v.advantages)
            }
        };
        let visited = || -> Result<Tensor> { Ok(rollout.measurements()?.narrow(0, 0, t)?.flatten(0, 1)?) };
        let advantages = if imitation.is_some() {
            self.cloning_weights(&policy, &actions, visited)?
        } else if self.config.normalize_advantages {
            standardized(&advantages)
        } else {
            advantages
        };
        let dev = values.device();
        let as_tensor = |v: Vec<f64>| -> Result<Tensor> {
            Ok(Tensor::from_vec(v.into_iter().map(|x| x as f32).collect::<Vec<_>>(), t * n, dev)?)
        };
        let targets = as_tensor(targets)?;
        let advantages = as_tensor(advantages)?;
        let value = (targets - values.narrow(0, 0, t * n)?)?.sqr()?.mean_all()?;
        let policy_loss = (advantages * log_probs)?.mean_all()?.neg()?;
        let mut total = self.total_of(&value, &policy_loss, &entropy)?;
        let imitation_loss = match imitation {
            None if self.config.imitation_coef > 0.0 => {
                let expert = rollout.expert_actions()?.flatten(0, 1)?;
                let log_probs = policy.log_prob(&expert)?.to_dtype(DType::F32)?;
                let weights = as_tensor(self.cloning_weights(&policy, &expert, visited)?)?;
                let term = (weights * log_probs)?.mean_all()?.neg()?;
                total = (total + term.affine(self.config.imitation_coef, 0.0)?)?;
                Some(term)
            }
            _ => None,
        };
        Ok(Losses { total, policy: policy_loss, value, entropy, imitation: imitation_loss })
    }

    /// One update from a full rollout (see the module docs). Errors for a rollout that is not
    /// full or does not fit the network; a non-finite loss or gradient is not an error but a
    /// skipped update ([`UpdateStats::skipped`]).
    pub fn update(&mut self, net: &ActorCritic, rollout: &Rollout) -> Result<UpdateStats> {
        let rate = self.scheduled_rate()?;
        let stats = self.step_with(net, rollout, None, rate)?;
        self.updates += 1;
        Ok(stats)
    }

    /// [`A2c::update`] with [`A2c::imitation_losses`]: `epochs` behaviour-cloning steps on a
    /// rollout labelled by an expert, all at the rate of one scheduled update (the update
    /// counter advances by one), the value targets bootstrapped from the critic as it was
    /// before the first step. Returns the last step's statistics; skipped steps are
    /// counted in [`A2c::skipped`].
    pub fn imitation_update(&mut self, net: &ActorCritic, rollout: &Rollout, epochs: usize) -> Result<UpdateStats> {
        let rate = self.scheduled_rate()?;
        let out = forward(net, rollout)?;
        let values = out.value.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let rows = rollout.steps() * rollout.actors();
        let policy = net.config().action_space.policy(&out.head.narrow(0, 0, rows)?)?;
        let agreement = brake_agreement(&policy, &rollout.actions()?.flatten(0, 1)?)?;
        let mut stats = UpdateStats::default();
        for _ in 0..epochs.max(1) {
            stats = self.step_with(net, rollout, Some(&values), rate)?;
        }
        stats.brake_agreement = Some(agreement);
        self.updates += 1;
        Ok(stats)
    }

    /// [`A2c::imitation_update`] with DAgger's aggregated data set: the rollout's states,
    /// labelled with the expert's actions (the rollout's, collected with
    /// [`super::Expert::relabel`]) and the critic's n-step returns as it is now, join
    /// `aggregate`; then each of the `epochs` steps minimises [`A2c::cloning_losses`] on `T·N`
    /// states drawn from the whole aggregate with `rng`, all at the rate of one scheduled
    /// update (the counter advances by one). The brake agreement is measured on the rollout
    /// before the first step, as in [`A2c::imitation_update`].
    ///
    /// # Errors
    /// A rollout that is not full or does not fit the network or the aggregate.
    pub fn dagger_update(
        &mut self,
        net: &ActorCritic,
        rollout: &Rollout,
        epochs: usize,
        aggregate: &mut Aggregate,
        rng: &mut impl Rng,
    ) -> Result<UpdateStats> {
        let rate = self.scheduled_rate()?;
        let (t, n) = (rollout.steps(), rollout.actors());
        let out = forward(net, rollout)?;
        let policy = net.config().action_space.policy(&out.head.narrow(0, 0, t * n)?)?;
        let expert = rollout.actions()?.flatten(0, 1)?;
        let agreement = brake_agreement(&policy, &expert)?;
        let values = out.value.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let targets =
            n_step_returns(&self.scaled_rewards(rollout), rollout.masks(), &values[t * n..], self.config.gamma)?;
        let visited = |x: Tensor| -> Result<Tensor> { Ok(x.narrow(0, 0, t)?.flatten(0, 1)?) };
        aggregate.extend(&visited(rollout.latents()?)?, &visited(rollout.measurements()?)?, &expert, &targets, rng)?;
        let mut stats = UpdateStats::default();
        for _ in 0..epochs.max(1) {
            let batch = aggregate.sample(t * n, rng, expert.device())?;
            stats = self.cloning_step(net, &batch, rate)?;
        }
        stats.brake_agreement = Some(agreement);
        self.updates += 1;
        Ok(stats)
    }

    /// The behaviour-cloning loss of a batch of expert-labelled states: `−mean_w(log π(a*|s))`
    /// (weighted by [`A2cConfig::imitation_brake_weight`]) as the policy term, `½ ·
    /// mean((targets − V)²)` with the batch's stored targets as the value term, and the
    /// entropy bonus — the terms of [`A2c::imitation_losses`] on states that need not be a
    /// rollout.
    pub fn cloning_losses(&self, net: &ActorCritic, batch: &DaggerBatch) -> Result<Losses> {
        let out = net.forward(&batch.latents, &batch.measurements)?;
        self.cloning_losses_of(net, batch, &out)
    }

    fn cloning_losses_of(&self, net: &ActorCritic, batch: &DaggerBatch, out: &ActorCriticOutput) -> Result<Losses> {
        let policy = net.config().action_space.policy(&out.head)?;
        let log_probs = policy.log_prob(&batch.actions)?.to_dtype(DType::F32)?;
        let weights = self.cloning_weights(&policy, &batch.actions, || Ok(batch.measurements.clone()))?;
        let weights = Tensor::from_vec(
            weights.into_iter().map(|w| w as f32).collect::<Vec<_>>(),
            log_probs.dims(),
            log_probs.device(),
        )?;
        let policy_loss = (weights * log_probs)?.mean_all()?.neg()?;
        let entropy = policy.entropy()?.to_dtype(DType::F32)?.mean_all()?;
        let value = (&batch.targets - out.value.to_dtype(DType::F32)?)?.sqr()?.mean_all()?;
        let total = self.total_of(&value, &policy_loss, &entropy)?;
        Ok(Losses { total, policy: policy_loss, value, entropy, imitation: None })
    }

    /// The loss `value_coef · ½ · value + policy − entropy_coef · entropy` (module docs), shared
    /// by A2C's, the imitation and the cloning losses.
    fn total_of(&self, value: &Tensor, policy: &Tensor, entropy: &Tensor) -> Result<Tensor> {
        Ok(((value.affine(0.5 * self.config.value_coef, 0.0)? + policy)?
            - entropy.affine(self.config.entropy_coef, 0.0)?)?)
    }

    /// One gradient step of [`A2c::cloning_losses`] at `rate` (skipped, and reported, when
    /// the network's outputs, the loss or the gradient are not finite).
    fn cloning_step(&mut self, net: &ActorCritic, batch: &DaggerBatch, rate: f64) -> Result<UpdateStats> {
        let out = net.forward(&batch.latents, &batch.measurements)?;
        if let Some(skipped) = self.non_finite_outputs(&out, rate)? {
            return Ok(skipped);
        }
        let losses = self.cloning_losses_of(net, batch, &out)?;
        self.apply_losses(&losses, rate)
    }

    /// The behaviour-cloning weights of the expert's raw actions `[T·N]` / `[T·N, 3]` in the
    /// states whose measurements `[T·N, M]` `measurements()` gives (asked for only when a
    /// weight is not 1): [`A2cConfig::imitation_brake_weight`] where the action brakes fully,
    /// times [`A2cConfig::imitation_moving_brake_weight`] where the car moves too, 1
    /// elsewhere, divided by their mean (so that `mean(w · x) = Σ w x / Σ w`); all 1 at
    /// weights 1. Errors when the measurements are not one row per action.
    fn cloning_weights(
        &self,
        policy: &Policy,
        expert: &Tensor,
        measurements: impl FnOnce() -> Result<Tensor>,
    ) -> Result<Vec<f64>> {
        let n = expert.dim(0)?;
        let (w, moving) = (self.config.imitation_brake_weight, self.config.imitation_moving_brake_weight);
        if w == 1.0 && moving == 1.0 {
            return Ok(vec![1.0; n]);
        }
        let measurements = measurements()?;
        if measurements.rank() != 2 || measurements.dim(0)? != n {
            return Err(Error::shape(
                "cloning measurements",
                format!("[{n}, M] (one row per action)"),
                format!("{:?}", measurements.dims()),
            ));
        }
        let speeds = measurements.narrow(1, 0, 1)?.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        let raw: Vec<f64> = policy
            .actions(expert)?
            .iter()
            .zip(speeds)
            .map(|(a, speed)| match (a.brake >= FULL_BRAKE, Measurements::is_moving(speed)) {
                (false, _) => 1.0,
                (true, false) => w,
                (true, true) => w * moving,
            })
            .collect();
        let mean = raw.iter().sum::<f64>() / n.max(1) as f64;
        Ok(raw.into_iter().map(|x| x / mean).collect())
    }

    /// The rollout's rewards times [`A2cConfig::reward_scale`], `[T, N]` row-major.
    fn scaled_rewards<'a>(&self, rollout: &'a Rollout) -> std::borrow::Cow<'a, [f64]> {
        match self.config.reward_scale {
            1.0 => std::borrow::Cow::Borrowed(rollout.rewards()),
            s => std::borrow::Cow::Owned(rollout.rewards().iter().map(|r| r * s).collect()),
        }
    }

    /// The learning rate of the next update: decayed linearly, times the warm-up factor.
    fn scheduled_rate(&self) -> Result<f64> {
        let decayed = Schedule::Linear.rate(self.config.learning_rate, self.updates, self.config.total_updates)?;
        Ok(decayed * warmup_factor(self.updates, self.config.warmup_updates))
    }

    /// One gradient step of the A2C (or, with `imitation`, the imitation) loss at `rate`,
    /// numbered `self.updates` in the messages of a skipped step; does not advance the counter.
    fn step_with(
        &mut self,
        net: &ActorCritic,
        rollout: &Rollout,
        imitation: Option<&[f64]>,
        rate: f64,
    ) -> Result<UpdateStats> {
        let out = forward(net, rollout)?;
        if let Some(skipped) = self.non_finite_outputs(&out, rate)? {
            return Ok(skipped);
        }
        let losses = self.losses_of(net, rollout, &out, imitation)?;
        self.apply_losses(&losses, rate)
    }

    /// A skipped update's statistics (counted in [`A2c::skipped`]) when the network's outputs
    /// hold NaN or infinity; `None` when they are finite.
    fn non_finite_outputs(&mut self, out: &ActorCriticOutput, rate: f64) -> Result<Option<UpdateStats>> {
        let probe = (out.head.sum_all()?.to_dtype(DType::F64)? + out.value.sum_all()?.to_dtype(DType::F64)?)?;
        if probe.to_scalar::<f64>()?.is_finite() {
            return Ok(None);
        }
        self.skipped += 1;
        Ok(Some(UpdateStats {
            loss: f64::NAN,
            learning_rate: rate,
            skipped: Some(format!(
                "update {}: the network's outputs hold NaN or infinity (a non-finite state or weight); no step taken",
                self.updates
            )),
            ..Default::default()
        }))
    }

    /// One optimiser step of `losses.total` at `rate`, with the terms as statistics.
    fn apply_losses(&mut self, losses: &Losses, rate: f64) -> Result<UpdateStats> {
        let scalar = |t: &Tensor| -> Result<f64> { Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?) };
        let mut stats = UpdateStats {
            loss: scalar(&losses.total)?,
            policy_loss: scalar(&losses.policy)?,
            value_loss: scalar(&losses.value)?,
            entropy: scalar(&losses.entropy)?,
            imitation_loss: losses.imitation.as_ref().map(scalar).transpose()?,
            ..Default::default()
        };
        let applied = self.step_at(&losses.total, rate)?;
        stats.grad_norm = applied.grad_norm;
        stats.learning_rate = applied.learning_rate;
        stats.skipped = applied.skipped;
        Ok(stats)
    }

    /// Backward pass of `loss`, global-norm clipping and one optimiser step at the scheduled
    /// rate, unless the loss or the gradient norm is not finite (then nothing changes and the
    /// reason is returned). Counts the update either way (a skipped one too; an `Err` does not count).
    pub fn apply(&mut self, loss: &Tensor) -> Result<UpdateStats> {
        let rate = self.scheduled_rate()?;
        let stats = self.step_at(loss, rate)?;
        self.updates += 1;
        Ok(stats)
    }

    /// [`A2c::apply`] at a given `rate`, without advancing the update counter.
    fn step_at(&mut self, loss: &Tensor, rate: f64) -> Result<UpdateStats> {
        let value = loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        let mut stats = UpdateStats { loss: value, learning_rate: rate, ..Default::default() };
        if !value.is_finite() {
            self.skipped += 1;
            stats.skipped = Some(format!("update {}: the loss is {value}; no step taken", self.updates));
            return Ok(stats);
        }
        let mut grads = loss.backward()?;
        let norm = clip_grad_norm(&mut grads, &self.vars, self.config.max_grad_norm)?;
        stats.grad_norm = norm;
        if !norm.is_finite() {
            self.skipped += 1;
            stats.skipped = Some(format!("update {}: the gradient norm is {norm}; no step taken", self.updates));
            return Ok(stats);
        }
        self.optimizer.set_learning_rate(rate)?;
        self.optimizer.step(&grads)?;
        Ok(stats)
    }
}

/// `(x − mean) / (sd + 1e-8)` with the population standard deviation.
fn standardized(x: &[f64]) -> Vec<f64> {
    let n = x.len().max(1) as f64;
    let mean = x.iter().sum::<f64>() / n;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    x.iter().map(|v| (v - mean) / (sd + 1e-8)).collect()
}

/// The network on all `(T + 1)·N` states of a full rollout, in one batch.
fn forward(net: &ActorCritic, rollout: &Rollout) -> Result<ActorCriticOutput> {
    net.forward(&rollout.latents()?.flatten(0, 1)?, &rollout.measurements()?.flatten(0, 1)?)
}

/// The global norm `‖g‖ = √(Σ_v ‖g_v‖²)` of the gradients of `vars`; when it exceeds
/// `max_norm` every gradient is scaled by `max_norm / (‖g‖ + 1e-6)`
/// (`torch.nn.utils.clip_grad_norm_`). Returns the norm before clipping; a non-finite norm
/// leaves the gradients as they are.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut squares = vec![];
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            squares.push(g.to_dtype(DType::F64)?.sqr()?.sum_all()?);
        }
    }
    if squares.is_empty() {
        return Ok(0.0);
    }
    let norm = Tensor::stack(&squares, 0)?.sum_all()?.to_scalar::<f64>()?.sqrt();
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.remove(v.as_tensor()) {
                grads.insert(v.as_tensor(), g.affine(scale, 0.0)?);
            }
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::{ActionSpace, ActorCriticConfig, State};
    use candle_core::Device;

    /// Random states of `n` actors shaped for `cfg`; the latents are rounded to `f16` (the
    /// precision DAgger's aggregate keeps them in), so that a rollout and its aggregate hold
    /// the same states.
    fn random_state(rng: &mut rand::rngs::StdRng, n: usize, cfg: &ActorCriticConfig) -> State {
        let dev = Device::Cpu;
        State {
            latent: crate::random::normal(
                rng,
                (n, cfg.latent_channels, cfg.latent_height, cfg.latent_width),
                1.0,
                &dev,
            )
            .and_then(|x| Ok(x.to_dtype(DType::F16)?.to_dtype(DType::F32)?))
            .unwrap(),
            measurements: crate::random::normal(rng, (n, cfg.measurements), 1.0, &dev).unwrap(),
        }
    }

    /// A rollout of `t` steps of `n` actors on random states whose stored actions are the
    /// indices `actions[k·n + a]`, each step labelled with `labels` likewise.
    fn indexed_rollout(t: usize, n: usize, cfg: &ActorCriticConfig, actions: &[u32], labels: &[u32]) -> Rollout {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(5);
        let mut r = Rollout::new(t, n).unwrap();
        r.begin(&random_state(&mut rng, n, cfg)).unwrap();
        for k in 0..t {
            let a = Tensor::new(&actions[k * n..(k + 1) * n], &dev).unwrap();
            let lp = Tensor::zeros(n, DType::F32, &dev).unwrap();
            r.push(&a, &lp, &vec![0.5f32; n], &vec![false; n], &random_state(&mut rng, n, cfg)).unwrap();
            r.label(&Tensor::new(&labels[k * n..(k + 1) * n], &dev).unwrap()).unwrap();
        }
        r
    }

    fn rollout(t: usize, n: usize, cfg: &ActorCriticConfig, seed: u64) -> Rollout {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(seed);
        let state = |rng: &mut rand::rngs::StdRng| random_state(rng, n, cfg);
        let mut r = Rollout::new(t, n).unwrap();
        r.begin(&state(&mut rng)).unwrap();
        for k in 0..t {
            let actions = match cfg.action_space {
                ActionSpace::Beta => Tensor::full(0.3f32, (n, 3), &dev).unwrap(),
                ActionSpace::Discrete | ActionSpace::Grid | ActionSpace::Fine => Tensor::full(2u32, n, &dev).unwrap(),
            };
            let lp = Tensor::zeros(n, DType::F32, &dev).unwrap();
            let rewards: Vec<f32> = (0..n).map(|a| (k + a) as f32 * 0.1).collect();
            let dones: Vec<bool> = (0..n).map(|a| (k + a) % 3 == 2).collect();
            r.push(&actions, &lp, &rewards, &dones, &state(&mut rng)).unwrap();
        }
        r
    }

    fn weights(vm: &VarMap) -> Vec<f32> {
        let mut names: Vec<_> = vm.data().lock().unwrap().keys().cloned().collect();
        names.sort();
        let data = vm.data().lock().unwrap();
        names.iter().flat_map(|n| data[n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    }

    /// The loss terms against a direct computation: the value loss is the mean squared
    /// difference between the n-step returns (of `n_step_returns`, tested by hand) and `V`,
    /// the policy loss `−mean((R − V)·log π)`, and the total their weighted sum.
    #[test]
    fn loss_terms_match_a_direct_computation() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let r = rollout(3, 2, &cfg, 2);
        let a2c = A2c::new(A2cConfig::default(), &vm).unwrap();
        let l = a2c.losses(&net, &r).unwrap();
        let lat = r.latents().unwrap().reshape((8, 4, 5, 6)).unwrap();
        let mea = r.measurements().unwrap().reshape((8, 7)).unwrap();
        let out = net.forward(&lat, &mea).unwrap();
        let v = out.value.to_vec1::<f32>().unwrap();
        let ret = n_step_returns(r.rewards(), r.masks(), &[v[6] as f64, v[7] as f64], 0.99).unwrap();
        let policy = cfg.action_space.policy(&out.head.narrow(0, 0, 6).unwrap()).unwrap();
        let lp = policy.log_prob(&Tensor::full(0.3f32, (6, 3), &Device::Cpu).unwrap()).unwrap();
        let lp = lp.to_vec1::<f32>().unwrap();
        let h = policy.entropy().unwrap().mean_all().unwrap().to_scalar::<f32>().unwrap() as f64;
        let value: f64 = (0..6).map(|i| (ret[i] - v[i] as f64).powi(2)).sum::<f64>() / 6.0;
        let pol: f64 = -(0..6).map(|i| (ret[i] - v[i] as f64) * lp[i] as f64).sum::<f64>() / 6.0;
        let get = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
        assert!((get(&l.value) - value).abs() < 1e-4 * value.max(1.0), "{} vs {value}", get(&l.value));
        assert!((get(&l.policy) - pol).abs() < 1e-4 * pol.abs().max(1.0), "{} vs {pol}", get(&l.policy));
        assert!((get(&l.entropy) - h).abs() < 1e-5);
        let total = 0.25 * value + pol - 0.01 * h;
        assert!((get(&l.total) - total).abs() < 1e-4 * total.abs().max(1.0));
        // With normalize_advantages the policy term uses (A − mean A) / sd A (population sd,
        // computed here by hand); the value term is unchanged.
        let norm = A2c::new(A2cConfig { normalize_advantages: true, ..Default::default() }, &vm).unwrap();
        let ln = norm.losses(&net, &r).unwrap();
        let adv: Vec<f64> = (0..6).map(|i| ret[i] - v[i] as f64).collect();
        let mean = adv.iter().sum::<f64>() / 6.0;
        let sd = (adv.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / 6.0).sqrt();
        let pol_n: f64 = -(0..6).map(|i| (adv[i] - mean) / sd * lp[i] as f64).sum::<f64>() / 6.0;
        assert!((get(&ln.policy) - pol_n).abs() < 1e-4 * pol_n.abs().max(1.0), "{} vs {pol_n}", get(&ln.policy));
        assert!((get(&ln.value) - value).abs() < 1e-4 * value.max(1.0));
        assert!((pol_n - pol).abs() > 1e-3, "the normalised policy term differs from the plain one");
        // With reward_scale = 0.1 the returns are those of the rewards times 0.1 (computed by
        // hand with n_step_returns on the scaled rewards).
        let scaled = A2c::new(A2cConfig { reward_scale: 0.1, ..Default::default() }, &vm).unwrap();
        let ls = scaled.losses(&net, &r).unwrap();
        let rewards: Vec<f64> = r.rewards().iter().map(|x| 0.1 * x).collect();
        let ret_s = n_step_returns(&rewards, r.masks(), &[v[6] as f64, v[7] as f64], 0.99).unwrap();
        let value_s: f64 = (0..6).map(|i| (ret_s[i] - v[i] as f64).powi(2)).sum::<f64>() / 6.0;
        let pol_s: f64 = -(0..6).map(|i| (ret_s[i] - v[i] as f64) * lp[i] as f64).sum::<f64>() / 6.0;
        assert!((get(&ls.value) - value_s).abs() < 1e-4 * value_s.max(1.0), "{} vs {value_s}", get(&ls.value));
        assert!((get(&ls.policy) - pol_s).abs() < 1e-4 * pol_s.abs().max(1.0));
        assert!((value_s - value).abs() > 1e-3, "the scaled returns differ from the plain ones");
        assert!(A2cConfig { reward_scale: 0.0, ..Default::default() }.validate().is_err());
        // Imitation: the policy term is −mean log π of the stored actions; value unchanged.
        let li = a2c.imitation_losses(&net, &r).unwrap();
        let nll = -lp.iter().map(|&l| l as f64).sum::<f64>() / 6.0;
        assert!((get(&li.policy) - nll).abs() < 1e-4 * nll.abs().max(1.0), "{} vs {nll}", get(&li.policy));
        assert!((get(&li.value) - value).abs() < 1e-4 * value.max(1.0));
    }

    /// With `imitation_coef = λ` the loss is A2C's plus `λ·(−mean log π(a*|s))` over the
    /// expert's labels (computed here directly from the policy on the labels, which differ
    /// from the executed actions); the other terms are unchanged. A rollout without labels
    /// is an error naming them, and a negative or NaN λ is refused.
    #[test]
    fn the_behaviour_cloning_term_adds_the_labels_nll() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let plain = rollout(3, 2, &cfg, 2);
        let a2c = A2c::new(A2cConfig::default(), &vm).unwrap();
        let bc = A2c::new(A2cConfig { imitation_coef: 0.5, ..Default::default() }, &vm).unwrap();
        let e = bc.losses(&net, &plain).unwrap_err().to_string();
        assert!(e.contains("expert actions"), "{e}");
        // The same rollout, each step labelled with (0.7, 0.2, 0.1).
        let (lat, mea, act) = (plain.latents().unwrap(), plain.measurements().unwrap(), plain.actions().unwrap());
        let st = |k: usize| State { latent: lat.get(k).unwrap(), measurements: mea.get(k).unwrap() };
        let label = Tensor::new(&[[0.7f32, 0.2, 0.1], [0.7, 0.2, 0.1]], &Device::Cpu).unwrap();
        let mut r = Rollout::new(3, 2).unwrap();
        r.begin(&st(0)).unwrap();
        for k in 0..3 {
            let rew: Vec<f32> = plain.rewards()[k * 2..k * 2 + 2].iter().map(|&x| x as f32).collect();
            let done: Vec<bool> = plain.masks()[k * 2..k * 2 + 2].iter().map(|&m| m == 0.0).collect();
            let lp = Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap();
            r.push(&act.get(k).unwrap(), &lp, &rew, &done, &st(k + 1)).unwrap();
            r.label(&label).unwrap();
        }
        let (base, with) = (a2c.losses(&net, &r).unwrap(), bc.losses(&net, &r).unwrap());
        assert!(base.imitation.is_none());
        let out = net.forward(&lat.reshape((8, 4, 5, 6)).unwrap(), &mea.reshape((8, 7)).unwrap()).unwrap();
        let policy = cfg.action_space.policy(&out.head.narrow(0, 0, 6).unwrap()).unwrap();
        let labels = Tensor::cat(&[&label, &label, &label], 0).unwrap();
        let lp = policy.log_prob(&labels).unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap();
        let nll = -lp.iter().sum::<f64>() / 6.0;
        let get = |t: &Tensor| t.to_scalar::<f32>().unwrap() as f64;
        let term = get(with.imitation.as_ref().unwrap());
        assert!((term - nll).abs() < 1e-4 * nll.abs().max(1.0), "{term} vs {nll}");
        let expected = get(&base.total) + 0.5 * nll;
        assert!((get(&with.total) - expected).abs() < 1e-4 * expected.abs().max(1.0));
        assert_eq!(get(&with.policy), get(&base.policy));
        assert_eq!(get(&with.value), get(&base.value));
        for bad in [-0.1, f64::NAN] {
            let e = A2cConfig { imitation_coef: bad, ..Default::default() }.validate().unwrap_err().to_string();
            assert!(e.contains("imitation_coef"), "{e}");
        }
    }

    /// On-policy V-trace (behaviour log-probs = the current policy's) gives A2C's loss.
    #[test]
    fn on_policy_vtrace_loss_equals_a2c() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(ActionSpace::Discrete);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 3).unwrap();
        let plain = rollout(4, 3, &cfg, 5);
        // Behaviour log-probs equal to the current policy's: rebuild the rollout with them.
        let lat = plain.latents().unwrap();
        let mea = plain.measurements().unwrap();
        let mut r = Rollout::new(4, 3).unwrap();
        let st = |k: usize| State { latent: lat.get(k).unwrap(), measurements: mea.get(k).unwrap() };
        r.begin(&st(0)).unwrap();
        for k in 0..4 {
            let out = net.forward(&st(k).latent, &st(k).measurements).unwrap();
            let a = plain.actions().unwrap().get(k).unwrap();
            let lp = net.policy(&out).unwrap().log_prob(&a).unwrap();
            let rew: Vec<f32> = plain.rewards()[k * 3..k * 3 + 3].iter().map(|&x| x as f32).collect();
            let done: Vec<bool> = plain.masks()[k * 3..k * 3 + 3].iter().map(|&m| m == 0.0).collect();
            r.push(&a, &lp, &rew, &done, &st(k + 1)).unwrap();
        }
        let a2c = A2c::new(A2cConfig::default(), &vm).unwrap();
        let vt = A2c::new(A2cConfig { vtrace: Some(VTraceConfig::default()), ..Default::default() }, &vm).unwrap();
        let (a, b) = (a2c.losses(&net, &r).unwrap(), vt.losses(&net, &r).unwrap());
        let get = |t: &Tensor| t.to_scalar::<f32>().unwrap();
        assert!((get(&a.total) - get(&b.total)).abs() < 1e-4, "{} vs {}", get(&a.total), get(&b.total));
        assert!((get(&a.value) - get(&b.value)).abs() < 1e-4);
    }

    /// An update changes the weights and lowers the loss on the same rollout; the rate
    /// decays linearly (7e-4 at update 0, 3.5e-4 half-way).
    #[test]
    fn update_steps_and_decays_the_rate() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let r = rollout(3, 2, &cfg, 2);
        let mut a2c =
            A2c::new(A2cConfig { total_updates: 4, optimizer: OptimizerKind::Adam, ..Default::default() }, &vm)
                .unwrap();
        let before = weights(&vm);
        let s0 = a2c.update(&net, &r).unwrap();
        assert!(s0.skipped.is_none() && s0.grad_norm > 0.0);
        assert_eq!(s0.learning_rate, 7e-4);
        assert_ne!(before, weights(&vm));
        let s1 = a2c.update(&net, &r).unwrap();
        assert!(s1.loss < s0.loss, "{} then {}", s0.loss, s1.loss);
        let s2 = a2c.update(&net, &r).unwrap();
        assert!((s2.learning_rate - 3.5e-4).abs() < 1e-12);
        assert_eq!(a2c.updates(), 3);
    }

    /// With a warm-up of 2 updates the rate is `lr · (u + 1)/2 · (1 − u/T)`: 7e-4 · ½ at
    /// update 0, 7e-4 · (1 − 1/4) at update 1, then the plain decay; a warm-up as long as the
    /// run is refused.
    #[test]
    fn the_warmup_scales_the_decayed_rate() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let r = rollout(3, 2, &cfg, 2);
        let config = A2cConfig { total_updates: 4, warmup_updates: 2, ..Default::default() };
        let mut a2c = A2c::new(config, &vm).unwrap();
        let rates: Vec<f64> = (0..3).map(|_| a2c.update(&net, &r).unwrap().learning_rate).collect();
        let expected = [7e-4 * 0.5, 7e-4 * 0.75, 7e-4 * 0.5];
        for (got, want) in rates.iter().zip(expected) {
            assert!((got - want).abs() < 1e-15, "{rates:?} vs {expected:?}");
        }
        let err = A2c::new(A2cConfig { warmup_updates: 4, ..config }, &vm).err().unwrap().to_string();
        assert!(err.contains("warmup_updates"), "{err}");
    }

    /// An imitation update of several gradient steps counts as one update, all its steps at
    /// that update's rate (7e-4 at update 0, 7e-4 × (1 − 1/4) at update 1 of 4); with one step
    /// it is exactly [`A2c::imitation_losses`] followed by [`A2c::apply`].
    #[test]
    fn an_imitation_update_is_one_scheduled_update() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6);
        let r = rollout(3, 2, &cfg, 2);
        let config = A2cConfig { total_updates: 4, optimizer: OptimizerKind::Adam, ..Default::default() };
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let mut a2c = A2c::new(config, &vm).unwrap();
        let s0 = a2c.imitation_update(&net, &r, 3).unwrap();
        assert_eq!((a2c.updates(), s0.learning_rate), (1, 7e-4));
        let s1 = a2c.imitation_update(&net, &r, 3).unwrap();
        assert_eq!(a2c.updates(), 2);
        assert!((s1.learning_rate - 5.25e-4).abs() < 1e-15, "{}", s1.learning_rate);

        let (vm_a, net_a) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let (vm_b, net_b) = ActorCritic::seeded(&cfg, &Device::Cpu, 1).unwrap();
        let (mut a, mut b) = (A2c::new(config, &vm_a).unwrap(), A2c::new(config, &vm_b).unwrap());
        a.imitation_update(&net_a, &r, 1).unwrap();
        let losses = b.imitation_losses(&net_b, &r).unwrap();
        b.apply(&losses.total).unwrap();
        assert_eq!(weights(&vm_a), weights(&vm_b));
        assert_eq!(a.updates(), b.updates());
    }

    /// DAgger's update on an aggregate with room for the whole rollout: the aggregate then
    /// holds the rollout's `T·N` states, and its loss terms ([`A2c::cloning_losses`] on all of
    /// them, with the targets stored from the critic before the step) are those of
    /// [`A2c::imitation_losses`] on the rollout, for the 45 actions with brake weights 1 and
    /// 4 and for Beta; one epoch on it moves the weights as one imitation update does (the
    /// batch is a permutation of the rollout: equal up to summation order). A second rollout
    /// grows the aggregate, and the counter advances once per update.
    #[test]
    fn dagger_on_one_rollout_is_the_imitation_update() {
        let dev = Device::Cpu;
        let labels: Vec<u32> = (0..6).map(|i| [4, 2, 9, 0, 44, 14][i]).collect();
        for (space, w) in [(ActionSpace::Fine, 1.0), (ActionSpace::Fine, 4.0), (ActionSpace::Beta, 1.0)] {
            let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(space);
            let r = match space {
                ActionSpace::Beta => rollout(3, 2, &cfg, 2),
                _ => indexed_rollout(3, 2, &cfg, &labels, &labels),
            };
            let config = A2cConfig { imitation_brake_weight: w, total_updates: 4, ..Default::default() };
            let (vm_a, net_a) = ActorCritic::seeded(&cfg, &dev, 1).unwrap();
            let (vm_b, net_b) = ActorCritic::seeded(&cfg, &dev, 1).unwrap();
            let (mut a, mut b) = (A2c::new(config, &vm_a).unwrap(), A2c::new(config, &vm_b).unwrap());
            let mut aggregate = Aggregate::new(100).unwrap();
            let mut rng = crate::random::seeded(3);
            let before = b.imitation_losses(&net_b, &r).unwrap();
            let stats = a.dagger_update(&net_a, &r, 1, &mut aggregate, &mut rng).unwrap();
            assert_eq!((aggregate.len(), a.updates()), (6, 1));
            let get = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
            let close = |x: f64, y: f64| (x - y).abs() < 1e-5 * y.abs().max(1.0);
            assert!(close(stats.loss, get(&before.total)), "{space:?} w {w}: {} vs {}", stats.loss, get(&before.total));
            let (_, net_c) = ActorCritic::seeded(&cfg, &dev, 1).unwrap();
            let on_all = b.cloning_losses(&net_c, &aggregate.all(&dev).unwrap()).unwrap();
            for (x, y) in [
                (&on_all.total, &before.total),
                (&on_all.policy, &before.policy),
                (&on_all.value, &before.value),
                (&on_all.entropy, &before.entropy),
            ] {
                assert!(close(get(x), get(y)), "{space:?} w {w}: {} vs {}", get(x), get(y));
            }
            b.imitation_update(&net_b, &r, 1).unwrap();
            for (x, y) in weights(&vm_a).iter().zip(weights(&vm_b)) {
                assert!((x - y).abs() < 1e-5, "{space:?} w {w}: weights {x} vs {y}");
            }
            assert_ne!(weights(&vm_a), weights(&ActorCritic::seeded(&cfg, &dev, 1).unwrap().0), "a step was taken");
            a.dagger_update(&net_a, &r, 2, &mut aggregate, &mut rng).unwrap();
            assert_eq!((aggregate.len(), aggregate.seen(), a.updates()), (12, 12, 2));
        }
    }

    /// A NaN in a state (ReLU swallows it in the forward pass, not in the gradient), a NaN
    /// bias of the value head (NaN outputs), a NaN loss, and a finite loss with an infinite
    /// derivative (`√w` at `w = 0`): each update is skipped,
    /// reported and counted, and no weight changes (compared bit for bit).
    #[test]
    fn non_finite_outputs_loss_or_gradient_skip_the_update() {
        let dev = Device::Cpu;
        let bits = |vm: &VarMap| weights(vm).iter().map(|w| w.to_bits()).collect::<Vec<_>>();
        for space in ActionSpace::ALL {
            let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(space);
            let (vm, net) = ActorCritic::seeded(&cfg, &dev, 1).unwrap();
            let good = rollout(2, 2, &cfg, 2);
            let (lat, mea, act) = (good.latents().unwrap(), good.measurements().unwrap(), good.actions().unwrap());
            let mut r = Rollout::new(2, 2).unwrap();
            let st = |l: Tensor, k: usize| State { latent: l, measurements: mea.get(k).unwrap() };
            r.begin(&st(lat.get(0).unwrap(), 0)).unwrap();
            let lp = Tensor::zeros(2, DType::F32, &dev).unwrap();
            let poisoned = lat.get(1).unwrap().affine(1.0, f64::NAN).unwrap();
            r.push(&act.get(0).unwrap(), &lp, &[1.0, 1.0], &[false, false], &st(poisoned, 1)).unwrap();
            r.push(&act.get(1).unwrap(), &lp, &[1.0, 1.0], &[false, false], &st(lat.get(2).unwrap(), 2)).unwrap();
            let mut a2c = A2c::new(A2cConfig::default(), &vm).unwrap();
            let before = bits(&vm);
            let s = a2c.update(&net, &r).unwrap();
            assert!(s.skipped.is_some(), "{space:?}: {s:?}");
            assert_eq!(before, bits(&vm));

            let bias = vm.data().lock().unwrap()["value.out.bias"].clone();
            bias.set(&Tensor::new(&[f32::NAN], &dev).unwrap()).unwrap();
            let before = bits(&vm);
            let s = a2c.update(&net, &good).unwrap();
            assert!(s.skipped.as_deref().is_some_and(|m| m.contains("network's outputs")), "{space:?}: {s:?}");
            assert_eq!(before, bits(&vm));
            let s = a2c.apply(&Tensor::new(f32::NAN, &dev).unwrap()).unwrap();
            assert!(s.skipped.as_deref().is_some_and(|m| m.contains("loss is NaN")), "{s:?}");
            assert_eq!(before, bits(&vm));
            assert_eq!((a2c.skipped(), a2c.updates()), (3, 3));
        }

        let w = Var::new(&[0.0f32, 1.0], &dev).unwrap();
        let single = VarMap::new();
        single.data().lock().unwrap().insert("w".into(), w.clone());
        let mut a2c = A2c::new(A2cConfig::default(), &single).unwrap();
        // √w at w = 0: a finite loss (1) whose derivative 1/(2√w) is infinite.
        let loss = w.as_tensor().powf(0.5).unwrap().sum_all().unwrap();
        let s = a2c.apply(&loss).unwrap();
        assert!(s.loss.is_finite() && !s.grad_norm.is_finite(), "{s:?}");
        assert!(s.skipped.as_deref().is_some_and(|m| m.contains("gradient norm is")), "{s:?}");
        assert_eq!(w.as_tensor().to_vec1::<f32>().unwrap(), [0.0, 1.0]);
        assert_eq!((a2c.skipped(), a2c.updates()), (1, 1));
    }

    /// Clipping against `torch.nn.utils.clip_grad_norm_`: gradients (3, 4) and (12) have norm
    /// 13; clipped to 6.5 they become (3, 4, 12)·6.5/(13 + 1e-6).
    #[test]
    fn global_norm_clipping() {
        let dev = Device::Cpu;
        let a = Var::new(&[1.5f64, 2.0], &dev).unwrap();
        let b = Var::new(&[6.0f64], &dev).unwrap();
        let loss = (a.as_tensor().sqr().unwrap().sum_all().unwrap() + b.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
        let mut g = loss.backward().unwrap();
        let norm = clip_grad_norm(&mut g, &[a.clone(), b.clone()], 6.5).unwrap();
        assert!((norm - 13.0).abs() < 1e-12);
        let k = 6.5 / (13.0 + 1e-6);
        let ga = g.get(a.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        let gb = g.get(b.as_tensor()).unwrap().to_vec1::<f64>().unwrap();
        assert!((ga[0] - 3.0 * k).abs() < 1e-12 && (ga[1] - 4.0 * k).abs() < 1e-12 && (gb[0] - 12.0 * k).abs() < 1e-12);
        // Below the threshold nothing changes.
        let mut g = loss.backward().unwrap();
        clip_grad_norm(&mut g, &[a.clone(), b], 20.0).unwrap();
        assert_eq!(g.get(a.as_tensor()).unwrap().to_vec1::<f64>().unwrap(), [3.0, 4.0]);
    }

    /// Brake-weighted cloning is the weighted mean `Σ w (−log π(a*)) / Σ w`, `w` the weight
    /// where the label brakes fully (the fine set's indices `5s + 4`) and 1 elsewhere —
    /// computed here from the policy's log-probabilities; weight 1 is the plain mean; the A2C
    /// segments' cloning term (over the labels, not the stored actions) is weighted the same
    /// way; a weight that is not finite and > 0 is refused, named.
    #[test]
    fn brake_weighted_cloning_is_the_weighted_mean() {
        let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(ActionSpace::Fine);
        let (vm, net) = ActorCritic::seeded(&cfg, &Device::Cpu, 3).unwrap();
        let stored = [4u32, 2, 9, 0, 44, 23]; // 4, 9, 44 brake fully
        let labels = [2u32, 4, 0, 0, 19, 1]; // 4, 19 brake fully
        let r = indexed_rollout(3, 2, &cfg, &stored, &labels);
        // A few cloning steps on the labels first, so that the log-probabilities differ.
        let mut warm = A2c::new(A2cConfig { learning_rate: 0.01, ..Default::default() }, &vm).unwrap();
        let by_labels = indexed_rollout(3, 2, &cfg, &labels, &labels);
        warm.imitation_update(&net, &by_labels, 10).unwrap();
        let out = forward(&net, &r).unwrap();
        let policy = cfg.action_space.policy(&out.head.narrow(0, 0, 6).unwrap()).unwrap();
        let lp = |a: &[u32]| {
            let raw = Tensor::new(a, &Device::Cpu).unwrap();
            policy.log_prob(&raw).unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
        };
        let weighted = |a: &[u32], w: f64| {
            let ws: Vec<f64> = a.iter().map(|&i| if i % 5 == 4 { w } else { 1.0 }).collect();
            -lp(a).iter().zip(&ws).map(|(l, w)| l * w).sum::<f64>() / ws.iter().sum::<f64>()
        };
        let get = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5 * b.abs().max(1.0);
        for w in [1.0, 4.0] {
            let a2c = A2c::new(A2cConfig { imitation_brake_weight: w, ..Default::default() }, &vm).unwrap();
            let got = get(&a2c.imitation_losses(&net, &r).unwrap().policy);
            assert!(close(got, weighted(&stored, w)), "weight {w}: {got} vs {}", weighted(&stored, w));
            let bc = A2cConfig { imitation_brake_weight: w, imitation_coef: 0.5, ..Default::default() };
            let term = get(A2c::new(bc, &vm).unwrap().losses(&net, &r).unwrap().imitation.as_ref().unwrap());
            assert!(close(term, weighted(&labels, w)), "weight {w}: {term} vs {}", weighted(&labels, w));
        }
        let plain = -lp(&stored).iter().sum::<f64>() / 6.0;
        assert!(close(weighted(&stored, 1.0), plain));
        assert!(
            (weighted(&stored, 4.0) - plain).abs() > 1e-3,
            "the weights change the loss here: {} vs {plain}",
            weighted(&stored, 4.0)
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = A2cConfig { imitation_brake_weight: bad, ..Default::default() }.validate().unwrap_err();
            assert!(e.to_string().contains("imitation_brake_weight"), "{e}");
        }
    }

    /// The moving-brake factor against hand-placed speeds: a full brake weighs
    /// `imitation_brake_weight × imitation_moving_brake_weight` in a state whose speed entry says
    /// at least 1 km/h (1.0 exactly counts as moving, 0.5 does not), `imitation_brake_weight` at
    /// rest, other actions 1; in the imitation loss, the `imitation_coef` term (over the labels)
    /// and the aggregate's cloning loss alike. A batch whose measurements are not one row per
    /// state, and a factor that is not finite and > 0, are refused, named.
    #[test]
    fn moving_brake_weight_weighs_only_the_brakes_given_while_moving() {
        let dev = Device::Cpu;
        let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(ActionSpace::Fine);
        let (vm, net) = ActorCritic::seeded(&cfg, &dev, 3).unwrap();
        let (t, n) = (3, 2);
        let stored = [4u32, 2, 9, 0, 44, 23]; // rows 0, 2, 4 brake fully
        let labels = [2u32, 4, 0, 0, 19, 1]; // rows 1, 4 brake fully
        let kmh = [5.0f32, 0.0, 0.5, 12.5, 1.0, 0.0]; // rows 0, 3, 4 move
        let moving = [true, false, false, true, true, false];
        let mut rng = crate::random::seeded(11);
        let state = |rng: &mut rand::rngs::StdRng, k: usize| {
            let mut s = random_state(rng, n, &cfg);
            let mut m = s.measurements.to_vec2::<f32>().unwrap();
            for (a, row) in m.iter_mut().enumerate() {
                row[0] = kmh.get(k * n + a).copied().unwrap_or(0.0) / Measurements::SPEED_SCALE_KMH;
            }
            s.measurements = Tensor::new(m, &dev).unwrap();
            s
        };
        let mut r = Rollout::new(t, n).unwrap();
        r.begin(&state(&mut rng, 0)).unwrap();
        for k in 0..t {
            let a = Tensor::new(&stored[k * n..(k + 1) * n], &dev).unwrap();
            let lp = Tensor::zeros(n, DType::F32, &dev).unwrap();
            r.push(&a, &lp, &[0.5f32; 2], &[false; 2], &state(&mut rng, k + 1)).unwrap();
            r.label(&Tensor::new(&labels[k * n..(k + 1) * n], &dev).unwrap()).unwrap();
        }
        // A few cloning steps on the labels first, so that the log-probabilities differ.
        let mut warm = A2c::new(A2cConfig { learning_rate: 0.01, ..Default::default() }, &vm).unwrap();
        warm.imitation_update(&net, &indexed_rollout(t, n, &cfg, &labels, &labels), 10).unwrap();
        let out = forward(&net, &r).unwrap();
        let policy = cfg.action_space.policy(&out.head.narrow(0, 0, t * n).unwrap()).unwrap();
        let lp = |a: &[u32]| {
            let raw = Tensor::new(a, &dev).unwrap();
            policy.log_prob(&raw).unwrap().to_dtype(DType::F64).unwrap().to_vec1::<f64>().unwrap()
        };
        let weighted = |a: &[u32], w: f64, m: f64| {
            let ws: Vec<f64> = a
                .iter()
                .zip(moving)
                .map(|(&i, mv)| match (i % 5 == 4, mv) {
                    (false, _) => 1.0,
                    (true, false) => w,
                    (true, true) => w * m,
                })
                .collect();
            -lp(a).iter().zip(&ws).map(|(l, w)| l * w).sum::<f64>() / ws.iter().sum::<f64>()
        };
        let get = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-5 * b.abs().max(1.0);
        for (w, m) in [(1.0, 1.0), (1.0, 8.0), (4.0, 4.0)] {
            let config =
                A2cConfig { imitation_brake_weight: w, imitation_moving_brake_weight: m, ..Default::default() };
            let a2c = A2c::new(config, &vm).unwrap();
            let got = get(&a2c.imitation_losses(&net, &r).unwrap().policy);
            assert!(close(got, weighted(&stored, w, m)), "{w} × {m}: {got} vs {}", weighted(&stored, w, m));
            let bc = A2c::new(A2cConfig { imitation_coef: 0.5, ..config }, &vm).unwrap();
            let term = get(bc.losses(&net, &r).unwrap().imitation.as_ref().unwrap());
            assert!(close(term, weighted(&labels, w, m)), "{w} × {m}: {term} vs {}", weighted(&labels, w, m));
            // The same states as an aggregate's batch, labelled by `labels`.
            let batch = DaggerBatch {
                latents: r.latents().unwrap().narrow(0, 0, t).unwrap().flatten(0, 1).unwrap(),
                measurements: r.measurements().unwrap().narrow(0, 0, t).unwrap().flatten(0, 1).unwrap(),
                actions: Tensor::new(&labels, &dev).unwrap(),
                targets: Tensor::zeros(t * n, DType::F32, &dev).unwrap(),
            };
            let cloned = get(&a2c.cloning_losses(&net, &batch).unwrap().policy);
            assert!(close(cloned, weighted(&labels, w, m)), "{w} × {m}: {cloned} vs {}", weighted(&labels, w, m));
            if (w, m) != (1.0, 1.0) {
                let short = DaggerBatch { measurements: batch.measurements.narrow(0, 0, 5).unwrap(), ..batch };
                let e = a2c.cloning_losses(&net, &short).unwrap_err().to_string();
                assert!(e.contains("measurement") && e.contains("[5, 7]"), "{e}");
            }
        }
        // Standing and moving brakes are told apart here: the factor changes the loss.
        assert!((weighted(&stored, 1.0, 8.0) - weighted(&stored, 8.0, 1.0)).abs() > 1e-3);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = A2cConfig { imitation_moving_brake_weight: bad, ..Default::default() }.validate().unwrap_err();
            assert!(e.to_string().contains("imitation_moving_brake_weight"), "{e}");
        }
    }

    /// `brake_agreement` against hand-placed modes: each row's most likely fine action (logit
    /// 5, the others 0) against the labels; brake 0.3 (index `5s + 3`) is not a full brake.
    /// An imitation update reports the counts of its rollout before its first step.
    #[test]
    fn brake_agreement_counts_modes_against_labels() {
        let dev = Device::Cpu;
        let modes = [4usize, 2, 9, 0, 44];
        let mut logits = vec![0f32; 5 * 45];
        for (row, &m) in modes.iter().enumerate() {
            logits[row * 45 + m] = 5.0;
        }
        let policy = ActionSpace::Fine.policy(&Tensor::from_vec(logits, (5, 45), &dev).unwrap()).unwrap();
        let expert = Tensor::new(&[4u32, 4, 0, 0, 3], &dev).unwrap();
        let b = brake_agreement(&policy, &expert).unwrap();
        assert_eq!(b, BrakeAgreement { expert_brakes: 2, both_brake: 1, expert_goes: 3, policy_brakes_alone: 2 });
        assert_eq!((b.recall(), b.false_brakes()), (Some(0.5), Some(2.0 / 3.0)));
        let mut sum = b;
        sum.add(&b);
        assert_eq!((sum.expert_brakes, sum.policy_brakes_alone), (4, 4));
        assert_eq!(BrakeAgreement::default().recall(), None);
        let e = brake_agreement(&policy, &Tensor::new(&[4u32, 4], &dev).unwrap()).unwrap_err().to_string();
        assert!(e.contains("expert actions"), "{e}");
        // An imitation update: the counts of the stored actions against the untrained modes.
        let cfg = ActorCriticConfig::for_latent(2, 5, 6).with_action_space(ActionSpace::Fine);
        let (vm, net) = ActorCritic::seeded(&cfg, &dev, 3).unwrap();
        let stored = [4u32, 2, 9, 0, 44, 23];
        let r = indexed_rollout(3, 2, &cfg, &stored, &stored);
        let out = forward(&net, &r).unwrap();
        let modes = out.head.narrow(0, 0, 6).unwrap().argmax(1).unwrap().to_vec1::<u32>().unwrap();
        let brakes = |i: u32| i % 5 == 4;
        let both = stored.iter().zip(&modes).filter(|(s, m)| brakes(**s) && brakes(**m)).count();
        let alone = stored.iter().zip(&modes).filter(|(s, m)| !brakes(**s) && brakes(**m)).count();
        let mut a2c = A2c::new(A2cConfig::default(), &vm).unwrap();
        let got = a2c.imitation_update(&net, &r, 2).unwrap().brake_agreement.unwrap();
        assert_eq!(
            got,
            BrakeAgreement { expert_brakes: 3, both_brake: both, expert_goes: 3, policy_brakes_alone: alone }
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let vm = VarMap::new();
        for bad in [
            A2cConfig { gamma: 1.5, ..Default::default() },
            A2cConfig { entropy_coef: -0.1, ..Default::default() },
            A2cConfig { max_grad_norm: 0.0, ..Default::default() },
            A2cConfig { learning_rate: f64::NAN, ..Default::default() },
            A2cConfig { total_updates: 0, ..Default::default() },
            A2cConfig { vtrace: Some(VTraceConfig { rho_bar: 1.0, c_bar: 3.0 }), ..Default::default() },
        ] {
            assert!(A2c::new(bad, &vm).is_err(), "{bad:?}");
        }
    }
}
