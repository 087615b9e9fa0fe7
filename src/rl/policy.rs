//! The agent's action space as one configuration choice ([`ActionSpace`]) and the policy
//! distribution a network head defines over it ([`Policy`]).
//!
//! | [`ActionSpace`] | head outputs | distribution | raw action stored | env action |
//! |---|---|---|---|---|
//! | `Beta` (the paper's continuous action, CARLA-Roach's policy) | 6: raw `α`, then raw `β`, for (steer, throttle, brake) | [`Beta`] per dimension | `[B, 3]` in `(0, 1)` | steer `2u − 1`, throttle `u`, brake `u` |
//! | `Discrete` (CARLA's A3C baseline) | 9 logits | [`Categorical`] | `[B]` `u32` index | [`DISCRETE_ACTIONS`] |
//! | `Grid` (steer × throttle/coast/brake) | 9 logits | [`Categorical`] | `[B]` `u32` index | [`GRID_ACTIONS`] |
//! | `Fine` (9 steer levels × 5 throttle/brake) | 45 logits | [`Categorical`] | `[B]` `u32` index | [`FINE_ACTIONS`] |
//!
//! Log-probabilities and entropies are those of the action the environment receives: the
//! steer's affine map `s = 2u − 1` adds `−ln 2` to its log-density and `+ln 2` to its
//! entropy, so the two spaces' numbers mean the same thing.

use super::beta::Beta;
use super::categorical::{Categorical, DISCRETE_ACTIONS, FINE_ACTIONS, GRID_ACTIONS};
use crate::sim::Action;
use crate::{Error, Result};
use candle_core::{DType, Tensor};
use rand::Rng;
use std::f64::consts::LN_2;

/// How far inside `(0, 1)` [`ActionSpace::raw_of`] keeps a Beta raw action: an expert's
/// full brake or zero throttle becomes `1 − 0.02` or `0.02`.
pub const RAW_MARGIN: f32 = 0.02;

/// Which actions the agent chooses from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ActionSpace {
    /// Continuous (steer, throttle, brake), one Beta distribution per dimension.
    #[default]
    Beta,
    /// The 9 discrete actions of CARLA's A3C baseline ([`DISCRETE_ACTIONS`]).
    Discrete,
    /// 9 discrete actions that steer and drive at once ([`GRID_ACTIONS`]).
    Grid,
    /// 45 discrete actions, 9 steering levels × 5 throttle/brake choices ([`FINE_ACTIONS`]).
    Fine,
}

impl ActionSpace {
    /// Every space.
    pub const ALL: [ActionSpace; 4] = [ActionSpace::Beta, ActionSpace::Discrete, ActionSpace::Grid, ActionSpace::Fine];

    /// The environment's actions for raw actions as the policy samples them: `[B, 3]` in
    /// `(0, 1)` for [`ActionSpace::Beta`] (steer `2u − 1`, throttle `u`, brake `u`, clamped to
    /// their ranges), `[B]` indices into [`DISCRETE_ACTIONS`] / [`GRID_ACTIONS`] for
    /// [`ActionSpace::Discrete`] / [`ActionSpace::Grid`].
    ///
    /// # Errors
    /// A tensor of the other shape, or an index ≥ 9, named.
    pub fn actions(self, raw: &Tensor) -> Result<Vec<Action>> {
        match self {
            ActionSpace::Beta => {
                let rows = raw
                    .to_dtype(DType::F32)?
                    .to_vec2::<f32>()
                    .map_err(|_| Error::shape("Beta raw actions", "[B, 3]", format!("{:?}", raw.dims())))?;
                rows.iter()
                    .map(|r| match r.as_slice() {
                        &[s, t, b] => {
                            Ok(Action::new((2.0 * s - 1.0).clamp(-1.0, 1.0), t.clamp(0.0, 1.0), b.clamp(0.0, 1.0)))
                        }
                        _ => Err(Error::shape(
                            "Beta raw action",
                            "3 values (steer, throttle, brake)",
                            r.len().to_string(),
                        )),
                    })
                    .collect()
            }
            ActionSpace::Discrete | ActionSpace::Grid | ActionSpace::Fine => {
                let table = self.table();
                raw.to_dtype(DType::U32)?
                    .to_vec1::<u32>()
                    .map_err(|_| Error::shape("discrete raw actions", "[B]", format!("{:?}", raw.dims())))?
                    .into_iter()
                    .map(|k| {
                        table
                            .get(k as usize)
                            .copied()
                            .ok_or_else(|| Error::invalid("discrete action", k, format!("must be < {}", table.len())))
                    })
                    .collect()
            }
        }
    }

