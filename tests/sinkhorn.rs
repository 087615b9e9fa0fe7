//! Sinkhorn (Section IV.B–C) against the exact solver, between its own variants, on problems
//! with known answers, and its gradient against finite differences.

mod common;
use common::*;
use ndarray::Array2;
use rwt::ot::{self, EpsilonScaling, SinkhornConfig, SinkhornDomain, SinkhornValue};
use rwt::{GroundMatrix, Transform, CITYSCAPES};

/// Random histograms `p × n`: softmax of normal logits with standard deviation `scale`, some
/// entries exactly zero when `zeros`.
fn histograms(rng: &mut Rng, p: usize, n: usize, scale: f64, zeros: bool) -> Array2<f64> {
    let mut h = Array2::zeros((p, n));
    for r in 0..p {
        let mut row: Vec<f64> = (0..n).map(|_| (scale * rng.normal()).exp()).collect();
        if zeros {
            for v in row.iter_mut() {
                if rng.uniform() < 0.4 {
                    *v = 0.0;
                }
            }
            row[rng.below(n)] += 1.0;
        }
        let s: f64 = row.iter().sum();
        for k in 0..n {
            h[[r, k]] = row[k] / s;
        }
    }
    h
}

fn exact_costs(s: &Array2<f64>, t: &Array2<f64>, d: &GroundMatrix) -> Vec<f64> {
    (0..s.nrows()).map(|r| ot::exact_wasserstein(&s.row(r).to_vec(), &t.row(r).to_vec(), d).unwrap().cost).collect()
}

#[test]
fn converges_to_the_exact_solver_as_epsilon_shrinks() {
    let mut rng = Rng(31);
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let s = histograms(&mut rng, 40, 19, 1.5, false);
    let t = histograms(&mut rng, 40, 19, 2.0, true);
    let start = std::time::Instant::now();
    let exact = exact_costs(&s, &t, &d);
    eprintln!("exact: {:.2} s", start.elapsed().as_secs_f64());
    let mut previous = f64::INFINITY;
    for eps in [1e-1, 1e-2, 1e-3] {
        let cfg = SinkhornConfig { epsilon: eps, tolerance: 1e-7, max_iterations: 20_000, ..Default::default() };
        let start = std::time::Instant::now();
        let out = ot::sinkhorn_wasserstein(&s, &t, &d, &cfg).unwrap();
        eprintln!("eps {eps:e}: {:.2} s", start.elapsed().as_secs_f64());
        assert!(out.stats.converged, "eps {eps}: {:?}", out.stats);
        let worst = out.values.iter().zip(&exact).map(|(a, b)| (a - b).abs() / b.abs().max(1e-12)).fold(0.0, f64::max);
        eprintln!("eps {eps:e}: worst relative error {worst:.2e}, {:?}", out.stats);
        assert!(worst < previous, "error must shrink with epsilon");
        previous = worst;
    }
    assert!(previous <= 1e-3, "at eps = 1e-3 x max cost the sharp cost is within 1e-3 of the exact one: {previous}");
}

#[test]
fn log_domain_and_plain_kernel_agree() {
    let mut rng = Rng(32);
    let d = GroundMatrix::severity(&CITYSCAPES);
    let m = ot::cost_matrix(&d);
    let s = histograms(&mut rng, 12, 19, 1.0, false);
    let t = histograms(&mut rng, 12, 19, 1.0, false);
    for value in [SinkhornValue::Sharp, SinkhornValue::Entropic] {
        let base = SinkhornConfig {
            epsilon: 0.05,
            tolerance: 1e-11,
            max_iterations: 50_000,
            scaling: None,
            value,
            return_plan: true,
            ..Default::default()
        };
        let log = ot::sinkhorn(&s, &t, &m, &base).unwrap();
        let ker = ot::sinkhorn(&s, &t, &m, &SinkhornConfig { domain: SinkhornDomain::Kernel, ..base }).unwrap();
        for r in 0..12 {
            assert!(
                (log.values[r] - ker.values[r]).abs() < 1e-9,
                "{value:?} {r}: {} vs {}",
                log.values[r],
                ker.values[r]
            );
            // Potentials are unique up to (f + c, g − c).
            let c = log.f[[r, 0]] - ker.f[[r, 0]];
            for k in 0..19 {
                assert!((log.f[[r, k]] - ker.f[[r, k]] - c).abs() < 1e-8);
                assert!((log.g[[r, k]] - ker.g[[r, k]] + c).abs() < 1e-8);
            }
        }
        let (lp, kp) = (log.plans.unwrap(), ker.plans.unwrap());
        assert!((&lp - &kp).mapv(f64::abs).iter().copied().fold(0.0, f64::max) < 1e-10);
    }
    // The kernel variant refuses an epsilon at which exp(-M/eps) underflows.
    let e = ot::sinkhorn(
        &s,
        &t,
        &m,
        &SinkhornConfig { epsilon: 1e-3, domain: SinkhornDomain::Kernel, ..Default::default() },
    );
    assert!(e.unwrap_err().to_string().contains("underflows"));
}

