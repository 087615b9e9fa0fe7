//! The soft-target Wasserstein loss as one candle op: every pixel's Sinkhorn problem solved
//! in the forward pass (CPU: [`crate::ot::sinkhorn`]'s streaming log-domain solver, blocks of
//! pixels in parallel; CUDA: `sinkhorn_loss.cu`, one thread per pixel), its gradient through
//! the dual potential kept in the output so that the backward pass is a multiplication.
//! Called by [`crate::loss::wasserstein_soft`].

use crate::kernels::numeric::Real;
use crate::ot::sinkhorn::{Problem, Solved};
use crate::ot::{SinkhornConfig, SinkhornStats, SinkhornValue};
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Forward op: logits `[B, N, S]` and targets `[B, N, S]` → `[B, N + 1, S]`, channel 0 the
/// loss of each pixel, channels `1..=N` its gradient per unit of upstream gradient,
/// `s_k (f_k − ⟨s, f⟩)`. Keeping the gradient in the output lets the backward pass read it
/// from `res` on any device.
pub(crate) struct SoftForward {
    pub cost: Vec<f64>,
    pub n: usize,
    pub cfg: SinkhornConfig,
    pub stats: Arc<Mutex<SinkhornStats>>,
    /// Flat index `b · S + j` of the first live pixel whose logits have no finite log-softmax
    /// (a NaN or `+∞`, or all `−∞`), written by the CPU solver, which skips such pixels instead
    /// of iterating on them; `usize::MAX`: none. (The CUDA kernel writes NaN as their loss.)
    pub first_bad: Arc<AtomicUsize>,
}

impl CustomOp2 for SoftForward {
    fn name(&self) -> &'static str {
        "rwt-wasserstein-soft"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, n, s) = l1.shape().dims3()?;
        let (o1, o2) =
            l1.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("logits must be contiguous".into()))?;
        let (p1, p2) =
            l2.contiguous_offsets().ok_or_else(|| candle_core::Error::Msg("targets must be contiguous".into()))?;
        let (out, stats) = match (s1, s2) {
            (CpuStorage::F32(z), CpuStorage::F32(t)) => {
                let (o, st) = self.run::<f32>(&z[o1..o2], &t[p1..p2], (b, n, s));
                (CpuStorage::F32(o), st)
            }
            (CpuStorage::F64(z), CpuStorage::F64(t)) => {
                let (o, st) = self.run::<f64>(&z[o1..o2], &t[p1..p2], (b, n, s));
                (CpuStorage::F64(o), st)
            }
            _ => candle_core::bail!("rwt soft Wasserstein: logits and targets must both be f32 or f64"),
        };
        *self.stats.lock().expect("stats lock") = stats;
        Ok((out, Shape::from((b, n + 1, s))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, n, s) = l1.shape().dims3()?;
        let (out, stats) = super::sinkhorn_loss_cuda::forward(&self.cost, &self.cfg, s1, l1, s2, l2, (b, n, s))?;
        *self.stats.lock().expect("stats lock") = stats;
        Ok((out, Shape::from((b, n + 1, s))))
    }

    fn bwd(
        &self,
        _z: &Tensor,
        _t: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let q = res.narrow(1, 1, self.n)?;
        let go = grad_res.narrow(1, 0, 1)?;
        Ok((Some(q.broadcast_mul(&go)?), None))
    }
}

