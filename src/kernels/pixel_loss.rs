//! Fused per-pixel softmax losses: one kernel computes, for every pixel, the softmax `s` of
//! its logits and
//!
//! `L = w[y] · (logsumexp(z) − z_y)  +  Σ_p s_p · C[y][p]`,
//!
//! the (importance-weighted) cross-entropy and the exact one-hot Wasserstein loss of Eq. 2
//! with cost rows `C[y] = f(D[y])`; either term may be absent. Its gradient is analytic:
//!
//! `∂L/∂z_k = w[y] (s_k − 1[k = y])  +  s_k (C[y][k] − L_W)`,  `L_W = Σ_p s_p C[y][p]`
//!
//! (Theorem 1 makes the Wasserstein part exact, so no transport problem is solved).
//!
//! The forward op returns the loss map `[B, S]`; its backward recomputes the softmax from the
//! logits rather than storing it, so that a forward pass writes one value per pixel and a
//! backward pass one value per logit. On the CPU, pixels are processed in blocks laid out
//! along the contiguous spatial axis, so every inner loop runs over contiguous memory and
//! vectorises, and blocks run in parallel (rayon).

// The kernels index several per-pixel buffers with the same loop variable; index loops read
// better there than zipped iterators.
#![allow(clippy::needless_range_loop)]

use crate::kernels::numeric::{contiguous_part, has_avx2_fma, Real, SyncPtr};
use crate::loss::LabelInt;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Parameters of a fused pixel loss.
#[derive(Clone, Debug)]
pub(crate) struct PixelLoss {
    /// Number of classes `N`.
    pub n: usize,
    /// Cross-entropy weight per true class (`None`: no CE term).
    pub ce_weights: Option<Vec<f64>>,
    /// Cost rows `C[truth][pred]`, `N × N` (`None`: no Wasserstein term).
    pub cost: Option<Vec<f64>>,
    /// Label to ignore.
    pub ignore: Option<u32>,
}

impl PixelLoss {
    /// The per-pixel loss map `[B, S]` with the analytic backward pass, whether every entry is
    /// known to be finite (the CPU kernel checks each pixel as it goes; on other devices the
    /// caller checks, see [`crate::loss`]'s `reduce`), and the number of counted (valid,
    /// not ignored) pixels. `logits` must be contiguous `[B, N, ...]`; `loss` names the loss
    /// in errors.
    ///
    /// The labels are validated here: on the CPU by one scan before the kernel runs, on a GPU
    /// inside the forward kernel, which counts the valid labels and records the first
    /// out-of-range one as it reads them (no separate pass over the labels on the device).
    ///
    /// # Errors
    /// [`crate::Error::LabelOutOfRange`] naming the first label that is neither a class nor
    /// the ignore label; [`crate::Error::NonFiniteLoss`] naming the first counted pixel whose
    /// loss is not finite.
    pub fn map(self, loss: &'static str, logits: &Tensor, labels: &Tensor) -> crate::Result<(Tensor, bool, usize)> {
        let (n, ignore) = (self.n, self.ignore);
        let counted_on_cpu = labels.device().is_cpu();
        let cpu_valid = if counted_on_cpu { Some(crate::loss::count_valid_labels(labels, n, ignore)?) } else { None };
        let s: usize = logits.dims()[2..].iter().product();
        let first_bad = Arc::new(AtomicUsize::new(usize::MAX));
        let label_stats = Arc::new(OnceLock::new());
        let op = Forward(Arc::new(self), first_bad.clone(), label_stats.clone());
        let map = logits.apply_op2(&device_labels(labels)?, op)?;
        let valid = match (cpu_valid, label_stats.get()) {
            (Some(v), _) => v,
            (None, Some(&LabelStats { valid, first_out_of_range: None })) => valid,
            // A label out of range: the first one (lowest flat index), read back to name it.
            (None, Some(&LabelStats { first_out_of_range: Some(position), .. })) => {
                let label =
                    labels.flatten_all()?.get(position)?.to_dtype(candle_core::DType::I64)?.to_scalar::<i64>()?;
                return Err(crate::Error::LabelOutOfRange { label, position, num_classes: n, ignore_index: ignore });
            }
            // A device whose kernel does not count (none at present): count on the device.
            (None, None) => crate::loss::count_valid_labels(labels, n, ignore)?,
        };
        let bad = first_bad.load(Ordering::Relaxed);
        if bad != usize::MAX {
            return Err(crate::Error::NonFiniteLoss { loss, image: bad / s.max(1), pixel: bad % s.max(1) });
        }
        Ok((map, logits.device().is_cpu(), valid))
    }

