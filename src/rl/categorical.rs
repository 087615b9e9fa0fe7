//! A categorical distribution over a finite action set, and the 9 actions of the A3C
//! baseline of CARLA (Dosovitskiy et al., *CARLA: An open urban driving simulator*, CoRL
//! 2017) as the issue fixes them: no-op, two throttle and two brake levels, four steer levels.
//!
//! ```text
//! log π(k) = z_k − log Σ_j exp z_j,   H = −Σ_k π(k) log π(k)
//! ```

use crate::sim::Action;
use crate::{Error, Result};
use candle_core::{DType, Tensor, D};
use rand::Rng;

/// The discrete action set: index → `(steer, throttle, brake)`.
pub const DISCRETE_ACTIONS: [Action; 9] = [
    Action::new(0.0, 0.0, 0.0),  // no-op
    Action::new(0.0, 0.5, 0.0),  // half throttle
    Action::new(0.0, 1.0, 0.0),  // full throttle
    Action::new(0.0, 0.0, 0.5),  // half brake
    Action::new(0.0, 0.0, 1.0),  // full brake
    Action::new(-1.0, 0.0, 0.0), // full right
    Action::new(-0.5, 0.0, 0.0), // half right
    Action::new(0.5, 0.0, 0.0),  // half left
    Action::new(1.0, 0.0, 0.0),  // full left
];

/// A second 9-action set, steer × longitudinal: steer left ½, straight, right ½, each with
/// throttle ¾, coasting or brake ½. CARLA's [`DISCRETE_ACTIONS`] cannot steer and accelerate
/// at once (every steer action coasts), so a policy that has learned to keep up speed pays for
/// every correction; here each steering choice keeps the longitudinal choice.
pub const GRID_ACTIONS: [Action; 9] = [
    Action::new(0.5, 0.75, 0.0),  // left, throttle
    Action::new(0.5, 0.0, 0.0),   // left, coast
    Action::new(0.5, 0.0, 0.5),   // left, brake
    Action::new(0.0, 0.75, 0.0),  // straight, throttle
    Action::new(0.0, 0.0, 0.0),   // straight, coast (no-op)
    Action::new(0.0, 0.0, 0.5),   // straight, brake
    Action::new(-0.5, 0.75, 0.0), // right, throttle
    Action::new(-0.5, 0.0, 0.0),  // right, coast
    Action::new(-0.5, 0.0, 0.5),  // right, brake
];

/// The steering levels of [`FINE_ACTIONS`]: finer near straight ahead, where lane keeping
/// steers.
pub const FINE_STEER: [f32; 9] = [-1.0, -0.6, -0.3, -0.1, 0.0, 0.1, 0.3, 0.6, 1.0];

/// The longitudinal choices of [`FINE_ACTIONS`], `(throttle, brake)`: throttle 0.8 and 0.4,
/// coast, brake 0.3 and 1 (the Autopilot's gentle and full brake).
pub const FINE_LONGITUDINAL: [(f32, f32); 5] = [(0.8, 0.0), (0.4, 0.0), (0.0, 0.0), (0.0, 0.3), (0.0, 1.0)];

/// 45 actions, [`FINE_STEER`] × [`FINE_LONGITUDINAL`] (index `5·s + l`): fine enough that the
/// scripted Autopilot's continuous actions have a near neighbour, for imitation
/// ([`crate::rl::ActionSpace::raw_of`]); the 9 of [`GRID_ACTIONS`] quantise its cruising
/// throttle (about 0.1–0.3) to coasting and its steering to ±0.5, and CARLA's 9 cannot steer
/// and accelerate at once.
pub const FINE_ACTIONS: [Action; 45] = fine_actions();

const fn fine_actions() -> [Action; 45] {
    let mut out = [Action::new(0.0, 0.0, 0.0); 45];
    let mut i = 0;
    while i < 45 {
        let (throttle, brake) = FINE_LONGITUDINAL[i % 5];
        out[i] = Action::new(FINE_STEER[i / 5], throttle, brake);
        i += 1;
    }
    out
}

/// Categorical distributions from unnormalised log-probabilities.
///
/// # Shapes
/// `logits`: `[B, K]`; actions are `[B]` `u32` indices; [`Categorical::log_prob`] and
/// [`Categorical::entropy`] return `[B]`.
#[derive(Clone, Debug)]
pub struct Categorical {
    log_probs: Tensor,
}

impl Categorical {
    /// The distributions of `logits` `[B, K]` (`K ≥ 1`).
    pub fn from_logits(logits: &Tensor) -> Result<Self> {
        let (_, k) = logits
            .dims2()
            .map_err(|_| Error::shape("categorical policy head", "[B, K]", format!("{:?}", logits.dims())))?;
        if k == 0 {
            return Err(Error::shape("categorical policy head columns", "K >= 1", "0"));
        }
        Ok(Categorical { log_probs: candle_nn::ops::log_softmax(logits, D::Minus1)? })
    }

    /// `log π(k)` for every action, `[B, K]`.
    pub fn log_probs(&self) -> &Tensor {
        &self.log_probs
    }

