//! Rollout storage of synchronous actor-critic: `T` steps of `N` actors, with the `T + 1`
//! states that frame them (tch-rs's `a2c.rs` layout `[T + 1, N, …]`).
//!
//! A rollout begins with a state ([`Rollout::begin`]); each [`Rollout::push`] adds the
//! actions taken in it, their behaviour log-probabilities (for V-trace), the rewards, the
//! episode ends and the next state; [`Rollout::label`] may add an expert's actions for the
//! same step (A2C with a behaviour-cloning term). When it holds `T` steps it is full;
//! [`Rollout::carry_over`] starts the next rollout from its last state.

use super::state::State;
use crate::{Error, Result};
use candle_core::Tensor;

/// `T` steps of `N` actors.
///
/// # Shapes
/// [`Rollout::latents`] `[T + 1, N, 2C, h, w]`, [`Rollout::measurements`] `[T + 1, N, M]`,
/// [`Rollout::actions`] `[T, N, 3]` (Beta) or `[T, N]` (discrete),
/// [`Rollout::behaviour_log_probs`] `[T, N]`; [`Rollout::expert_actions`] as the actions;
/// [`Rollout::rewards`] and [`Rollout::masks`] `[T, N]` row-major slices.
#[derive(Clone, Debug)]
pub struct Rollout {
    steps: usize,
    actors: usize,
    latents: Vec<Tensor>,
    measurements: Vec<Tensor>,
    actions: Vec<Tensor>,
    behaviour_log_probs: Vec<Tensor>,
    expert_actions: Vec<Tensor>,
    rewards: Vec<f64>,
    masks: Vec<f64>,
}

impl Rollout {
    /// Empty storage for `steps ≥ 1` steps of `actors ≥ 1` actors.
    pub fn new(steps: usize, actors: usize) -> Result<Self> {
        if steps == 0 {
            return Err(Error::invalid("rollout steps", 0, "must be >= 1"));
        }
        if actors == 0 {
            return Err(Error::invalid("rollout actors", 0, "must be >= 1"));
        }
        Ok(Rollout {
            steps,
            actors,
            latents: vec![],
            measurements: vec![],
            actions: vec![],
            behaviour_log_probs: vec![],
            expert_actions: vec![],
            rewards: vec![],
            masks: vec![],
        })
    }

    /// `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// `N`.
    pub fn actors(&self) -> usize {
        self.actors
    }

    /// Steps stored so far.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// Whether no step is stored.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// Whether `T` steps are stored.
    pub fn is_full(&self) -> bool {
        self.actions.len() == self.steps
    }

    fn check_state(&self, state: &State) -> Result<()> {
        if state.len() != self.actors || state.measurements.dims().first() != Some(&self.actors) {
            return Err(Error::shape(
                "rollout state",
                format!("{} actors", self.actors),
                format!("latent {:?}, measurements {:?}", state.latent.dims(), state.measurements.dims()),
            ));
        }
        if let Some(first) = self.latents.first() {
            if first.dims() != state.latent.dims() || self.measurements[0].dims() != state.measurements.dims() {
                return Err(Error::shape(
                    "rollout state",
                    format!("latent {:?}, measurements {:?}", first.dims(), self.measurements[0].dims()),
                    format!("latent {:?}, measurements {:?}", state.latent.dims(), state.measurements.dims()),
                ));
            }
        }
        Ok(())
    }

    /// Clears the storage and sets the first state.
    pub fn begin(&mut self, state: &State) -> Result<()> {
        self.latents.clear();
        self.measurements.clear();
        self.check_state(state)?;
        self.latents.push(state.latent.detach());
        self.measurements.push(state.measurements.detach());
        self.actions.clear();
        self.behaviour_log_probs.clear();
        self.expert_actions.clear();
        self.rewards.clear();
        self.masks.clear();
        Ok(())
    }