    /// The gradient with respect to the logits for a given per-pixel output gradient; used by
    /// the backward pass and exposed to tests.
    pub fn grad(self: &Arc<Self>, logits: &Tensor, labels: &Tensor, grad_map: &Tensor) -> candle_core::Result<Tensor> {
        logits.apply_op3_no_bwd(&device_labels(labels)?, &grad_map.contiguous()?, &Backward(self.clone()))
    }
}

/// Labels as the kernels read them: any integer type on the CPU, `u32` on a GPU.
fn device_labels(labels: &Tensor) -> candle_core::Result<Tensor> {
    if labels.device().is_cpu() || labels.dtype() == candle_core::DType::U32 {
        labels.contiguous()
    } else {
        labels.to_dtype(candle_core::DType::U32)?.contiguous()
    }
}

/// What a GPU forward kernel learned of the labels while reading them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LabelStats {
    /// Labels that are a class (neither ignored nor out of range).
    pub valid: usize,
    /// The flat index of the first label that is neither a class nor the ignore label.
    pub first_out_of_range: Option<usize>,
}

/// The forward op; the CPU kernel writes the flat index of the first pixel whose loss is not
/// finite into the slot (`usize::MAX`: none), which [`PixelLoss::map`] turns into an error;
/// the CUDA kernel sets the label statistics.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))] // the slot is set by the CUDA kernel only
struct Forward(Arc<PixelLoss>, Arc<AtomicUsize>, Arc<OnceLock<LabelStats>>);
struct Backward(Arc<PixelLoss>);

impl CustomOp2 for Forward {
    fn name(&self) -> &'static str {
        "rwt-pixel-loss"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = pixel_shape(l1)?;
        let out_shape = Shape::from((shape.0, shape.2));
        let out = match s1 {
            CpuStorage::F32(z) => CpuStorage::F32(run_forward(
                &self.0,
                contiguous_part(z, l1, "pixel-loss logits")?,
                label_slice(s2, l2)?,
                shape,
                &self.1,
            )),
            CpuStorage::F64(z) => CpuStorage::F64(run_forward(
                &self.0,
                contiguous_part(z, l1, "pixel-loss logits")?,
                label_slice(s2, l2)?,
                shape,
                &self.1,
            )),
            _ => candle_core::bail!("rwt pixel loss: logits must be f32 or f64"),
        };
        Ok((out, out_shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let shape = pixel_shape(l1)?;
        let (out, stats) = super::pixel_loss_cuda::forward(&self.0, s1, l1, s2, l2, shape)?;
        let _ = self.2.set(stats);
        Ok((out, Shape::from((shape.0, shape.2))))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        labels: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((Some(self.0.grad(logits, labels, grad_res)?), None))
    }
}

impl CustomOp3 for Backward {
    fn name(&self) -> &'static str {
        "rwt-pixel-loss-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let shape = pixel_shape(l1)?;
        let out = match (s1, s3) {
            (CpuStorage::F32(z), CpuStorage::F32(g)) => CpuStorage::F32(run_backward(
                &self.0,
                contiguous_part(z, l1, "pixel-loss logits")?,
                label_slice(s2, l2)?,
                contiguous_part(g, l3, "pixel-loss output gradient")?,
                shape,
            )),
            (CpuStorage::F64(z), CpuStorage::F64(g)) => CpuStorage::F64(run_backward(
                &self.0,
                contiguous_part(z, l1, "pixel-loss logits")?,
                label_slice(s2, l2)?,
                contiguous_part(g, l3, "pixel-loss output gradient")?,
                shape,
            )),
            _ => candle_core::bail!("rwt pixel loss grad: logits and output gradient must both be f32 or both f64"),
        };
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let shape = pixel_shape(l1)?;
        let out = super::pixel_loss_cuda::backward(&self.0, s1, l1, s2, l2, s3, l3, shape)?;
        Ok((out, l1.shape().clone()))
    }
}

