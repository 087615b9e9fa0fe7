//! Cross-entropy and the importance-aware cross-entropy (IAL).

use super::{check_logits_labels, count_valid_labels, reduce, LossConfig};
use crate::kernels::pixel_loss::PixelLoss;
use crate::{Error, Result};
use candle_core::{DType, Tensor};

/// Pixel-wise cross-entropy `−log s_y = logsumexp(z) − z_y`, the baseline the paper starts
/// from (it only looks at the true class's probability, so car→bus and car→road cost the
/// same).
///
/// Gradient `s_k − 1[k = y]`, computed by the same fused kernel as [`super::wasserstein`], so
/// the two are benchmarked on equal terms.
///
/// # Shapes
/// - `logits`: `[B, N, H, W]` or `[B, N]`, `f32` or `f64`
/// - `labels`: `[B, H, W]` or `[B]`
/// - result: a scalar, or the per-pixel map with [`super::Reduction::None`]
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::loss::{cross_entropy, LossConfig};
/// let logits = Tensor::new(&[[0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()]], &Device::Cpu)?;
/// let ce = cross_entropy(&logits, &Tensor::new(&[0u32], &Device::Cpu)?, LossConfig::default())?;
/// assert!((ce.to_scalar::<f32>()? + 0.6f32.ln()).abs() < 1e-6);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn cross_entropy(logits: &Tensor, labels: &Tensor, cfg: LossConfig) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
    weighted("cross_entropy", logits, labels, vec![1.0; shape.n], cfg)
}

/// Importance-aware cross-entropy: `w[y] · (−log s_y)` with one weight per true class, e.g.
/// `ImportanceWeights::default().class_weights(&CAMVID)`. Its linearisation `w[y](1 − s_y)`
/// is the Wasserstein loss under [`crate::GroundMatrix::importance_aware`].
///
/// # Shapes
/// As [`cross_entropy`]; `class_weights` has `N` finite entries `≥ 0`.
pub fn importance_aware_cross_entropy(
    logits: &Tensor,
    labels: &Tensor,
    class_weights: &[f64],
    cfg: LossConfig,
) -> Result<Tensor> {
    let shape = check_logits_labels(logits, labels)?;
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
    let limit = if logits.dtype() == DType::F32 { f32::MAX as f64 } else { f64::MAX };
    if let Some((k, w)) = class_weights.iter().enumerate().find(|(_, w)| **w > limit) {
        return Err(Error::invalid(
            "class weight",
            w,
            format!("weight of class {k} overflows {:?} logits", logits.dtype()),
        ));
    }
    weighted("importance_aware_cross_entropy", logits, labels, class_weights.to_vec(), cfg)
}

fn weighted(
    name: &'static str,
    logits: &Tensor,
    labels: &Tensor,
    weights: Vec<f64>,
    cfg: LossConfig,
) -> Result<Tensor> {
    let n = weights.len();
    let n_valid = count_valid_labels(labels, n, cfg.ignore_index)?;
    let op = PixelLoss { n, ce_weights: Some(weights), cost: None, ignore: cfg.ignore_index };
    let (map, checked) = op.map(name, &logits.contiguous()?, &labels.contiguous()?)?;
    reduce(name, map, labels.dims(), n_valid, cfg.reduction, checked)
}
