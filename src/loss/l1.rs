//! The `ℓ1` / total-variation loss of Eq. 5.

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
    let lab = labels.flatten_all()?.to_dtype(DType::I64)?.reshape((b, 1, s))?;
    let classes = Tensor::arange(0i64, n as i64, logits.device())?.reshape((1, n, 1))?;
    let onehot = lab.broadcast_eq(&classes)?.to_dtype(logits.dtype())?;
    let per_pixel = half_l1(&logits.reshape((b, n, s))?, &onehot)?;
    let keep = match cfg.ignore_index {
        Some(i) => lab.ne(i as i64)?.to_dtype(logits.dtype())?.reshape((b, s))?,
        None => per_pixel.ones_like()?,
    };
    reduce((per_pixel * keep)?, labels, n_valid, cfg.reduction)
}

/// `½ ‖s − t‖₁` against soft targets `t` (histograms over the class dimension, Eq. 5).
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
    let d = logits.dims();
    let (b, n, s) = (d[0], d[1], d[2..].iter().product::<usize>());
    let per_pixel = half_l1(&logits.reshape((b, n, s))?, &targets.to_dtype(logits.dtype())?.reshape((b, n, s))?)?;
    let mut out_dims = vec![b];
    out_dims.extend_from_slice(&d[2..]);
    Ok(match reduction {
        Reduction::None => per_pixel.reshape(out_dims)?,
        Reduction::Sum => per_pixel.sum_all()?,
        Reduction::Mean => per_pixel.mean_all()?,
    })
}

fn half_l1(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let probs = candle_nn::ops::softmax(logits, 1)?;
    Ok(((probs - targets)?.abs()?.sum(1)? * 0.5)?)
}
