//! ENet's bottleneck as one op on the CPU: `PReLU(main + m ⊙ branch(x))`, where the branch
//! is a chain of *units* — convolution (or 2×2 stride-2 transposed convolution) → batch-norm →
//! PReLU (the last unit without activation) — and `m` the spatial-dropout scales.
//!
//! Composed from layer ops, a bottleneck is ten graph nodes, each allocating its output and,
//! in the backward pass, a zeroed gradient that candle then adds to. Here the whole bottleneck
//! is one node. Each convolution runs image by image on the rayon pool (one image per task,
//! single-threaded GEMMs) and, inside an image, a *block* of output rows at a time: the
//! block's im2col columns and its output tile take at most `BLOCK` (2¹⁷) floats, so the
//! im2col, the GEMM and what follows meet in the core's L2 cache instead of in memory. In
//! training the forward pass writes each unit's pre-normalisation output `z` (kept for the
//! backward pass), takes the batch moments, and applies batch-norm and PReLU (or the exit) in
//! one pass; at evaluation each block goes from the GEMM through batch-norm and activation
//! (or the exit) straight into the output. The backward pass runs, unit by unit from the last
//! and block by block inside each image,
//!
//! ```text
//! g_a = g·(a > 0 ? 1 : α),  ∂α = Σ_{a ≤ 0} g·a                         (PReLU, a = γ·ẑ + β)
//! ∂β = Σ g_a,  ∂γ = Σ g_a·ẑ,  ∂z = γσ⁻¹·(g_a − ∂β/M − ẑ·∂γ/M)           (batch-norm, training)
//! ∂W = Σ_b ∂z_b·im2col(h_b)ᵀ,  ∂h_b = col2im(Wᵀ·∂z_b)                  (convolution)
//! ```
//!
//! with `ẑ = (z − μ)·σ⁻¹`, `M = B·H·W` and `h` the unit's input, the second and third lines
//! fused in one task per image (∂W accumulated over the blocks). At evaluation the
//! batch-norm uses the running statistics (`∂z = γσ⁻¹·g_a`) and nothing is kept: a backward
//! pass then recomputes the forward one.
//! The same computation composed from candle's ops is the reference of the tests.

use super::conv::{for_images, mul_add, mul_into, Geometry, View};
use super::planes;
use crate::kernels::numeric::{as_out, f32_part, filled, written, zeroed, Out};
use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

const EPS: f64 = 1e-5;

/// One unit of a branch: its convolution's geometry and whether a PReLU follows the
/// batch-norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unit {
    /// Input and output channels.
    pub c_in: usize,
    pub c_out: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    /// Zero padding (rows, columns), stride and dilation of a convolution; a transposed
    /// convolution has stride `kh` and no padding.
    pub ph: usize,
    pub pw: usize,
    pub stride: usize,
    pub dilation: usize,
    /// A transposed convolution (weight `[c_in, c_out, kh, kw]`) instead of a convolution
    /// (weight `[c_out, c_in, kh, kw]`).
    pub transposed: bool,
    /// A PReLU after the batch-norm.
    pub prelu: bool,
}

impl Unit {
    /// Number of convolution weights.
    fn weights(&self) -> usize {
        self.c_in * self.c_out * self.kh * self.kw
    }

    /// Length of the unit's slice of the packed parameters: `W`, `γ`, `β` and `α` if any.
    pub fn params(&self) -> usize {
        self.weights() + self.c_out * if self.prelu { 3 } else { 2 }
    }

    /// The im2col geometry for an input of `h × w`, and the output size. A transposed
    /// convolution is the adjoint of the convolution whose image is its output.
    fn geometry(&self, h: usize, w: usize) -> (Geometry, usize, usize) {
        if self.transposed {
            let (oh, ow) = (h * self.stride, w * self.stride);
            let g = Geometry {
                c: self.c_out,
                h: oh,
                w: ow,
                kh: self.kh,
                kw: self.kw,
                ph: 0,
                pw: 0,
                stride: self.stride,
                dilation: 1,
            };
            (g, oh, ow)
        } else {
            let g = Geometry {
                c: self.c_in,
                h,
                w,
                kh: self.kh,
                kw: self.kw,
                ph: self.ph,
                pw: self.pw,
                stride: self.stride,
                dilation: self.dilation,
            };
            let (oh, ow) = g.out();
            (g, oh, ow)
        }
    }
}

/// A unit's batch-norm statistics (batch or running) and its affine map `a·z + o`.
#[derive(Clone, Debug)]
struct Norm {
    mean: Vec<f64>,
    /// `1 / sqrt(var + ε)`.
    inv: Vec<f64>,
    /// `γσ⁻¹` and `β − μγσ⁻¹` per channel.
    a: Vec<f32>,
    o: Vec<f32>,
}

impl Norm {
    fn new(mean: Vec<f64>, var: Vec<f64>, gamma: &[f32], beta: &[f32]) -> Self {
        let inv: Vec<f64> = var.iter().map(|v| 1.0 / (v + EPS).sqrt()).collect();
        let a = gamma.iter().zip(&inv).map(|(&g, &i)| (g as f64 * i) as f32).collect();
        let o = (0..gamma.len()).map(|c| (beta[c] as f64 - mean[c] * gamma[c] as f64 * inv[c]) as f32).collect();
        Norm { mean, inv, a, o }
    }
}

/// What the forward pass keeps for the backward pass.
#[derive(Debug)]
struct Saved {
    /// Each unit's convolution output `z` (before batch-norm).
    z: Vec<Vec<f32>>,
    /// Each unit's input after the first (the previous unit's activation).
    h: Vec<Vec<f32>>,
    norms: Vec<Norm>,
}

