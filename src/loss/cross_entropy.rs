//! Cross-entropy and the importance-aware cross-entropy (IAL).

use super::{check_logits_labels, reduce, LossConfig};
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
    let op = PixelLoss { n, ce_weights: Some(weights), cost: None, ignore: cfg.ignore_index };
    let (map, checked, n_valid) = op.map(name, &logits.contiguous()?, &labels.contiguous()?)?;
    reduce(name, map, labels.dims(), n_valid, cfg.reduction, checked)
}

/// Cross-entropy to soft targets, `−Σ_k t_k log s_k` per pixel (`s = softmax(z)`): the loss
/// CRST-LRENT trains with on its soft pseudo-labels (Zou et al. 2019), the baseline of the
/// Sinkhorn Wasserstein loss in Table III. With one-hot targets it is [`cross_entropy`].
///
/// Gradient `∂L/∂z_k = s_k Σ_j t_j − t_k` (= `s_k − t_k` for a histogram), by autograd.
///
/// Pixels whose target is all zeros are ignored (no loss, no gradient; the mean is over the
/// others); the other targets must be histograms (entries finite, `≥ 0`, summing to 1 within
/// `1e-4`). A class with target mass 0 contributes nothing, whatever its logit.
///
/// # Errors
/// Shape and dtype mismatches, a target that is not a histogram (image, pixel and class
/// named), and [`Error::NonFiniteLoss`] for a live pixel whose loss is not finite.
///
/// # Shapes
/// - `logits`: `[B, N, ...]`, `f32` or `f64`
/// - `targets`: the same shape, float
/// - result: a scalar, or the per-pixel map `[B, ...]` with [`super::Reduction::None`]
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// use rwt::loss::{cross_entropy_soft, Reduction};
/// let logits = Tensor::new(&[[0.6f32.ln(), 0.3f32.ln(), 0.1f32.ln()]], &Device::Cpu)?;
/// let t = Tensor::new(&[[0.5f32, 0.5, 0.0]], &Device::Cpu)?;
/// let ce = cross_entropy_soft(&logits, &t, Reduction::Mean)?.to_scalar::<f32>()?;
/// assert!((ce + 0.5 * 0.6f32.ln() + 0.5 * 0.3f32.ln()).abs() < 1e-6);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn cross_entropy_soft(logits: &Tensor, targets: &Tensor, reduction: super::Reduction) -> Result<Tensor> {
    if !matches!(logits.dtype(), DType::F32 | DType::F64) {
        return Err(Error::DType { what: "logits", expected: "f32 or f64", got: logits.dtype() });
    }
    if !targets.dtype().is_float() {
        return Err(Error::DType { what: "targets", expected: "a float type", got: targets.dtype() });
    }
    let dims = logits.dims();
    if dims.len() < 2 || dims[1] == 0 {
        return Err(Error::shape("logits", "[B, N, ...] with N >= 1", format!("{dims:?}")));
    }
    if targets.dims() != dims {
        return Err(Error::shape("targets vs logits", format!("{dims:?}"), format!("{:?}", targets.dims())));
    }
    let (b, n, s) = (dims[0], dims[1], dims[2..].iter().product::<usize>());
    let z = logits.reshape((b, n, s))?;
    let t = targets.to_dtype(logits.dtype())?.reshape((b, n, s))?;
    let live = super::check_soft_targets(&t)?;
    let log_s = candle_nn::ops::log_softmax(&z, 1)?;
    // Classes without target mass are masked out, so that a −∞ logit there costs nothing.
    let terms = t.gt(0.0)?.where_cond(&(&t * &log_s)?, &t.zeros_like()?)?;
    let map = terms.sum(1)?.neg()?;
    let mut out_dims = vec![b];
    out_dims.extend_from_slice(&dims[2..]);
    reduce("cross_entropy_soft", map, &out_dims, live, reduction, false)
}