    /// The raw actions that stand for environment actions — the inverse of
    /// [`ActionSpace::actions`], for labelling states with an expert's actions (imitation):
    /// `[B, 3]` unit values for `Beta` (steer `(s + 1)/2`, throttle, brake, each clamped to
    /// `[RAW_MARGIN, 1 − RAW_MARGIN]`, where the Beta densities are finite), `[B]` indices of
    /// the nearest table action (Euclidean in (steer, throttle, brake)) for the discrete
    /// spaces. `f32`/`u32` on `device`.
    pub fn raw_of(self, actions: &[Action], device: &candle_core::Device) -> Result<Tensor> {
        match self {
            ActionSpace::Beta => {
                let unit = |x: f32| x.clamp(RAW_MARGIN, 1.0 - RAW_MARGIN);
                let data: Vec<f32> = actions
                    .iter()
                    .flat_map(|a| [unit((a.steer + 1.0) / 2.0), unit(a.throttle), unit(a.brake)])
                    .collect();
                Ok(Tensor::from_vec(data, (actions.len(), 3), device)?)
            }
            ActionSpace::Discrete | ActionSpace::Grid | ActionSpace::Fine => {
                let d2 = |a: &Action, b: &Action| {
                    (a.steer - b.steer).powi(2) + (a.throttle - b.throttle).powi(2) + (a.brake - b.brake).powi(2)
                };
                let table = self.table();
                let idx: Vec<u32> = actions
                    .iter()
                    .map(|a| {
                        (0..table.len()).min_by(|&i, &j| d2(a, &table[i]).total_cmp(&d2(a, &table[j]))).unwrap_or(0)
                            as u32
                    })
                    .collect();
                Ok(Tensor::from_vec(idx, actions.len(), device)?)
            }
        }
    }

    /// The action table of a discrete space (empty for `Beta`).
    pub fn table(self) -> &'static [Action] {
        match self {
            ActionSpace::Beta => &[],
            ActionSpace::Discrete => &DISCRETE_ACTIONS,
            ActionSpace::Grid => &GRID_ACTIONS,
            ActionSpace::Fine => &FINE_ACTIONS,
        }
    }

    /// Width of the policy head: 6 for `Beta`, 9 for `Discrete` and `Grid`, 45 for `Fine`.
    pub fn head_size(self) -> usize {
        match self {
            ActionSpace::Beta => 6,
            ActionSpace::Discrete | ActionSpace::Grid | ActionSpace::Fine => self.table().len(),
        }
    }

    /// The policy of a head's outputs `[B, head_size]`.
    pub fn policy(self, head: &Tensor) -> Result<Policy> {
        let (_, p) = head.dims2().map_err(|_| {
            Error::shape("policy head", format!("[B, {}]", self.head_size()), format!("{:?}", head.dims()))
        })?;
        if p != self.head_size() {
            return Err(Error::shape(
                format!("policy head for the {} action space", self.as_str()),
                format!("[B, {}]", self.head_size()),
                format!("{:?}", head.dims()),
            ));
        }
        Ok(match self {
            ActionSpace::Beta => Policy::Beta(Beta::from_logits(head)?),
            ActionSpace::Discrete | ActionSpace::Grid | ActionSpace::Fine => {
                Policy::Discrete(Categorical::from_logits(head)?, self)
            }
        })
    }

    /// The name in configs: `"beta"`, `"discrete"` or `"grid"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionSpace::Beta => "beta",
            ActionSpace::Discrete => "discrete",
            ActionSpace::Grid => "grid",
            ActionSpace::Fine => "fine",
        }
    }
}

impl std::str::FromStr for ActionSpace {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        ActionSpace::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::invalid("action space", s, "expected beta, discrete, grid or fine"))
    }
}

