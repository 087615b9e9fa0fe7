//! Hand-written gradients against central finite differences in f64, and ignored pixels.

mod common;
use common::*;
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::{GroundMatrix, ImportanceWeights, Transform, CAMVID};

type LossFn<'a> = dyn Fn(&Tensor, &Tensor) -> rwt::Result<Tensor> + 'a;

/// Checks every partial derivative of `f(logits, labels)` against central differences.
fn check_gradient(name: &str, f: &LossFn<'_>, logits: &Tensor, labels: &Tensor) {
    let (g, fds) = gradient_and_finite_differences(|z| f(z, labels).unwrap(), logits, 1e-6);
    let mut worst = 0f64;
    for (k, fd) in fds.into_iter().enumerate() {
        let err = (fd - g[k]).abs();
        worst = worst.max(err);
        assert!(err < 1e-8 + 1e-6 * fd.abs(), "{name}: d/dz[{k}] analytic {} vs finite difference {fd}", g[k]);
    }
    assert!(g.iter().any(|v| v.abs() > 1e-3), "{name}: gradient is not trivially zero");
    eprintln!("{name}: worst |analytic − FD| = {worst:.2e}");
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng(11);
    let n = CAMVID.len();
    let logits = logits_f64(&mut rng, (2, n, 2, 3), 1.5);
    let labels = labels_u32(&mut rng, (2, 2, 3), n, Some(11), 0.25);
    let cfg = LossConfig::ignoring(11);
    let d = GroundMatrix::severity(&CAMVID);
    for f in [Transform::Linear, Transform::Power { rho: 2.0 }, Transform::Huber { tau: 0.5 }, Transform::Step] {
        let df = d.transform(f).unwrap();
        let d2 = df.clone();
        check_gradient(&format!("wasserstein {f}"), &move |z, y| loss::wasserstein(z, y, &df, cfg), &logits, &labels);
        check_gradient(
            &format!("wasserstein_composed {f}"),
            &move |z, y| loss::wasserstein_composed(z, y, &d2, cfg),
            &logits,
            &labels,
        );
    }
    check_gradient("cross_entropy", &|z, y| loss::cross_entropy(z, y, cfg), &logits, &labels);
    let w = ImportanceWeights::default().class_weights(&CAMVID);
    check_gradient(
        "importance_aware_cross_entropy",
        &move |z, y| loss::importance_aware_cross_entropy(z, y, &w, cfg),
        &logits,
        &labels,
    );
    let d3 = d.clone();
    check_gradient(
        "ce_plus_wasserstein",
        &move |z, y| loss::ce_plus_wasserstein(z, y, &d3, 0.7, cfg),
        &logits,
        &labels,
    );
    let (d4, cw) =
        (d.transform(Transform::Huber { tau: 0.5 }).unwrap(), ImportanceWeights::default().class_weights(&CAMVID));
    check_gradient(
        "weighted_ce_plus_wasserstein",
        &move |z, y| loss::weighted_ce_plus_wasserstein(z, y, &cw, &d4, 0.7, cfg),
        &logits,
        &labels,
    );
    check_gradient("l1", &|z, y| loss::l1(z, y, cfg), &logits, &labels);
    // Sum reduction and a classification-shaped input [B, N].
    let flat = logits_f64(&mut rng, (5, n, 1, 1), 2.0).reshape((5, n)).unwrap();
    let flat_labels = labels_u32(&mut rng, (5, 1, 1), n, None, 0.0).reshape(5).unwrap();
    let sum = LossConfig { reduction: Reduction::Sum, ..Default::default() };
    check_gradient("wasserstein [B, N] sum", &move |z, y| loss::wasserstein(z, y, &d, sum), &flat, &flat_labels);
}

/// The class-weighted `CE + λW` is, pixel for pixel, the weighted CE plus λ times the composed
/// (candle-ops) Wasserstein loss.
#[test]
fn weighted_ce_plus_wasserstein_is_the_sum_of_its_terms() {
    let mut rng = Rng(15);
    let n = CAMVID.len();
    let logits = logits_f64(&mut rng, (2, n, 3, 4), 2.0);
    let labels = labels_u32(&mut rng, (2, 3, 4), n, Some(11), 0.25);
    let map = LossConfig { ignore_index: Some(11), reduction: Reduction::None };
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Power { rho: 2.0 }).unwrap();
    let w: Vec<f64> = (0..n).map(|k| 1.0 + k as f64).collect();
    let both = loss::weighted_ce_plus_wasserstein(&logits, &labels, &w, &d, 0.3, map).unwrap();
    let ce = loss::importance_aware_cross_entropy(&logits, &labels, &w, map).unwrap();
    let wd = loss::wasserstein_composed(&logits, &labels, &d, map).unwrap();
    let want = (ce + (wd * 0.3).unwrap()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let got = both.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-12 + 1e-12 * b.abs(), "{a} vs {b}");
    }
    let e = loss::weighted_ce_plus_wasserstein(&logits, &labels, &w[..3], &d, 0.3, map).unwrap_err();
    assert!(e.to_string().contains("class weights"), "{e}");
}

