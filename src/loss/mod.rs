//! Losses on logits `[B, N, H, W]` (or `[B, N]`) and integer labels `[B, H, W]` (or `[B]`).
//!
//! | loss | paper | file |
//! |---|---|---|
//! | [`wasserstein`] (exact one-hot, any `D` and `f`) | Eq. 2, Theorem 1 | `wasserstein.rs` |
//! | [`cross_entropy`], [`importance_aware_cross_entropy`] | CE baseline, IAL | `cross_entropy.rs` |
//! | [`cross_entropy_soft`] (soft targets: CRST-LRENT's soft pseudo-labels) | Table III baseline | `cross_entropy.rs` |
//! | [`l1`], [`l1_soft`] (`½‖s − t‖₁`) | Eq. 5 | `l1.rs` |
//! | [`ce_plus_wasserstein`] (`CE + λ·W`), [`weighted_ce_plus_wasserstein`] (class-weighted CE term) | Section IV, fine-tuning | `combined.rs` |
//! | [`wasserstein_soft`] (soft targets, Sinkhorn) | Section IV.B–C | `sinkhorn.rs` |
//!
//! Every loss takes a [`LossConfig`]: an optional ignore label (CamVid 11, Cityscapes 255),
//! whose pixels contribute neither to the loss nor to the gradient, and a [`Reduction`]
//! (mean over the non-ignored pixels by default).
//!
//! Labels may be `u8`, `u32`, `i16`, `i32` or `i64`; logits `f32` or `f64`. A label that is
//! neither a class nor the ignore label is an [`Error::LabelOutOfRange`] naming its value and
//! position; a shape or dtype mismatch is an error naming both shapes or the dtype.
//!
//! No loss returns a NaN: a pixel that counts whose loss is not finite — a NaN or `+∞` logit,
//! a `−∞` where the loss needs that class's probability (cross-entropy's true class), or
//! logits too far apart for their dtype — is an [`Error::NonFiniteLoss`] naming the loss, the
//! image and the pixel. An ignored pixel may hold anything: its loss and gradient are exactly
//! 0. A ground matrix (times λ) too large for the logits' dtype is refused naming it, and a
//! [`Reduction::Sum`] that overflows is an error; a mean never overflows.

mod combined;
mod cross_entropy;
mod l1;
mod sinkhorn;
mod wasserstein;

pub use combined::{ce_plus_wasserstein, weighted_ce_plus_wasserstein};
pub use cross_entropy::{cross_entropy, cross_entropy_soft, importance_aware_cross_entropy};
pub use l1::{l1, l1_soft};
pub use sinkhorn::{wasserstein_soft, SoftWasserstein};
pub use wasserstein::{wasserstein, wasserstein_composed};

use crate::ot::sinkhorn::MASS_TOLERANCE;
use crate::{Error, Result};
use candle_core::{CpuStorage, DType, Storage, Tensor};

/// How per-pixel losses are reduced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Reduction {
    /// Mean over non-ignored pixels (0 when every pixel is ignored).
    #[default]
    Mean,
    /// Sum over non-ignored pixels.
    Sum,
    /// The per-pixel loss map, shaped like the labels, 0 at ignored pixels.
    None,
}

/// Options shared by every loss.
///
/// ```
/// use rwt::loss::{LossConfig, Reduction};
/// let cfg = LossConfig { ignore_index: Some(11), ..Default::default() };
/// assert_eq!(cfg.reduction, Reduction::Mean);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LossConfig {
    /// Label value to ignore (`None`: every label must be a class).
    pub ignore_index: Option<u32>,
    /// How to reduce the per-pixel losses.
    pub reduction: Reduction,
}

impl LossConfig {
    /// Mean over pixels, ignoring `label`.
    pub fn ignoring(label: u32) -> Self {
        LossConfig { ignore_index: Some(label), reduction: Reduction::Mean }
    }

    /// The same configuration with another reduction.
    pub fn with_reduction(self, reduction: Reduction) -> Self {
        LossConfig { reduction, ..self }
    }
}

/// Shape of a pixel-wise problem: `B` images, `N` classes, `S` pixels per image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PixelShape {
    pub b: usize,
    pub n: usize,
    pub s: usize,
}

