//! The soft-target Wasserstein loss (Section IV.B–C): values against the host solver and the
//! exact loss, its gradient against finite differences, ignored pixels, extremes and errors.

mod common;
use common::*;
use ndarray::Array2;
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::ot::{self, SinkhornConfig, SinkhornValue};
use rwt::{GroundMatrix, Transform, CAMVID};

/// Soft targets `[b, n, h, w]`: smoothed one-hot labels (mass `1 − smooth` on a random class,
/// the rest spread on two others), with the pixels listed in `ignored` all zero.
fn soft_targets(rng: &mut Rng, (b, n, h, w): (usize, usize, usize, usize), smooth: f64, ignored: &[usize]) -> Tensor {
    let s = h * w;
    let mut v = vec![0.0f64; b * n * s];
    for bi in 0..b {
        for j in 0..s {
            if ignored.contains(&(bi * s + j)) {
                continue;
            }
            let y = rng.below(n);
            let (o1, o2) = ((y + 1 + rng.below(n - 1)) % n, (y + 1 + rng.below(n - 1)) % n);
            v[(bi * n + y) * s + j] += 1.0 - smooth;
            v[(bi * n + o1) * s + j] += smooth * 0.7;
            v[(bi * n + o2) * s + j] += smooth * 0.3;
        }
    }
    Tensor::from_vec(v, (b, n, h, w), &Device::Cpu).unwrap()
}

fn per_pixel_rows(t: &Tensor) -> Array2<f64> {
    let (b, n, h, w) = t.dims4().unwrap();
    let v =
        t.to_dtype(DType::F64).unwrap().permute((0, 2, 3, 1)).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    Array2::from_shape_vec((b * h * w, n), v).unwrap()
}

#[test]
fn matches_the_host_solver_and_reports_stats() {
    let mut rng = Rng(41);
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let dims = (2, 11, 3, 5);
    let logits = logits_f64(&mut rng, dims, 2.0);
    let targets = soft_targets(&mut rng, dims, 0.3, &[4, 17]);
    for value in [SinkhornValue::Sharp, SinkhornValue::Entropic] {
        let cfg = SinkhornConfig { epsilon: 0.01, tolerance: 1e-10, value, ..Default::default() };
        let out = loss::wasserstein_soft(&logits, &targets, &d, &cfg, Reduction::None).unwrap();
        assert_eq!(out.loss.dims(), &[2, 3, 5]);
        assert_eq!((out.stats.problems, out.stats.ignored), (28, 2));
        assert!(out.stats.converged);
        let probs = rwt::candle_nn::ops::softmax(&logits, 1).unwrap();
        let host = ot::sinkhorn_wasserstein(&per_pixel_rows(&probs), &per_pixel_rows(&targets), &d, &cfg).unwrap();
        let map = out.loss.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        for (p, (a, b)) in map.iter().zip(&host.values).enumerate() {
            assert!((a - b).abs() < 1e-9, "{value:?} pixel {p}: {a} vs {b}");
        }
        assert_eq!(map[4], 0.0);
        let mean = loss::wasserstein_soft(&logits, &targets, &d, &cfg, Reduction::Mean)
            .unwrap()
            .loss
            .to_scalar::<f64>()
            .unwrap();
        assert!((mean - map.iter().sum::<f64>() / 28.0).abs() < 1e-12);
    }
}

#[test]
fn one_hot_targets_give_the_exact_loss() {
    let mut rng = Rng(42);
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Power { rho: 2.0 }).unwrap();
    let dims = (2, 11, 4, 4);
    let logits = logits_f64(&mut rng, dims, 2.0);
    let labels = labels_u32(&mut rng, (2, 4, 4), 11, None, 0.0);
    let one_hot = labels
        .unsqueeze(1)
        .unwrap()
        .broadcast_eq(&Tensor::arange(0u32, 11, &Device::Cpu).unwrap().reshape((1, 11, 1, 1)).unwrap())
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let cfg = SinkhornConfig { epsilon: 1e-3, tolerance: 1e-9, ..Default::default() };
    let soft = loss::wasserstein_soft(&logits, &one_hot, &d, &cfg, Reduction::None).unwrap().loss;
    let exact =
        loss::wasserstein(&logits, &labels, &d, LossConfig { reduction: Reduction::None, ..Default::default() })
            .unwrap();
    let diff = (soft - exact).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
    assert!(diff < 1e-8, "max |W_eps(one-hot) − Eq. 2| = {diff}");
}