/// The state an op shares with its caller: the batch statistics (for the running ones) and
/// what the backward pass needs.
#[derive(Debug, Default)]
pub(crate) struct State {
    saved: Option<Saved>,
    /// Each unit's batch `(mean, biased variance)` after a training forward pass.
    pub batch_moments: Vec<(Vec<f64>, Vec<f64>)>,
}

/// The op: inputs `x [B, C_in, H, W]`, `main [B, C_out, H', W']` and the packed parameters
/// (for each unit `W, γ, β[, α]`, then the exit PReLU's `α`); output `main`'s shape.
pub(crate) struct Bottleneck {
    pub units: Vec<Unit>,
    /// Each unit's running `(mean, variance)` at evaluation; `None` in training.
    pub running: Option<Vec<(Vec<f32>, Vec<f32>)>>,
    /// Spatial-dropout scales, one per `(image, output channel)`.
    pub mask: Option<Vec<f32>>,
    pub state: Arc<Mutex<State>>,
}

/// Each unit's input `(h, w)` for an input of `h × w`, then the branch's output size.
pub(crate) fn sizes(units: &[Unit], mut h: usize, mut w: usize) -> Vec<(usize, usize)> {
    let mut sizes = Vec::with_capacity(units.len() + 1);
    for u in units {
        sizes.push((h, w));
        let (_, oh, ow) = u.geometry(h, w);
        (h, w) = (oh, ow);
    }
    sizes.push((h, w));
    sizes
}

/// Packed-parameter offsets of each unit, and of the exit PReLU's slopes.
fn offsets(units: &[Unit]) -> (Vec<usize>, usize) {
    let mut at = Vec::with_capacity(units.len());
    let mut o = 0;
    for u in units {
        at.push(o);
        o += u.params();
    }
    (at, o)
}

/// A unit's `(W, γ, β, α)`.
type UnitParams<'a> = (&'a [f32], &'a [f32], &'a [f32], Option<&'a [f32]>);

/// A unit's `(W, γ, β, α)` in the packed parameters starting at `at`.
fn unit_params<'a>(p: &'a [f32], u: &Unit, at: usize) -> UnitParams<'a> {
    let (w, c) = (u.weights(), u.c_out);
    let r = &p[at..at + u.params()];
    (&r[..w], &r[w..w + c], &r[w + c..w + 2 * c], u.prelu.then(|| &r[w + 2 * c..w + 3 * c]))
}

thread_local! {
    /// Per-thread buffers of the per-image tasks (columns, and a gradient tile).
    static SCRATCH: RefCell<[Vec<f32>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `f` with two per-thread buffers of at least `n0` and `n1` floats.
/// (Fresh ones if this thread's are in use: a task that waits on the pool may run another.)
fn with_scratch<R>(n0: usize, n1: usize, f: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|s| {
        let Ok(mut s) = s.try_borrow_mut() else {
            return f(&mut vec![0.0; n0], &mut vec![0.0; n1]);
        };
        let [a, b] = &mut *s;
        if a.len() < n0 {
            a.resize(n0, 0.0);
        }
        if b.len() < n1 {
            b.resize(n1, 0.0);
        }
        f(&mut a[..n0], &mut b[..n1])
    })
}

/// Floats that a block's columns and output tile keep within, so that both stay in the
/// core's L2 cache between the im2col, the GEMM and the normalisation.
#[cfg(not(test))]
const BLOCK: usize = 1 << 17;
/// The unit tests' tiny images split into several blocks (of uneven size for some units).
#[cfg(test)]
const BLOCK: usize = 90;

/// Column-buffer floats per output row `ow` wide: a 1×1 convolution reads the image itself,
/// a transposed one's `c_out·s²` column rows per input row give `s` output rows.
fn cols_per_row(u: &Unit, g: &Geometry, ow: usize) -> usize {
    match (u.transposed, g.is_identity()) {
        (true, _) => u.c_out * ow,
        (false, true) => 0,
        (false, false) => g.rows() * ow,
    }
}

/// Output rows per block of unit `u` (output `oh × ow`): at least one, whole strides for a
/// transposed convolution.
fn block_rows(u: &Unit, g: &Geometry, oh: usize, ow: usize) -> usize {
    let rows = (BLOCK / (cols_per_row(u, g, ow) + u.c_out * ow).max(1)).clamp(1, oh.max(1));
    if u.transposed {
        (rows / u.stride).max(1) * u.stride
    } else {
        rows
    }
}

/// The blocks of `rb` output rows (the last may be shorter) covering `oh` rows.
fn row_blocks(oh: usize, rb: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..oh).step_by(rb).map(move |y0| y0..(y0 + rb).min(oh))
}

