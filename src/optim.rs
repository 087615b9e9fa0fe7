//! Optimisation as in the paper's training protocol: SGD with momentum and weight decay
//! (PyTorch's `torch.optim.SGD` update, so that learning rates and decays carry over), Adam
//! (`torch.optim.Adam`'s update), RMSprop (`torch.optim.RMSprop`'s update, the driving
//! agent's optimiser), all behind the [`Optimizer`] trait the training loops take,
//! and the learning-rate schedules — poly decay `lr·(1 − t/T)^power` (power 0.9 for DeepLab/FCN),
//! linear decay, constant.
//!
//! ```
//! use rwt::optim::Schedule;
//! let s = Schedule::Poly { power: 0.9 };
//! assert_eq!(s.rate(0.01, 0, 100)?, 0.01);
//! assert!(s.rate(0.01, 50, 100)? < 0.0054);
//! # Ok::<(), rwt::Error>(())
//! ```

use crate::{Error, Result};
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use std::collections::HashMap;

/// What the training loop needs of an optimiser: a step from a loss, a settable learning rate,
/// and a state by variable name that a checkpoint saves and restores.
pub trait Optimizer: Send {
    /// Backward pass of `loss` and one update of every variable with a gradient
    /// ([`Optimizer::step`]).
    fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }
    /// One update from gradients already computed (and perhaps clipped, as the driving
    /// agent's update does); variables without a gradient are left alone.
    fn step(&mut self, grads: &GradStore) -> Result<()>;
    /// The current learning rate.
    fn learning_rate(&self) -> f64;
    /// Sets the learning rate (for a schedule); a negative or non-finite rate is an error.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// The optimiser's state tensors by name (what a checkpoint saves).
    fn state(&self) -> HashMap<String, Tensor>;
    /// Restores [`Optimizer::state`]; a name or shape it does not know is an error.
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()>;
}

/// The variables of `varmap` with their names, in name order.
fn named_vars(varmap: &candle_nn::VarMap) -> Result<(Vec<String>, Vec<Var>)> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let mut named: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    drop(data);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(named.into_iter().unzip())
}

fn check_rate(lr: f64) -> Result<()> {
    if !(lr.is_finite() && lr >= 0.0) {
        return Err(Error::invalid("learning rate", lr, "must be finite and >= 0"));
    }
    Ok(())
}

fn check_weight_decay(weight_decay: f64) -> Result<()> {
    if !(weight_decay.is_finite() && weight_decay >= 0.0) {
        return Err(Error::invalid("weight decay", weight_decay, "must be finite and >= 0"));
    }
    Ok(())
}