#[test]
fn one_hot_targets_give_the_exact_loss() {
    let mut rng = Rng(33);
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Power { rho: 2.0 }).unwrap();
    let s = histograms(&mut rng, 30, 19, 2.0, false);
    let mut t = Array2::zeros((30, 19));
    let mut eq2 = vec![0.0; 30];
    for (r, e) in eq2.iter_mut().enumerate() {
        let y = rng.below(19);
        t[[r, y]] = 1.0;
        *e = (0..19).map(|p| s[[r, p]] * d.get(y, p)).sum();
    }
    let cfg = SinkhornConfig { epsilon: 1e-3, tolerance: 1e-9, ..Default::default() };
    let out = ot::sinkhorn_wasserstein(&s, &t, &d, &cfg).unwrap();
    for (v, e) in out.values.iter().zip(&eq2) {
        assert!((v - e).abs() < 1e-9, "{v} vs Eq. 2 {e}");
    }
}

#[test]
fn gradient_is_the_potential() {
    // d/dh OT_eps(a + h delta, b) = <f, delta> for delta summing to 0 (a stays on the simplex).
    let mut rng = Rng(34);
    let m = ot::cost_matrix(&random_ground(&mut rng, 7, 0.1, 1.0));
    let a = histograms(&mut rng, 1, 7, 1.0, false);
    let b = histograms(&mut rng, 1, 7, 1.0, true);
    let cfg = SinkhornConfig {
        epsilon: 0.05,
        tolerance: 1e-13,
        max_iterations: 100_000,
        value: SinkhornValue::Entropic,
        ..Default::default()
    };
    let out = ot::sinkhorn(&a, &b, &m, &cfg).unwrap();
    for trial in 0..5 {
        let mut delta: Vec<f64> = (0..7).map(|_| rng.normal()).collect();
        let mean = delta.iter().sum::<f64>() / 7.0;
        delta.iter_mut().for_each(|v| *v -= mean);
        let h = 1e-6;
        let at = |sign: f64| {
            let mut ap = a.clone();
            for k in 0..7 {
                ap[[0, k]] += sign * h * delta[k];
            }
            ot::sinkhorn(&ap, &b, &m, &cfg).unwrap().values[0]
        };
        let fd = (at(1.0) - at(-1.0)) / (2.0 * h);
        let analytic: f64 = (0..7).map(|k| out.f[[0, k]] * delta[k]).sum();
        assert!((fd - analytic).abs() < 1e-7, "trial {trial}: finite difference {fd} vs <f, delta> {analytic}");
    }
}