#[test]
fn fused_and_composed_gradients_agree_in_f32() {
    let mut rng = Rng(12);
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Power { rho: 2.0 }).unwrap();
    let logits = logits_f64(&mut rng, (3, 11, 25, 31), 3.0).to_dtype(DType::F32).unwrap();
    let labels = labels_u32(&mut rng, (3, 25, 31), 11, Some(11), 0.2); // 775 pixels: several kernel blocks
    let cfg = LossConfig::ignoring(11);
    let grad = |f: &LossFn<'_>| {
        let v = Var::from_tensor(&logits).unwrap();
        let g = f(v.as_tensor(), &labels).unwrap().backward().unwrap();
        g.get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let a = grad(&|z, y| loss::wasserstein(z, y, &d, cfg));
    let b = grad(&|z, y| loss::wasserstein_composed(z, y, &d, cfg));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-8 + 1e-4 * y.abs(), "{x} vs {y}");
    }
}

#[test]
fn cross_entropy_matches_candle_nn() {
    let mut rng = Rng(13);
    let (b, n, h, w) = (2, 19, 5, 6);
    let logits = logits_f64(&mut rng, (b, n, h, w), 3.0).to_dtype(DType::F32).unwrap();
    let labels = labels_u32(&mut rng, (b, h, w), n, None, 0.0);
    let ours = loss::cross_entropy(&logits, &labels, LossConfig::default()).unwrap().to_scalar::<f32>().unwrap();
    let flat = logits.permute((0, 2, 3, 1)).unwrap().reshape((b * h * w, n)).unwrap();
    let theirs =
        rwt::candle_nn::loss::cross_entropy(&flat, &labels.flatten_all().unwrap()).unwrap().to_scalar::<f32>().unwrap();
    assert!((ours - theirs).abs() < 1e-5, "{ours} vs candle_nn {theirs}");
}

#[test]
fn ignored_pixels_change_neither_loss_nor_gradient() {
    let mut rng = Rng(14);
    let n = 11;
    let d = GroundMatrix::severity(&CAMVID);
    let logits = logits_f64(&mut rng, (2, n, 4, 5), 2.0);
    let labels = labels_u32(&mut rng, (2, 4, 5), n, Some(11), 0.4);
    let lab = labels.flatten_all().unwrap().to_vec1::<u32>().unwrap();
    // Scramble the logits of ignored pixels only.
    let mut z = logits.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for (p, &l) in lab.iter().enumerate() {
        if l == 11 {
            let (bi, j) = (p / 20, p % 20);
            for k in 0..n {
                z[(bi * n + k) * 20 + j] = 50.0 * rng.normal();
            }
        }
    }
    let scrambled = Tensor::from_vec(z, logits.dims(), &Device::Cpu).unwrap();
    let cfg = LossConfig::ignoring(11);
    let dr = &d;
    let losses: Vec<Box<LossFn<'_>>> = vec![
        Box::new(move |z, y| loss::wasserstein(z, y, dr, cfg)),
        Box::new(move |z, y| loss::wasserstein_composed(z, y, dr, cfg)),
        Box::new(move |z, y| loss::cross_entropy(z, y, cfg)),
        Box::new(move |z, y| loss::ce_plus_wasserstein(z, y, dr, 0.5, cfg)),
        Box::new(move |z, y| loss::l1(z, y, cfg)),
    ];
    for (i, f) in losses.iter().enumerate() {
        let eval = |t: &Tensor| {
            let v = Var::from_tensor(t).unwrap();
            let l = f(v.as_tensor(), &labels).unwrap();
            let g = l.backward().unwrap().get(v.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
            (l.to_scalar::<f64>().unwrap(), g)
        };
        let (l0, g0) = eval(&logits);
        let (l1, g1) = eval(&scrambled);
        assert!((l0 - l1).abs() < 1e-12, "loss {i}: {l0} vs {l1}");
        for (p, &l) in lab.iter().enumerate() {
            for k in 0..n {
                let idx = ((p / 20) * n + k) * 20 + p % 20;
                assert!((g0[idx] - g1[idx]).abs() < 1e-12, "loss {i}: gradient changed");
                if l == 11 {
                    assert_eq!(g0[idx], 0.0, "loss {i}: ignored pixel has a gradient");
                }
            }
        }
    }
    // The mean is over the non-ignored pixels only.
    let sum = loss::wasserstein(&logits, &labels, &d, cfg.with_reduction(Reduction::Sum))
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let mean = loss::wasserstein(&logits, &labels, &d, cfg).unwrap().to_scalar::<f64>().unwrap();
    let valid = lab.iter().filter(|&&l| l != 11).count() as f64;
    assert!((mean - sum / valid).abs() < 1e-12);
    // All pixels ignored: the loss is 0, not NaN.
    let all = Tensor::full(11u32, (2, 4, 5), &Device::Cpu).unwrap();
    assert_eq!(loss::wasserstein(&logits, &all, &d, cfg).unwrap().to_scalar::<f64>().unwrap(), 0.0);
}
