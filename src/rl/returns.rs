//! Value targets of a rollout: n-step returns bootstrapped from the critic (A2C) and V-trace
//! targets (IMPALA, Espeholt et al. 2018) for actors that act with a lagging copy of the
//! policy — the paper's "off-policy A3C".
//!
//! # Layout
//! Every per-step slice is `[T, N]` row-major (`t·N + n`: step `t`, actor `n`); `masks[t·N + n]`
//! is 0 when actor `n`'s episode ended at step `t` (terminated or truncated: the environment
//! restarts it, so the next state belongs to another episode) and 1 otherwise. Values are
//! `[T + 1, N]`: the critic's `V(s_t)` for the rollout's states and the state after it.
//!
//! With on-policy ratios (`π = μ`) and `ρ̄ = c̄ = 1`, V-trace targets equal the n-step returns
//! and its advantages equal `R_t − V(s_t)` (tested).

use crate::{Error, Result};

/// n-step returns `R_t = r_t + γ·m_t·R_{t+1}`, `R_T = V(s_T)` (`bootstrap`), `[T, N]`.
///
/// `rewards`, `masks`: `[T, N]`; `bootstrap`: `[N]`; `γ ∈ [0, 1]`.
///
/// ```
/// // One actor, two steps, γ = 0.5, V(s_2) = 4: R_1 = 1 + 0.5·4 = 3, R_0 = 1 + 0.5·3 = 2.5.
/// let r = rwt::rl::n_step_returns(&[1.0, 1.0], &[1.0, 1.0], &[4.0], 0.5)?;
/// assert_eq!(r, vec![2.5, 3.0]);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn n_step_returns(rewards: &[f64], masks: &[f64], bootstrap: &[f64], gamma: f64) -> Result<Vec<f64>> {
    let n = bootstrap.len();
    check_layout(rewards, masks, n, gamma)?;
    let mut out = vec![0.0; rewards.len()];
    let mut next = bootstrap.to_vec();
    for t in (0..rewards.len() / n).rev() {
        for (a, r) in next.iter_mut().enumerate() {
            let i = t * n + a;
            *r = rewards[i] + gamma * masks[i] * *r;
            out[i] = *r;
        }
    }
    Ok(out)
}

/// V-trace's truncation levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VTraceConfig {
    /// `ρ̄`, the truncation of the importance weights in the TD errors and the policy
    /// gradient (the fixed point's policy lies between `μ` and `π`; 1 = IMPALA's setting).
    pub rho_bar: f64,
    /// `c̄`, the truncation of the trace-cutting weights (speed of contraction; 1 = IMPALA's).
    pub c_bar: f64,
}

impl Default for VTraceConfig {
    /// `ρ̄ = c̄ = 1`.
    fn default() -> Self {
        VTraceConfig { rho_bar: 1.0, c_bar: 1.0 }
    }
}

impl VTraceConfig {
    /// Checks `0 < c̄ ≤ ρ̄` (IMPALA's assumption), both finite.
    pub fn validate(&self) -> Result<()> {
        if !(self.rho_bar.is_finite() && self.rho_bar > 0.0) {
            return Err(Error::invalid("vtrace.rho_bar", self.rho_bar, "must be finite and > 0"));
        }
        if !(self.c_bar.is_finite() && self.c_bar > 0.0 && self.c_bar <= self.rho_bar) {
            return Err(Error::invalid("vtrace.c_bar", self.c_bar, "must be finite, > 0 and <= rho_bar"));
        }
        Ok(())
    }
}

/// V-trace targets and the importance-weighted advantages of the policy gradient.
#[derive(Clone, Debug, PartialEq)]
pub struct VTrace {
    /// `v_t`, the critic's regression targets, `[T, N]`.
    pub targets: Vec<f64>,
    /// `ρ_t·(r_t + γ·m_t·v_{t+1} − V(s_t))`, the policy gradient's advantages, `[T, N]`.
    pub advantages: Vec<f64>,
    /// The truncated importance weights `ρ_t = min(ρ̄, π/μ)`, `[T, N]`.
    pub rhos: Vec<f64>,
}