    /// Adds one step: `actions` (`[N, …]` raw actions), `behaviour_log_probs` `[N]` (of the
    /// policy that acted), `rewards` and `dones` (`N` each; done = terminated or truncated),
    /// and the state after it. Errors on a full or unstarted rollout, wrong sizes, or a
    /// non-finite reward (naming the actor).
    pub fn push(
        &mut self,
        actions: &Tensor,
        behaviour_log_probs: &Tensor,
        rewards: &[f32],
        dones: &[bool],
        next: &State,
    ) -> Result<()> {
        if self.latents.is_empty() {
            return Err(Error::invalid("rollout", "push", "call begin(state) first"));
        }
        if self.is_full() {
            return Err(Error::invalid("rollout", self.steps, "is full: update, then carry_over()"));
        }
        let n = self.actors;
        if actions.dims().first() != Some(&n) {
            return Err(Error::shape("rollout actions", format!("[{n}, …]"), format!("{:?}", actions.dims())));
        }
        if let Some(a) = self.actions.first() {
            same_layout("rollout actions", a, actions)?;
        }
        if behaviour_log_probs.dims() != [n] {
            return Err(Error::shape(
                "rollout behaviour log-probs",
                format!("[{n}]"),
                format!("{:?}", behaviour_log_probs.dims()),
            ));
        }
        if rewards.len() != n || dones.len() != n {
            return Err(Error::shape(
                "rollout rewards and dones",
                format!("{n} each"),
                format!("{} and {}", rewards.len(), dones.len()),
            ));
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            return Err(Error::invalid("reward", rewards[i], format!("of actor {i} at rollout step {}", self.len())));
        }
        self.check_state(next)?;
        self.actions.push(actions.detach());
        self.behaviour_log_probs.push(behaviour_log_probs.detach());
        self.rewards.extend(rewards.iter().map(|&r| r as f64));
        self.masks.extend(dones.iter().map(|&d| if d { 0.0 } else { 1.0 }));
        self.latents.push(next.latent.detach());
        self.measurements.push(next.measurements.detach());
        Ok(())
    }

    /// Labels the step just pushed with an expert's raw actions `[N, …]` (shape and dtype of
    /// the step's actions): what the expert would have done in the states the actors were in.
    /// Errors when the last pushed step is already labelled (or none was pushed), or on a
    /// shape or dtype other than the actions'.
    pub fn label(&mut self, expert_actions: &Tensor) -> Result<()> {
        if self.expert_actions.len() + 1 != self.actions.len() {
            return Err(Error::invalid(
                "rollout expert actions",
                format!("{} labelled of {} steps", self.expert_actions.len(), self.actions.len()),
                "label each step once, right after its push",
            ));
        }
        same_layout("rollout expert actions", &self.actions[self.actions.len() - 1], expert_actions)?;
        self.expert_actions.push(expert_actions.detach());
        Ok(())
    }

    /// The last state stored.
    pub fn last_state(&self) -> Option<State> {
        Some(State { latent: self.latents.last()?.clone(), measurements: self.measurements.last()?.clone() })
    }

    /// Starts the next rollout from this one's last state.
    pub fn carry_over(&mut self) -> Result<()> {
        let last = self.last_state().ok_or_else(|| Error::invalid("rollout", "carry_over", "holds no state"))?;
        self.begin(&last)
    }

    fn need_full(&self, what: &'static str) -> Result<()> {
        if !self.is_full() {
            return Err(Error::invalid(what, self.len(), format!("steps stored; the rollout needs {}", self.steps)));
        }
        Ok(())
    }

    /// The states' latents `[T + 1, N, 2C, h, w]` (full rollouts only).
    pub fn latents(&self) -> Result<Tensor> {
        self.need_full("rollout latents")?;
        Ok(Tensor::stack(&self.latents, 0)?)
    }

    /// The states' measurements `[T + 1, N, M]` (full rollouts only).
    pub fn measurements(&self) -> Result<Tensor> {
        self.need_full("rollout measurements")?;
        Ok(Tensor::stack(&self.measurements, 0)?)
    }

    /// The raw actions `[T, N, …]` (full rollouts only).
    pub fn actions(&self) -> Result<Tensor> {
        self.need_full("rollout actions")?;
        Ok(Tensor::stack(&self.actions, 0)?)
    }

    /// The behaviour policy's log-probabilities of the actions, `[T, N]` (full rollouts only).
    pub fn behaviour_log_probs(&self) -> Result<Tensor> {
        self.need_full("rollout behaviour log-probs")?;
        Ok(Tensor::stack(&self.behaviour_log_probs, 0)?)
    }

    /// The expert's raw actions `[T, N, …]` ([`Rollout::label`]; full rollouts with every step
    /// labelled only).
    pub fn expert_actions(&self) -> Result<Tensor> {
        self.need_full("rollout expert actions")?;
        if self.expert_actions.len() != self.steps {
            return Err(Error::invalid(
                "rollout expert actions",
                self.expert_actions.len(),
                format!("steps labelled; the rollout holds {} (collect with an Expert)", self.steps),
            ));
        }
        Ok(Tensor::stack(&self.expert_actions, 0)?)
    }

    /// Rewards, `[T, N]` row-major.
    pub fn rewards(&self) -> &[f64] {
        &self.rewards
    }

    /// `1 − done`, `[T, N]` row-major.
    pub fn masks(&self) -> &[f64] {
        &self.masks
    }
}

