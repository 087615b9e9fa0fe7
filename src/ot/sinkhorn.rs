//! Batched entropic optimal transport by log-domain Sinkhorn iterations (Cuturi 2013, the
//! paper's [13]; Section IV.B–C).
//!
//! For each of `P` independent problems — one per pixel — with a prediction histogram `a = s`,
//! a target histogram `b = t` (both over `N` classes) and one cost `M` shared by all of them,
//! the solver computes
//!
//! ```text
//! OT_ε(a, b) = min_{P ≥ 0, P 1 = a, Pᵀ1 = b}  ⟨P, M⟩ + ε KL(P ‖ a ⊗ b)
//!            = max_{f, g}  ⟨a, f⟩ + ⟨b, g⟩ − ε ⟨a ⊗ b, exp((f ⊕ g − M)/ε) − 1⟩
//! ```
//!
//! with the plan `P_ij = a_i b_j exp((f_i + g_j − M_ij)/ε)`. The dual potentials are updated in
//! the log domain (log-sum-exp), so ε down to `1e-3 × max M` neither underflows nor overflows:
//!
//! ```text
//! g_j ← −ε LSE_i( log a_i + (f_i − M_ij)/ε ),   f_i ← −ε LSE_j( log b_j + (g_j − M_ij)/ε )
//! ```
//!
//! Options: ε-scaling (start at a large ε and shrink it geometrically, which reaches small ε
//! in far fewer iterations), a stopping rule on the L1 error of the first marginal
//! `Σ_i |Σ_j P_ij − a_i|` (checked every iteration, per problem) with a cap on iterations, and
//! a plain-kernel variant (`u ← a / Kv`, `v ← b / Kᵀu`, `K = exp(−M/ε)`) for moderate ε, kept
//! as an independent check of the log-domain one.
//!
//! The result carries the value of each problem — the *sharp* transport cost `⟨P, M⟩` or the
//! *entropic* value `OT_ε` (see [`SinkhornValue`]) — the potentials `f` and `g`, the plans when
//! asked, and diagnostics: iterations, the largest marginal error, whether every problem
//! converged. `∇_a OT_ε(a, b) = f` (envelope theorem), which is how
//! [`crate::loss::wasserstein_soft`] differentiates without unrolling the iterations.
//!
//! Costs here are `M[i][j]` = price of moving predicted mass `i` to target bin `j`; use
//! [`sinkhorn_wasserstein`] to start from a ground matrix `D[truth][pred]`.
//!
//! ```
//! use rwt::ot::{sinkhorn, SinkhornConfig};
//! use ndarray::array;
//! let m = array![[0.0, 1.0], [1.0, 0.0]];
//! let s = array![[0.7, 0.3]];
//! let t = array![[0.2, 0.8]];
//! let out = sinkhorn(&s, &t, &m, &SinkhornConfig { epsilon: 1e-3, ..Default::default() })?;
//! assert!((out.values[0] - 0.5).abs() < 1e-3); // exact: move 0.5 across
//! assert!(out.stats.converged);
//! # Ok::<(), rwt::Error>(())
//! ```

use crate::kernels::numeric::Real;
use crate::{Error, GroundMatrix, Result};
use ndarray::{Array2, Array3};
use rayon::prelude::*;

/// Which value a solve reports for each problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SinkhornValue {
    /// `⟨P, M⟩`: the transport cost of the entropic plan. Converges to the exact Wasserstein
    /// distance as ε → 0, much faster than the entropic value.
    #[default]
    Sharp,
    /// `OT_ε = ⟨a, f⟩ + ⟨b, g⟩ = ⟨P, M⟩ + ε KL(P ‖ a ⊗ b)`: the value whose gradient with
    /// respect to `a` is exactly the potential `f`.
    Entropic,
}

/// The kind of Sinkhorn updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SinkhornDomain {
    /// Log-domain potentials with log-sum-exp: stable for any ε.
    #[default]
    Log,
    /// Plain matrix scaling with `K = exp(−M/ε)` in `f64`: fast to state, unstable for small
    /// ε (an error is returned when `K` underflows). Kept as a reference.
    Kernel,
}

/// ε-scaling: solve at `start × max M`, then multiply ε by `factor` after every
/// `iterations_per_stage` iterations until the target ε is reached, where the solver iterates
/// to convergence.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpsilonScaling {
    /// First ε, as a fraction of the largest cost.
    pub start: f64,
    /// Factor in `(0, 1)` between stages.
    pub factor: f64,
    /// Iterations per intermediate stage.
    pub iterations_per_stage: usize,
}

