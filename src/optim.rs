//! Optimisation as in the paper's training protocol: SGD with momentum and weight decay
//! (PyTorch's `torch.optim.SGD` update, so that learning rates and decays carry over) and the
//! learning-rate schedules — poly decay `lr·(1 − t/T)^power` (power 0.9 for DeepLab/FCN),
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
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid("learning rate", lr, "must be finite and >= 0"));
        }
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::invalid("momentum", momentum, "must be in [0, 1)"));
        }
        if !(weight_decay.is_finite() && weight_decay >= 0.0) {
            return Err(Error::invalid("weight decay", weight_decay, "must be finite and >= 0"));
        }
        let buffers = vec![None; vars.len()];
        let names = (0..vars.len()).map(|i| i.to_string()).collect();
        Ok(Sgd { names, vars, buffers, lr, momentum, weight_decay })
    }

    /// SGD over every variable of `varmap`, named as there (in name order), so that its state
    /// can be saved and restored by name ([`Sgd::state`], [`Sgd::load_state`]).
    pub fn from_varmap(varmap: &candle_nn::VarMap, lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
        let mut named: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        drop(data);
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let (names, vars): (Vec<String>, Vec<Var>) = named.into_iter().unzip();
        let mut opt = Sgd::new(vars, lr, momentum, weight_decay)?;
        opt.names = names;
        Ok(opt)
    }

    /// The momentum buffers by variable name (those that exist): the optimiser's checkpoint.
    pub fn state(&self) -> std::collections::HashMap<String, Tensor> {
        self.names.iter().zip(&self.buffers).filter_map(|(n, b)| b.as_ref().map(|b| (n.clone(), b.clone()))).collect()
    }

    /// Restores [`Sgd::state`]: a variable without a saved buffer starts without one; a saved
    /// buffer of the wrong shape, or for a name this optimiser does not have, is an error.
    pub fn load_state(&mut self, state: &std::collections::HashMap<String, Tensor>) -> Result<()> {
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
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid("learning rate", lr, "must be finite and >= 0"));
        }
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
            let g = if self.weight_decay > 0.0 { (g + (var.as_tensor() * self.weight_decay)?)? } else { g.clone() };
            let b = match buf.take() {
                Some(b) if self.momentum > 0.0 => ((b * self.momentum)? + g)?,
                _ => g,
            };
            var.set(&(var.as_tensor() - (&b * self.lr)?)?)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