#[test]
fn gradient_matches_finite_differences() {
    // The gradient is that of the entropic value OT_eps: check it on that value, in f64.
    let mut rng = Rng(43);
    let d = GroundMatrix::severity(&CAMVID);
    let dims = (1, 11, 2, 2);
    let logits = logits_f64(&mut rng, dims, 1.5);
    let targets = soft_targets(&mut rng, dims, 0.4, &[3]);
    let cfg = SinkhornConfig {
        epsilon: 0.05,
        tolerance: 1e-13,
        max_iterations: 100_000,
        value: SinkhornValue::Entropic,
        ..Default::default()
    };
    let f = |z: &Tensor| loss::wasserstein_soft(z, &targets, &d, &cfg, Reduction::Mean).unwrap().loss;
    let (g, fds) = gradient_and_finite_differences(f, &logits, 1e-5);
    for (k, fd) in fds.into_iter().enumerate() {
        assert!((fd - g[k]).abs() < 1e-7, "d/dz[{k}]: analytic {} vs finite difference {fd}", g[k]);
        if k % 4 == 3 {
            assert_eq!(g[k], 0.0, "ignored pixel 3 has no gradient");
        }
    }
    assert!(g.iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn extreme_logits_and_zero_targets_stay_finite() {
    let mut rng = Rng(44);
    let d = GroundMatrix::severity(&CAMVID);
    let dims = (2, 11, 3, 3);
    let logits = (logits_f64(&mut rng, dims, 1.0) * 1e4).unwrap().to_dtype(DType::F32).unwrap();
    let targets = soft_targets(&mut rng, dims, 0.2, &[0]).to_dtype(DType::F32).unwrap();
    let var = Var::from_tensor(&logits).unwrap();
    let out =
        loss::wasserstein_soft(var.as_tensor(), &targets, &d, &SinkhornConfig::default(), Reduction::Mean).unwrap();
    let value = out.loss.to_scalar::<f32>().unwrap();
    assert!(value.is_finite() && value >= 0.0, "{value}");
    let g = out.loss.backward().unwrap().get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert!(g.iter().all(|v| v.is_finite()));
    // f32 and f64 agree on moderate inputs.
    let z = logits_f64(&mut rng, dims, 2.0);
    let t64 = soft_targets(&mut rng, dims, 0.3, &[]);
    let cfg = SinkhornConfig { tolerance: 1e-6, ..Default::default() };
    let a = loss::wasserstein_soft(&z, &t64, &d, &cfg, Reduction::Mean).unwrap().loss.to_scalar::<f64>().unwrap();
    let b = loss::wasserstein_soft(
        &z.to_dtype(DType::F32).unwrap(),
        &t64.to_dtype(DType::F32).unwrap(),
        &d,
        &cfg,
        Reduction::Mean,
    )
    .unwrap()
    .loss
    .to_scalar::<f32>()
    .unwrap();
    assert!((a - b as f64).abs() < 1e-4 * a.max(1e-3), "f64 {a} vs f32 {b}");
}

#[test]
fn malformed_targets_are_named() {
    let mut rng = Rng(45);
    let d = GroundMatrix::severity(&CAMVID);
    let dims = (1, 11, 2, 3);
    let logits = logits_f64(&mut rng, dims, 1.0);
    let mut t = soft_targets(&mut rng, dims, 0.3, &[]).flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let cfg = SinkhornConfig::default();
    let mut bad = t.clone();
    bad[2 * 6 + 4] = -0.25; // class 2, pixel 4
    let e =
        loss::wasserstein_soft(&logits, &Tensor::from_vec(bad, dims, &Device::Cpu).unwrap(), &d, &cfg, Reduction::Mean)
            .unwrap_err()
            .to_string();
    assert!(e.contains("pixel 4") && e.contains("class 2 has mass -0.25"), "{e}");
    t[5] += 0.5; // class 0, pixel 5 now sums to 1.5
    let e =
        loss::wasserstein_soft(&logits, &Tensor::from_vec(t, dims, &Device::Cpu).unwrap(), &d, &cfg, Reduction::Mean)
            .unwrap_err()
            .to_string();
    assert!(e.contains("pixel 5") && e.contains("sums to 1.5"), "{e}");
    let e = loss::wasserstein_soft(
        &logits,
        &Tensor::zeros((1, 11, 3, 2), DType::F64, &Device::Cpu).unwrap(),
        &d,
        &cfg,
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("targets vs logits"), "{e}");
    let e = loss::wasserstein_soft(
        &logits,
        &Tensor::zeros(dims, DType::U8, &Device::Cpu).unwrap(),
        &d,
        &cfg,
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("targets has dtype U8"), "{e}");
    let e = loss::wasserstein_soft(
        &logits,
        &Tensor::zeros(dims, DType::F64, &Device::Cpu).unwrap(),
        &d,
        &SinkhornConfig { tolerance: -1.0, ..cfg },
        Reduction::Mean,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("tolerance = -1"), "{e}");
}

/// Targets one-hot within the solver's tolerance are done in closed form (their plan is
/// forced): the exact one-hot loss's value and gradient (Eq. 2), counted as `closed_form`; a
/// target just outside the tolerance is iterated and lands within its distance of them.
#[test]
fn one_hot_targets_take_the_closed_form_of_eq_2() {
    let mut rng = Rng(7);
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let (b, n, h, w) = (1, 11, 2, 3);
    let s = h * w;
    let logits = logits_f64(&mut rng, (b, n, h, w), 2.0);
    let labels: Vec<u32> = (0..s).map(|_| rng.below(n) as u32).collect();
    // Pixels 0–3 one-hot exactly; pixel 4 one-hot within the tolerance (1 − 5e-5); pixel 5
    // just outside it (1 − 3e-4).
    let mut t = vec![0.0f64; n * s];
    for (j, &y) in labels.iter().enumerate() {
        let off = [0.0, 0.0, 0.0, 0.0, 5e-5, 3e-4][j];
        let other = (y as usize + 1) % n;
        t[y as usize * s + j] = 1.0 - off;
        t[other * s + j] += off;
    }
    let targets = Tensor::from_vec(t, (b, n, h, w), &Device::Cpu).unwrap();
    let label_t = Tensor::from_vec(labels, (b, h, w), &Device::Cpu).unwrap();
    let cfg = SinkhornConfig::default();
    let var = Var::from_tensor(&logits).unwrap();
    let out = loss::wasserstein_soft(var.as_tensor(), &targets, &d, &cfg, Reduction::None).unwrap();
    assert_eq!((out.stats.closed_form, out.stats.problems, out.stats.ignored), (5, 1, 0), "{:?}", out.stats);
    let exact_var = Var::from_tensor(&logits).unwrap();
    let exact =
        loss::wasserstein(exact_var.as_tensor(), &label_t, &d, LossConfig::default().with_reduction(Reduction::None))
            .unwrap();
    let (a, e) = (
        out.loss.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        exact.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
    );
    for j in 0..4 {
        assert!((a[j] - e[j]).abs() < 1e-12, "pixel {j}: {} vs exact {}", a[j], e[j]);
    }
    // ‖t − e_y‖₁ · max D bounds the difference of the other two.
    assert!((a[4] - e[4]).abs() <= 1e-4 * d.max() + 1e-12, "pixel 4: {} vs {}", a[4], e[4]);
    assert!((a[5] - e[5]).abs() <= 6e-4 * d.max() + 2e-4, "pixel 5: {} vs {}", a[5], e[5]);
    // The gradient of the exactly one-hot pixels is the exact loss's.
    let mask = Tensor::new(&[1.0f64, 1.0, 1.0, 1.0, 0.0, 0.0], &Device::Cpu).unwrap().reshape((1, h, w)).unwrap();
    let g = (out.loss * &mask).unwrap().sum_all().unwrap().backward().unwrap();
    let ge = (exact * &mask).unwrap().sum_all().unwrap().backward().unwrap();
    let (ga, gb) = (
        g.get(var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(),
        ge.get(exact_var.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap(),
    );
    for (k, (x, y)) in ga.iter().zip(&gb).enumerate() {
        assert!((x - y).abs() < 1e-12, "gradient entry {k}: {x} vs exact {y}");
    }
}