/// Stochastic gradient descent with momentum and L2 weight decay, PyTorch's form:
/// `g ← ∇ + λ·p`, `b ← μ·b + g` (`b = g` at the first step), `p ← p − η·b`.
#[derive(Debug)]
pub struct Sgd {
    names: Vec<String>,
    vars: Vec<Var>,
    buffers: Vec<Option<Tensor>>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    /// SGD over `vars` with learning rate `lr`, momentum `μ ∈ [0, 1)` and weight decay `λ ≥ 0`.
    pub fn new(vars: Vec<Var>, lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        check_rate(lr)?;
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::invalid("momentum", momentum, "must be in [0, 1)"));
        }
        check_weight_decay(weight_decay)?;
        let buffers = vec![None; vars.len()];
        let names = (0..vars.len()).map(|i| i.to_string()).collect();
        Ok(Sgd { names, vars, buffers, lr, momentum, weight_decay })
    }

    /// SGD over every variable of `varmap`, named as there (in name order), so that its state
    /// can be saved and restored by name ([`Sgd::state`], [`Sgd::load_state`]).
    pub fn from_varmap(varmap: &candle_nn::VarMap, lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        let (names, vars) = named_vars(varmap)?;
        let mut opt = Sgd::new(vars, lr, momentum, weight_decay)?;
        opt.names = names;
        Ok(opt)
    }

    /// The momentum buffers by variable name (those that exist): the optimiser's checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        self.names.iter().zip(&self.buffers).filter_map(|(n, b)| b.as_ref().map(|b| (n.clone(), b.clone()))).collect()
    }

    /// Restores [`Sgd::state`]: a variable without a saved buffer starts without one; a saved
    /// buffer of the wrong shape, or for a name this optimiser does not have, is an error.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        if let Some(unknown) = state.keys().find(|k| !self.names.contains(k)) {
            return Err(Error::invalid("optimiser state", unknown, "names no variable of this optimiser"));
        }
        let buffers = self
            .names
            .iter()
            .zip(&self.vars)
            .map(|(n, v)| state.get(n).map(|b| b.to_device(v.device())?.to_dtype(v.dtype())).transpose())
            .collect::<candle_core::Result<Vec<_>>>()?;
        self.set_buffers(buffers)
    }

    /// The current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate (for a schedule); a negative or non-finite rate is an error.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_rate(lr)?;
        self.lr = lr;
        Ok(())
    }

    /// The momentum buffers, one per variable (`None` before its first gradient): the state
    /// a checkpoint saves to resume exactly.
    pub fn buffers(&self) -> &[Option<Tensor>] {
        &self.buffers
    }

    /// Restores momentum buffers saved with [`Sgd::buffers`]; shapes must match the variables.
    pub fn set_buffers(&mut self, buffers: Vec<Option<Tensor>>) -> Result<()> {
        if buffers.len() != self.vars.len() {
            return Err(Error::shape("momentum buffers", self.vars.len().to_string(), buffers.len().to_string()));
        }
        for (i, (b, v)) in buffers.iter().zip(&self.vars).enumerate() {
            if let Some(b) = b {
                if b.dims() != v.dims() {
                    return Err(Error::shape(
                        format!("momentum buffer {i}"),
                        format!("{:?}", v.dims()),
                        format!("{:?}", b.dims()),
                    ));
                }
            }
        }
        self.buffers = buffers;
        Ok(())
    }

    /// One update from the gradients in `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (var, buf) in self.vars.iter().zip(self.buffers.iter_mut()) {
            let Some(g) = grads.get(var) else { continue };
            // Detached: an update computed from the tracked variable would chain every step's
            // buffers into one growing graph (memory grows by the model's size each step).
            let p = var.as_tensor().detach();
            let g = g.detach();
            let g = if self.weight_decay > 0.0 { (g + (&p * self.weight_decay)?)? } else { g };
            let b = match buf.take() {
                Some(b) if self.momentum > 0.0 => ((b * self.momentum)? + g)?,
                _ => g,
            };
            var.set(&(p - (&b * self.lr)?)?)?;
            *buf = Some(b);
        }
        Ok(())
    }

    /// Backward pass of `loss`, then [`Sgd::step`].
    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        Sgd::step(self, grads)
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        Sgd::set_learning_rate(self, lr)
    }
    fn state(&self) -> HashMap<String, Tensor> {
        Sgd::state(self)
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        Sgd::load_state(self, state)
    }
}

/// Adam (Kingma & Ba 2015) with L2 weight decay, `torch.optim.Adam`'s form: `g ← ∇ + λ·p`,
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `p ← p − η·m̂ / (√v̂ + ε)` with the bias
/// corrections `m̂ = m / (1−β₁ᵗ)`, `v̂ = v / (1−β₂ᵗ)`.
#[derive(Debug)]
pub struct Adam {
    names: Vec<String>,
    vars: Vec<Var>,
    /// First and second moments, per variable.
    moments: Vec<Option<(Tensor, Tensor)>>,
    steps: Vec<u64>,
    lr: f64,
    betas: (f64, f64),
    eps: f64,
    weight_decay: f64,
}