    /// `log π(a_b)` of the actions `[B]` (`u32` indices `< K`), `[B]`, differentiable.
    pub fn log_prob(&self, actions: &Tensor) -> Result<Tensor> {
        let (b, k) = self.log_probs.dims2()?;
        if actions.dims() != [b] {
            return Err(Error::shape("categorical actions", format!("[{b}]"), format!("{:?}", actions.dims())));
        }
        let idx = actions.to_dtype(DType::U32)?;
        let max = idx.max_all()?.to_scalar::<u32>()?;
        if b > 0 && max as usize >= k {
            return Err(Error::invalid("categorical action", max, format!("must be < {k}")));
        }
        Ok(self.log_probs.gather(&idx.unsqueeze(1)?, 1)?.squeeze(1)?)
    }

    /// `H = −Σ π log π` of every row, `[B]` (nats), differentiable.
    pub fn entropy(&self) -> Result<Tensor> {
        Ok((self.log_probs.exp()? * &self.log_probs)?.sum(1)?.neg()?)
    }

    /// The most likely action of every row, `[B]` `u32`.
    pub fn mode(&self) -> Result<Tensor> {
        Ok(self.log_probs.argmax(1)?.to_dtype(DType::U32)?)
    }

    /// One draw per row by inverting the cumulative distribution, `[B]` `u32`, no graph.
    pub fn sample(&self, rng: &mut impl Rng) -> Result<Tensor> {
        let probs = self.log_probs.exp()?.to_dtype(DType::F64)?.to_vec2::<f64>()?;
        let picks: Vec<u32> = probs
            .iter()
            .map(|row| {
                let u: f64 = rng.random::<f64>() * row.iter().sum::<f64>();
                let mut acc = 0.0;
                row.iter()
                    .position(|p| {
                        acc += p;
                        u < acc
                    })
                    .unwrap_or(row.len() - 1) as u32
            })
            .collect();
        let n = picks.len();
        Ok(Tensor::from_vec(picks, n, self.log_probs.device())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Uniform logits: `log π = −ln K`, `H = ln K`; logits `ln [1, 2, 3, 4]`: `π = k / 10`,
    /// `H = −Σ (k/10) ln(k/10)`; the gradient of `log π(a)` is `onehot(a) − π`.
    #[test]
    fn closed_forms_and_gradient() {
        let dev = Device::Cpu;
        let uniform = Categorical::from_logits(&Tensor::zeros((2, 9), DType::F64, &dev).unwrap()).unwrap();
        let lp = uniform.log_prob(&Tensor::new(&[0u32, 8], &dev).unwrap()).unwrap().to_vec1::<f64>().unwrap();
        let h = uniform.entropy().unwrap().to_vec1::<f64>().unwrap();
        assert!(lp.iter().all(|l| (l + 9f64.ln()).abs() < 1e-12) && h.iter().all(|h| (h - 9f64.ln()).abs() < 1e-12));

        let z = Var::new(&[[1f64.ln(), 2f64.ln(), 3f64.ln(), 4f64.ln()]], &dev).unwrap();
        let d = Categorical::from_logits(z.as_tensor()).unwrap();
        let want_h: f64 = -(1..=4).map(|k| k as f64 / 10.0 * (k as f64 / 10.0).ln()).sum::<f64>();
        assert!((d.entropy().unwrap().to_vec1::<f64>().unwrap()[0] - want_h).abs() < 1e-12);
        let lp = d.log_prob(&Tensor::new(&[2u32], &dev).unwrap()).unwrap();
        assert!((lp.to_vec1::<f64>().unwrap()[0] - 0.3f64.ln()).abs() < 1e-12);
        let g = lp.sum_all().unwrap().backward().unwrap();
        let g = g.get(z.as_tensor()).unwrap().to_vec2::<f64>().unwrap();
        for (k, gk) in g[0].iter().enumerate() {
            let want = if k == 2 { 1.0 } else { 0.0 } - (k + 1) as f64 / 10.0;
            assert!((gk - want).abs() < 1e-12, "{g:?}");
        }
        assert_eq!(d.mode().unwrap().to_vec1::<u32>().unwrap(), vec![3]);
    }

    /// Frequencies of 20 000 draws approach `π = [0.1, 0.2, 0.3, 0.4]` (within ~6 standard errors).
    #[test]
    fn samples_follow_the_probabilities() {
        let dev = Device::Cpu;
        let n = 20_000;
        let row = Tensor::new(&[1f64.ln(), 2f64.ln(), 3f64.ln(), 4f64.ln()], &dev).unwrap();
        let d = Categorical::from_logits(&row.unsqueeze(0).unwrap().repeat((n, 1)).unwrap()).unwrap();
        let s = d.sample(&mut crate::random::seeded(1)).unwrap().to_vec1::<u32>().unwrap();
        for k in 0..4 {
            let f = s.iter().filter(|&&a| a == k).count() as f64 / n as f64;
            assert!((f - (k + 1) as f64 / 10.0).abs() < 0.02, "action {k}: {f}");
        }
    }

    #[test]
    fn bad_actions_are_errors_and_actions_are_valid() {
        let dev = Device::Cpu;
        let d = Categorical::from_logits(&Tensor::zeros((2, 9), DType::F32, &dev).unwrap()).unwrap();
        assert!(d.log_prob(&Tensor::new(&[0u32], &dev).unwrap()).is_err());
        assert!(d.log_prob(&Tensor::new(&[0u32, 9], &dev).unwrap()).unwrap_err().to_string().contains("< 9"));
        assert!(Categorical::from_logits(&Tensor::zeros(9, DType::F32, &dev).unwrap()).is_err());
        assert!(DISCRETE_ACTIONS.iter().all(|a| a.validate().is_ok()));
    }
}