/// The value with the most mass, the first one on ties (`entries` non-empty: a table has at
/// least one action).
fn first_mode<T: Copy>(entries: &[(T, f64)]) -> T {
    entries.iter().fold(entries[0], |best, &e| if e.1 > best.1 { e } else { best }).0
}

/// A batch of policy distributions over the environment's actions.
#[derive(Clone, Debug)]
pub enum Policy {
    /// Beta marginals over the unit-interval forms of (steer, throttle, brake).
    Beta(Beta),
    /// A categorical over a discrete space's action table ([`ActionSpace::table`]: the
    /// `Discrete` or `Grid` space).
    Discrete(Categorical, ActionSpace),
}

impl Policy {
    /// One draw per row: `[B, 3]` unit values (`Beta`) or `[B]` `u32` indices (`Discrete`).
    pub fn sample(&self, rng: &mut impl Rng) -> Result<Tensor> {
        match self {
            Policy::Beta(d) => d.sample(rng),
            Policy::Discrete(d, _) => d.sample(rng),
        }
    }

    /// The deterministic choice for evaluation: the Beta means, or the most likely action.
    pub fn greedy(&self) -> Result<Tensor> {
        match self {
            Policy::Beta(d) => d.mean(),
            Policy::Discrete(d, _) => d.mode(),
        }
    }

    /// The expected action of every row, for evaluation: the Beta policy's mean action (as
    /// [`Policy::greedy`]); for a discrete policy `E[steer]` and the expected longitudinal
    /// command `u = E[throttle − brake]`, applied as throttle `max(u, 0)` and brake
    /// `max(−u, 0)` — the point estimate of a policy that spreads its mass over neighbouring
    /// entries of the table (when the Autopilot's labels alternate between coasting,
    /// throttle 0.4 and braking, the single most likely entry is often not throttle).
    pub fn expected_actions(&self) -> Result<Vec<Action>> {
        self.point_estimates(|row, table| {
            let (mut steer, mut u) = (0.0f64, 0.0f64);
            for (p, a) in row.iter().zip(table) {
                steer += p * a.steer as f64;
                u += p * (a.throttle - a.brake) as f64;
            }
            let steer = (steer as f32).clamp(-1.0, 1.0);
            Action::new(steer, (u.max(0.0) as f32).min(1.0), ((-u).max(0.0) as f32).min(1.0))
        })
    }

    /// The mode of each marginal, for evaluation: for a discrete policy, the steering value
    /// and the longitudinal command `(throttle, brake)` of its table ([`ActionSpace::table`])
    /// that each carry the most probability, summed over the other — `argmax_s Σ_l π(s, l)` and
    /// `argmax_l Σ_s π(s, l)` — instead of the single most likely entry. A policy that spreads
    /// a full brake's mass over several steering values (0.2 on each of three, 0.6 in all)
    /// while one throttle entry holds 0.25 brakes here, and goes with throttle under
    /// [`Policy::greedy`]. The pair is always an entry of the table: `Fine` and `Grid` are
    /// product tables, and in CARLA's 9 every steering entry coasts, so a steering value wins
    /// only where coasting does too. Ties go to the first value in table order. Beta: its
    /// mean, as [`Policy::greedy`] (already per dimension).
    pub fn marginal_modes(&self) -> Result<Vec<Action>> {
        self.point_estimates(|row, table| {
            // The distinct values of each marginal, in table order, and their mass.
            let mut steers: Vec<(f32, f64)> = Vec::new();
            let mut longitudinal: Vec<((f32, f32), f64)> = Vec::new();
            for (&p, a) in row.iter().zip(table) {
                match steers.iter_mut().find(|(s, _)| *s == a.steer) {
                    Some((_, m)) => *m += p,
                    None => steers.push((a.steer, p)),
                }
                match longitudinal.iter_mut().find(|(l, _)| *l == (a.throttle, a.brake)) {
                    Some((_, m)) => *m += p,
                    None => longitudinal.push(((a.throttle, a.brake), p)),
                }
            }
            let ((throttle, brake), steer) = (first_mode(&longitudinal), first_mode(&steers));
            Action::new(steer, throttle, brake)
        })
    }