impl Adam {
    /// Adam over `vars` with learning rate `lr`, `betas ∈ [0, 1)²`, `eps > 0` and weight decay
    /// `λ ≥ 0` (PyTorch's defaults: `betas = (0.9, 0.999)`, `eps = 1e-8`).
    pub fn new(vars: Vec<Var>, lr: f64, betas: (f64, f64), eps: f64, weight_decay: f64) -> Result<Self> {
        check_rate(lr)?;
        for (name, b) in [("beta1", betas.0), ("beta2", betas.1)] {
            if !(0.0..1.0).contains(&b) {
                return Err(Error::invalid(name, b, "must be in [0, 1)"));
            }
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid("eps", eps, "must be finite and > 0"));
        }
        check_weight_decay(weight_decay)?;
        let n = vars.len();
        let names = (0..n).map(|i| i.to_string()).collect();
        Ok(Adam { names, vars, moments: vec![None; n], steps: vec![0; n], lr, betas, eps, weight_decay })
    }

    /// Adam over every variable of `varmap`, named as there (in name order).
    pub fn from_varmap(varmap: &candle_nn::VarMap, lr: f64, weight_decay: f64) -> Result<Self> {
        let (names, vars) = named_vars(varmap)?;
        let mut opt = Adam::new(vars, lr, (0.9, 0.999), 1e-8, weight_decay)?;
        opt.names = names;
        Ok(opt)
    }

    /// One update from the gradients in `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let (b1, b2) = self.betas;
        for ((var, moments), t) in self.vars.iter().zip(self.moments.iter_mut()).zip(self.steps.iter_mut()) {
            let Some(g) = grads.get(var) else { continue };
            let p = var.as_tensor().detach();
            let g = g.detach();
            let g = if self.weight_decay > 0.0 { (g + (&p * self.weight_decay)?)? } else { g };
            let (m, v) = match moments.take() {
                Some((m, v)) => (((m * b1)? + (&g * (1.0 - b1))?)?, ((v * b2)? + (g.sqr()? * (1.0 - b2))?)?),
                None => ((&g * (1.0 - b1))?, (g.sqr()? * (1.0 - b2))?),
            };
            *t += 1;
            let (c1, c2) = (1.0 - b1.powi(*t as i32), 1.0 - b2.powi(*t as i32));
            let denom = ((&v / c2)?.sqrt()? + self.eps)?;
            let update = ((&m / denom)? * (self.lr / c1))?;
            var.set(&p.sub(&update)?)?;
            *moments = Some((m, v));
        }
        Ok(())
    }
}

impl Optimizer for Adam {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        Adam::step(self, grads)
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_rate(lr)?;
        self.lr = lr;
        Ok(())
    }
    /// `NAME.m`, `NAME.v` and `NAME.step` (a one-element f64 tensor) per variable.
    fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for ((n, mv), &t) in self.names.iter().zip(&self.moments).zip(&self.steps) {
            if let Some((m, v)) = mv {
                out.insert(format!("{n}.m"), m.clone());
                out.insert(format!("{n}.v"), v.clone());
                if let Ok(step) = Tensor::new(&[t as f64], m.device()) {
                    out.insert(format!("{n}.step"), step);
                }
            }
        }
        out
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let known = |k: &str| {
            k.rsplit_once('.')
                .is_some_and(|(n, f)| matches!(f, "m" | "v" | "step") && self.names.iter().any(|x| x == n))
        };
        if let Some(unknown) = state.keys().find(|k| !known(k)) {
            return Err(Error::invalid("optimiser state", unknown, "names no moment of this optimiser"));
        }
        let mut moments = vec![None; self.vars.len()];
        let mut steps = vec![0; self.vars.len()];
        for (i, (n, var)) in self.names.iter().zip(&self.vars).enumerate() {
            let (Some(m), Some(v), Some(t)) =
                (state.get(&format!("{n}.m")), state.get(&format!("{n}.v")), state.get(&format!("{n}.step")))
            else {
                continue;
            };
            for (what, x) in [("m", m), ("v", v)] {
                if x.dims() != var.dims() {
                    return Err(Error::shape(
                        format!("Adam moment {n}.{what}"),
                        format!("{:?}", var.dims()),
                        format!("{:?}", x.dims()),
                    ));
                }
            }
            let t = t.to_dtype(candle_core::DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
            steps[i] = t.first().copied().unwrap_or(0.0) as u64;
            let cast = |x: &Tensor| x.to_device(var.device())?.to_dtype(var.dtype());
            moments[i] = Some((cast(m)?, cast(v)?));
        }
        self.moments = moments;
        self.steps = steps;
        Ok(())
    }
}