#[cfg(test)]
mod soft_tests {
    use super::*;
    use crate::loss::Reduction;
    use candle_core::{Device, Var};

    fn soft(z: &[f64], t: &[f64], n: usize) -> f64 {
        let zt = Tensor::from_vec(z.to_vec(), (1, n, z.len() / n), &Device::Cpu).unwrap();
        let tt = Tensor::from_vec(t.to_vec(), (1, n, t.len() / n), &Device::Cpu).unwrap();
        cross_entropy_soft(&zt, &tt, Reduction::Mean).unwrap().to_scalar::<f64>().unwrap()
    }

    #[test]
    fn one_hot_targets_give_cross_entropy() {
        let z = Tensor::new(&[[[0.3f64, -1.0], [2.0, 0.5], [-0.7, 0.1]]], &Device::Cpu).unwrap(); // [1, 3, 2]
        let y = Tensor::new(&[[1u32, 2]], &Device::Cpu).unwrap();
        let t = Tensor::new(&[[[0.0f64, 0.0], [1.0, 0.0], [0.0, 1.0]]], &Device::Cpu).unwrap();
        let a = cross_entropy(&z, &y, LossConfig::default()).unwrap().to_scalar::<f64>().unwrap();
        let b = cross_entropy_soft(&z, &t, Reduction::Mean).unwrap().to_scalar::<f64>().unwrap();
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn gradient_matches_central_differences() {
        // One pixel, four classes, a soft target: the closed form s − t against f64 differences.
        let z = [0.2, -0.4, 1.1, 0.05];
        let t = [0.1, 0.0, 0.7, 0.2];
        let var = Var::from_tensor(&Tensor::from_vec(z.to_vec(), (1, 4, 1), &Device::Cpu).unwrap()).unwrap();
        let tt = Tensor::from_vec(t.to_vec(), (1, 4, 1), &Device::Cpu).unwrap();
        let loss = cross_entropy_soft(var.as_tensor(), &tt, Reduction::Mean).unwrap();
        let g = loss.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for k in 0..4 {
            let (mut up, mut down) = (z, z);
            up[k] += h;
            down[k] -= h;
            let fd = (soft(&up, &t, 4) - soft(&down, &t, 4)) / (2.0 * h);
            assert!((g[k] - fd).abs() < 1e-7, "class {k}: autograd {} vs differences {fd}", g[k]);
        }
    }

    #[test]
    fn zero_targets_are_ignored_and_bad_targets_named() {
        // Pixel 0 is ignored (all-zero target) and its logits are NaN; pixel 1 counts alone.
        let z = [f64::NAN, 0.0, f64::NAN, 1.0];
        let t = [0.0, 0.5, 0.0, 0.5];
        let expected = -(0.5 * (1.0f64.exp().recip() / (1.0 + 1.0f64.exp().recip())).ln()
            + 0.5 * (1.0 / (1.0 + (-1.0f64).exp())).ln());
        assert!((soft(&z, &t, 2) - expected).abs() < 1e-12);
        // A −∞ logit where the target has no mass costs nothing.
        assert!((soft(&[f64::NEG_INFINITY, 0.0], &[0.0, 1.0], 2)).abs() < 1e-12);
        let zt = Tensor::zeros((1, 2, 1), DType::F32, &Device::Cpu).unwrap();
        let bad = Tensor::new(&[[[0.7f32], [0.7]]], &Device::Cpu).unwrap();
        let err = cross_entropy_soft(&zt, &bad, Reduction::Mean).unwrap_err().to_string();
        assert!(err.contains("pixel 0") && err.contains("sums to"), "{err}");
        let neg = Tensor::new(&[[[1.5f32], [-0.5]]], &Device::Cpu).unwrap();
        let err = cross_entropy_soft(&zt, &neg, Reduction::Mean).unwrap_err().to_string();
        assert!(err.contains("class 1") && err.contains("-0.5"), "{err}");
    }
}