impl SoftForward {
    /// Solves every pixel on the CPU; returns `[B, N + 1, S]` and the statistics.
    fn run<T: Real>(&self, z: &[T], t: &[T], (b, n, s): (usize, usize, usize)) -> (Vec<T>, SinkhornStats) {
        let problem = Problem::<T>::new(&self.cost, n, &self.cfg);
        let sharp = self.cfg.value == SinkhornValue::Sharp;
        let mut out = vec![T::ZERO; b * (n + 1) * s];
        let cost: Vec<T> = self.cost.iter().map(|&c| T::from_f64(c)).collect();
        let one_hot = T::from_f64(1.0 - self.cfg.tolerance);
        let outp = crate::kernels::numeric::SyncPtr(out.as_mut_ptr());
        let chunk = 256;
        let per_image = s.div_ceil(chunk);
        let stats = (0..b * per_image)
            .into_par_iter()
            .map(|task| {
                let (bi, c) = (task / per_image, task % per_image);
                let range = c * chunk..((c + 1) * chunk).min(s);
                let zb = &z[bi * n * s..(bi + 1) * n * s];
                let tb = &t[bi * n * s..(bi + 1) * n * s];
                let base = bi * (n + 1) * s;
                // SAFETY: every pixel (bi, j) is written exactly once, by the task that owns it.
                let put = |ch: usize, j: usize, v: T| unsafe { *outp.get().add(base + ch * s + j) = v };
                // Pixels whose target is one-hot within the tolerance, done in closed form.
                let closed: Vec<Cell<bool>> = range.clone().map(|_| Cell::new(false)).collect();
                let mut n_closed = 0usize;
                let start = range.start;
                let load = |j: usize, loga: &mut [T], logb: &mut [T]| {
                    let mut mass = T::ZERO;
                    let mut top = (T::ZERO, 0);
                    for k in 0..n {
                        let tk = tb[k * s + j];
                        mass = mass + tk;
                        if tk > top.0 {
                            top = (tk, k);
                        }
                    }
                    if mass <= T::ZERO || !mass.is_finite() {
                        return false;
                    }
                    // log-softmax of the logits: finite even where the softmax underflows.
                    let mut mx = zb[j];
                    for k in 1..n {
                        mx = mx.max(zb[k * s + j]);
                    }
                    let mut sum = T::ZERO;
                    for k in 0..n {
                        sum = sum + (zb[k * s + j] - mx).exp();
                    }
                    if !mx.is_finite() || !sum.is_finite() {
                        // A NaN or +∞ logit (or all −∞): no histogram to transport; the caller
                        // reports the pixel rather than iterate to the cap on NaN.
                        self.first_bad.fetch_min(bi * s + j, Ordering::Relaxed);
                        return false;
                    }
                    let log_sum = sum.ln();
                    for k in 0..n {
                        // (z − max) − ln Σ: the difference first, so that at |z| ≫ 1 the O(1)
                        // log term is not rounded away against max.
                        loga[k] = (zb[k * s + j] - mx) - log_sum;
                        let tk = tb[k * s + j];
                        logb[k] = if tk > T::ZERO { tk.ln() } else { T::NEG_INFINITY };
                    }
                    if top.0 >= one_hot {
                        // t = e_y: the only plan moves every s_i to y, so the value is
                        // Σ_i s_i M[i][y] (sharp and entropic alike; KL(P ‖ s ⊗ t) = 0) and the
                        // potential f_i = M[i][y] (Eq. 2) — what Sinkhorn converges to.
                        let y = top.1;
                        let mut value = T::ZERO;
                        for k in 0..n {
                            value = value + loga[k].exp() * cost[k * n + y];
                        }
                        put(0, j, value);
                        for k in 0..n {
                            put(k + 1, j, loga[k].exp() * (cost[k * n + y] - value));
                        }
                        closed[j - start].set(true);
                        n_closed += 1;
                        return false;
                    }
                    true
                };
                let mut st = problem.solve_stream(range, load, |done: &Solved<T>| {
                    let j = done.problem;
                    if !done.live {
                        if !closed[j - start].get() {
                            for ch in 0..=n {
                                put(ch, j, T::ZERO);
                            }
                        }
                        return;
                    }
                    let value = if sharp {
                        T::from_f64(problem.sharp(done, false).0)
                    } else {
                        let mut v = T::ZERO;
                        for k in 0..n {
                            v = v + done.loga[k].exp() * done.f[k];
                            if done.logb[k] != T::NEG_INFINITY {
                                v = v + done.logb[k].exp() * done.g[k];
                            }
                        }
                        v
                    };
                    put(0, j, value);
                    let mut mean = T::ZERO;
                    for k in 0..n {
                        mean = mean + done.loga[k].exp() * done.f[k];
                    }
                    for k in 0..n {
                        put(k + 1, j, done.loga[k].exp() * (done.f[k] - mean));
                    }
                });
                st.ignored -= n_closed;
                st.closed_form += n_closed;
                st
            })
            .reduce(|| SinkhornStats { converged: true, ..Default::default() }, SinkhornStats::merge);
        (out, stats)
    }
}