/// RMSprop (Tieleman & Hinton 2012), `torch.optim.RMSprop`'s form with `centered = False`
/// and no momentum: `g ← ∇ + λ·p`, `s ← α·s + (1 − α)·g²` (`s = 0` before the first step),
/// `p ← p − η·g / (√s + ε)`. The A2C setting (the paper's agent, after OpenAI baselines) is
/// `α = 0.99`, `ε = 1e-5` ([`RmsProp::a2c`]); PyTorch's defaults are `α = 0.99`, `ε = 1e-8`.
///
/// [`RmsForm::TensorFlow`] is TensorFlow 1's `tf.train.RMSPropOptimizer`, the optimiser of
/// OpenAI baselines' A2C: `s = 1` before the first step and `p ← p − η·g / √(s + ε)`. PyTorch's
/// zero start makes the first steps move every weight by about `η / √(1 − α)` = 10·η whatever
/// the gradient's size; TensorFlow's moves it by about `η·g` until `s` has forgotten its start.
#[derive(Debug)]
pub struct RmsProp {
    names: Vec<String>,
    vars: Vec<Var>,
    /// The running averages of the squared gradients, per variable.
    square_avg: Vec<Option<Tensor>>,
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    form: RmsForm,
}

/// Where RMSprop's running average starts and where `ε` enters ([`RmsProp`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RmsForm {
    /// `torch.optim.RMSprop`: `s₀ = 0`, step `η·g / (√s + ε)`.
    #[default]
    PyTorch,
    /// TensorFlow 1's `tf.train.RMSPropOptimizer` (OpenAI baselines' A2C): `s₀ = 1`, step
    /// `η·g / √(s + ε)`.
    TensorFlow,
}

impl RmsForm {
    /// The squared-gradient average `s₀` before the first step: 0 (PyTorch) or 1 (TensorFlow).
    fn initial_average(self) -> f64 {
        match self {
            RmsForm::PyTorch => 0.0,
            RmsForm::TensorFlow => 1.0,
        }
    }

    /// The step's denominator for the average `s`: `√s + ε` (PyTorch) or `√(s + ε)`
    /// (TensorFlow).
    fn denominator(self, s: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
        match self {
            RmsForm::PyTorch => s.sqrt()? + eps,
            RmsForm::TensorFlow => (s + eps)?.sqrt(),
        }
    }
}

impl RmsProp {
    /// RMSprop over `vars` with learning rate `lr`, smoothing `α ∈ [0, 1)`, `eps > 0` and
    /// weight decay `λ ≥ 0`.
    pub fn new(vars: Vec<Var>, lr: f64, alpha: f64, eps: f64, weight_decay: f64) -> Result<Self> {
        check_rate(lr)?;
        if !(0.0..1.0).contains(&alpha) {
            return Err(Error::invalid("RMSprop alpha", alpha, "must be in [0, 1)"));
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(Error::invalid("RMSprop eps", eps, "must be finite and > 0"));
        }
        check_weight_decay(weight_decay)?;
        let n = vars.len();
        let names = (0..n).map(|i| i.to_string()).collect();
        Ok(RmsProp { names, vars, square_avg: vec![None; n], lr, alpha, eps, weight_decay, form: RmsForm::PyTorch })
    }

    /// The same optimiser in `form` (PyTorch's unless set).
    pub fn with_form(mut self, form: RmsForm) -> Self {
        self.form = form;
        self
    }

    /// RMSprop over every variable of `varmap`, named as there (in name order), with `α`, `ε`
    /// as given and no weight decay.
    pub fn from_varmap(varmap: &candle_nn::VarMap, lr: f64, alpha: f64, eps: f64) -> Result<Self> {
        let (names, vars) = named_vars(varmap)?;
        let mut opt = RmsProp::new(vars, lr, alpha, eps, 0.0)?;
        opt.names = names;
        Ok(opt)
    }

    /// The A2C setting over `varmap`: `α = 0.99`, `ε = 1e-5`, learning rate `lr`.
    pub fn a2c(varmap: &candle_nn::VarMap, lr: f64) -> Result<Self> {
        RmsProp::from_varmap(varmap, lr, 0.99, 1e-5)
    }

