//! The `ℓ1` / total-variation loss of Eq. 5.

use super::wasserstein::mask_pixels;
use super::{check_logits_labels, count_valid_labels, reduce, LossConfig, Reduction};
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// `½ ‖s − t‖₁` between the softmax of `logits` and one-hot `labels` (Eq. 5): the Wasserstein
/// distance under the step transform `f(d) = 1[d ≠ 0]`, which costs every mistake the same.
/// Built from candle ops on purpose — it is the independent check of the step transform in the
/// fused Wasserstein kernel.
///
/// # Shapes
/// As [`super::wasserstein`].
pub fn l1(logits: &Tensor, labels: &Tensor, cfg: LossConfig) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    let n_valid = count_valid_labels(labels, shape.n, cfg.ignore_index)?;
    let (b, n, s) = (shape.b, shape.n, shape.s);
    let flat = labels.flatten_all()?.to_dtype(DType::I64)?;
    let lab = flat.reshape((b, 1, s))?;
    let classes = Tensor::arange(0i64, n as i64, logits.device())?.reshape((1, n, 1))?;
    let onehot = lab.broadcast_eq(&classes)?.to_dtype(logits.dtype())?;
    let z = logits.reshape((b, n, s))?;
    let per_pixel = match cfg.ignore_index {
        Some(i) => {
            // Ignored pixels may hold anything: their logits are zeroed before the softmax
            // so that no NaN reaches the loss or the gradient.
            let keep = flat.ne(i as i64)?;
            let per_pixel = half_l1(&mask_pixels(&z, &keep)?, &onehot)?;
            (per_pixel * keep.to_dtype(logits.dtype())?.reshape((b, s))?)?
        }
        None => half_l1(&z, &onehot)?,
    };
    reduce("l1", per_pixel, labels.dims(), n_valid, cfg.reduction, false)
}

/// `½ ‖s − t‖₁` against soft targets `t` (histograms over the class dimension, Eq. 5).
///
/// Target masses must be finite and `≥ 0` (an [`Error::NotAHistogram`] names the first one
/// that is not); a pixel whose loss is not finite is an [`Error::NonFiniteLoss`].
///
/// # Shapes
/// - `logits`, `targets`: `[B, N, ...]`, same shape and float dtype
/// - result: mean or sum over all pixels, or the map `[B, ...]` with [`Reduction::None`]
pub fn l1_soft(logits: &Tensor, targets: &Tensor, reduction: Reduction) -> Result<Tensor> {
    if logits.dims() != targets.dims() {
        return Err(Error::shape("targets vs logits", format!("{:?}", logits.dims()), format!("{:?}", targets.dims())));
    }
    if logits.rank() < 2 {
        return Err(Error::shape("logits", "[B, N, ...]", format!("{:?}", logits.dims())));
    }
    if !matches!(logits.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType { what: "logits", expected: "f32 or f64", got: logits.dtype() });
    }
    if !targets.dtype().is_float() {
        return Err(Error::DType { what: "targets", expected: "a float type", got: targets.dtype() });
    }
    let d = logits.dims();
    let (b, n, s) = (d[0], d[1], d[2..].iter().product::<usize>());
    if n == 0 {
        return Err(Error::shape("logits class dimension", "N >= 1", "0"));
    }
    let t = targets.to_dtype(logits.dtype())?.reshape((b, n, s))?;
    check_masses(&t)?;
    let per_pixel = half_l1(&logits.reshape((b, n, s))?, &t)?;
    let mut out_dims = vec![b];
    out_dims.extend_from_slice(&d[2..]);
    reduce("l1_soft", per_pixel, &out_dims, b * s, reduction, false)
}

/// Fails on the first target mass (`[B, N, S]`) that is NaN, infinite or negative.
fn check_masses(t: &Tensor) -> Result<()> {
    let largest = if t.dtype() == DType::F32 { f32::MAX as f64 } else { f64::MAX };
    // NaN fails both comparisons, ±∞ one of them.
    let ok = t.ge(0.0)?.mul(&t.le(largest)?)?;
    if ok.to_dtype(DType::U32)?.sum_all()?.to_scalar::<u32>()? as usize == t.elem_count() {
        return Ok(());
    }
    let (_, n, s) = t.dims3()?;
    let host = t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?;
    let i = host.iter().position(|v| !(v.is_finite() && *v >= 0.0)).unwrap_or(0);
    Err(Error::NotAHistogram {
        what: format!("target of image {} at pixel {}", i / (n * s), i % s),
        reason: format!("class {} has mass {}; masses must be finite and >= 0", (i / s) % n, host[i]),
    })
}

fn half_l1(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let probs = candle_nn::ops::softmax(logits, 1)?;
    Ok(((probs - targets)?.abs()?.sum(1)? * 0.5)?)
}