/// Output rows `rows` of unit `u`'s convolution of one image `hn` (`wi` columns, `pi`
/// positions per channel): channel `c` of the block goes to `dst[c·ld..c·ld + rows.len()·ow]`,
/// every element of those runs written. `cols` holds at least [`cols_per_row`] floats per
/// row of the block.
///
/// A transposed convolution's kernel equals its stride (checked by [`Bottleneck::shapes`]),
/// so each input row gives exactly `stride` output rows, written once.
#[allow(clippy::too_many_arguments)]
fn conv_rows(
    u: &Unit,
    g: &Geometry,
    (pi, wi): (usize, usize),
    w: &[f32],
    hn: &[f32],
    rows: std::ops::Range<usize>,
    dst: &mut [Out],
    ld: usize,
    cols: &mut [f32],
    par: bool,
) {
    let ow = if u.transposed { wi * u.stride } else { g.out().1 };
    let n = rows.len() * ow;
    if u.transposed {
        let s = u.stride;
        let (iy, ni) = (rows.start / s, rows.len() / s * wi);
        let cols = &mut cols[..g.rows() * ni];
        let (wt, hb) = (View::dense(w, u.c_in, g.rows(), true), View::rows(&hn[iy * wi..], u.c_in, ni, pi));
        // SAFETY: the product writes floats only.
        mul_into(unsafe { as_out(cols) }, ni, wt, hb, par);
        // Output (c, y·s + i, x·s + j) is column row (c, i, j) at input (y, x).
        Geometry { h: rows.len(), ..*g }.col2im_tiles(cols, dst, ld);
    } else if g.is_identity() {
        mul_into(
            dst,
            ld,
            View::dense(w, u.c_out, u.c_in, false),
            View::rows(&hn[rows.start * ow..], u.c_in, n, pi),
            par,
        );
    } else {
        g.im2col_rows(hn, rows, cols);
        mul_into(
            dst,
            ld,
            View::dense(w, u.c_out, g.rows(), false),
            View::dense(&cols[..g.rows() * n], g.rows(), n, false),
            par,
        );
    }
}

/// Per-channel `(mean, biased variance)` over the batch from per-image plane moments
/// (`parts[n][c]`, each over `p` values), merged as in Chan et al. (1979).
fn merge_moments(parts: &[Vec<(f64, f64)>], c: usize, p: usize) -> (Vec<f64>, Vec<f64>) {
    let b = parts.len() as f64;
    (0..c)
        .map(|ch| {
            let mean = parts.iter().map(|q| q[ch].0).sum::<f64>() / b;
            let m2: f64 = parts.iter().map(|q| q[ch].1 + p as f64 * (q[ch].0 - mean).powi(2)).sum();
            (mean, m2 / (b * p as f64))
        })
        .unzip()
}

/// The forward pass: output, and what the backward pass needs when `save`.
struct Forward {
    out: Vec<f32>,
    saved: Option<Saved>,
}

impl Bottleneck {
    /// Checks the inputs' shapes against the units; returns [`Bottleneck::sizes`].
    fn shapes(&self, x: &[usize], main: &[usize], params: usize) -> candle_core::Result<Vec<(usize, usize)>> {
        let &[b, c, h, w] = x else { candle_core::bail!("rwt bottleneck: input {x:?} is not [B, C, H, W]") };
        if self.units.is_empty() {
            candle_core::bail!("rwt bottleneck: no units");
        }
        let mut ch = c;
        for u in &self.units {
            if u.c_in != ch {
                candle_core::bail!("rwt bottleneck: a unit expects {} channels, gets {ch}", u.c_in);
            }
            if u.transposed && (u.kh != u.stride || u.kw != u.stride || u.stride == 0) {
                candle_core::bail!(
                    "rwt bottleneck: a transposed unit's {}x{} kernel must equal its stride {}",
                    u.kh,
                    u.kw,
                    u.stride
                );
            }
            ch = u.c_out;
        }
        let sizes = sizes(&self.units, h, w);
        let (oh, ow) = sizes[self.units.len()];
        if main != [b, ch, oh, ow] {
            candle_core::bail!("rwt bottleneck: the shortcut is {main:?}, the branch gives {:?}", [b, ch, oh, ow]);
        }
        let want = offsets(&self.units).1 + ch;
        if params != want {
            candle_core::bail!("rwt bottleneck: {params} packed parameters, the units need {want}");
        }
        if self.mask.as_ref().is_some_and(|m| m.len() != b * ch) {
            candle_core::bail!("rwt bottleneck: the dropout mask needs {} scales", b * ch);
        }
        Ok(sizes)
    }

