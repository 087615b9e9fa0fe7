//! N environments stepped in parallel threads (the paper's 10 actors).

use super::env::{DrivingEnv, EnvConfig, Environment, Observation, Transition};
use super::town::Town;
use super::vehicle::Action;
use crate::{Error, Result};
use rayon::prelude::*;
use std::sync::Arc;

/// A vector of environments stepped together on rayon's thread pool.
///
/// Finished episodes restart by themselves: when environment `i` ends an episode, the
/// transition it returns carries the finished episode's reward, flags and info (with the
/// [`super::EpisodeLog`]) but the *next* episode's first observation; environment `i` plays
/// seeds `seed_i, seed_i + n, seed_i + 2n, …`, so a run is reproducible.
pub struct VecEnv<E: Environment> {
    envs: Vec<E>,
    next_seed: Vec<u64>,
}

impl VecEnv<DrivingEnv> {
    /// `n` driving environments of `config` sharing one generated town.
    pub fn driving(config: &EnvConfig, n: usize) -> Result<Self> {
        if n == 0 {
            return Err(Error::invalid("number of environments", n, "must be >= 1"));
        }
        config.validate()?;
        let town = Arc::new(Town::generate(&config.town)?);
        let envs =
            (0..n).map(|_| DrivingEnv::with_town(config.clone(), Arc::clone(&town))).collect::<Result<Vec<_>>>()?;
        Ok(VecEnv::new(envs))
    }
}

impl<E: Environment> VecEnv<E> {
    /// Wraps environments.
    pub fn new(envs: Vec<E>) -> Self {
        let n = envs.len();
        VecEnv { envs, next_seed: vec![0; n] }
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.envs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.envs.is_empty()
    }

    /// The environments.
    pub fn envs(&self) -> &[E] {
        &self.envs
    }

    /// Resets environment `i` with seed `seed + i`, in parallel.
    pub fn reset(&mut self, seed: u64) -> Result<Vec<Observation>> {
        let n = self.envs.len() as u64;
        self.next_seed = (0..n).map(|i| seed + i + n).collect();
        self.envs.par_iter_mut().enumerate().map(|(i, e)| e.reset(seed + i as u64)).collect()
    }

    /// Steps every environment with its action, in parallel; finished episodes restart (see
    /// the type's docs).
    pub fn step(&mut self, actions: &[Action]) -> Result<Vec<Transition>> {
        if actions.len() != self.envs.len() {
            return Err(Error::shape(
                "actions",
                format!("{} (one per environment)", self.envs.len()),
                actions.len().to_string(),
            ));
        }
        let n = self.envs.len() as u64;
        self.envs
            .par_iter_mut()
            .zip(self.next_seed.par_iter_mut())
            .zip(actions.par_iter())
            .map(|((env, next), &action)| {
                let mut t = env.step(action)?;
                if t.done() {
                    t.observation = env.reset(*next)?;
                    *next += n;
                }
                Ok(t)
            })
            .collect()
    }
}
