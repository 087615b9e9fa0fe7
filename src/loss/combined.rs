//! `CE + λ·W`: cross-entropy plus the exact Wasserstein loss, in one fused pass.

use super::wasserstein::check_ground;
use super::{check_logits_labels, cost_rows, count_valid_labels, reduce, LossConfig};
use crate::kernels::pixel_loss::PixelLoss;
use crate::{Error, GroundMatrix, Result};
use candle_core::Tensor;

/// `−log s_y + λ Σ_p s_p D[y][p]`: the mixture used when fine-tuning a CE-trained network with
/// the Wasserstein loss (Section IV). One fused kernel computes both terms and their gradient
/// `(s_k − 1[k=y]) + λ s_k (D[y][k] − L_W)`.
///
/// # Shapes
/// As [`super::wasserstein`]; `lambda` finite and `≥ 0`.
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::{loss::{self, LossConfig}, GroundMatrix};
/// let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1.0, 0.0]])?;
/// let z = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu)?;
/// let y = Tensor::new(&[0u32], &Device::Cpu)?;
/// let l = loss::ce_plus_wasserstein(&z, &y, &d, 2.0, LossConfig::default())?;
/// assert!((l.to_scalar::<f32>()? - (2f32.ln() + 2.0 * 0.5)).abs() < 1e-6);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn ce_plus_wasserstein(
    logits: &Tensor,
    labels: &Tensor,
    ground: &GroundMatrix,
    lambda: f64,
    cfg: LossConfig,
) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    check_ground(ground, shape.n)?;
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(Error::invalid("lambda", lambda, "the Wasserstein weight must be finite and >= 0"));
    }
    let cost = cost_rows(ground, Some(lambda), logits.dtype())?;
    let n_valid = count_valid_labels(labels, shape.n, cfg.ignore_index)?;
    let op = PixelLoss { n: shape.n, ce_weights: Some(vec![1.0; shape.n]), cost: Some(cost), ignore: cfg.ignore_index };
    let (map, checked) = op.map("ce_plus_wasserstein", &logits.contiguous()?, &labels.contiguous()?)?;
    reduce("ce_plus_wasserstein", map, labels.dims(), n_valid, cfg.reduction, checked)
}