impl Default for EpsilonScaling {
    fn default() -> Self {
        EpsilonScaling { start: 1.0, factor: 0.5, iterations_per_stage: 4 }
    }
}

/// Options of [`sinkhorn`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SinkhornConfig {
    /// Entropic regularisation ε as a fraction of the largest cost (`ε = epsilon × max M`).
    pub epsilon: f64,
    /// Stop a problem when `Σ_i |Σ_j P_ij − a_i| < tolerance`.
    pub tolerance: f64,
    /// Cap on the iterations of a problem, ε-scaling stages included.
    pub max_iterations: usize,
    /// ε-scaling; `None` solves at the target ε from the start.
    pub scaling: Option<EpsilonScaling>,
    /// Log-domain (default) or plain-kernel updates.
    pub domain: SinkhornDomain,
    /// The value reported.
    pub value: SinkhornValue,
    /// Return the transport plans (`P × N × N` numbers).
    pub return_plan: bool,
    /// Over-relaxation ω ∈ [1, 2): each potential moves `ω` times the Sinkhorn step
    /// (Thibault et al., "Overrelaxed Sinkhorn–Knopp", 2017); 1 is plain Sinkhorn. A problem
    /// whose marginal error grows past twice its best, or does not halve within 50 iterations,
    /// is started again with ω = 1, which always converges (its iterations keep counting
    /// towards the cap). Default 1.5.
    pub relaxation: f64,
}

impl Default for SinkhornConfig {
    fn default() -> Self {
        SinkhornConfig {
            epsilon: 1e-2,
            tolerance: 1e-4,
            max_iterations: 2000,
            scaling: Some(EpsilonScaling::default()),
            domain: SinkhornDomain::Log,
            value: SinkhornValue::Sharp,
            return_plan: false,
            relaxation: 1.5,
        }
    }
}