/// `(B, N, S)` of a contiguous logits layout.
fn pixel_shape(l: &Layout) -> candle_core::Result<(usize, usize, usize)> {
    let d = l.dims();
    if d.len() < 2 || !l.is_contiguous() {
        candle_core::bail!("rwt pixel loss: logits must be contiguous [B, N, ...], got {:?}", d);
    }
    Ok((d[0], d[1], d[2..].iter().product()))
}

/// The labels of a call, whatever integer type they are stored in.
fn label_slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<LabelSlice<'a>> {
    Ok(match s {
        CpuStorage::U8(v) => LabelSlice::new(contiguous_part(v, l, "pixel-loss labels")?),
        CpuStorage::U32(v) => LabelSlice::new(contiguous_part(v, l, "pixel-loss labels")?),
        CpuStorage::I16(v) => LabelSlice::new(contiguous_part(v, l, "pixel-loss labels")?),
        CpuStorage::I32(v) => LabelSlice::new(contiguous_part(v, l, "pixel-loss labels")?),
        CpuStorage::I64(v) => LabelSlice::new(contiguous_part(v, l, "pixel-loss labels")?),
        _ => candle_core::bail!("rwt pixel loss: labels must be integers"),
    })
}

/// Copies a range of labels, widened to `i64`, into a buffer.
type LabelReader<'a> = Box<dyn Fn(usize, &mut [i64]) + Send + Sync + 'a>;

/// Labels widened to `i64` one block at a time, so the kernels are not instantiated once per
/// label type (labels are small next to logits: one virtual call per block is nothing).
pub(crate) struct LabelSlice<'a> {
    get: LabelReader<'a>,
    len: usize,
}

impl<'a> LabelSlice<'a> {
    fn new<L: LabelInt>(labels: &'a [L]) -> Self {
        LabelSlice {
            get: Box::new(move |start, out: &mut [i64]| {
                let len = out.len();
                for (o, l) in out.iter_mut().zip(&labels[start..start + len]) {
                    *o = l.get();
                }
            }),
            len: labels.len(),
        }
    }

    /// Copies labels `start..start + out.len()` into `out`.
    fn read(&self, start: usize, out: &mut [i64]) {
        (self.get)(start, out)
    }
}

/// Per-thread scratch space for one block of pixels (`bl` pixels, `N` classes).
struct Scratch<T> {
    /// `exp(z − max)`, class-major: class `k` at `e[k * len..(k + 1) * len]`.
    e: Vec<T>,
    /// Cost of each class for each pixel's label, `C[y_j][k]`, laid out like `e`.
    c: Vec<T>,
    max: Vec<T>,
    sum: Vec<T>,
    acc: Vec<T>,
    labels: Vec<i64>,
    y: Vec<usize>,
    keep: Vec<bool>,
}

impl<T: Real> Scratch<T> {
    fn new(n: usize, block: usize) -> Self {
        Scratch {
            e: vec![T::ZERO; n * block],
            c: vec![T::ZERO; n * block],
            max: vec![T::ZERO; block],
            sum: vec![T::ZERO; block],
            acc: vec![T::ZERO; block],
            labels: vec![0; block],
            y: vec![0; block],
            keep: vec![false; block],
        }
    }
}

/// Constant parameters converted to the kernel's float type.
struct Params<T> {
    n: usize,
    ce: Option<Vec<T>>,
    /// Transposed cost, `cost_t[pred * N + truth]`: for a fixed class the costs of all labels
    /// sit in one short row.
    cost_t: Option<Vec<T>>,
    ignore: Option<i64>,
}