    /// One action per row for evaluation: the Beta means, or `f(probabilities, table)` of each
    /// row of a discrete policy (`[K]` probabilities over [`ActionSpace::table`]).
    fn point_estimates(&self, f: impl Fn(&[f64], &[Action]) -> Action) -> Result<Vec<Action>> {
        match self {
            Policy::Beta(d) => ActionSpace::Beta.actions(&d.mean()?),
            Policy::Discrete(d, space) => {
                let probs = d.log_probs().exp()?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
                Ok(probs.iter().map(|row| f(row, space.table())).collect())
            }
        }
    }

    /// `log π(a | s)` of raw actions (as [`Policy::sample`] returns them), summed over the
    /// action's dimensions, `[B]`, differentiable.
    pub fn log_prob(&self, raw: &Tensor) -> Result<Tensor> {
        match self {
            Policy::Beta(d) => Ok(d.log_prob(raw)?.sum(1)?.affine(1.0, -LN_2)?),
            Policy::Discrete(d, _) => d.log_prob(raw),
        }
    }

    /// The entropy of every row, `[B]` (nats), differentiable.
    pub fn entropy(&self) -> Result<Tensor> {
        match self {
            Policy::Beta(d) => Ok(d.entropy()?.sum(1)?.affine(1.0, LN_2)?),
            Policy::Discrete(d, _) => d.entropy(),
        }
    }