/// V-trace (Espeholt et al. 2018, Eq. 1, in its recursive form Remark 1):
///
/// ```text
/// δ_t = ρ_t·(r_t + γ·m_t·V(s_{t+1}) − V(s_t)),     ρ_t = min(ρ̄, π(a_t|s_t)/μ(a_t|s_t))
/// v_t − V(s_t) = δ_t + γ·m_t·c_t·(v_{t+1} − V(s_{t+1})),   c_t = min(c̄, π/μ),   v_T = V(s_T)
/// ```
///
/// `rewards`, `masks`, `log_ratios` (`ln π − ln μ` of the taken actions): `[T, N]`;
/// `values`: `[T + 1, N]`. Non-finite log-ratios are an error naming the position.
pub fn vtrace(
    rewards: &[f64],
    masks: &[f64],
    values: &[f64],
    log_ratios: &[f64],
    gamma: f64,
    config: VTraceConfig,
) -> Result<VTrace> {
    config.validate()?;
    if values.len() <= rewards.len() || values.len() % (values.len() - rewards.len()) != 0 {
        return Err(Error::shape("V-trace values", "[T + 1, N] for rewards [T, N]", values.len().to_string()));
    }
    let n = values.len() - rewards.len();
    check_layout(rewards, masks, n, gamma)?;
    if log_ratios.len() != rewards.len() {
        return Err(Error::shape("V-trace log-ratios", rewards.len().to_string(), log_ratios.len().to_string()));
    }
    if let Some(i) = log_ratios.iter().position(|l| l.is_nan() || *l == f64::INFINITY) {
        return Err(Error::invalid("V-trace log-ratio", log_ratios[i], format!("at step {}, actor {}", i / n, i % n)));
    }
    let ratios: Vec<f64> = log_ratios.iter().map(|l| l.exp()).collect();
    let rhos: Vec<f64> = ratios.iter().map(|r| r.min(config.rho_bar)).collect();
    let steps = rewards.len() / n;
    let mut targets = vec![0.0; rewards.len()];
    // v_{t+1} − V(s_{t+1}), starting from v_T − V(s_T) = 0.
    let mut correction = vec![0.0; n];
    for t in (0..steps).rev() {
        for (a, corr) in correction.iter_mut().enumerate() {
            let i = t * n + a;
            let delta = rhos[i] * (rewards[i] + gamma * masks[i] * values[i + n] - values[i]);
            *corr = delta + gamma * masks[i] * ratios[i].min(config.c_bar) * *corr;
            targets[i] = values[i] + *corr;
        }
    }
    let advantages = (0..rewards.len())
        .map(|i| {
            let next = if i + n < rewards.len() { targets[i + n] } else { values[i + n] };
            rhos[i] * (rewards[i] + gamma * masks[i] * next - values[i])
        })
        .collect();
    Ok(VTrace { targets, advantages, rhos })
}