impl<T: Real> Params<T> {
    fn new(p: &PixelLoss) -> Self {
        let n = p.n;
        Params {
            n,
            ce: p.ce_weights.as_ref().map(|w| w.iter().map(|&v| T::from_f64(v)).collect()),
            cost_t: p.cost.as_ref().map(|c| (0..n * n).map(|k| T::from_f64(c[(k % n) * n + k / n])).collect()),
            ignore: p.ignore.map(i64::from),
        }
    }
}

fn block_len(n: usize) -> usize {
    (4096 / n.max(1)).clamp(8, 512)
}

/// The pixels `j0..j0 + len` of one image: where they are and where their results go.
#[derive(Clone, Copy)]
struct Block {
    /// Offset of the image's labels and loss-map entries.
    base: usize,
    j0: usize,
    len: usize,
}

/// Softmax pieces of one block: labels and keep mask, `e = exp(z − max)`, `sum = Σ e`, and
/// with a Wasserstein term the gathered costs `c[k][j] = C[y_j][k]` and `acc = Σ_k e_k c_k`.
#[inline(always)]
fn softmax_block<T: Real>(p: &Params<T>, z: &[T], s: usize, blk: Block, labels: &LabelSlice, sc: &mut Scratch<T>) {
    let (n, j0, len) = (p.n, blk.j0, blk.len);
    labels.read(blk.base + j0, &mut sc.labels[..len]);
    for jj in 0..len {
        let l = sc.labels[jj];
        let ok = Some(l) != p.ignore && l >= 0 && (l as usize) < n;
        sc.y[jj] = if ok { l as usize } else { 0 };
        sc.keep[jj] = ok;
    }
    let max = &mut sc.max[..len];
    max.copy_from_slice(&z[j0..j0 + len]);
    for k in 1..n {
        for (m, &v) in max.iter_mut().zip(&z[k * s + j0..k * s + j0 + len]) {
            // A NaN logit makes the maximum NaN (`v != v`), so that the forward pass sees it
            // even where the fast `exp` maps NaN to a finite value.
            #[allow(clippy::eq_op)]
            let nan = v != v;
            *m = if v > *m || nan { v } else { *m };
        }
    }
    let sum = &mut sc.sum[..len];
    sum.fill(T::ZERO);
    for k in 0..n {
        let e = &mut sc.e[k * len..(k + 1) * len];
        for (((e, &v), &m), sm) in
            e.iter_mut().zip(&z[k * s + j0..k * s + j0 + len]).zip(max.iter()).zip(sum.iter_mut())
        {
            *e = (v - m).exp();
            *sm = *sm + *e;
        }
    }
    if let Some(ct) = &p.cost_t {
        let acc = &mut sc.acc[..len];
        acc.fill(T::ZERO);
        for k in 0..n {
            let crow = &ct[k * n..(k + 1) * n];
            let c = &mut sc.c[k * len..(k + 1) * len];
            for (c, &y) in c.iter_mut().zip(&sc.y[..len]) {
                // SAFETY: y < n by construction above.
                *c = unsafe { *crow.get_unchecked(y) };
            }
            for ((a, &e), &c) in acc.iter_mut().zip(&sc.e[k * len..(k + 1) * len]).zip(c.iter()) {
                *a = *a + e * c;
            }
        }
    }
}