#[test]
fn problems_with_known_answers() {
    let mut rng = Rng(35);
    let n = 6;
    // A cost that is zero on a permutation, and a target that is the permuted source: 0.
    let perm = [2usize, 0, 5, 1, 3, 4];
    let m = Array2::from_shape_fn((n, n), |(i, j)| if perm[i] == j { 0.0 } else { 1.0 });
    let s = histograms(&mut rng, 5, n, 1.0, false);
    let mut t = Array2::zeros((5, n));
    for r in 0..5 {
        for i in 0..n {
            t[[r, perm[i]]] = s[[r, i]];
        }
    }
    let cfg = SinkhornConfig { epsilon: 1e-3, tolerance: 1e-10, ..Default::default() };
    let out = ot::sinkhorn(&s, &t, &m, &cfg).unwrap();
    assert!(out.values.iter().all(|&v| v.abs() < 1e-9), "{:?} {:?}", out.values, out.stats);
    // Swapping source and target with the transposed cost gives the same value.
    let m = ot::cost_matrix(&random_ground(&mut rng, n, 0.1, 1.0));
    let s = histograms(&mut rng, 5, n, 1.0, false);
    let t = histograms(&mut rng, 5, n, 1.0, false);
    for value in [SinkhornValue::Sharp, SinkhornValue::Entropic] {
        let cfg =
            SinkhornConfig { epsilon: 0.02, tolerance: 1e-12, max_iterations: 50_000, value, ..Default::default() };
        let ab = ot::sinkhorn(&s, &t, &m, &cfg).unwrap();
        let ba = ot::sinkhorn(&t, &s, &m.t().to_owned(), &cfg).unwrap();
        for r in 0..5 {
            assert!((ab.values[r] - ba.values[r]).abs() < 1e-9);
        }
        // Adding a constant to every cost adds it to the value.
        let shifted = ot::sinkhorn(
            &s,
            &t,
            &(&m + 0.3),
            &SinkhornConfig {
                epsilon: 0.02 * m.iter().copied().fold(0.0, f64::max) / (0.3 + m.iter().copied().fold(0.0, f64::max)),
                ..cfg
            },
        )
        .unwrap();
        for r in 0..5 {
            assert!((shifted.values[r] - ab.values[r] - 0.3).abs() < 1e-9, "{value:?}");
        }
    }
}

#[test]
fn zeros_ignored_rows_and_bad_input() {
    let mut rng = Rng(36);
    let d = GroundMatrix::severity(&CITYSCAPES);
    let s = histograms(&mut rng, 9, 19, 3.0, true);
    let mut t = histograms(&mut rng, 9, 19, 3.0, true);
    for k in 0..19 {
        t[[4, k]] = 0.0; // an ignored pixel
    }
    let out = ot::sinkhorn_wasserstein(&s, &t, &d, &SinkhornConfig { epsilon: 1e-3, ..Default::default() }).unwrap();
    assert!(
        out.values.iter().all(|v| v.is_finite())
            && out.f.iter().all(|v| v.is_finite())
            && out.g.iter().all(|v| v.is_finite())
    );
    assert_eq!(out.values[4], 0.0);
    assert_eq!((out.stats.problems, out.stats.ignored), (8, 1));
    let exact = exact_costs(&s, &t, &d);
    for r in (0..9).filter(|&r| r != 4) {
        assert!((out.values[r] - exact[r]).abs() < 2e-3 * exact[r].max(1e-3), "{} vs {}", out.values[r], exact[r]);
    }
    // Malformed input.
    let mut bad = t.clone();
    bad[[2, 3]] = -0.1;
    let e = ot::sinkhorn_wasserstein(&s, &bad, &d, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("target 2") && e.contains("entry 3 is -0.1"), "{e}");
    let mut bad = s.clone();
    bad[[1, 0]] += 0.5;
    let e = ot::sinkhorn_wasserstein(&bad, &t, &d, &Default::default()).unwrap_err().to_string();
    assert!(e.contains("prediction 1: sums to 1.5"), "{e}");
    let e = ot::sinkhorn_wasserstein(&s, &t.slice(ndarray::s![..3, ..]).to_owned(), &d, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("shape mismatch"), "{e}");
    let e = ot::sinkhorn_wasserstein(&s, &t, &d, &SinkhornConfig { epsilon: 0.0, ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(e.contains("epsilon = 0"), "{e}");
    let e = ot::sinkhorn_wasserstein(
        &s,
        &t,
        &d,
        &SinkhornConfig { scaling: Some(EpsilonScaling { factor: 1.5, ..Default::default() }), ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("scaling.factor = 1.5"), "{e}");
}