    /// The forward pass on host values (shapes checked by the caller).
    fn forward(&self, x: &[f32], xd: &[usize], main: &[f32], p: &[f32], save: bool) -> candle_core::Result<Forward> {
        let b = xd[0];
        let sizes = sizes(&self.units, xd[2], xd[3]);
        let (at, exit_at) = offsets(&self.units);
        let last = self.units.len() - 1;
        let (mut zs, mut hs, mut norms, mut moments) = (Vec::new(), Vec::<Vec<f32>>::new(), Vec::new(), Vec::new());
        let mut out = Vec::new();
        for (k, u) in self.units.iter().enumerate() {
            let (h, w) = sizes[k];
            let (g, oh, ow) = u.geometry(h, w);
            let (po, pi) = (oh * ow, h * w);
            let hin: &[f32] = if k == 0 { x } else { &hs[k - 1] };
            let (wt, gamma, beta, alpha) = unit_params(p, u, at[k]);
            let running = self.running.as_ref().map(|r| &r[k]);
            let img_in = |n: usize| &hin[n * u.c_in * pi..(n + 1) * u.c_in * pi];
            let slopes = &p[exit_at..];
            let mask = self.mask.as_deref();
            let len = b * u.c_out * po;
            let rb = block_rows(u, &g, oh, ow);
            let cl = cols_per_row(u, &g, ow) * rb;
            // Batch-norm and activation (or the exit) of plane `i` (image `i / c_out`, channel
            // `i % c_out`) from position `at` on.
            let activate = |norm: &Norm, i: usize, at: usize, z: &[f32], dst: &mut [Out]| {
                let c = i % u.c_out;
                if k == last {
                    let m = &main[i * po + at..i * po + at + z.len()];
                    planes::exit_fwd(z, m, dst, norm.a[c], norm.o[c], mask.map_or(1.0, |mk| mk[i]), slopes[c]);
                } else {
                    planes::affine_act(z, dst, norm.a[c], norm.o[c], alpha.map_or(1.0, |al| al[c]));
                }
            };
            let (y, norm) = if let (Some((rm, rv)), false) = (running, save) {
                // Evaluation with no backward pass to come: each block of output rows goes
                // from the convolution to a per-thread tile, and from there through
                // batch-norm and activation (or the exit) into the output.
                let f64s = |v: &[f32]| v.iter().map(|&v| v as f64).collect::<Vec<_>>();
                let norm = Norm::new(f64s(rm), f64s(rv), gamma, beta);
                // SAFETY: each image's task writes every row block of every plane of its chunk.
                let y = unsafe {
                    filled(len, |dst| {
                        for_images(dst, b, |n, dn, par| {
                            with_scratch(cl, u.c_out * rb * ow, |cols, tile| {
                                for rows in row_blocks(oh, rb) {
                                    let (nb, at) = (rows.len() * ow, rows.start * ow);
                                    let tile = &mut as_out(tile)[..u.c_out * nb];
                                    conv_rows(u, &g, (pi, w), wt, img_in(n), rows, tile, nb, cols, par);
                                    for (c, zc) in written(tile).chunks_exact(nb).enumerate() {
                                        activate(
                                            &norm,
                                            n * u.c_out + c,
                                            at,
                                            zc,
                                            &mut dn[c * po + at..c * po + at + nb],
                                        );
                                    }
                                }
                            })
                        });
                    })
                };
                (y, norm)
            } else {
                // Convolution image by image, a block of rows at a time; batch moments of each
                // image's planes.
                let mut parts = Vec::new();
                // SAFETY: each image's task writes every row block of every plane of its chunk.
                let z = unsafe {
                    filled(len, |zs| {
                        parts = for_images(zs, b, |n, zn, par| {
                            with_scratch(cl, 0, |cols, _| {
                                for rows in row_blocks(oh, rb) {
                                    let at = rows.start * ow;
                                    conv_rows(u, &g, (pi, w), wt, img_in(n), rows, &mut zn[at..], po, cols, par);
                                }
                            });
                            if running.is_none() {
                                written(zn).chunks(po).map(planes::moments).collect()
                            } else {
                                Vec::new()
                            }
                        })
                    })
                };
                let (mean, var) = match running {
                    Some((m, v)) => (m.iter().map(|&v| v as f64).collect(), v.iter().map(|&v| v as f64).collect()),
                    None => merge_moments(&parts, u.c_out, po),
                };
                if running.is_none() {
                    moments.push((mean.clone(), var.clone()));
                }
                let norm = Norm::new(mean, var, gamma, beta);
                // SAFETY: the planes cover the whole vector, and each kernel writes its plane.
                let y = unsafe {
                    filled(len, |dst| {
                        dst.par_chunks_mut(po)
                            .zip(z.par_chunks(po))
                            .enumerate()
                            .for_each(|(i, (d, zp))| activate(&norm, i, 0, zp, d))
                    })
                };
                if save {
                    zs.push(z);
                }
                (y, norm)
            };
            norms.push(norm);
            if k == last {
                out = y;
            } else {
                hs.push(y);
            }
        }
        if !moments.is_empty() {
            self.state
                .lock()
                .map_err(|_| candle_core::Error::Msg("rwt bottleneck: state poisoned".into()))?
                .batch_moments = moments;
        }
        Ok(Forward { out, saved: save.then_some(Saved { z: zs, h: hs, norms }) })
    }
}

/// The gradients of a backward pass: input, shortcut (`None` when it is the input), packed
/// parameters.
type Grads = (Vec<f32>, Option<Vec<f32>>, Vec<f32>);