/// Checks dtypes and shapes of logits `[B, N, ...]` against labels `[B, ...]`.
pub(crate) fn check_logits_labels(logits: &Tensor, labels: &Tensor) -> Result<PixelShape> {
    if !matches!(logits.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType { what: "logits", expected: "f32 or f64", got: logits.dtype() });
    }
    if !labels.dtype().is_int() {
        return Err(Error::DType {
            what: "labels",
            expected: "an integer type (u8, u32, i16, i32, i64)",
            got: labels.dtype(),
        });
    }
    let ld = logits.dims();
    if ld.len() < 2 {
        return Err(Error::shape("logits", "[B, N] or [B, N, H, W]", format!("{ld:?}")));
    }
    let mut expected = vec![ld[0]];
    expected.extend_from_slice(&ld[2..]);
    if labels.dims() != expected.as_slice() {
        return Err(Error::shape(
            format!("labels for logits {ld:?}"),
            format!("{expected:?} (logits without the class dimension)"),
            format!("{:?}", labels.dims()),
        ));
    }
    if ld[1] == 0 {
        return Err(Error::shape("logits class dimension", "N >= 1", "0"));
    }
    if !logits.device().same_device(labels.device()) {
        return Err(Error::invalid(
            "labels device",
            format!("{:?}", labels.device()),
            format!("must be on the logits' device {:?}", logits.device()),
        ));
    }
    Ok(PixelShape { b: ld[0], n: ld[1], s: ld[2..].iter().product() })
}

/// Counts the non-ignored labels and fails on the first label that is neither a class nor the
/// ignore label.
pub(crate) fn count_valid_labels(labels: &Tensor, n: usize, ignore: Option<u32>) -> Result<usize> {
    {
        let (storage, layout) = labels.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((o1, o2))) = (&*storage, layout.contiguous_offsets()) {
            return match cpu {
                CpuStorage::U8(v) => scan_labels(&v[o1..o2], n, ignore),
                CpuStorage::U32(v) => scan_labels(&v[o1..o2], n, ignore),
                CpuStorage::I16(v) => scan_labels(&v[o1..o2], n, ignore),
                CpuStorage::I32(v) => scan_labels(&v[o1..o2], n, ignore),
                CpuStorage::I64(v) => scan_labels(&v[o1..o2], n, ignore),
                _ => Err(Error::DType { what: "labels", expected: "an integer type", got: labels.dtype() }),
            };
        }
    }
    // Other devices (or strided labels): reduce on the device, one small copy back.
    let l = labels.to_dtype(DType::I64)?;
    let valid = match ignore {
        Some(i) => l.ne(i as i64)?,
        None => l.ones_like()?.to_dtype(DType::U8)?,
    };
    let bad = l.ge(n as i64)?.maximum(&l.lt(0i64)?)?.mul(&valid)?;
    let n_bad = bad.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()?;
    if n_bad > 0 {
        return scan_labels(&l.flatten_all()?.to_vec1::<i64>()?, n, ignore);
    }
    Ok(valid.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize)
}

/// Integer label types read directly from CPU storage.
pub(crate) trait LabelInt: Copy + Send + Sync + 'static {
    /// The label as a signed integer.
    fn get(self) -> i64;
}