/// Forward pass of one block: the loss of each pixel into `out[base + j0..]`; returns the
/// first pixel whose loss is not finite.
#[inline(always)]
fn forward_block<T: Real>(
    p: &Params<T>,
    z: &[T],
    s: usize,
    blk: Block,
    labels: &LabelSlice,
    sc: &mut Scratch<T>,
    out: &mut [T],
) -> Option<usize> {
    softmax_block(p, z, s, blk, labels, sc);
    let mut bad = None;
    for jj in 0..blk.len {
        let mut loss = T::ZERO;
        let y = sc.y[jj];
        if let Some(w) = &p.ce {
            // logsumexp(z) − z_y = (max − z_y) + ln Σ exp(z − max): the difference first, so
            // that at |z| ≫ 1 the O(1) log term is not rounded away against max (at 1e8 an f32
            // ulp is 8); max − z_y is exact when z_y is near max.
            let ce = (sc.max[jj] - z[y * s + blk.j0 + jj]) + sc.sum[jj].ln();
            loss = loss + w[y] * ce;
        }
        if p.cost_t.is_some() {
            loss = loss + sc.acc[jj] / sc.sum[jj];
        }
        let loss = if sc.keep[jj] { loss } else { T::ZERO };
        // A NaN or +∞ logit at a counted pixel (its maximum is then not finite) is an error
        // even when the loss value happens to come out finite.
        if (!loss.is_finite() || (sc.keep[jj] && !sc.max[jj].is_finite())) && bad.is_none() {
            bad = Some(blk.j0 + jj);
        }
        out[jj] = loss;
    }
    bad
}

/// Backward pass of one block: `g[k][j]` for every class, written through `dst(k)`, the
/// block's slice of class `k` of the gradient.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_block<'a, T: Real>(
    p: &Params<T>,
    z: &[T],
    s: usize,
    blk: Block,
    labels: &LabelSlice,
    go: &[T],
    sc: &mut Scratch<T>,
    coef: &mut [Vec<T>; 4],
    mut dst: impl FnMut(usize) -> &'a mut [T],
) {
    softmax_block(p, z, s, blk, labels, sc);
    let len = blk.len;
    let [scale, lw, cew, inv] = coef;
    // g_k = scale · e_k · (c_k − L_W) + cew · (e_k / Σe − 1[k = y]),
    // with scale = dOut / Σe and cew = dOut · w[y]; zero at ignored pixels.
    for jj in 0..len {
        let g = if sc.keep[jj] { go[jj] } else { T::ZERO };
        inv[jj] = T::ONE / sc.sum[jj];
        scale[jj] = g * inv[jj];
        lw[jj] = sc.acc[jj] * inv[jj];
        cew[jj] = match &p.ce {
            Some(w) => g * w[sc.y[jj]],
            None => T::ZERO,
        };
    }
    for k in 0..p.n {
        let e = &sc.e[k * len..(k + 1) * len];
        let c = &sc.c[k * len..(k + 1) * len];
        let out = &mut dst(k)[..len];
        match (p.cost_t.is_some(), p.ce.is_some()) {
            (true, false) => {
                for jj in 0..len {
                    out[jj] = e[jj] * scale[jj] * (c[jj] - lw[jj]);
                }
            }
            (true, true) => {
                for jj in 0..len {
                    let onehot = if sc.y[jj] == k { T::ONE } else { T::ZERO };
                    let sk = e[jj] * scale[jj];
                    out[jj] = sk * (c[jj] - lw[jj]) + cew[jj] * (e[jj] * inv[jj] - onehot);
                }
            }
            (false, _) => {
                for jj in 0..len {
                    let onehot = if sc.y[jj] == k { T::ONE } else { T::ZERO };
                    out[jj] = cew[jj] * (e[jj] * inv[jj] - onehot);
                }
            }
        }
        // Ignored pixels: exactly zero, even if their logits were not finite.
        for jj in 0..len {
            if !sc.keep[jj] {
                out[jj] = T::ZERO;
            }
        }
    }
}

/// The block kernels compiled again for AVX2 + FMA (8-wide exp, hardware gathers); chosen at
/// run time by [`has_avx2_fma`], the baseline versions otherwise.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::*;

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn forward_block<T: Real>(
        p: &Params<T>,
        z: &[T],
        s: usize,
        blk: Block,
        labels: &LabelSlice,
        sc: &mut Scratch<T>,
        out: &mut [T],
    ) -> Option<usize> {
        super::forward_block(p, z, s, blk, labels, sc, out)
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn backward_block<'a, T: Real>(
        p: &Params<T>,
        z: &[T],
        s: usize,
        blk: Block,
        labels: &LabelSlice,
        go: &[T],
        sc: &mut Scratch<T>,
        coef: &mut [Vec<T>; 4],
        dst: impl FnMut(usize) -> &'a mut [T],
    ) {
        super::backward_block(p, z, s, blk, labels, go, sc, coef, dst)
    }
}