fn check_layout(rewards: &[f64], masks: &[f64], actors: usize, gamma: f64) -> Result<()> {
    if actors == 0 || rewards.is_empty() || rewards.len() % actors != 0 {
        return Err(Error::shape(
            "rollout rewards",
            format!("[T, N] with T >= 1 and N = {actors}"),
            rewards.len().to_string(),
        ));
    }
    if masks.len() != rewards.len() {
        return Err(Error::shape("rollout masks", rewards.len().to_string(), masks.len().to_string()));
    }
    if !(0.0..=1.0).contains(&gamma) {
        return Err(Error::invalid("gamma", gamma, "must be in [0, 1]"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    /// Two actors, three steps, γ = 0.9, by hand:
    /// actor 0: r = (1, 0, 2), no ends, V(s_3) = 10 → R = (9.91, 9.9, 11);
    /// actor 1: r = (1, 1, 1), ends at step 1, V(s_3) = 5 → R = (1.9, 1, 5.5).
    #[test]
    fn n_step_returns_by_hand() {
        let rewards = [1.0, 1.0, 0.0, 1.0, 2.0, 1.0];
        let masks = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0];
        let r = n_step_returns(&rewards, &masks, &[10.0, 5.0], 0.9).unwrap();
        assert!(close(&r, &[9.91, 1.9, 9.9, 1.0, 11.0, 5.5]), "{r:?}");
    }

    /// One actor, two steps, γ = 0.5, r = (1, 2), V = (0.5, 1, 2), π/μ = (2, 0.5), ρ̄ = c̄ = 1:
    /// ρ = c = (1, 0.5); δ_1 = 0.5·(2 + 1 − 1) = 1, v_1 = 1 + 1 = 2; δ_0 = 1 + 0.5 − 0.5 = 1,
    /// v_0 = 0.5 + 1 + 0.5·1·(2 − 1) = 2; advantages a_1 = 0.5·(2 + 0.5·2 − 1) = 1,
    /// a_0 = 1 + 0.5·2 − 0.5 = 1.5. With the episode ending at step 0: v_0 = 1, a_0 = 0.5.
    #[test]
    fn vtrace_by_hand() {
        let log_ratios = [2f64.ln(), 0.5f64.ln()];
        let v = vtrace(&[1.0, 2.0], &[1.0, 1.0], &[0.5, 1.0, 2.0], &log_ratios, 0.5, VTraceConfig::default()).unwrap();
        assert!(close(&v.targets, &[2.0, 2.0]), "{v:?}");
        assert!(close(&v.advantages, &[1.5, 1.0]), "{v:?}");
        assert!(close(&v.rhos, &[1.0, 0.5]));
        let v = vtrace(&[1.0, 2.0], &[0.0, 1.0], &[0.5, 1.0, 2.0], &log_ratios, 0.5, VTraceConfig::default()).unwrap();
        assert!(close(&v.targets, &[1.0, 2.0]) && close(&v.advantages, &[0.5, 1.0]), "{v:?}");
    }

    /// On-policy (log-ratios 0), V-trace is the n-step return and its advantage `R − V`.
    #[test]
    fn on_policy_vtrace_is_the_n_step_return() {
        let mut rng = crate::random::seeded(4);
        use rand::Rng;
        let (t, n) = (20, 10);
        let rewards: Vec<f64> = (0..t * n).map(|_| rng.random_range(-10.0..1.0)).collect();
        let masks: Vec<f64> = (0..t * n).map(|_| if rng.random::<f64>() < 0.1 { 0.0 } else { 1.0 }).collect();
        let values: Vec<f64> = (0..(t + 1) * n).map(|_| rng.random_range(-5.0..50.0)).collect();
        let v = vtrace(&rewards, &masks, &values, &vec![0.0; t * n], 0.99, VTraceConfig::default()).unwrap();
        let r = n_step_returns(&rewards, &masks, &values[t * n..], 0.99).unwrap();
        for i in 0..t * n {
            assert!((v.targets[i] - r[i]).abs() < 1e-9, "target {i}: {} vs {}", v.targets[i], r[i]);
            assert!((v.advantages[i] - (r[i] - values[i])).abs() < 1e-9);
        }
    }

    /// The recursion equals IMPALA's closed sum `v_s = V(s_s) + Σ_{t≥s} γ^{t−s} (Π_{i<t} c_i) δ_t`
    /// (no episode ends, off-policy ratios, ρ̄ = 1.5, c̄ = 0.8).
    #[test]
    fn vtrace_recursion_equals_the_closed_sum() {
        let mut rng = crate::random::seeded(9);
        use rand::Rng;
        let t_len = 6;
        let rewards: Vec<f64> = (0..t_len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let values: Vec<f64> = (0..=t_len).map(|_| rng.random_range(-2.0..2.0)).collect();
        let log_ratios: Vec<f64> = (0..t_len).map(|_| rng.random_range(-1.0..1.0)).collect();
        let cfg = VTraceConfig { rho_bar: 1.5, c_bar: 0.8 };
        let gamma = 0.9;
        let v = vtrace(&rewards, &vec![1.0; t_len], &values, &log_ratios, gamma, cfg).unwrap();
        let ratio = |i: usize| log_ratios[i].exp();
        for s in 0..t_len {
            let mut sum = 0.0;
            for t in s..t_len {
                let c: f64 = (s..t).map(|i| ratio(i).min(cfg.c_bar)).product();
                let delta = ratio(t).min(cfg.rho_bar) * (rewards[t] + gamma * values[t + 1] - values[t]);
                sum += gamma.powi((t - s) as i32) * c * delta;
            }
            assert!((v.targets[s] - (values[s] + sum)).abs() < 1e-12, "v_{s}");
        }
    }

    #[test]
    fn bad_layouts_are_errors() {
        assert!(n_step_returns(&[1.0, 2.0, 3.0], &[1.0; 3], &[0.0, 0.0], 0.9).is_err());
        assert!(n_step_returns(&[1.0, 2.0], &[1.0], &[0.0, 0.0], 0.9).is_err());
        assert!(n_step_returns(&[1.0], &[1.0], &[0.0], 1.5).is_err());
        let cfg = VTraceConfig::default();
        assert!(vtrace(&[1.0], &[1.0], &[0.0], &[0.0], 0.9, cfg).is_err());
        assert!(vtrace(&[1.0], &[1.0], &[0.0, 0.0], &[f64::NAN], 0.9, cfg).unwrap_err().to_string().contains("step 0"));
        assert!(VTraceConfig { rho_bar: 1.0, c_bar: 2.0 }.validate().is_err());
    }
}