    /// OpenAI baselines' A2C optimiser over `varmap`: TensorFlow's form ([`RmsForm::TensorFlow`]),
    /// `α = 0.99`, `ε = 1e-5`, learning rate `lr`.
    pub fn a2c_tensorflow(varmap: &candle_nn::VarMap, lr: f64) -> Result<Self> {
        Ok(RmsProp::a2c(varmap, lr)?.with_form(RmsForm::TensorFlow))
    }

    /// One update from the gradients in `grads`; variables without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        for (var, avg) in self.vars.iter().zip(self.square_avg.iter_mut()) {
            let Some(g) = grads.get(var) else { continue };
            let p = var.as_tensor().detach();
            let g = g.detach();
            let g = if self.weight_decay > 0.0 { (g + (&p * self.weight_decay)?)? } else { g };
            // s ← α·s + (1 − α)·g², from s₀ on the first step.
            let s = match avg.take() {
                Some(s) => ((s * self.alpha)? + (g.sqr()? * (1.0 - self.alpha))?)?,
                None => ((g.sqr()? * (1.0 - self.alpha))? + self.alpha * self.form.initial_average())?,
            };
            let denom = self.form.denominator(&s, self.eps)?;
            var.set(&p.sub(&((g / denom)? * self.lr)?)?)?;
            *avg = Some(s);
        }
        Ok(())
    }
}

impl Optimizer for RmsProp {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        RmsProp::step(self, grads)
    }
    fn learning_rate(&self) -> f64 {
        self.lr
    }
    fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        check_rate(lr)?;
        self.lr = lr;
        Ok(())
    }
    /// `NAME.square_avg` per variable that has taken a step.
    fn state(&self) -> HashMap<String, Tensor> {
        self.names
            .iter()
            .zip(&self.square_avg)
            .filter_map(|(n, s)| s.as_ref().map(|s| (format!("{n}.square_avg"), s.clone())))
            .collect()
    }
    fn load_state(&mut self, state: &HashMap<String, Tensor>) -> Result<()> {
        let known = |k: &str| k.strip_suffix(".square_avg").is_some_and(|n| self.names.iter().any(|x| x == n));
        if let Some(unknown) = state.keys().find(|k| !known(k)) {
            return Err(Error::invalid("optimiser state", unknown, "names no RMSprop average of this optimiser"));
        }
        let mut avgs = vec![None; self.vars.len()];
        for (i, (n, var)) in self.names.iter().zip(&self.vars).enumerate() {
            let Some(s) = state.get(&format!("{n}.square_avg")) else { continue };
            if s.dims() != var.dims() {
                return Err(Error::shape(
                    format!("RMSprop average {n}.square_avg"),
                    format!("{:?}", var.dims()),
                    format!("{:?}", s.dims()),
                ));
            }
            avgs[i] = Some(s.to_device(var.device())?.to_dtype(var.dtype())?);
        }
        self.square_avg = avgs;
        Ok(())
    }
}

/// How the learning rate decays over `T` steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// `η` throughout.
    Constant,
    /// `η·(1 − t/T)^power` (the "poly" policy; the paper's segmenters use power 0.9).
    Poly {
        /// The exponent.
        power: f64,
    },
    /// `η·(1 − t/T)`.
    Linear,
}

impl Schedule {
    /// The rate at step `t` of `total` for base rate `base`; `t ≥ total` gives the final rate
    /// (zero for the decays).
    pub fn rate(&self, base: f64, t: usize, total: usize) -> Result<f64> {
        if total == 0 {
            return Err(Error::invalid("schedule length", 0, "needs at least one step"));
        }
        let left = 1.0 - (t.min(total) as f64 / total as f64);
        Ok(match *self {
            Schedule::Constant => base,
            Schedule::Poly { power } => {
                if !(power.is_finite() && power > 0.0) {
                    return Err(Error::invalid("poly power", power, "must be finite and > 0"));
                }
                base * left.powf(power)
            }
            Schedule::Linear => base * left,
        })
    }
}

