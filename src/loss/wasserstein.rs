//! The exact one-hot Wasserstein loss (Eq. 2, Theorem 1).

use super::{check_logits_labels, cost_rows, count_valid_labels, reduce, LossConfig};
use crate::kernels::pixel_loss::PixelLoss;
use crate::{Error, GroundMatrix, Result};
use candle_core::{DType, Tensor};

/// The exact Wasserstein loss between the softmax of `logits` and one-hot `labels` under a
/// ground matrix `D` (pass `d.transform(f)?` to use `f(D)`):
///
/// `L(s, y) = Σ_p s_p · D[y][p]`  (Eq. 2)
///
/// With a one-hot target, Theorem 1 says the only feasible transport plan moves every bin of
/// `s` to `y`, so this is the optimal value of Eq. 1 computed in O(N) per pixel. The gradient
/// with respect to the logits is `s_k (D[y][k] − L)`, computed analytically by a fused op
/// (CPU and CUDA) — see [`wasserstein_composed`] for the same loss built from candle ops.
///
/// # Shapes
/// - `logits`: `[B, N, H, W]` or `[B, N]` (any trailing spatial dims), `f32` or `f64`
/// - `labels`: `[B, H, W]` or `[B]`, integers in `0..N` or `cfg.ignore_index`
/// - result: a scalar, or the loss map shaped like `labels` with [`super::Reduction::None`]
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::{loss::{self, LossConfig}, GroundMatrix};
/// let d = GroundMatrix::from_rows(["car", "bus", "road"], [[0.0, 0.1, 0.9], [0.1, 0.0, 0.9], [0.3, 0.3, 0.0]])?;
/// // One pixel of a car: 60 % car, 30 % bus, 10 % road.
/// let logits = Tensor::new(&[[0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()]], &Device::Cpu)?;
/// let labels = Tensor::new(&[0u32], &Device::Cpu)?;
/// let w = loss::wasserstein(&logits, &labels, &d, LossConfig::default())?;
/// assert!((w.to_scalar::<f32>()? - (0.3 * 0.1 + 0.1 * 0.9)).abs() < 1e-6);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn wasserstein(logits: &Tensor, labels: &Tensor, ground: &GroundMatrix, cfg: LossConfig) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    check_ground(ground, shape.n)?;
    let cost = cost_rows(ground, None, logits.dtype())?;
    let op = PixelLoss { n: shape.n, ce_weights: None, cost: Some(cost), ignore: cfg.ignore_index };
    let (map, checked, n_valid) = op.map("wasserstein", &logits.contiguous()?, &labels.contiguous()?)?;
    reduce("wasserstein", map, labels.dims(), n_valid, cfg.reduction, checked)
}

/// Eq. 2 built from candle operations (softmax, a gather of the cost rows, a sum), with
/// candle's autograd for the backward pass. Same values as [`wasserstein`]; kept as the
/// independent reference of its fused kernel and benchmarked against it.
pub fn wasserstein_composed(
    logits: &Tensor,
    labels: &Tensor,
    ground: &GroundMatrix,
    cfg: LossConfig,
) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    check_ground(ground, shape.n)?;
    let n_valid = count_valid_labels(labels, shape.n, cfg.ignore_index)?;
    let (b, n, s) = (shape.b, shape.n, shape.s);
    let dev = logits.device();
    cost_rows(ground, None, logits.dtype())?;
    let lab = labels.flatten_all()?.to_dtype(DType::I64)?;
    let z = logits.reshape((b, n, s))?;
    let (z, keep) = match cfg.ignore_index {
        Some(i) => {
            let keep = lab.ne(i as i64)?;
            // Ignored pixels may hold anything: zero their logits so that neither the loss
            // nor the gradient sees a NaN there (0 · NaN is NaN, a select is not).
            let z = mask_pixels(&z, &keep)?;
            (z, keep)
        }
        None => (z, lab.ones_like()?.to_dtype(DType::U8)?),
    };
    let probs = candle_nn::ops::softmax(&z, 1)?;
    let safe = keep.where_cond(&lab, &lab.zeros_like()?)?;
    let cost = ground.to_tensor_dtype(dev, logits.dtype())?;
    let rows = cost.index_select(&safe, 0)?.reshape((b, s, n))?.transpose(1, 2)?;
    let per_pixel = (probs * rows)?.sum(1)?;
    let per_pixel = (per_pixel * keep.to_dtype(logits.dtype())?.reshape((b, s))?)?;
    reduce("wasserstein_composed", per_pixel, labels.dims(), n_valid, cfg.reduction, false)
}

/// Logits `[B, N, S]` with the pixels where `keep` (`[B·S]`, `u8`) is 0 set to 0.
pub(crate) fn mask_pixels(z: &Tensor, keep: &Tensor) -> Result<Tensor> {
    let (b, n, s) = z.dims3()?;
    let mask = keep.reshape((b, 1, s))?.broadcast_as((b, n, s))?.contiguous()?;
    Ok(mask.where_cond(z, &z.zeros_like()?)?)
}

pub(crate) fn check_ground(ground: &GroundMatrix, n: usize) -> Result<()> {
    if ground.num_classes() != n {
        return Err(Error::ClassCount {
            what: "ground matrix vs logits' class dimension",
            expected: n,
            got: ground.num_classes(),
        });
    }
    Ok(())
}