impl Bottleneck {
    fn lock(&self) -> candle_core::Result<std::sync::MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| candle_core::Error::Msg("rwt bottleneck: state poisoned".into()))
    }

    /// The forward pass on CPU storages, keeping what the backward pass needs in training.
    fn cpu_forward(
        &self,
        x: (&CpuStorage, &Layout),
        main: (&CpuStorage, &Layout),
        p: (&CpuStorage, &Layout),
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (xd, md) = (x.1.shape().dims(), main.1.shape().dims());
        let (xv, mv, pv) = (
            f32_part(x.0, x.1, "bottleneck input")?,
            f32_part(main.0, main.1, "bottleneck shortcut")?,
            f32_part(p.0, p.1, "bottleneck parameters")?,
        );
        self.shapes(xd, md, pv.len())?;
        let f = self.forward(xv, xd, mv, pv, self.running.is_none())?;
        if let Some(s) = f.saved {
            self.lock()?.saved = Some(s);
        }
        Ok((CpuStorage::F32(f.out), main.1.shape().clone()))
    }

    /// The backward pass on host values; with `identity` the shortcut is the input and its
    /// gradient is added to the input's.
    fn backward(
        &self,
        xv: &[f32],
        xd: &[usize],
        mv: &[f32],
        pv: &[f32],
        gv: &[f32],
        identity: bool,
    ) -> candle_core::Result<Grads> {
        let b = xd[0];
        let sizes = sizes(&self.units, xd[2], xd[3]);
        let saved = self.lock()?.saved.take();
        let saved = match saved {
            Some(s) => s,
            None => self.forward(xv, xd, mv, pv, true)?.saved.expect("saved on request"),
        };
        let (at, exit_at) = offsets(&self.units);
        let mut dp = vec![0f32; pv.len()];
        let last = self.units.len() - 1;
        let alphas: Vec<Option<&[f32]>> =
            self.units.iter().enumerate().map(|(k, u)| unit_params(pv, u, at[k]).3).collect();
        // Batch-norm's per-plane sums of unit k's output gradient `g` (see `planes::bn_sums`).
        let plane_sums = |k: usize, c: usize, g: &[f32], z: &[f32]| {
            let nm = &saved.norms[k];
            planes::bn_sums(g, z, nm.a[c], nm.o[c], nm.mean[c] as f32, alphas[k].map_or(1.0, |al| al[c]))
        };
        // Per-channel totals of per-(image, channel) plane sums.
        let totals = |parts: Vec<[f64; 3]>, c: usize| {
            let mut t = vec![[0f64; 3]; c];
            for (i, q) in parts.into_iter().enumerate() {
                (0..3).for_each(|j| t[i % c][j] += q[j]);
            }
            t
        };
        // The exit: v = main + m·y, g_v = g·PReLU'(v); ∂main = g_v, ∂y = m·g_v; and the last
        // unit's batch-norm sums while the planes are in cache.
        let lu = &self.units[last];
        let po = sizes[last + 1].0 * sizes[last + 1].1;
        let norm = &saved.norms[last];
        let slopes = &pv[exit_at..];
        let mask = self.mask.as_deref();
        let mut per_plane: Vec<(f64, [f64; 3])> = Vec::new();
        let mut gy = Vec::new();
        // SAFETY: the planes cover both vectors, and `exit_bwd` writes every element of both.
        let dmain = unsafe {
            filled(mv.len(), |dmain| {
                gy = filled(mv.len(), |gy| {
                    per_plane = dmain
                        .par_chunks_mut(po)
                        .zip(gy.par_chunks_mut(po))
                        .enumerate()
                        .map(|(i, (dm, dy))| {
                            let c = i % lu.c_out;
                            let k = mask.map_or(1.0, |mk| mk[i]);
                            let r = i * po..(i + 1) * po;
                            let (g, z, m) = (&gv[r.clone()], &saved.z[last][r.clone()], &mv[r.clone()]);
                            let da = planes::exit_bwd(g, z, m, dm, dy, norm.a[c], norm.o[c], k, slopes[c]);
                            // SAFETY: `exit_bwd` wrote the whole plane.
                            (da, plane_sums(last, c, written(dy), z))
                        })
                        .collect();
                })
            })
        };
        let mut sums_parts = Vec::with_capacity(per_plane.len());
        for (i, (da, q)) in per_plane.into_iter().enumerate() {
            dp[exit_at + i % lu.c_out] += da as f32;
            sums_parts.push(q);
        }
        let mut sums = totals(sums_parts, lu.c_out);
        // The units, last first: `gy` is the gradient at the unit's output, `sums` its
        // batch-norm sums; each image's task leaves the previous unit's sums.
        let train = self.running.is_none();
        let mut dmain = Some(dmain);
        for k in (0..=last).rev() {
            let u = &self.units[k];
            let (h, w) = sizes[k];
            let (g, oh, ow) = u.geometry(h, w);
            let (po, pi) = (oh * ow, h * w);
            let (wt, _, _, alpha) = unit_params(pv, u, at[k]);
            let (z, nm) = (&saved.z[k], &saved.norms[k]);
            let wn = u.weights();
            for (c, s) in sums.iter().enumerate() {
                dp[at[k] + wn + c] = (s[1] * nm.inv[c]) as f32;
                dp[at[k] + wn + u.c_out + c] = s[0] as f32;
                if u.prelu {
                    dp[at[k] + wn + 2 * u.c_out + c] = s[2] as f32;
                }
            }
            let m = (b * po) as f64;
            // Per image: ∂z into a per-thread tile, then ∂W (summed below) and ∂h — added to
            // the shortcut's gradient for the first unit of an identity shortcut.
            let hin: &[f32] = if k == 0 { xv } else { &saved.h[k - 1] };
            let acc = k == 0 && identity;
            let rb = block_rows(u, &g, oh, ow);
            let cl = cols_per_row(u, &g, ow) * rb;
            // A convolution's adjoint adds overlapping windows into ∂h; the others write
            // each block of ∂h once (or add it to the shortcut's gradient).
            let adds = acc || !(u.transposed || g.is_identity());
            // ∂W's shape as a matrix; `gemm` packs the operand of its columns (kept row-major)
            // or, stored transposed, of its rows: `flip` when the rows are fewer.
            let (dw_rows, dw_cols) = match (u.transposed, g.is_identity()) {
                (true, _) => (u.c_in, g.rows()),
                (false, true) => (u.c_out, u.c_in),
                (false, false) => (u.c_out, g.rows()),
            };
            let flip = dw_rows < dw_cols;
            let task = |n: usize, dhn: &mut [Out], par: bool| {
                let zn = &z[n * u.c_out * po..(n + 1) * u.c_out * po];
                let gn = &gy[n * u.c_out * po..(n + 1) * u.c_out * po];
                let hn = &hin[n * u.c_in * pi..(n + 1) * u.c_in * pi];
                let mut dw = vec![0f32; wn];
                // ∂W (+)= a·b, kept transposed when that makes `gemm` pack the smaller operand.
                let mut dw_add = |a: View, b: View| {
                    if flip {
                        mul_add(&mut dw, dw_rows, b.t(), a.t(), par)
                    } else {
                        mul_add(&mut dw, dw_cols, a, b, par)
                    }
                };
                if !acc && adds {
                    zeroed(dhn);
                }
                with_scratch(cl, u.c_out * rb * ow, |cols, dz| {
                    for rows in row_blocks(oh, rb) {
                        let (nb, at) = (rows.len() * ow, rows.start * ow);
                        let dz = &mut dz[..u.c_out * nb];
                        for c in 0..u.c_out {
                            let r = c * po + at..c * po + at + nb;
                            let (a, o, mu) = (nm.a[c], nm.o[c], nm.mean[c] as f32);
                            let sl = alpha.map_or(1.0, |al| al[c]);
                            let (off, slope) = if train {
                                (
                                    (a as f64 * sums[c][0] / m) as f32,
                                    (a as f64 * sums[c][1] * nm.inv[c] * nm.inv[c] / m) as f32,
                                )
                            } else {
                                (0.0, 0.0)
                            };
                            let dzc = &mut dz[c * nb..(c + 1) * nb];
                            planes::bn_grad(&gn[r.clone()], &zn[r], dzc, a, o, mu, sl, off, slope);
                        }
                        let dzv = View::dense(dz, u.c_out, nb, false);
                        // ∂h's block (`ld` apart, `cols` columns from `at`) = a·b.
                        let mut dh_block = |at: usize, a: View, b: View| {
                            if adds {
                                // SAFETY: ∂h was written before the blocks (zeros or the shortcut's gradient).
                                mul_add(&mut unsafe { written(dhn) }[at..], pi, a, b, par)
                            } else {
                                mul_into(&mut dhn[at..], pi, a, b, par)
                            }
                        };
                        if u.transposed {
                            // y = col2im(Wᵀ·h): ∂W = h·im2col(∂z)ᵀ, ∂h = W·im2col(∂z); the
                            // block's output rows come from input rows `rows / s`.
                            let s = u.stride;
                            let (iat, ni) = (rows.start / s * w, rows.len() / s * w);
                            let block = Geometry { h: rows.len(), ..g };
                            let cols = &mut cols[..g.rows() * ni];
                            block.im2col_seq(dz, cols);
                            let cv = View::dense(cols, g.rows(), ni, false);
                            dw_add(View::rows(&hn[iat..], u.c_in, ni, pi), cv.t());
                            dh_block(iat, View::dense(wt, u.c_in, g.rows(), false), cv);
                        } else if g.is_identity() {
                            dw_add(dzv, View::rows(&hn[at..], u.c_in, nb, pi).t());
                            dh_block(at, View::dense(wt, u.c_out, u.c_in, true), dzv);
                        } else {
                            let cols = &mut cols[..g.rows() * nb];
                            g.im2col_rows(hn, rows.clone(), cols);
                            dw_add(dzv, View::dense(cols, g.rows(), nb, true));
                            // SAFETY: the product writes floats only.
                            mul_into(unsafe { as_out(cols) }, nb, View::dense(wt, u.c_out, g.rows(), true), dzv, par);
                            // SAFETY: ∂h was written before the blocks.
                            g.col2im_rows_add(cols, rows, unsafe { written(dhn) });
                        }
                    }
                });
                // SAFETY: the blocks wrote (or added to) every element of ∂h.
                let dhn = unsafe { written(dhn) };
                // The previous unit's batch-norm sums over this image's planes, while ∂h is in cache.
                let prev: Vec<[f64; 3]> = if k > 0 {
                    let zp = &saved.z[k - 1][n * u.c_in * pi..(n + 1) * u.c_in * pi];
                    (0..u.c_in)
                        .map(|c| plane_sums(k - 1, c, &dhn[c * pi..(c + 1) * pi], &zp[c * pi..(c + 1) * pi]))
                        .collect()
                } else {
                    Vec::new()
                };
                (dw, prev)
            };
            let mut results = Vec::new();
            let dh = if acc {
                let mut dh = dmain.take().expect("the shortcut's gradient");
                // SAFETY: the tasks write floats only.
                results = for_images(unsafe { as_out(&mut dh) }, b, task);
                dh
            } else {
                // SAFETY: each image's task writes every element of its chunk.
                unsafe { filled(b * u.c_in * pi, |dst| results = for_images(dst, b, task)) }
            };
            let dwp = &mut dp[at[k]..at[k] + wn];
            let mut prev = Vec::with_capacity(b * u.c_in);
            for (dw, q) in results {
                if flip {
                    for (i, row) in dwp.chunks_exact_mut(dw_cols).enumerate() {
                        for (j, d) in row.iter_mut().enumerate() {
                            *d += dw[j * dw_rows + i];
                        }
                    }
                } else {
                    for (d, v) in dwp.iter_mut().zip(&dw) {
                        *d += v;
                    }
                }
                prev.extend(q);
            }
            if k > 0 {
                sums = totals(prev, u.c_in);
            }
            gy = dh;
        }
        Ok((gy, dmain, dp))
    }
}