    /// The environment's actions for raw actions `[B, 3]` / `[B]` ([`ActionSpace::actions`]).
    pub fn actions(&self, raw: &Tensor) -> Result<Vec<Action>> {
        match self {
            Policy::Beta(_) => ActionSpace::Beta.actions(raw),
            Policy::Discrete(_, space) => space.actions(raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Zero head outputs: `α = β = 1 + ln 2` for every dimension, so the joint entropy is
    /// `3·H(Beta(c, c)) + ln 2` with `H(Beta(c, c)) = ln B(c, c) − 2(c − 1)ψ(c) + (2c − 2)ψ(2c)`;
    /// at the centre (steer 0, throttle ½, brake ½) the log-density is `3·ln p_c(½) − ln 2`.
    /// The discrete space's uniform policy has entropy `ln 9`.
    #[test]
    fn joint_log_prob_and_entropy() {
        let dev = Device::Cpu;
        let c = 1.0 + LN_2;
        let beta = ActionSpace::Beta.policy(&Tensor::zeros((1, 6), DType::F64, &dev).unwrap()).unwrap();
        let Policy::Beta(d) = &beta else { panic!("not a Beta policy") };
        let marginal_h = d.entropy().unwrap().to_vec2::<f64>().unwrap()[0][0];
        let h = beta.entropy().unwrap().to_vec1::<f64>().unwrap()[0];
        assert!((h - (3.0 * marginal_h + LN_2)).abs() < 1e-12);
        // p_c(½) = (½)^{2c−2} / B(c, c), with B from lgamma (checked in special.rs).
        let lg = |x: f64| super::super::lgamma(&Tensor::new(&[x], &dev).unwrap()).unwrap().to_vec1::<f64>().unwrap()[0];
        let ln_p_half = (2.0 * c - 2.0) * 0.5f64.ln() - (2.0 * lg(c) - lg(2.0 * c));
        let centre = Tensor::new(&[[0.5f64, 0.5, 0.5]], &dev).unwrap();
        let lp = beta.log_prob(&centre).unwrap().to_vec1::<f64>().unwrap()[0];
        assert!((lp - (3.0 * ln_p_half - LN_2)).abs() < 1e-10, "{lp}");
        assert_eq!(beta.actions(&centre).unwrap(), vec![Action::new(0.0, 0.5, 0.5)]);

        let disc = ActionSpace::Discrete.policy(&Tensor::zeros((2, 9), DType::F32, &dev).unwrap()).unwrap();
        let h = disc.entropy().unwrap().to_vec1::<f32>().unwrap();
        assert!(h.iter().all(|h| (h - 9f32.ln()).abs() < 1e-6));
        let acts = disc.actions(&Tensor::new(&[2u32, 8], &dev).unwrap()).unwrap();
        assert_eq!(acts, vec![Action::new(0.0, 1.0, 0.0), Action::new(1.0, 0.0, 0.0)]);
        // The grid: the same categorical, its own table (index 0 steers left with throttle).
        let grid = ActionSpace::Grid.policy(&Tensor::zeros((2, 9), DType::F32, &dev).unwrap()).unwrap();
        let acts = grid.actions(&Tensor::new(&[0u32, 8], &dev).unwrap()).unwrap();
        assert_eq!(acts, vec![Action::new(0.5, 0.75, 0.0), Action::new(-0.5, 0.0, 0.5)]);
        assert!(grid.actions(&Tensor::new(&[9u32], &dev).unwrap()).unwrap_err().to_string().contains("must be < 9"));
    }

    /// `raw_of` inverts `actions`: every table action maps to its own index; a Beta action
    /// comes back as itself when inside the margins and clamped to them otherwise; an
    /// off-table action maps to the nearest entry.
    #[test]
    fn raw_of_inverts_actions() {
        let dev = Device::Cpu;
        for space in [ActionSpace::Discrete, ActionSpace::Grid, ActionSpace::Fine] {
            let table = space.table();
            let raw = space.raw_of(table, &dev).unwrap();
            assert_eq!(raw.to_vec1::<u32>().unwrap(), (0..table.len() as u32).collect::<Vec<u32>>());
            assert_eq!(space.actions(&raw).unwrap(), table.to_vec());
        }
        // Steer 0.7 with a little throttle: CARLA's nearest is "half left" (0.5, 0, 0), the
        // grid's "left, coast".
        let turn = [Action::new(0.7, 0.1, 0.0)];
        assert_eq!(ActionSpace::Discrete.raw_of(&turn, &dev).unwrap().to_vec1::<u32>().unwrap(), [7]);
        assert_eq!(ActionSpace::Grid.raw_of(&turn, &dev).unwrap().to_vec1::<u32>().unwrap(), [1]);
        // The fine set: steer 0.6 (index 7) with coasting (2): 5·7 + 2 = 37.
        assert_eq!(ActionSpace::Fine.raw_of(&turn, &dev).unwrap().to_vec1::<u32>().unwrap(), [37]);
        assert_eq!(FINE_ACTIONS[37], Action::new(0.6, 0.0, 0.0));
        let inside = [Action::new(-0.5, 0.3, 0.1)];
        let back = ActionSpace::Beta.actions(&ActionSpace::Beta.raw_of(&inside, &dev).unwrap()).unwrap();
        assert!((back[0].steer + 0.5).abs() < 1e-6 && (back[0].throttle - 0.3).abs() < 1e-6);
        let edge = ActionSpace::Beta.raw_of(&[Action::new(1.0, 0.0, 1.0)], &dev).unwrap();
        assert_eq!(edge.to_vec2::<f32>().unwrap(), [[1.0 - RAW_MARGIN, RAW_MARGIN, 1.0 - RAW_MARGIN]]);
    }

    /// Half the mass on (steer 0.6, throttle 0.8), half on (steer −1, brake 1): steer
    /// ½·0.6 − ½·1 = −0.2, u = ½·0.8 − ½·1 = −0.1, so brake 0.1 and no throttle. The Beta
    /// policy's expected action is its mean's.
    #[test]
    fn expected_actions_closed_form() {
        let dev = Device::Cpu;
        let (a, b) = (5 * 7, 4); // FINE_ACTIONS[35] = (0.6, 0.8, 0), [4] = (−1, 0, 1)
        assert_eq!((FINE_ACTIONS[a], FINE_ACTIONS[b]), (Action::new(0.6, 0.8, 0.0), Action::new(-1.0, 0.0, 1.0)));
        let mut logits = vec![-60.0f32; 45];
        logits[a] = 0.0;
        logits[b] = 0.0;
        let head = Tensor::from_vec(logits, (1, 45), &dev).unwrap();
        let e = ActionSpace::Fine.policy(&head).unwrap().expected_actions().unwrap();
        assert!((e[0].steer + 0.2).abs() < 1e-5 && e[0].throttle == 0.0 && (e[0].brake - 0.1).abs() < 1e-5, "{e:?}");
        let head = Tensor::randn(0f32, 1.0, (4, 6), &dev).unwrap();
        let p = ActionSpace::Beta.policy(&head).unwrap();
        assert_eq!(p.expected_actions().unwrap(), p.actions(&p.greedy().unwrap()).unwrap());
    }

    /// The mode of each marginal against hand-placed probabilities: 0.2 on each of three
    /// full brakes (steer −1, −0.6, 0; indices 4, 9, 24) and 0.25 on throttle 0.8 at steer 0.6
    /// (index 35), the rest spread evenly (0.15 over 41 entries). The most likely entry is the
    /// throttle. The marginals say full brake (0.6 + 0.15·6/41 against 0.25 + 0.15·8/41 for
    /// throttle 0.8) at steer 0.6 (0.25 + 0.15·4/41 against 0.2 + 0.15·4/41 for each of the
    /// three braking steering values). CARLA's 9 and the Beta mean below.
    #[test]
    fn marginal_modes_closed_form() {
        let dev = Device::Cpu;
        let mut p = vec![0.15f64 / 41.0; 45];
        for i in [4, 9, 24] {
            p[i] = 0.2;
        }
        p[35] = 0.25;
        let logits: Vec<f32> = p.iter().map(|x| x.ln() as f32).collect();
        let policy = ActionSpace::Fine.policy(&Tensor::from_vec(logits, (1, 45), &dev).unwrap()).unwrap();
        let mode = policy.actions(&policy.greedy().unwrap()).unwrap();
        assert_eq!(mode[0], Action::new(0.6, 0.8, 0.0));
        assert_eq!(policy.marginal_modes().unwrap()[0], Action::new(0.6, 0.0, 1.0));
        // Move 0.06 from the throttle to a fourth brake at steer 0: steer 0 now has the most mass.
        p[35] = 0.19;
        p[24] = 0.26;
        let logits: Vec<f32> = p.iter().map(|x| x.ln() as f32).collect();
        let policy = ActionSpace::Fine.policy(&Tensor::from_vec(logits, (1, 45), &dev).unwrap()).unwrap();
        assert_eq!(policy.marginal_modes().unwrap()[0], Action::new(0.0, 0.0, 1.0));
        // CARLA's 9 (no-op, half and full throttle, half and full brake, full and half right,
        // half and full left): 0.35 on half right, 0.3 on full throttle. The mode steers; the
        // marginals say steer 0 (0.55 against 0.35) and coast (0.55 against 0.3): the no-op.
        let q = [0.1f64, 0.05, 0.3, 0.05, 0.05, 0.05, 0.35, 0.025, 0.025];
        let logits: Vec<f32> = q.iter().map(|x| x.ln() as f32).collect();
        let policy = ActionSpace::Discrete.policy(&Tensor::from_vec(logits, (1, 9), &dev).unwrap()).unwrap();
        assert_eq!(policy.actions(&policy.greedy().unwrap()).unwrap()[0], Action::new(-0.5, 0.0, 0.0));
        assert_eq!(policy.marginal_modes().unwrap()[0], Action::new(0.0, 0.0, 0.0));
        let head = Tensor::randn(0f32, 1.0, (4, 6), &dev).unwrap();
        let beta = ActionSpace::Beta.policy(&head).unwrap();
        assert_eq!(beta.marginal_modes().unwrap(), beta.actions(&beta.greedy().unwrap()).unwrap());
    }

    #[test]
    fn sampled_actions_are_valid_and_bad_heads_are_errors() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(5);
        for space in ActionSpace::ALL {
            let head = Tensor::randn(0f32, 2.0, (16, space.head_size()), &dev).unwrap();
            let p = space.policy(&head).unwrap();
            let raw = p.sample(&mut rng).unwrap();
            assert!(p.actions(&raw).unwrap().iter().all(|a| a.validate().is_ok()));
            let lp = p.log_prob(&raw).unwrap().to_vec1::<f32>().unwrap();
            assert!(lp.iter().all(|l| l.is_finite()), "{space:?}: {lp:?}");
            assert_eq!(p.greedy().unwrap().dim(0).unwrap(), 16);
            let wrong = Tensor::zeros((2, space.head_size() + 1), DType::F32, &dev).unwrap();
            assert!(space.policy(&wrong).unwrap_err().to_string().contains(space.as_str()));
        }
        assert_eq!("Discrete".parse::<ActionSpace>().unwrap(), ActionSpace::Discrete);
        assert_eq!("grid".parse::<ActionSpace>().unwrap(), ActionSpace::Grid);
        assert!("gaussian".parse::<ActionSpace>().is_err());
    }
}