impl SinkhornConfig {
    /// Checks every field; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(Error::invalid(
                "epsilon",
                self.epsilon,
                "must be finite and > 0 (a fraction of the largest cost)",
            ));
        }
        if !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(Error::invalid("tolerance", self.tolerance, "must be finite and > 0"));
        }
        if !(self.relaxation >= 1.0 && self.relaxation < 2.0) {
            return Err(Error::invalid("relaxation", self.relaxation, "over-relaxation must be in [1, 2)"));
        }
        if self.max_iterations == 0 {
            return Err(Error::invalid("max_iterations", 0, "must be at least 1"));
        }
        if let Some(s) = self.scaling {
            if !(s.start.is_finite() && s.start > 0.0) {
                return Err(Error::invalid("scaling.start", s.start, "must be finite and > 0"));
            }
            if !(s.factor > 0.0 && s.factor < 1.0) {
                return Err(Error::invalid("scaling.factor", s.factor, "must be in (0, 1)"));
            }
        }
        Ok(())
    }

    /// Checks that every stage's ε for a cost whose largest entry is `max_cost` can be
    /// iterated with in `f32` (`single`) or `f64`: finite, and large enough that `1/ε` and
    /// `max M / ε` are finite (a tiny `epsilon` times a small cost underflows).
    pub(crate) fn check_schedule(&self, max_cost: f64, single: bool) -> Result<()> {
        let (tiny, huge) =
            if single { (f32::MIN_POSITIVE as f64, f32::MAX as f64) } else { (f64::MIN_POSITIVE, f64::MAX) };
        for e in self.schedule(max_cost) {
            let fits = e.is_finite() && e >= tiny && e <= huge && (1.0 / e) <= huge && max_cost / e <= huge;
            if !fits {
                return Err(Error::invalid(
                    "epsilon",
                    self.epsilon,
                    format!(
                        "gives a stage with eps = {e:e} (absolute, for max M = {max_cost:e}), which {} iterations cannot use",
                        if single { "f32" } else { "f64" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The ε of each stage, absolute, for a cost whose largest entry is `max_cost`; the last
    /// one is the target.
    pub fn schedule(&self, max_cost: f64) -> Vec<f64> {
        let scale = if max_cost > 0.0 { max_cost } else { 1.0 };
        let target = self.epsilon * scale;
        let mut eps = vec![];
        if let Some(s) = self.scaling {
            let mut e = s.start * scale;
            while e > target && eps.len() < 200 {
                eps.push(e);
                e *= s.factor;
            }
        }
        eps.push(target);
        eps
    }
}

/// Diagnostics of a batch of solves.
#[derive(Clone, Copy, Debug, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct SinkhornStats {
    /// Problems solved (ignored ones excluded).
    pub problems: usize,
    /// Problems skipped because their target was all zeros (ignored pixels).
    pub ignored: usize,
    /// Largest number of iterations a problem needed (its convergence, or the cap).
    pub max_iterations: usize,
    /// Mean number of iterations per problem.
    pub mean_iterations: f64,
    /// Largest L1 error of the first marginal at the end.
    pub max_marginal_error: f64,
    /// Problems that hit the iteration cap before the tolerance.
    pub not_converged: usize,
    /// Problems not iterated on because their target was one-hot within the tolerance: their
    /// transport plan is forced, so [`crate::loss::wasserstein_soft`] computes them in closed
    /// form (Eq. 2; CPU only). Not counted in `problems`.
    #[serde(default)]
    pub closed_form: usize,
    /// `not_converged == 0`.
    pub converged: bool,
}

impl SinkhornStats {
    /// Combines the statistics of two batches.
    pub fn merge(self, o: SinkhornStats) -> SinkhornStats {
        let problems = self.problems + o.problems;
        let mean = if problems == 0 {
            0.0
        } else {
            (self.mean_iterations * self.problems as f64 + o.mean_iterations * o.problems as f64) / problems as f64
        };
        SinkhornStats {
            problems,
            ignored: self.ignored + o.ignored,
            max_iterations: self.max_iterations.max(o.max_iterations),
            mean_iterations: mean,
            max_marginal_error: self.max_marginal_error.max(o.max_marginal_error),
            not_converged: self.not_converged + o.not_converged,
            closed_form: self.closed_form + o.closed_form,
            converged: self.not_converged + o.not_converged == 0,
        }
    }
}

/// The result of [`sinkhorn`].
#[derive(Clone, Debug)]
pub struct SinkhornOutput {
    /// The value of each problem ([`SinkhornConfig::value`]); 0 for ignored ones.
    pub values: Vec<f64>,
    /// Potentials `f` (of the prediction `a`), `P × N`; `∇_a OT_ε = f`. Finite at every bin:
    /// at a zero-mass bin `i` it is the c-transform `f_i = −ε ln Σ_j b_j exp((g_j − M_ij)/ε)`,
    /// the value the Sinkhorn update gives it, in both domains.
    pub f: Array2<f64>,
    /// Potentials `g` (of the target `b`), `P × N`; at a zero-mass bin likewise
    /// `g_j = −ε ln Σ_i a_i exp((f_i − M_ij)/ε)`.
    pub g: Array2<f64>,
    /// Plans `P × N × N` (`[problem][pred][target]`) when asked.
    pub plans: Option<Array3<f64>>,
    /// Diagnostics.
    pub stats: SinkhornStats,
}

/// Entropic OT for each row of `s` (predictions, `P × N`) against the same row of `t`
/// (targets), with cost `M` (`N × N`, `M[i][j]` = moving predicted mass `i` to target bin `j`).
///
/// Rows must be histograms: non-negative, summing to 1 within `1e-4`; a target row of zeros
/// marks an ignored problem (value 0, zero potentials).
pub fn sinkhorn(s: &Array2<f64>, t: &Array2<f64>, cost: &Array2<f64>, cfg: &SinkhornConfig) -> Result<SinkhornOutput> {
    cfg.validate()?;
    let (p, n) = s.dim();
    if t.dim() != (p, n) {
        return Err(Error::shape("targets vs predictions", format!("{:?}", s.dim()), format!("{:?}", t.dim())));
    }
    if cost.dim() != (n, n) {
        return Err(Error::shape("cost matrix", format!("[{n}, {n}]"), format!("{:?}", cost.dim())));
    }
    for ((i, j), &c) in cost.indexed_iter() {
        if !c.is_finite() {
            return Err(Error::NonFinite { what: "cost matrix M", row: i, col: j, value: c });
        }
    }
    if n == 0 {
        return Err(Error::shape("histograms", "N >= 1 classes", "0"));
    }
    cfg.check_schedule(cost.iter().copied().fold(0.0, f64::max), false)?;
    let mut ignored = Vec::with_capacity(p);
    for r in 0..p {
        check_row("prediction", r, &s.row(r).to_vec(), false)?;
        ignored.push(check_row("target", r, &t.row(r).to_vec(), true)?);
    }
    match cfg.domain {
        SinkhornDomain::Log => solve_log(s, t, cost, cfg, &ignored),
        SinkhornDomain::Kernel => solve_kernel(s, t, cost, cfg, &ignored),
    }
}

/// [`sinkhorn`] with the cost built from a ground matrix `D[truth][pred]` (already transformed
/// by `f` if wanted): `M = cost_matrix(D)`.
pub fn sinkhorn_wasserstein(
    s: &Array2<f64>,
    t: &Array2<f64>,
    ground: &GroundMatrix,
    cfg: &SinkhornConfig,
) -> Result<SinkhornOutput> {
    if ground.num_classes() != s.ncols() {
        return Err(Error::ClassCount {
            what: "ground matrix vs histograms",
            expected: s.ncols(),
            got: ground.num_classes(),
        });
    }
    sinkhorn(s, t, &super::cost_matrix(ground), cfg)
}

/// Tolerance on the total mass of a histogram.
pub(crate) const MASS_TOLERANCE: f64 = 1e-4;

/// Checks one histogram; returns `true` for an all-zero target (an ignored problem).
pub(crate) fn check_row(what: &str, row: usize, h: &[f64], zero_ok: bool) -> Result<bool> {
    let mut sum = 0.0;
    for (k, &v) in h.iter().enumerate() {
        if !v.is_finite() || v < 0.0 {
            return Err(Error::NotAHistogram {
                what: format!("{what} {row}"),
                reason: format!("entry {k} is {v}; masses must be finite and >= 0"),
            });
        }
        sum += v;
    }
    if zero_ok && sum == 0.0 {
        return Ok(true);
    }
    if (sum - 1.0).abs() > MASS_TOLERANCE {
        return Err(Error::NotAHistogram {
            what: format!("{what} {row}"),
            reason: format!("sums to {sum}, not 1 (tolerance {MASS_TOLERANCE})"),
        });
    }
    Ok(false)
}

fn solve_log(
    s: &Array2<f64>,
    t: &Array2<f64>,
    cost: &Array2<f64>,
    cfg: &SinkhornConfig,
    ignored: &[bool],
) -> Result<SinkhornOutput> {
    let (p, n) = s.dim();
    let problem = Problem::<f64>::new(cost.as_standard_layout().as_slice().expect("standard layout"), n, cfg);
    let chunk = 64;
    let results: Vec<(Vec<BlockOut>, SinkhornStats)> = (0..p.div_ceil(chunk))
        .into_par_iter()
        .map(|c| {
            let range = c * chunk..((c + 1) * chunk).min(p);
            let mut outs = Vec::with_capacity(range.len());
            let load = |r: usize, loga: &mut [f64], logb: &mut [f64]| {
                if ignored[r] {
                    return false;
                }
                for k in 0..n {
                    loga[k] = s[[r, k]].ln();
                    logb[k] = t[[r, k]].ln();
                }
                true
            };
            let stats = problem.solve_stream(range, load, |done: &Solved<f64>| {
                let r = done.problem;
                if !done.live {
                    outs.push(BlockOut::ignored(r, n));
                    return;
                }
                let (sharp, plan) = problem.sharp(done, cfg.return_plan);
                let entropic: f64 = (0..n).map(|i| s[[r, i]] * done.f[i] + t[[r, i]] * done.g[i]).sum();
                outs.push(BlockOut {
                    row: r,
                    value: if cfg.value == SinkhornValue::Sharp { sharp } else { entropic },
                    f: done.f.clone(),
                    g: done.g.clone(),
                    plan,
                });
            });
            (outs, stats)
        })
        .collect();
    Ok(assemble(p, n, results, cfg.return_plan))
}

/// One problem's results, before assembly.
struct BlockOut {
    row: usize,
    value: f64,
    f: Vec<f64>,
    g: Vec<f64>,
    plan: Option<Vec<f64>>,
}

impl BlockOut {
    fn ignored(row: usize, n: usize) -> Self {
        BlockOut { row, value: 0.0, f: vec![0.0; n], g: vec![0.0; n], plan: None }
    }
}

fn assemble(p: usize, n: usize, results: Vec<(Vec<BlockOut>, SinkhornStats)>, with_plans: bool) -> SinkhornOutput {
    let mut values = vec![0.0; p];
    let mut f = Array2::zeros((p, n));
    let mut g = Array2::zeros((p, n));
    let mut plans = with_plans.then(|| Array3::zeros((p, n, n)));
    let mut stats = SinkhornStats { converged: true, ..Default::default() };
    for (outs, st) in results {
        stats = stats.merge(st);
        for o in outs {
            values[o.row] = o.value;
            for k in 0..n {
                f[[o.row, k]] = o.f[k];
                g[[o.row, k]] = o.g[k];
            }
            if let (Some(all), Some(pl)) = (plans.as_mut(), o.plan) {
                for (k, v) in pl.into_iter().enumerate() {
                    all[[o.row, k / n, k % n]] = v;
                }
            }
        }
    }
    SinkhornOutput { values, f, g, plans, stats }
}

/// The plain-kernel (Sinkhorn–Knopp) variant in `f64`, problem by problem.
fn solve_kernel(
    s: &Array2<f64>,
    t: &Array2<f64>,
    cost: &Array2<f64>,
    cfg: &SinkhornConfig,
    ignored: &[bool],
) -> Result<SinkhornOutput> {
    let (p, n) = s.dim();
    let max_cost = cost.iter().copied().fold(0.0, f64::max);
    let schedule = cfg.schedule(max_cost);
    let eps = *schedule.last().expect("non-empty schedule");
    let k = cost.mapv(|c| (-c / eps).exp());
    if k.iter().any(|&v| v == 0.0) {
        return Err(Error::invalid(
            "epsilon",
            cfg.epsilon,
            format!("too small for the plain-kernel variant: exp(-M/eps) underflows (max M / eps = {:.0}); use the log domain", max_cost / eps),
        ));
    }
    let results: Vec<(Vec<BlockOut>, SinkhornStats)> = (0..p)
        .into_par_iter()
        .map(|r| {
            if ignored[r] {
                return (
                    vec![BlockOut::ignored(r, n)],
                    SinkhornStats { ignored: 1, converged: true, ..Default::default() },
                );
            }
            let a: Vec<f64> = s.row(r).to_vec();
            let b: Vec<f64> = t.row(r).to_vec();
            let mut u = vec![1.0; n];
            let mut v = vec![1.0; n];
            // The last Kᵀu and Kv, from which the potentials are read (see below).
            let mut kt_u = vec![1.0; n];
            let mut kv = vec![1.0; n];
            let (mut iters, mut err) = (0, f64::INFINITY);
            while iters < cfg.max_iterations {
                for j in 0..n {
                    kt_u[j] = (0..n).map(|i| k[[i, j]] * u[i]).sum();
                    v[j] = b[j] / kt_u[j];
                }
                let mut e = 0.0;
                for i in 0..n {
                    kv[i] = (0..n).map(|j| k[[i, j]] * v[j]).sum();
                    e += (u[i] * kv[i] - a[i]).abs();
                    u[i] = a[i] / kv[i];
                }
                iters += 1;
                err = e;
                if err < cfg.tolerance {
                    break;
                }
            }
            let plan: Vec<f64> = (0..n * n).map(|q| u[q / n] * k[[q / n, q % n]] * v[q % n]).collect();
            let sharp: f64 = plan.iter().enumerate().map(|(q, w)| w * cost[[q / n, q % n]]).sum();
            // Potentials in the a ⊗ b parametrisation, u_i = a_i exp(f_i/ε) and
            // v_j = b_j exp(g_j/ε): since u = a / Kv and v = b / Kᵀu, f = −ε ln Kv and
            // g = −ε ln Kᵀu. That form is also defined at zero-mass bins (where ε ln(u_i / a_i)
            // is 0/0), and there it is the value the log-domain update gives them (its softmin
            // is −ε ln Kᵀu too), so the two domains agree bin for bin.
            let f: Vec<f64> = kv.iter().map(|x| -eps * x.ln()).collect();
            let g: Vec<f64> = kt_u.iter().map(|x| -eps * x.ln()).collect();
            let entropic: f64 = (0..n).map(|i| a[i] * f[i] + b[i] * g[i]).sum();
            let out = BlockOut {
                row: r,
                value: if cfg.value == SinkhornValue::Sharp { sharp } else { entropic },
                f,
                g,
                plan: cfg.return_plan.then_some(plan),
            };
            let conv = err < cfg.tolerance;
            let st = SinkhornStats {
                problems: 1,
                ignored: 0,
                max_iterations: iters,
                mean_iterations: iters as f64,
                max_marginal_error: err,
                not_converged: usize::from(!conv),
                closed_form: 0,
                converged: conv,
            };
            (vec![out], st)
        })
        .collect();
    Ok(assemble(p, n, results, cfg.return_plan))
}

/// Problems solved together, one per SIMD lane.
pub(crate) const LANES: usize = 8;
/// One value per lane.
pub(crate) type Lanes<T> = [T; LANES];

/// What every problem of a batch shares: the cost, its transpose and the ε schedule.
pub(crate) struct Problem<T> {
    n: usize,
    /// `M[i][j]`, row-major: row `i` is what the `f` update reads.
    m: Vec<T>,
    /// `Mᵀ`: row `j` is what the `g` update reads.
    mt: Vec<T>,
    schedule: Vec<T>,
    stage_iterations: usize,
    tolerance: T,
    max_iterations: usize,
    omega: T,
}

/// A finished problem, handed to the caller of [`Problem::solve_stream`].
pub(crate) struct Solved<T> {
    /// Index of the problem.
    pub(crate) problem: usize,
    /// `false` for an ignored problem (its other fields are meaningless).
    pub(crate) live: bool,
    pub(crate) loga: Vec<T>,
    pub(crate) logb: Vec<T>,
    pub(crate) f: Vec<T>,
    pub(crate) g: Vec<T>,
}

/// The state of one lane of a streaming block.
#[derive(Clone, Copy)]
struct Lane {
    problem: Option<usize>,
    stage: usize,
    in_stage: usize,
    iterations: usize,
    best_error: f64,
    /// Iterations into the current window of the over-relaxation check.
    window: usize,
    /// Marginal error at the start of that window.
    window_error: f64,
}

/// Length of the window over which an over-relaxed problem must halve its error.
const RELAXATION_WINDOW: usize = 50;

impl<T: Real> Problem<T> {
    /// The shared part of a batch: `cost` is `M`, row-major `n × n`.
    pub(crate) fn new(cost: &[f64], n: usize, cfg: &SinkhornConfig) -> Self {
        let max_cost = cost.iter().copied().fold(0.0, f64::max);
        Problem {
            n,
            m: cost.iter().map(|&c| T::from_f64(c)).collect(),
            mt: (0..n * n).map(|k| T::from_f64(cost[(k % n) * n + k / n])).collect(),
            schedule: cfg.schedule(max_cost).into_iter().map(T::from_f64).collect(),
            stage_iterations: cfg.scaling.map_or(0, |s| s.iterations_per_stage.max(1)),
            tolerance: T::from_f64(cfg.tolerance),
            max_iterations: cfg.max_iterations,
            omega: T::from_f64(cfg.relaxation),
        }
    }

    /// The target ε (absolute).
    pub(crate) fn epsilon(&self) -> T {
        *self.schedule.last().expect("non-empty schedule")
    }

    /// Solves the problems of `range`, `LANES` at a time: each lane runs its own ε schedule and
    /// stopping rule, and as soon as one finishes it is handed to `emit` and the lane takes the
    /// next problem — so a slow problem never holds the others back. `load` writes a problem's
    /// log-masses (`−∞` for zero mass) and returns `false` for an ignored one (emitted at once
    /// with `live = false`).
    pub(crate) fn solve_stream(
        &self,
        range: std::ops::Range<usize>,
        load: impl FnMut(usize, &mut [T], &mut [T]) -> bool,
        emit: impl FnMut(&Solved<T>),
    ) -> SinkhornStats {
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::numeric::has_avx2_fma() {
            // SAFETY: AVX2 and FMA were detected at run time.
            return unsafe { self.solve_stream_avx2(range, load, emit) };
        }
        self.solve_stream_impl(range, load, emit)
    }

    /// [`Problem::solve_stream`] compiled for AVX2 + FMA (8 lanes in one register).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn solve_stream_avx2(
        &self,
        range: std::ops::Range<usize>,
        load: impl FnMut(usize, &mut [T], &mut [T]) -> bool,
        emit: impl FnMut(&Solved<T>),
    ) -> SinkhornStats {
        self.solve_stream_impl(range, load, emit)
    }

    #[inline(always)]
    fn solve_stream_impl(
        &self,
        range: std::ops::Range<usize>,
        mut load: impl FnMut(usize, &mut [T], &mut [T]) -> bool,
        mut emit: impl FnMut(&Solved<T>),
    ) -> SinkhornStats {
        let n = self.n;
        let last = self.schedule.len() - 1;
        let uniform = T::from_f64(-(n as f64).ln());
        let mut loga = vec![[uniform; LANES]; n];
        let mut logb = vec![[uniform; LANES]; n];
        let mut f = vec![[T::ZERO; LANES]; n];
        let mut g = vec![[T::ZERO; LANES]; n];
        let mut fnew = vec![[T::ZERO; LANES]; n];
        let mut gnew = vec![[T::ZERO; LANES]; n];
        let mut eps = [self.schedule[0]; LANES];
        let mut inv = [T::ONE / self.schedule[0]; LANES];
        let mut omega = [self.omega; LANES];
        let idle = Lane {
            problem: None,
            stage: 0,
            in_stage: 0,
            iterations: 0,
            best_error: f64::INFINITY,
            window: 0,
            window_error: f64::INFINITY,
        };
        let mut lanes = [idle; LANES];
        let mut out = Solved {
            problem: 0,
            live: false,
            loga: vec![T::ZERO; n],
            logb: vec![T::ZERO; n],
            f: vec![T::ZERO; n],
            g: vec![T::ZERO; n],
        };
        let mut next = range.start;
        let mut stats = SinkhornStats { converged: true, ..Default::default() };
        let mut total_iterations = 0usize;
        let (mut a, mut b) = (vec![T::ZERO; n], vec![T::ZERO; n]);
        loop {
            // Fill idle lanes with the next live problems.
            for l in 0..LANES {
                while lanes[l].problem.is_none() && next < range.end {
                    let p = next;
                    next += 1;
                    if load(p, &mut a, &mut b) {
                        for i in 0..n {
                            loga[i][l] = a[i];
                            logb[i][l] = b[i];
                            f[i][l] = T::ZERO;
                            g[i][l] = T::ZERO;
                        }
                        lanes[l] = Lane { problem: Some(p), ..idle };
                        eps[l] = self.schedule[0];
                        inv[l] = T::ONE / eps[l];
                        omega[l] = self.omega;
                    } else {
                        out.problem = p;
                        out.live = false;
                        stats.ignored += 1;
                        emit(&out);
                    }
                }
            }
            if lanes.iter().all(|l| l.problem.is_none()) {
                break;
            }
            softmin(&mut gnew, &loga, &f, &self.mt, n, &eps, &inv);
            relax(&mut g, &gnew, &omega);
            softmin(&mut fnew, &logb, &g, &self.m, n, &eps, &inv);
            // Row sums of the plan (f, g): a_i exp((f_i − f_new_i)/ε); their L1 error.
            let mut err = [T::ZERO; LANES];
            for i in 0..n {
                for l in 0..LANES {
                    let r = ((f[i][l] - fnew[i][l]) * inv[l]).exp();
                    err[l] = err[l] + loga[i][l].exp() * (r - T::ONE).abs();
                }
            }
            relax(&mut f, &fnew, &omega);
            for l in 0..LANES {
                let Some(p) = lanes[l].problem else { continue };
                let lane = &mut lanes[l];
                lane.iterations += 1;
                lane.in_stage += 1;
                let e = err[l].to_f64();
                let final_stage = lane.stage == last;
                let converged = final_stage && err[l] < self.tolerance;
                let mut restart = false;
                if final_stage && omega[l] > T::ONE {
                    // Over-relaxation is not guaranteed to converge: when a problem's error grows,
                    // or fails to halve over a window of iterations (the sublinear crawl it can
                    // fall into), start that problem again with plain Sinkhorn, which always
                    // converges.
                    lane.best_error = lane.best_error.min(e);
                    lane.window += 1;
                    if lane.window == 1 {
                        lane.window_error = e;
                    }
                    let crawling = lane.window >= RELAXATION_WINDOW && e > 0.5 * lane.window_error;
                    restart = !converged && (e > 2.0 * lane.best_error || !e.is_finite() || crawling);
                    if lane.window >= RELAXATION_WINDOW {
                        lane.window = 0;
                    }
                }
                if restart {
                    omega[l] = T::ONE;
                    *lane = Lane { problem: Some(p), iterations: lane.iterations, ..idle };
                    eps[l] = self.schedule[0];
                    inv[l] = T::ONE / eps[l];
                    for i in 0..n {
                        f[i][l] = T::ZERO;
                        g[i][l] = T::ZERO;
                    }
                    continue;
                }
                if converged || lane.iterations >= self.max_iterations {
                    for i in 0..n {
                        out.loga[i] = loga[i][l];
                        out.logb[i] = logb[i][l];
                        out.f[i] = f[i][l];
                        out.g[i] = g[i][l];
                    }
                    out.problem = p;
                    out.live = true;
                    emit(&out);
                    stats.problems += 1;
                    total_iterations += lane.iterations;
                    stats.max_iterations = stats.max_iterations.max(lane.iterations);
                    stats.max_marginal_error =
                        stats.max_marginal_error.max(if e.is_finite() { e } else { f64::INFINITY });
                    if !converged {
                        stats.not_converged += 1;
                        stats.converged = false;
                    }
                    *lane = idle;
                    for i in 0..n {
                        loga[i][l] = uniform;
                        logb[i][l] = uniform;
                        f[i][l] = T::ZERO;
                        g[i][l] = T::ZERO;
                    }
                } else if !final_stage && lane.in_stage >= self.stage_iterations {
                    lane.stage += 1;
                    lane.in_stage = 0;
                    eps[l] = self.schedule[lane.stage];
                    inv[l] = T::ONE / eps[l];
                }
            }
        }
        stats.mean_iterations = if stats.problems > 0 { total_iterations as f64 / stats.problems as f64 } else { 0.0 };
        stats
    }

    /// The sharp cost `⟨P, M⟩` of a solved problem, and its plan `[pred][target]` when asked.
    pub(crate) fn sharp(&self, s: &Solved<T>, with_plan: bool) -> (f64, Option<Vec<f64>>) {
        let n = self.n;
        let inv = T::ONE / self.epsilon();
        let mut total = 0.0;
        let mut plan = with_plan.then(|| vec![0.0; n * n]);
        for i in 0..n {
            for j in 0..n {
                let x = s.loga[i] + s.logb[j] + (s.f[i] + s.g[j] - self.m[i * n + j]) * inv;
                let pij = if x == T::NEG_INFINITY { 0.0 } else { x.exp().to_f64() };
                total += pij * self.m[i * n + j].to_f64();
                if let Some(p) = plan.as_mut() {
                    p[i * n + j] = pij;
                }
            }
        }
        (total, plan)
    }
}

/// `x ← x + ω (new − x)` lane by lane (plain assignment when ω = 1).
#[inline(always)]
fn relax<T: Real>(x: &mut [Lanes<T>], new: &[Lanes<T>], omega: &Lanes<T>) {
    for (x, new) in x.iter_mut().zip(new) {
        for l in 0..LANES {
            x[l] = x[l] + omega[l] * (new[l] - x[l]);
        }
    }
}

/// `out_i = −ε LSE_j( logw_j + (pot_j − cost_ij)/ε )` for every lane, each with its own ε:
/// the log-domain Sinkhorn update (`cost` row `i` holds `cost_ij` for all `j`). Two passes per
/// row — the maximum, then the sum of exponentials — with every inner loop running across
/// lanes.
#[inline(always)]
fn softmin<T: Real>(
    out: &mut [Lanes<T>],
    logw: &[Lanes<T>],
    pot: &[Lanes<T>],
    cost: &[T],
    n: usize,
    eps: &Lanes<T>,
    inv: &Lanes<T>,
) {
    for (i, o) in out.iter_mut().enumerate().take(n) {
        let row = &cost[i * n..(i + 1) * n];
        let mut mx = [T::NEG_INFINITY; LANES];
        for j in 0..n {
            let c = row[j];
            for l in 0..LANES {
                let x = logw[j][l] + (pot[j][l] - c) * inv[l];
                mx[l] = mx[l].max(x);
            }
        }
        let mut sum = [T::ZERO; LANES];
        for j in 0..n {
            let c = row[j];
            for l in 0..LANES {
                let x = logw[j][l] + (pot[j][l] - c) * inv[l];
                sum[l] = sum[l] + (x - mx[l]).exp();
            }
        }
        for l in 0..LANES {
            o[l] = T::ZERO - eps[l] * (mx[l] + sum[l].ln());
        }
    }
}
