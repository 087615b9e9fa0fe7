//! `CE + λ·W`: cross-entropy plus the exact Wasserstein loss, in one fused pass.

use super::wasserstein::check_ground;
use super::{check_logits_labels, cost_rows, reduce, LossConfig};
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
    fused("ce_plus_wasserstein", logits, labels, vec![1.0; shape.n], ground, lambda, cfg)
}

/// `w[y]·(−log s_y) + λ Σ_p s_p D[y][p]`: [`ce_plus_wasserstein`] with a class-weighted CE
/// term (class balancing, e.g. [`crate::train::ClassWeighting`]), still one fused pass with
/// the gradient `w[y](s_k − 1[k=y]) + λ s_k (D[y][k] − L_W)`.
///
/// # Shapes
/// As [`super::wasserstein`]; `class_weights` has `N` finite entries `≥ 0`, `lambda` finite
/// and `≥ 0`.
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::{loss::{self, LossConfig}, GroundMatrix};
/// let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1.0, 0.0]])?;
/// let z = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu)?;
/// let y = Tensor::new(&[1u32], &Device::Cpu)?;
/// // 3·ln 2 + 2·0.5
/// let l = loss::weighted_ce_plus_wasserstein(&z, &y, &[1.0, 3.0], &d, 2.0, LossConfig::default())?;
/// assert!((l.to_scalar::<f32>()? - (3.0 * 2f32.ln() + 1.0)).abs() < 1e-6);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn weighted_ce_plus_wasserstein(
    logits: &Tensor,
    labels: &Tensor,
    class_weights: &[f64],
    ground: &GroundMatrix,
    lambda: f64,
    cfg: LossConfig,
) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    check_ground(ground, shape.n)?;
    if !(lambda.is_finite() && lambda >= 0.0) {
        return Err(Error::invalid("lambda", lambda, "the Wasserstein weight must be finite and >= 0"));
    }
    if class_weights.len() != shape.n {
        return Err(Error::ClassCount {
            what: "class weights vs logits' class dimension",
            expected: shape.n,
            got: class_weights.len(),
        });
    }
    if let Some((k, w)) = class_weights.iter().enumerate().find(|(_, w)| !w.is_finite() || **w < 0.0) {
        return Err(Error::invalid("class weight", w, format!("weight of class {k} must be finite and >= 0")));
    }
    fused("weighted_ce_plus_wasserstein", logits, labels, class_weights.to_vec(), ground, lambda, cfg)
}

fn fused(
    name: &'static str,
    logits: &Tensor,
    labels: &Tensor,
    ce_weights: Vec<f64>,
    ground: &GroundMatrix,
    lambda: f64,
    cfg: LossConfig,
) -> Result<Tensor> {
    let n = ce_weights.len();
    let cost = cost_rows(ground, Some(lambda), logits.dtype())?;
    let op = PixelLoss { n, ce_weights: Some(ce_weights), cost: Some(cost), ignore: cfg.ignore_index };
    let (map, checked, n_valid) = op.map(name, &logits.contiguous()?, &labels.contiguous()?)?;
    reduce(name, map, labels.dims(), n_valid, cfg.reduction, checked)
}