/// The factor of a linear learning-rate warm-up (Goyal et al., 2017, "Accurate, Large
/// Minibatch SGD", §2.2) at step `t` (from 0) of a warm-up of `warmup` steps:
/// `min(1, (t + 1) / warmup)`, so the first step takes `1/warmup` of the rate and step
/// `warmup − 1` onwards the whole rate; `warmup = 0` (no warm-up) gives 1 throughout. It
/// multiplies a [`Schedule`]'s rate. PyTorch's RMSprop starts its squared-gradient average
/// at zero, so its first steps move about `lr / √(1 − α)` = 10·lr per weight (α = 0.99):
/// the warm-up keeps them near `lr` while the average fills.
pub fn warmup_factor(t: usize, warmup: usize) -> f64 {
    if t >= warmup {
        1.0
    } else {
        (t + 1) as f64 / warmup as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The warm-up factor against its closed form `min(1, (t + 1) / W)`.
    #[test]
    fn warmup_rises_linearly_then_stays() {
        let f: Vec<f64> = (0..6).map(|t| warmup_factor(t, 4)).collect();
        assert_eq!(f, [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]);
        assert_eq!(warmup_factor(0, 0), 1.0);
        assert_eq!(warmup_factor(0, 1), 1.0);
    }

    /// Three steps against `torch.optim.SGD`, computed once (torch 2.15):
    /// ```text
    /// p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    /// opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    /// for k in range(3):
    ///     opt.zero_grad(); (p**2 * torch.tensor([1.0, 2.0, 3.0])).sum().backward(); opt.step()
    /// → [0.7990, -1.1980, 0.19950], [0.457501, 0.004198, -0.190850], [0.058194, 1.084493, -0.427463]
    /// ```
    #[test]
    fn matches_pytorch_sgd() {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        let c = Tensor::new(&[1.0f32, 2.0, 3.0], &dev).unwrap();
        let mut opt = Sgd::new(vec![p.clone()], 0.1, 0.9, 0.01).unwrap();
        let expected = [[0.7990, -1.1980, 0.19950], [0.457501, 0.004198, -0.190850], [0.058194, 1.084493, -0.427463]];
        for want in expected {
            let loss = (p.as_tensor().sqr().unwrap() * &c).unwrap().sum_all().unwrap();
            opt.backward_step(&loss).unwrap();
            let got = p.as_tensor().to_vec1::<f32>().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{got:?} vs {want:?}");
            }
        }
        assert!(opt.buffers()[0].is_some());
    }

    /// Three steps against `torch.optim.Adam`, computed once (torch 2.15, float64):
    /// ```text
    /// p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    /// opt = torch.optim.Adam([p], lr=0.1, weight_decay=0.01)
    /// for k in range(3):
    ///     opt.zero_grad(); (p**2 * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward(); opt.step()
    /// ```
    /// Then the state is saved, restored into a fresh Adam, and the fourth step of both agrees.
    #[test]
    fn matches_pytorch_adam_and_resumes() {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f64, -2.0, 0.5], &dev).unwrap();
        let c = Tensor::new(&[1.0f64, 2.0, 3.0], &dev).unwrap();
        let mut opt = Adam::new(vec![p.clone()], 0.1, (0.9, 0.999), 1e-8, 0.01).unwrap();
        let expected = [
            [0.9000000004975124, -1.9000000001246882, 0.4000000003327787],
            [0.8004122286867155, -1.800166485862375, 0.30118742027703554],
            [0.701586272938277, -1.700623391662686, 0.20487125043910198],
        ];
        let loss = |p: &Var| (p.as_tensor().sqr().unwrap() * &c).unwrap().sum_all().unwrap();
        for want in expected {
            Optimizer::backward_step(&mut opt, &loss(&p)).unwrap();
            let got = p.as_tensor().to_vec1::<f64>().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
        let q = Var::new(p.as_tensor().to_vec1::<f64>().unwrap().as_slice(), &dev).unwrap();
        let mut resumed = Adam::new(vec![q.clone()], 0.1, (0.9, 0.999), 1e-8, 0.01).unwrap();
        resumed.load_state(&opt.state()).unwrap();
        Optimizer::backward_step(&mut opt, &loss(&p)).unwrap();
        Optimizer::backward_step(&mut resumed, &loss(&q)).unwrap();
        assert_eq!(p.as_tensor().to_vec1::<f64>().unwrap(), q.as_tensor().to_vec1::<f64>().unwrap());
        let mut bad = opt.state();
        bad.insert("nope.m".into(), c.clone());
        assert!(resumed.load_state(&bad).is_err());
        assert!(Adam::new(vec![q.clone()], 0.1, (1.0, 0.999), 1e-8, 0.0).is_err());
        assert!(Adam::new(vec![q], 0.1, (0.9, 0.999), 0.0, 0.0).is_err());
    }

    /// Three steps against `torch.optim.RMSprop` (torch 2.15, float64, the A2C `alpha`/`eps`):
    /// ```text
    /// p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64))
    /// opt = torch.optim.RMSprop([p], lr=0.01, alpha=0.99, eps=1e-5, weight_decay=0.01)
    /// for k in range(3):
    ///     opt.zero_grad(); (p**2 * torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)).sum().backward(); opt.step()
    ///     print([repr(v) for v in p.detach().tolist()])
    /// ```
    /// Then the state is saved, restored into a fresh RMSprop, and the fourth step of both agrees.
    #[test]
    fn matches_pytorch_rmsprop_and_resumes() {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f64, -2.0, 0.5], &dev).unwrap();
        let c = Tensor::new(&[1.0f64, 2.0, 3.0], &dev).unwrap();
        let mut opt = RmsProp::new(vec![p.clone()], 0.01, 0.99, 1e-5, 0.01).unwrap();
        let expected = [
            [0.9000049748768718, -1.900001246867246, 0.40000332767628366],
            [0.8329252190809762, -1.8309451744694218, 0.3373438082986836],
            [0.7799909593804384, -1.775351684350791, 0.29043855556010534],
        ];
        let loss = |p: &Var| (p.as_tensor().sqr().unwrap() * &c).unwrap().sum_all().unwrap();
        for want in expected {
            Optimizer::backward_step(&mut opt, &loss(&p)).unwrap();
            let got = p.as_tensor().to_vec1::<f64>().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
            }
        }
        let q = Var::new(p.as_tensor().to_vec1::<f64>().unwrap().as_slice(), &dev).unwrap();
        let mut resumed = RmsProp::new(vec![q.clone()], 0.01, 0.99, 1e-5, 0.01).unwrap();
        resumed.load_state(&Optimizer::state(&opt)).unwrap();
        Optimizer::backward_step(&mut opt, &loss(&p)).unwrap();
        Optimizer::backward_step(&mut resumed, &loss(&q)).unwrap();
        assert_eq!(p.as_tensor().to_vec1::<f64>().unwrap(), q.as_tensor().to_vec1::<f64>().unwrap());
        let mut bad = Optimizer::state(&opt);
        bad.insert("nope.square_avg".into(), c.clone());
        assert!(resumed.load_state(&bad).is_err());
        let mut wrong = HashMap::new();
        wrong.insert("0.square_avg".to_string(), Tensor::zeros(2, candle_core::DType::F64, &dev).unwrap());
        assert!(resumed.load_state(&wrong).is_err());
        assert!(RmsProp::new(vec![q.clone()], 0.01, 1.0, 1e-5, 0.0).is_err());
        assert!(RmsProp::new(vec![q], 0.01, 0.99, 0.0, 0.0).is_err());
    }

    /// TensorFlow's form against its documented update (`tf.compat.v1.train.RMSPropOptimizer`:
    /// `ms ← ρ·ms + (1 − ρ)·g²`, `p ← p − η·g / √(ms + ε)`, `ms` initialised to ones), written
    /// out in f64 for `L = Σ c·p²` (`g = 2·c·p`); and its first step is about `η·g` where
    /// PyTorch's is about `10·η·sign(g)`.
    #[test]
    fn tensorflow_rmsprop_follows_its_update() {
        let dev = Device::Cpu;
        let (lr, rho, eps) = (0.01, 0.99, 1e-5);
        let start = [1.0f64, -2.0, 0.05];
        let c = [1.0f64, 2.0, 3.0];
        let p = Var::new(&start, &dev).unwrap();
        let ct = Tensor::new(&c, &dev).unwrap();
        let mut opt = RmsProp::new(vec![p.clone()], lr, rho, eps, 0.0).unwrap().with_form(RmsForm::TensorFlow);
        let loss = |p: &Var| (p.as_tensor().sqr().unwrap() * &ct).unwrap().sum_all().unwrap();
        let (mut want, mut ms) = (start, [1.0f64; 3]);
        for _ in 0..3 {
            for i in 0..3 {
                let g = 2.0 * c[i] * want[i];
                ms[i] = rho * ms[i] + (1.0 - rho) * g * g;
                want[i] -= lr * g / (ms[i] + eps).sqrt();
            }
            Optimizer::backward_step(&mut opt, &loss(&p)).unwrap();
            let got = p.as_tensor().to_vec1::<f64>().unwrap();
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-14, "{got:?} vs {want:?}");
            }
        }
        // First step from the third coordinate (g = 0.3): TensorFlow ≈ η·g, PyTorch ≈ 10·η.
        let first = |form: RmsForm| {
            let q = Var::new(&start, &dev).unwrap();
            let mut opt = RmsProp::new(vec![q.clone()], lr, rho, eps, 0.0).unwrap().with_form(form);
            Optimizer::backward_step(&mut opt, &loss(&q)).unwrap();
            start[2] - q.as_tensor().to_vec1::<f64>().unwrap()[2]
        };
        // Exactly η·g/√(ρ + (1 − ρ)g² + ε) and η·g/(√((1 − ρ)g²) + ε): within 1 % of η·g and 10·η.
        assert!((first(RmsForm::TensorFlow) / (lr * 0.3) - 1.0).abs() < 0.01);
        assert!((first(RmsForm::PyTorch) / (10.0 * lr) - 1.0).abs() < 0.01);
    }

    /// The optimisers' state must not hold the autograd graph: a buffer computed from the
    /// tracked variable would chain every step's graph to the next and grow memory without
    /// bound (the 23 GB out-of-memory of a 30-epoch CamVid run before this was fixed).
    #[test]
    fn optimiser_state_holds_no_graph() {
        let dev = Device::Cpu;
        let p = Var::new(&[1.0f32, -2.0, 0.5], &dev).unwrap();
        let mut sgd = Sgd::new(vec![p.clone()], 0.1, 0.9, 0.01).unwrap();
        let mut adam = Adam::new(vec![p.clone()], 0.1, (0.9, 0.999), 1e-8, 0.01).unwrap();
        for _ in 0..3 {
            Optimizer::backward_step(&mut sgd, &p.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
            Optimizer::backward_step(&mut adam, &p.as_tensor().sqr().unwrap().sum_all().unwrap()).unwrap();
        }
        assert!(sgd.buffers().iter().flatten().all(|b| !b.track_op()));
        assert!(Optimizer::state(&adam).values().all(|t| !t.track_op()));
        assert_eq!(Optimizer::state(&adam).len(), 3);
    }

    #[test]
    fn schedules_and_bad_values() {
        let poly = Schedule::Poly { power: 0.9 };
        // 0.01·(1 − 5/10)^0.9 = 0.005358867 (Python, above).
        assert!((poly.rate(0.01, 5, 10).unwrap() - 0.005358867312681466).abs() < 1e-12);
        assert_eq!(poly.rate(0.01, 10, 10).unwrap(), 0.0);
        assert_eq!(Schedule::Linear.rate(1.0, 3, 4).unwrap(), 0.25);
        assert_eq!(Schedule::Constant.rate(0.5, 99, 4).unwrap(), 0.5);
        assert!(poly.rate(0.01, 0, 0).is_err());
        assert!(Schedule::Poly { power: -1.0 }.rate(0.01, 1, 2).is_err());
        let v = Var::new(&[1f32], &Device::Cpu).unwrap();
        assert!(Sgd::new(vec![v.clone()], f64::NAN, 0.9, 0.0).is_err());
        assert!(Sgd::new(vec![v.clone()], 0.1, 1.0, 0.0).is_err());
        let mut opt = Sgd::new(vec![v], 0.1, 0.0, 0.0).unwrap();
        assert!(opt.set_buffers(vec![]).is_err());
        assert!(opt.set_learning_rate(-1.0).is_err());
    }
}