/// An error naming `what` unless `got` has `expected`'s shape and dtype.
fn same_layout(what: &'static str, expected: &Tensor, got: &Tensor) -> Result<()> {
    if expected.dims() != got.dims() || expected.dtype() != got.dtype() {
        return Err(Error::shape(
            what,
            format!("{:?} {:?}", expected.dims(), expected.dtype()),
            format!("{:?} {:?}", got.dims(), got.dtype()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn state(n: usize, v: f32) -> State {
        let dev = Device::Cpu;
        State {
            latent: Tensor::full(v, (n, 2, 5, 5), &dev).unwrap(),
            measurements: Tensor::full(v, (n, 7), &dev).unwrap(),
        }
    }

    #[test]
    fn layout_and_carry_over() {
        let dev = Device::Cpu;
        let mut r = Rollout::new(2, 3).unwrap();
        r.begin(&state(3, 0.0)).unwrap();
        let act = Tensor::zeros((3, 3), DType::F32, &dev).unwrap();
        let lp = Tensor::zeros(3, DType::F32, &dev).unwrap();
        r.push(&act, &lp, &[1.0, 2.0, 3.0], &[false, true, false], &state(3, 1.0)).unwrap();
        assert!(r.latents().is_err(), "not full yet");
        r.push(&act, &lp, &[4.0, 5.0, 6.0], &[false, false, true], &state(3, 2.0)).unwrap();
        assert!(r.is_full());
        assert_eq!(r.latents().unwrap().dims(), [3, 3, 2, 5, 5]);
        assert_eq!(r.measurements().unwrap().dims(), [3, 3, 7]);
        assert_eq!(r.actions().unwrap().dims(), [2, 3, 3]);
        assert_eq!(r.behaviour_log_probs().unwrap().dims(), [2, 3]);
        assert_eq!(r.rewards(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(r.masks(), [1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        assert!(r.push(&act, &lp, &[0.0; 3], &[false; 3], &state(3, 3.0)).is_err(), "full");
        r.carry_over().unwrap();
        assert!(r.is_empty());
        let first = r.last_state().unwrap().measurements.to_vec2::<f32>().unwrap();
        assert_eq!(first[0][0], 2.0);
    }

    #[test]
    fn bad_steps_are_errors() {
        let dev = Device::Cpu;
        assert!(Rollout::new(0, 1).is_err() && Rollout::new(1, 0).is_err());
        let mut r = Rollout::new(2, 2).unwrap();
        let act = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let lp = Tensor::zeros(2, DType::F32, &dev).unwrap();
        assert!(r.push(&act, &lp, &[0.0; 2], &[false; 2], &state(2, 0.0)).is_err(), "not begun");
        assert!(r.begin(&state(3, 0.0)).is_err());
        r.begin(&state(2, 0.0)).unwrap();
        let e = r.push(&act, &lp, &[0.0, f32::NAN], &[false; 2], &state(2, 0.0)).unwrap_err().to_string();
        assert!(e.contains("actor 1"), "{e}");
        assert!(r.push(&act, &lp, &[0.0], &[false; 2], &state(2, 0.0)).is_err());
        assert!(r.push(&act, &lp, &[0.0; 2], &[false; 2], &state(1, 0.0)).is_err());
        assert!(r.push(&act.narrow(0, 0, 1).unwrap(), &lp, &[0.0; 2], &[false; 2], &state(2, 0.0)).is_err());
        assert!(r.is_empty(), "no failed push was stored");
    }

    /// Expert labels: one per pushed step, stacked like the actions; a second label for the
    /// same step, a label before any push, a wrong shape or an unlabelled step are errors.
    #[test]
    fn expert_labels_follow_the_steps() {
        let dev = Device::Cpu;
        let mut r = Rollout::new(2, 2).unwrap();
        r.begin(&state(2, 0.0)).unwrap();
        let act = Tensor::zeros(2, DType::U32, &dev).unwrap();
        let label = Tensor::new(&[4u32, 7], &dev).unwrap();
        let lp = Tensor::zeros(2, DType::F32, &dev).unwrap();
        assert!(r.label(&label).unwrap_err().to_string().contains("0 labelled of 0 steps"));
        r.push(&act, &lp, &[0.0; 2], &[false; 2], &state(2, 1.0)).unwrap();
        let wrong = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        assert!(r.label(&wrong).unwrap_err().to_string().contains("expert actions"));
        r.label(&label).unwrap();
        assert!(r.label(&label).is_err(), "the step is labelled already");
        r.push(&act, &lp, &[0.0; 2], &[false; 2], &state(2, 2.0)).unwrap();
        let e = r.expert_actions().unwrap_err().to_string();
        assert!(e.contains("1") && e.contains("steps labelled"), "{e}");
        r.label(&label).unwrap();
        assert_eq!(r.expert_actions().unwrap().to_vec2::<u32>().unwrap(), [[4, 7], [4, 7]]);
        assert_eq!(r.actions().unwrap().to_vec2::<u32>().unwrap(), [[0, 0], [0, 0]]);
        r.carry_over().unwrap();
        assert!(r.label(&label).is_err(), "carry_over clears the labels with the steps");
    }
}