impl CustomOp3 for Bottleneck {
    fn name(&self) -> &'static str {
        "rwt-enet-bottleneck"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ms: &CpuStorage,
        ml: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu_forward((xs, xl), (ms, ml), (ps, pl))
    }

    fn bwd(
        &self,
        x: &Tensor,
        main: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dmain, dp) = crate::kernels::numeric::with_host(&[x, main, params, grad], |v| {
            self.shapes(x.dims(), main.dims(), v[2].len())?;
            self.backward(v[0], x.dims(), v[1], v[2], v[3], false)
        })?;
        let dev = x.device();
        let dmain = dmain.expect("a separate shortcut keeps its gradient");
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dmain, main.shape(), dev)?),
            Some(Tensor::from_vec(dp, params.shape(), dev)?),
        ))
    }
}

/// A [`Bottleneck`] whose shortcut is its input (ENet's regular bottleneck): inputs `x` and
/// the packed parameters, one gradient for `x` through both paths.
pub(crate) struct Identity(pub Bottleneck);

impl candle_core::CustomOp2 for Identity {
    fn name(&self) -> &'static str {
        "rwt-enet-bottleneck-identity"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ps: &CpuStorage,
        pl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.cpu_forward((xs, xl), (xs, xl), (ps, pl))
    }

    fn bwd(
        &self,
        x: &Tensor,
        params: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (dx, _, dp) = crate::kernels::numeric::with_host(&[x, params, grad], |v| {
            self.0.shapes(x.dims(), x.dims(), v[1].len())?;
            self.0.backward(v[0], x.dims(), v[0], v[1], v[2], true)
        })?;
        let dev = x.device();
        Ok((Some(Tensor::from_vec(dx, x.shape(), dev)?), Some(Tensor::from_vec(dp, params.shape(), dev)?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var, D};

    /// The same bottleneck composed from candle's ops (convolutions, batch-norm from means and
    /// variances, PReLU as `max(v, 0) + α·min(v, 0)`), parameters narrowed from the packed
    /// vector so that candle's autograd gives their gradients.
    fn composed(
        units: &[Unit],
        running: Option<&[(Vec<f32>, Vec<f32>)]>,
        mask: Option<&[f32]>,
        x: &Tensor,
        main: &Tensor,
        p: &Tensor,
        moments: &mut Vec<(Vec<f32>, Vec<f32>)>,
    ) -> Tensor {
        let prelu = |v: &Tensor, a: &Tensor| {
            let a = a.reshape((1, (), 1, 1)).unwrap();
            (v.relu().unwrap() + v.minimum(0.0).unwrap().broadcast_mul(&a).unwrap()).unwrap()
        };
        let (at, exit_at) = offsets(units);
        let mut h = x.clone();
        for (k, u) in units.iter().enumerate() {
            let take = |o: usize, n: usize| p.narrow(0, at[k] + o, n).unwrap();
            let wn = u.weights();
            let z = if u.transposed {
                let w = take(0, wn).reshape((u.c_in, u.c_out, u.kh, u.kw)).unwrap();
                h.conv_transpose2d(&w, 0, 0, u.stride, 1).unwrap()
            } else {
                let w = take(0, wn).reshape((u.c_out, u.c_in, u.kh, u.kw)).unwrap();
                let hp = h.pad_with_zeros(2, u.ph, u.ph).unwrap().pad_with_zeros(3, u.pw, u.pw).unwrap();
                hp.conv2d(&w, 0, u.stride, u.dilation, 1).unwrap()
            };
            let shape = (1, u.c_out, 1, 1);
            let (mean, var) = match running {
                Some(r) => (
                    Tensor::new(r[k].0.as_slice(), x.device()).unwrap(),
                    Tensor::new(r[k].1.as_slice(), x.device()).unwrap(),
                ),
                None => {
                    let zt = z.transpose(0, 1).unwrap().flatten_from(1).unwrap();
                    let mean = zt.mean(D::Minus1).unwrap();
                    let var =
                        zt.broadcast_sub(&mean.unsqueeze(1).unwrap()).unwrap().sqr().unwrap().mean(D::Minus1).unwrap();
                    moments.push((mean.to_vec1().unwrap(), var.to_vec1().unwrap()));
                    (mean, var)
                }
            };
            let inv = (var + EPS).unwrap().sqrt().unwrap().recip().unwrap().reshape(shape).unwrap();
            let zh = z.broadcast_sub(&mean.reshape(shape).unwrap()).unwrap().broadcast_mul(&inv).unwrap();
            let gamma = take(wn, u.c_out).reshape(shape).unwrap();
            let beta = take(wn + u.c_out, u.c_out).reshape(shape).unwrap();
            let a = zh.broadcast_mul(&gamma).unwrap().broadcast_add(&beta).unwrap();
            h = if u.prelu { prelu(&a, &take(wn + 2 * u.c_out, u.c_out)) } else { a };
        }
        let (b, c, _, _) = main.dims4().unwrap();
        let y = match mask {
            Some(m) => h.broadcast_mul(&Tensor::from_slice(m, (b, c, 1, 1), x.device()).unwrap()).unwrap(),
            None => h,
        };
        prelu(&(main + y).unwrap(), &p.narrow(0, exit_at, c).unwrap())
    }

    fn conv(c_in: usize, c_out: usize, k: (usize, usize), pad: (usize, usize), stride: usize, dilation: usize) -> Unit {
        let (kh, kw) = k;
        let (ph, pw) = pad;
        Unit { c_in, c_out, kh, kw, ph, pw, stride, dilation, transposed: false, prelu: true }
    }

    fn last(u: Unit) -> Unit {
        Unit { prelu: false, ..u }
    }

    /// Output and the gradients of `Σ out·r` for x, main and the parameters, fused and composed,
    /// for ENet's five bottleneck kinds, in training (batch statistics, dropout) and at
    /// evaluation (running statistics), one image (GEMMs over the pool) and three (one image
    /// per task).
    #[test]
    fn fused_bottleneck_matches_candle() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(21);
        let regular = vec![
            conv(8, 2, (1, 1), (0, 0), 1, 1),
            conv(2, 2, (3, 3), (1, 1), 1, 1),
            last(conv(2, 8, (1, 1), (0, 0), 1, 1)),
        ];
        let dilated = vec![
            conv(8, 2, (1, 1), (0, 0), 1, 1),
            conv(2, 2, (3, 3), (4, 4), 1, 4),
            last(conv(2, 8, (1, 1), (0, 0), 1, 1)),
        ];
        let asymmetric = vec![
            conv(8, 2, (1, 1), (0, 0), 1, 1),
            conv(2, 2, (5, 1), (2, 0), 1, 1),
            conv(2, 2, (1, 5), (0, 2), 1, 1),
            last(conv(2, 8, (1, 1), (0, 0), 1, 1)),
        ];
        let down = vec![
            conv(4, 1, (2, 2), (0, 0), 2, 1),
            conv(1, 1, (3, 3), (1, 1), 1, 1),
            last(conv(1, 8, (1, 1), (0, 0), 1, 1)),
        ];
        let up = vec![
            conv(8, 2, (1, 1), (0, 0), 1, 1),
            Unit {
                c_in: 2,
                c_out: 2,
                kh: 2,
                kw: 2,
                ph: 0,
                pw: 0,
                stride: 2,
                dilation: 1,
                transposed: true,
                prelu: true,
            },
            last(conv(2, 4, (1, 1), (0, 0), 1, 1)),
        ];
        for (name, units) in
            [("regular", regular), ("dilated", dilated), ("asymmetric", asymmetric), ("down", down), ("up", up)]
        {
            for b in [1, 3] {
                for train in [true, false] {
                    let (h, w) = (6, 10);
                    let s = sizes(&units, h, w);
                    let (oh, ow) = s[units.len()];
                    let c = units.last().unwrap().c_out;
                    let normal =
                        |rng: &mut _, shape: &[usize], sd| crate::random::normal(rng, shape, sd, &dev).unwrap();
                    let x = Var::from_tensor(&normal(&mut rng, &[b, units[0].c_in, h, w], 1.0)).unwrap();
                    let main = Var::from_tensor(&normal(&mut rng, &[b, c, oh, ow], 1.0)).unwrap();
                    let x_shape = x.dims().to_vec();
                    let np = offsets(&units).1 + c;
                    let p = Var::from_tensor(&normal(&mut rng, &[np], 0.5)).unwrap();
                    let running: Option<Vec<_>> = (!train).then(|| {
                        units
                            .iter()
                            .map(|u| {
                                let m = normal(&mut rng, &[u.c_out], 0.3).to_vec1::<f32>().unwrap();
                                let v = normal(&mut rng, &[u.c_out], 0.3).abs().unwrap().affine(1.0, 0.5).unwrap();
                                (m, v.to_vec1::<f32>().unwrap())
                            })
                            .collect()
                    });
                    let mask: Option<Vec<f32>> =
                        train.then(|| (0..b * c).map(|i| if i % 3 == 1 { 0.0 } else { 1.25 }).collect());
                    let r = normal(&mut rng, &[b, c, oh, ow], 1.0);
                    let state = Arc::new(Mutex::new(State::default()));
                    let op = Bottleneck {
                        units: units.clone(),
                        running: running.clone(),
                        mask: mask.clone(),
                        state: state.clone(),
                    };
                    // A shortcut of the input's shape runs as the identity variant (the
                    // shortcut is the input itself) in the three-image cases.
                    let identity = main.dims() == x_shape.as_slice() && b == 3;
                    let main = if identity { x.as_tensor().clone() } else { main.as_tensor().clone() };
                    let ours = if identity {
                        x.as_tensor().apply_op2(p.as_tensor(), Identity(op)).unwrap()
                    } else {
                        x.as_tensor().apply_op3(&main, p.as_tensor(), op).unwrap()
                    };
                    let mut moments = Vec::new();
                    let theirs = composed(&units, running.as_deref(), mask.as_deref(), &x, &main, &p, &mut moments);
                    // The batch statistics the running ones are updated with.
                    let ours_m = state.lock().unwrap().batch_moments.clone();
                    assert_eq!(ours_m.len(), moments.len(), "{name}: units with batch statistics");
                    for ((m, v), (em, ev)) in ours_m.iter().zip(&moments) {
                        for (u, e) in m.iter().zip(em).chain(v.iter().zip(ev)) {
                            assert!((*u as f32 - e).abs() <= 1e-4 * e.abs().max(1.0), "{name}: moment {u} vs {e}");
                        }
                    }
                    let all = |y: &Tensor| {
                        let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                        let v = |t: &Tensor| {
                            t.flatten_all().unwrap().to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap()
                        };
                        let dmain = if identity { Vec::new() } else { v(g.get(&main).unwrap()) };
                        [v(y), v(g.get(&x).unwrap()), dmain, v(g.get(&p).unwrap())]
                    };
                    let (a, e) = (all(&ours), all(&theirs));
                    for (k, what) in ["output", "∂x", "∂main", "∂params"].iter().enumerate() {
                        let scale = e[k].iter().fold(1f32, |m, v| m.max(v.abs()));
                        let d = a[k].iter().zip(&e[k]).map(|(u, v)| (u - v).abs()).fold(0f32, f32::max);
                        assert!(
                            d <= 2e-4 * scale,
                            "{name}, batch {b}, train {train}: {what} differs by {d} (scale {scale})"
                        );
                    }
                }
            }
        }
    }
}