macro_rules! label_int {
    ($($t:ty),*) => {$(impl LabelInt for $t { #[inline(always)] fn get(self) -> i64 { self as i64 } })*};
}
label_int!(u8, u32, i16, i32, i64);

fn scan_labels<L: LabelInt>(labels: &[L], n: usize, ignore: Option<u32>) -> Result<usize> {
    let ign = ignore.map(i64::from);
    let mut count = 0usize;
    for (position, &l) in labels.iter().enumerate() {
        let l = l.get();
        if Some(l) == ign {
            continue;
        }
        if l < 0 || l >= n as i64 {
            return Err(Error::LabelOutOfRange { label: l, position, num_classes: n, ignore_index: ignore });
        }
        count += 1;
    }
    Ok(count)
}

/// All labels of a tensor as `i64`, in row-major order.
pub(crate) fn labels_to_i64(labels: &Tensor) -> Result<Vec<i64>> {
    if !labels.dtype().is_int() {
        return Err(Error::DType {
            what: "labels",
            expected: "an integer type (u8, u32, i16, i32, i64)",
            got: labels.dtype(),
        });
    }
    Ok(labels.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?)
}

/// Applies the reduction to a per-pixel loss map `[B, S]` (0 at ignored pixels), reshaped to
/// `out_dims` with [`Reduction::None`], and makes sure that what it hands back is finite.
///
/// `checked`: every entry of `map` is already known to be finite (the CPU fused kernel checks
/// each pixel as it goes). Otherwise a non-finite total sends the map to the host once to name
/// the first bad pixel. With every pixel finite, a mean whose plain sum overflows is summed
/// again pre-scaled (it cannot overflow: it is at most the largest pixel loss), and a sum that
/// overflows is an error.
///
/// # Errors
/// [`Error::NonFiniteLoss`] naming the image and pixel; [`Error::InvalidArgument`] for a
/// [`Reduction::Sum`] beyond the dtype's range.
pub(crate) fn reduce(
    loss: &'static str,
    map: Tensor,
    out_dims: &[usize],
    n_valid: usize,
    reduction: Reduction,
    checked: bool,
) -> Result<Tensor> {
    let scale = 1.0 / n_valid.max(1) as f64;
    let total = match reduction {
        Reduction::None if checked => return Ok(map.reshape(out_dims)?),
        Reduction::None | Reduction::Sum => map.sum_all()?,
        Reduction::Mean => (map.sum_all()? * scale)?,
    };
    if scalar(&total)?.is_finite() {
        return Ok(if reduction == Reduction::None { map.reshape(out_dims)? } else { total });
    }
    if !checked {
        first_non_finite(loss, &map)?;
    }
    match reduction {
        Reduction::None => Ok(map.reshape(out_dims)?),
        Reduction::Mean => Ok((map * scale)?.sum_all()?),
        Reduction::Sum => Err(Error::invalid(
            "reduction",
            "Sum",
            format!(
                "the {loss} summed over {n_valid} pixels overflows {:?}; use Reduction::Mean or f64 logits",
                total.dtype()
            ),
        )),
    }
}

/// A scalar tensor's value as `f64`.
fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// Fails with [`Error::NonFiniteLoss`] at the first non-finite entry of a loss map `[B, S]`.
pub(crate) fn first_non_finite(loss: &'static str, map: &Tensor) -> Result<()> {
    let (_, s) = map.dims2()?;
    let host = map.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    match host.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NonFiniteLoss { loss, image: i / s.max(1), pixel: i % s.max(1) }),
        None => Ok(()),
    }
}

/// The cost rows `λ · D` (`D` without `lambda`) as the fused kernels take them, checked to be
/// representable in the logits' dtype with room for a sum over `N` classes (largest entry
/// `≤ MAX / N`), so that a large but valid matrix (or a large λ) is refused here, naming it,
/// rather than overflowing in the kernel and being blamed on the logits.
pub(crate) fn cost_rows(ground: &crate::GroundMatrix, lambda: Option<f64>, dtype: DType) -> Result<Vec<f64>> {
    let n = ground.num_classes();
    let limit = match dtype {
        DType::F32 => f32::MAX as f64,
        _ => f64::MAX,
    } / n.max(1) as f64;
    let scale = lambda.unwrap_or(1.0);
    let rows: Vec<f64> = ground.values().iter().map(|v| scale * v).collect();
    let max = rows.iter().copied().fold(0.0, f64::max);
    if max <= limit {
        return Ok(rows);
    }
    let reason = format!(
        "{dtype:?} logits need cost entries <= {limit:e} (the largest finite value / N); normalise D or use f64 logits"
    );
    Err(match lambda {
        Some(l) => Error::invalid("lambda", l, format!("lambda · max D = {max:e}: {reason}")),
        None => Error::invalid("ground matrix", format!("max D = {:e}", ground.max()), reason),
    })
}

/// Checks that every pixel's target (`[B, N, S]`) is a histogram — entries finite, `≥ 0`,
/// summing to 1 within `1e-4` — or all zeros (an ignored
/// pixel); returns the number of live (non-zero) pixels.
pub(crate) fn check_soft_targets(t: &Tensor) -> Result<usize> {
    let (b, n, s) = t.dims3()?;
    let host: Vec<f64> = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1()?;
    let mut live = 0;
    for bi in 0..b {
        for j in 0..s {
            let mut sum = 0.0;
            for k in 0..n {
                let v = host[(bi * n + k) * s + j];
                if !v.is_finite() || v < 0.0 {
                    return Err(Error::NotAHistogram {
                        what: format!("target of image {bi} at pixel {j}"),
                        reason: format!("class {k} has mass {v}; masses must be finite and >= 0"),
                    });
                }
                sum += v;
            }
            if sum == 0.0 {
                continue;
            }
            if (sum - 1.0).abs() > MASS_TOLERANCE {
                return Err(Error::NotAHistogram {
                    what: format!("target of image {bi} at pixel {j}"),
                    reason: format!(
                        "sums to {sum}, not 1 (tolerance {MASS_TOLERANCE}); an all-zero target marks an ignored pixel"
                    ),
                });
            }
            live += 1;
        }
    }
    Ok(live)
}
