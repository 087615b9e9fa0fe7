//! The Wasserstein loss for soft (non-one-hot) targets: Sinkhorn per pixel, differentiated
//! through its dual potential (Section IV.B–C).

use crate::kernels::sinkhorn_loss::SoftForward;
use crate::ot::{cost_matrix, SinkhornConfig, SinkhornStats};
use crate::{Error, GroundMatrix, Result};
use candle_core::{DType, Tensor};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{check_soft_targets, cost_rows, reduce, Reduction};

/// The loss and the diagnostics of the Sinkhorn solves behind it.
#[derive(Clone, Debug)]
pub struct SoftWasserstein {
    /// The loss: a scalar, or the per-pixel map with [`Reduction::None`].
    pub loss: Tensor,
    /// Iterations, marginal errors and convergence of the per-pixel solves.
    pub stats: SinkhornStats,
}

/// The entropic Wasserstein loss between the softmax `s` of `logits` and soft targets `t`
/// (e.g. smoothed pseudo-labels in self-training), per pixel:
///
/// `W_ε(s, t) = min_P ⟨P, M⟩ + ε KL(P ‖ s ⊗ t)`,  `M[i][j] = D[j][i]`
///
/// solved by [`crate::ot::sinkhorn`]'s log-domain iterations (Cuturi 2013, the paper's \[13\]).
/// With one-hot targets Eq. 2 applies and [`super::wasserstein`] is exact and far cheaper;
/// with soft targets the transport "car → bus" can be cheaper than moving everything to one
/// class (Fig. 3, right), so the plan must be solved for.
///
/// **What is differentiated.** The gradient with respect to `s` is the solver's dual potential
/// `f` (exact for the entropic value `OT_ε`, by the envelope theorem), carried through the
/// softmax as `∂L/∂z_k = s_k (f_k − Σ_j s_j f_j)` — the centred potential — without unrolling
/// the iterations. `sinkhorn.value` chooses the value reported: the sharp cost `⟨P, M⟩`
/// (default; closest to the exact distance) or the entropic `OT_ε`; the gradient is that of
/// `OT_ε` in both cases, which differs from the sharp cost's by O(ε).
///
/// Pixels whose target is all zeros are ignored (no loss, no gradient; the mean is over the
/// others), and their logits may hold anything. Targets must otherwise be histograms: entries
/// `≥ 0` summing to 1 within `1e-4`.
///
/// **One-hot targets.** A pixel whose target is one-hot within `sinkhorn.tolerance` (largest
/// entry `≥ 1 − tolerance`) has a forced plan — all of `s` moves to its class `y` — so it is
/// done in closed form, without iterating: Eq. 2's value `Σ_i s_i D[y][i]` and gradient, what
/// the iterations converge to (at most `2·tolerance·max D` from the soft target's value).
/// Counted in `stats.closed_form` (CPU; the CUDA kernel iterates them).
///
/// # Errors
/// Besides shape, dtype and histogram errors: [`Error::NonFiniteLoss`] naming image and pixel
/// when a live pixel's logits hold a NaN or `+∞` (or are all `−∞`) — found before any
/// iteration is spent on it — and [`Error::InvalidArgument`] when `sinkhorn` is invalid or
/// its ε cannot be iterated with in the logits' dtype.
///
/// # Shapes
/// - `logits`: `[B, N, ...]` (`f32` or `f64`)
/// - `targets`: same shape as `logits`, float
/// - `ground`: `N` classes, already transformed by `f` if wanted
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::{loss::{self, Reduction}, ot::SinkhornConfig, GroundMatrix};
/// let d = GroundMatrix::from_rows(["car", "bus", "road"], [[0.0, 0.1, 0.9], [0.1, 0.0, 0.9], [0.3, 0.3, 0.0]])?;
/// let logits = Tensor::new(&[[0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()]], &Device::Cpu)?;
/// let soft = Tensor::new(&[[0.7f32, 0.3, 0.0]], &Device::Cpu)?; // a smoothed "car" label
/// let out = loss::wasserstein_soft(&logits, &soft, &d, &SinkhornConfig::default(), Reduction::Mean)?;
/// // Exact: 0.1 of road mass must move to car (0.1 × D[car][road] = 0.09).
/// assert!((out.loss.to_scalar::<f32>()? - 0.09).abs() < 1e-3);
/// assert!(out.stats.converged);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn wasserstein_soft(
    logits: &Tensor,
    targets: &Tensor,
    ground: &GroundMatrix,
    sinkhorn: &SinkhornConfig,
    reduction: Reduction,
) -> Result<SoftWasserstein> {
    sinkhorn.validate()?;
    if !matches!(logits.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType { what: "logits", expected: "f32 or f64", got: logits.dtype() });
    }
    if !targets.dtype().is_float() {
        return Err(Error::DType { what: "targets", expected: "a float type", got: targets.dtype() });
    }
    let dims = logits.dims();
    if dims.len() < 2 {
        return Err(Error::shape("logits", "[B, N, ...]", format!("{dims:?}")));
    }
    if targets.dims() != dims {
        return Err(Error::shape("targets vs logits", format!("{dims:?}"), format!("{:?}", targets.dims())));
    }
    let (b, n) = (dims[0], dims[1]);
    if n == 0 {
        return Err(Error::shape("logits class dimension", "N >= 1", "0"));
    }
    if ground.num_classes() != n {
        return Err(Error::ClassCount {
            what: "ground matrix vs logits' class dimension",
            expected: n,
            got: ground.num_classes(),
        });
    }
    let s: usize = dims[2..].iter().product();
    cost_rows(ground, None, logits.dtype())?;
    sinkhorn.check_schedule(ground.max(), logits.dtype() == DType::F32)?;
    let z = logits.reshape((b, n, s))?.contiguous()?;
    let t = targets.to_dtype(logits.dtype())?.reshape((b, n, s))?.contiguous()?;
    let live = check_soft_targets(&t)?;
    let stats = Arc::new(Mutex::new(SinkhornStats::default()));
    let first_bad = Arc::new(AtomicUsize::new(usize::MAX));
    let op = SoftForward {
        cost: cost_matrix(ground).iter().copied().collect(),
        n,
        cfg: *sinkhorn,
        stats: stats.clone(),
        first_bad: first_bad.clone(),
    };
    let out = z.apply_op2(&t, op)?;
    let bad = first_bad.load(Ordering::Relaxed);
    if bad != usize::MAX {
        return Err(Error::NonFiniteLoss { loss: "wasserstein_soft", image: bad / s.max(1), pixel: bad % s.max(1) });
    }
    let map = out.narrow(1, 0, 1)?.squeeze(1)?;
    let stats = *stats.lock().expect("stats lock");
    let mut map_dims = vec![b];
    map_dims.extend_from_slice(&dims[2..]);
    // On the CPU the solver has reported bad logits above; the CUDA kernel marks them NaN,
    // which `reduce` finds.
    let loss = reduce("wasserstein_soft", map, &map_dims, live, reduction, false)?;
    Ok(SoftWasserstein { loss, stats })
}