/// The loss map; the flat index of the first pixel whose loss is not finite goes to `bad`.
fn run_forward<T: Real>(
    p: &PixelLoss,
    z: &[T],
    labels: LabelSlice,
    (b, n, s): (usize, usize, usize),
    bad: &AtomicUsize,
) -> Vec<T> {
    let params = Params::<T>::new(p);
    debug_assert_eq!(labels.len, b * s);
    let bl = block_len(n);
    let per_image = s.div_ceil(bl);
    let mut out = vec![T::ZERO; b * s];
    let outp = SyncPtr(out.as_mut_ptr());
    let fast = has_avx2_fma();
    (0..b * per_image).into_par_iter().for_each_init(
        || Scratch::<T>::new(n, bl),
        |sc, task| {
            let (bi, k) = (task / per_image, task % per_image);
            let blk = Block { base: bi * s, j0: k * bl, len: bl.min(s - k * bl) };
            // SAFETY: each task owns the pixels j0..j0+len of image bi.
            let out = unsafe { std::slice::from_raw_parts_mut(outp.get().add(blk.base + blk.j0), blk.len) };
            let zb = &z[bi * n * s..(bi + 1) * n * s];
            #[cfg(target_arch = "x86_64")]
            let first_bad = if fast {
                // SAFETY: AVX2 and FMA were detected at run time.
                unsafe { avx2::forward_block(&params, zb, s, blk, &labels, sc, out) }
            } else {
                forward_block(&params, zb, s, blk, &labels, sc, out)
            };
            #[cfg(not(target_arch = "x86_64"))]
            let first_bad = forward_block(&params, zb, s, blk, &labels, sc, out);
            if let Some(j) = first_bad {
                bad.fetch_min(blk.base + j, Ordering::Relaxed);
            }
        },
    );
    out
}

fn run_backward<T: Real>(
    p: &PixelLoss,
    z: &[T],
    labels: LabelSlice,
    go: &[T],
    (b, n, s): (usize, usize, usize),
) -> Vec<T> {
    let params = Params::<T>::new(p);
    let bl = block_len(n);
    let per_image = s.div_ceil(bl);
    let mut out = vec![T::ZERO; b * n * s];
    let outp = SyncPtr(out.as_mut_ptr());
    let fast = has_avx2_fma();
    (0..b * per_image).into_par_iter().for_each_init(
        || (Scratch::<T>::new(n, bl), [vec![T::ZERO; bl], vec![T::ZERO; bl], vec![T::ZERO; bl], vec![T::ZERO; bl]]),
        |(sc, coef), task| {
            let (bi, k) = (task / per_image, task % per_image);
            let blk = Block { base: bi * s, j0: k * bl, len: bl.min(s - k * bl) };
            let zb = &z[bi * n * s..(bi + 1) * n * s];
            let gob = &go[blk.base + blk.j0..blk.base + blk.j0 + blk.len];
            // SAFETY: each task owns the pixels j0..j0+len of image bi, for every class.
            let dst = |c: usize| unsafe {
                std::slice::from_raw_parts_mut(outp.get().add(bi * n * s + c * s + blk.j0), blk.len)
            };
            #[cfg(target_arch = "x86_64")]
            if fast {
                // SAFETY: AVX2 and FMA were detected at run time.
                unsafe { avx2::backward_block(&params, zb, s, blk, &labels, gob, sc, coef, dst) }
            } else {
                backward_block(&params, zb, s, blk, &labels, gob, sc, coef, dst)
            }
            #[cfg(not(target_arch = "x86_64"))]
            backward_block(&params, zb, s, blk, &labels, gob, sc, coef, dst);
        },
    );
    out
}
