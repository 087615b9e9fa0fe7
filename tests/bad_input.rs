//! Issue 13, "Bad input, kind by kind": each kind of bad input, across every public function it
//! applies to, with the value the issue gives (closed forms, the log-domain solver, POT).

use ndarray::{array, Array2};
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::metrics::ConfusionMatrix;
use rwt::ot::{self, SinkhornConfig, SinkhornDomain, SinkhornValue};
use rwt::train::{Objective, RunConfig};
use rwt::{Error, GroundMatrix, Transform, CAMVID};

/// The car / bus / road matrix `D[truth][pred]`.
fn car_bus_road() -> GroundMatrix {
    GroundMatrix::from_rows(["car", "bus", "road"], [[0.0, 0.1, 0.9], [0.1, 0.0, 0.9], [0.3, 0.3, 0.0]]).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

/// Asserts an `Err(NonFiniteLoss)` at `(image, pixel)`.
fn assert_bad_pixel<T: std::fmt::Debug>(r: rwt::Result<T>, image: usize, pixel: usize, what: &str) {
    match r {
        Err(Error::NonFiniteLoss { image: i, pixel: p, .. }) => {
            assert_eq!((i, p), (image, pixel), "{what}: wrong pixel named");
        }
        other => panic!("{what}: expected NonFiniteLoss at image {image} pixel {pixel}, got {other:?}"),
    }
}

// ---- 1. Non-finite logits: an Err naming image and pixel, from every loss ------------------

#[test]
fn soft_loss_refuses_non_finite_logits_before_iterating() {
    let d = car_bus_road();
    for bad in [f64::NAN, f64::INFINITY] {
        for dtype in [DType::F32, DType::F64] {
            let z = Tensor::new(&[[bad, 0.0, 0.0]], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let t = Tensor::new(&[[0.7, 0.3, 0.0]], &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
            let r = loss::wasserstein_soft(&z, &t, &d, &SinkhornConfig::default(), Reduction::Mean);
            assert_bad_pixel(r, 0, 0, &format!("wasserstein_soft {bad} {dtype:?}"));
        }
    }
    // An ignored pixel (all-zero target) may hold anything; the live one is the pixel
    // with finite logits: s = (.6, .3, .1) against t = (.7, .3, 0). Exact: 0.1 of road moves
    // to car at D[car][road] = 0.9, so W = 0.09 (the sharp Sinkhorn value is within 1e-3).
    let z = Tensor::new(&[[0.6f32.ln(), f32::NAN], [0.3f32.ln(), f32::INFINITY], [0.1f32.ln(), 0.0]], &Device::Cpu)
        .unwrap()
        .reshape((1, 3, 2))
        .unwrap();
    let t = Tensor::new(&[[0.7f32, 0.0], [0.3, 0.0], [0.0, 0.0]], &Device::Cpu).unwrap().reshape((1, 3, 2)).unwrap();
    let out = loss::wasserstein_soft(&z, &t, &d, &SinkhornConfig::default(), Reduction::Mean).unwrap();
    assert!((scalar(&out.loss) - 0.09).abs() < 1e-3, "{}", scalar(&out.loss));
    assert_eq!(out.stats.ignored, 1);
}

/// The pixel the issue uses, `s = (.6, .3, .1)` of a car, and a second pixel holding `bad`.
fn two_pixels(bad: f64, dtype: DType) -> Tensor {
    let z = [[0.6f64.ln(), bad], [0.3f64.ln(), 0.0], [0.1f64.ln(), 0.0]];
    Tensor::new(&z, &Device::Cpu).unwrap().reshape((1, 3, 2)).unwrap().to_dtype(dtype).unwrap()
}

/// Every loss with one-hot labels, by name.
type HardLoss = Box<dyn Fn(&Tensor, &Tensor, LossConfig) -> rwt::Result<Tensor>>;

fn hard_losses() -> Vec<(&'static str, HardLoss, f64)> {
    let d = car_bus_road();
    let (d1, d2, d3) = (d.clone(), d.clone(), d);
    // Values at s = (.6, .3, .1), label car (closed forms):
    //   W = Σ_p s_p D[car][p] = .3·.1 + .1·.9 = 0.12;  CE = −ln .6 = 0.5108256;
    //   IAL with w[car] = 2: 2·CE;  ½‖s − e_car‖₁ = 1 − .6 = 0.4;  CE + 2·W = 0.7508256.
    let ce = -(0.6f64.ln());
    vec![
        ("wasserstein", Box::new(move |z: &Tensor, y: &Tensor, c| loss::wasserstein(z, y, &d1, c)) as HardLoss, 0.12),
        (
            "wasserstein_composed",
            Box::new(move |z: &Tensor, y: &Tensor, c| loss::wasserstein_composed(z, y, &d2, c)),
            0.12,
        ),
        ("cross_entropy", Box::new(|z: &Tensor, y: &Tensor, c| loss::cross_entropy(z, y, c)), ce),
        (
            "importance_aware_cross_entropy",
            Box::new(|z: &Tensor, y: &Tensor, c| loss::importance_aware_cross_entropy(z, y, &[2.0, 1.0, 1.0], c)),
            2.0 * ce,
        ),
        ("l1", Box::new(|z: &Tensor, y: &Tensor, c| loss::l1(z, y, c)), 0.4),
        (
            "ce_plus_wasserstein",
            Box::new(move |z: &Tensor, y: &Tensor, c| loss::ce_plus_wasserstein(z, y, &d3, 2.0, c)),
            ce + 0.24,
        ),
    ]
}

#[test]
fn every_hard_loss_refuses_non_finite_logits_at_a_counted_pixel() {
    let labels = Tensor::new(&[[0u32, 1]], &Device::Cpu).unwrap();
    for (name, f, _) in hard_losses() {
        for bad in [f64::NAN, f64::INFINITY] {
            for dtype in [DType::F32, DType::F64] {
                for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
                    let cfg = LossConfig::default().with_reduction(reduction);
                    let r = f(&two_pixels(bad, dtype), &labels, cfg);
                    assert_bad_pixel(r, 0, 1, &format!("{name} {bad} {dtype:?} {reduction:?}"));
                }
            }
        }
    }
}

#[test]
fn an_ignored_pixel_may_hold_anything() {
    // Pixel 1 is ignored (label 3) and holds NaN; the loss is pixel 0's alone and the gradient
    // at the ignored pixel is exactly zero.
    let labels = Tensor::new(&[[0u32, 3]], &Device::Cpu).unwrap();
    for (name, f, expected) in hard_losses() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let z = Var::from_tensor(&two_pixels(bad, DType::F64)).unwrap();
            let l = f(z.as_tensor(), &labels, LossConfig::ignoring(3)).unwrap();
            assert!((scalar(&l) - expected).abs() < 1e-12, "{name} {bad}: {} vs {expected}", scalar(&l));
            let g = l.backward().unwrap().get(z.as_tensor()).unwrap().to_vec3::<f64>().unwrap();
            for (k, class) in g[0].iter().enumerate() {
                assert_eq!(class[1], 0.0, "{name} {bad}: gradient of class {k} at the ignored pixel");
                assert!(class[0].is_finite(), "{name} {bad}");
            }
        }
    }
}

#[test]
fn l1_soft_refuses_non_finite_logits_and_targets() {
    let t = Tensor::new(&[[1.0f32, 0.0], [0.0, 1.0], [0.0, 0.0]], &Device::Cpu).unwrap().reshape((1, 3, 2)).unwrap();
    assert_bad_pixel(loss::l1_soft(&two_pixels(f64::NAN, DType::F32), &t, Reduction::Mean), 0, 1, "l1_soft");
    let ok = loss::l1_soft(&two_pixels(0.0, DType::F32), &t, Reduction::None).unwrap();
    // Pixel 0: 1 − .6 = 0.4; pixel 1: s = (1/3, 1/3, 1/3) against class 1: 1 − 1/3.
    let v = ok.to_vec2::<f32>().unwrap();
    assert!((v[0][0] - 0.4).abs() < 1e-6 && (v[0][1] - 2.0 / 3.0).abs() < 1e-6, "{v:?}");
    let bad_t =
        Tensor::new(&[[1.0f32, 0.0], [0.0, f32::NAN], [0.0, 0.0]], &Device::Cpu).unwrap().reshape((1, 3, 2)).unwrap();
    let e = loss::l1_soft(&two_pixels(0.0, DType::F32), &bad_t, Reduction::Mean).unwrap_err().to_string();
    assert!(e.contains("image 0 at pixel 1") && e.contains("class 1 has mass NaN"), "{e}");
}

// ---- 2. A transform or builder never hands back a matrix from_rows would refuse -----------

#[test]
fn a_transform_that_overflows_is_refused_naming_the_entry() {
    let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 2.0], [2.0, 0.0]]).unwrap();
    // 2^1e4 = inf in f64.
    match d.transform(Transform::Power { rho: 1e4 }) {
        Err(Error::TransformOverflow { row: 0, col: 1, input, value, .. }) => {
            assert_eq!(input, 2.0);
            assert_eq!(value, f64::INFINITY);
        }
        other => panic!("expected TransformOverflow at D[0][1], got {other:?}"),
    }
    let e = d.transform(Transform::Power { rho: 1e4 }).unwrap_err().to_string();
    assert!(e.contains("d^10000 maps D[0][1] = 2 to inf"), "{e}");
    // Huber's d² overflows too (1e200² = inf); below τ, so the d² branch.
    let big = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1e200, 0.0]]).unwrap();
    assert!(matches!(
        big.transform(Transform::Huber { tau: 1e300 }),
        Err(Error::TransformOverflow { row: 1, col: 0, .. })
    ));
    // Valid transforms still go through: 2^3 = 8.
    assert_eq!(d.transform(Transform::Power { rho: 3.0 }).unwrap().get(0, 1), 8.0);
    // The learned-matrix update applies f through the same path.
    let learned = rwt::ground::learned::centroid_distances(["a", "b"], &array![[0.0], [3.0]], &[true, true]).unwrap();
    let prev = GroundMatrix::from_rows(["a", "b"], [[0.0, 1e300], [1e300, 0.0]]).unwrap();
    // f(d) = d² of the normalised distance 1 is 1; (1 + α·1e300)/(1 + α) is finite: fine.
    assert!(rwt::ground::learned::reinforced_update(&prev, &learned, Transform::Power { rho: 2.0 }, 1.0).is_ok());
}

#[test]
fn a_valid_matrix_too_large_for_the_kernels_dtype_is_blamed_not_the_logits() {
    // 1e39 is a valid f64 entry but beyond f32 (max 3.4e38): f32 logits are refused naming D,
    // f64 logits give the closed form s_b · D[a][b] = 0.5e39 at s = (.5, .5).
    let d = GroundMatrix::from_rows(["a", "b"], [[0.0, 1e39], [1e39, 0.0]]).unwrap();
    let y = Tensor::new(&[0u32], &Device::Cpu).unwrap();
    let z32 = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu).unwrap();
    for r in [
        loss::wasserstein(&z32, &y, &d, LossConfig::default()),
        loss::wasserstein_composed(&z32, &y, &d, LossConfig::default()),
        loss::ce_plus_wasserstein(&z32, &y, &d, 1.0, LossConfig::default()),
    ] {
        let e = r.unwrap_err().to_string();
        assert!(e.contains("max D = 1e39") || e.contains("lambda"), "{e}");
    }
    let z64 = z32.to_dtype(DType::F64).unwrap();
    let l = loss::wasserstein(&z64, &y, &d, LossConfig::default()).unwrap();
    assert_eq!(scalar(&l), 0.5e39);
    // λ · D overflowing f64 names λ.
    let d2 = GroundMatrix::from_rows(["a", "b"], [[0.0, 2.0], [2.0, 0.0]]).unwrap();
    let e = loss::ce_plus_wasserstein(&z64, &y, &d2, 1e308, LossConfig::default()).unwrap_err().to_string();
    assert!(e.contains("lambda = 100000000"), "{e}");
}

// ---- 3. A run config that validates can run ------------------------------------------------

fn config(loss: &str) -> RunConfig {
    RunConfig::from_toml(&format!("[loss]\n{loss}\n")).unwrap()
}

#[test]
fn run_config_checks_every_loss_field_before_anything_runs() {
    // The config: both fields are bad; each alone is named.
    let both = config("kind = \"soft-w\"\nepsilon = 0.0\nsmoothing = 1.5");
    let e = both.validate().unwrap_err().to_string();
    assert!(e.contains("loss.smoothing = 1.5"), "{e}");
    let e = config("kind = \"soft-w\"\nepsilon = 0.0").validate().unwrap_err().to_string();
    assert!(e.contains("loss.epsilon = 0"), "{e}");
    let e = config("kind = \"soft-w\"\nsmoothing = 1.5").validate().unwrap_err().to_string();
    assert!(e.contains("loss.smoothing = 1.5"), "{e}");
    let e = config("kind = \"ce+w\"\nlambda = -1").validate().unwrap_err().to_string();
    assert!(e.contains("loss.lambda = -1"), "{e}");
    // objective() refuses them too.
    assert!(both.objective(&CAMVID).is_err());
    assert!(config("kind = \"soft-w\"\nepsilon = 0.0").objective(&CAMVID).is_err());
    // A transform that overflows the preset matrix: importance weights of 1e200 squared.
    let e = config("kind = \"w\"\nground = \"importance\"\nimportance = [1e200, 1e200, 1e200, 1e200]\ntransform = \"power\"\nrho = 2.0")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("maps D[0][1] = 1e200 to inf"), "{e}");
    // Valid configs still pass.
    config("kind = \"soft-w\"").validate().unwrap();
    config("kind = \"ce+w\"\nlambda = 0.5").validate().unwrap();
    // An objective built by hand is checked when a training loop validates it.
    let o = Objective::SoftWasserstein {
        ground: GroundMatrix::severity(&CAMVID),
        smoothing: 1.5,
        sinkhorn: SinkhornConfig::default(),
    };
    assert!(o.validate(11).unwrap_err().to_string().contains("loss.smoothing = 1.5"));
    let o = Objective::CePlusWasserstein { ground: GroundMatrix::severity(&CAMVID), lambda: -1.0, class_weights: None };
    assert!(o.validate(11).unwrap_err().to_string().contains("loss.lambda = -1"));
}

#[test]
fn run_writes_nothing_for_a_config_that_cannot_run() {
    let dir = std::env::temp_dir().join(format!("rwt-issue13-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A CSV ground matrix (read only by objective(), not validate()) that the transform
    // overflows: run() must fail before it makes the run folder.
    std::fs::create_dir_all(dir.join("in")).unwrap();
    let csv = dir.join("in/d.csv");
    let n = CAMVID.len();
    let rows: Vec<String> =
        (0..n).map(|i| (0..n).map(|j| if i == j { "0" } else { "2" }).collect::<Vec<_>>().join(",")).collect();
    std::fs::write(&csv, rows.join("\n")).unwrap();
    let cfg =
        config(&format!("kind = \"w\"\nground = {:?}\ntransform = \"power\"\nrho = 1e4", csv.display().to_string()));
    cfg.validate().unwrap();
    let out = dir.join("run");
    let e = rwt::train::run(&cfg, &out, |_| {}).err().expect("run must fail").to_string();
    assert!(e.contains("d^10000 maps D[0][1] = 2 to inf"), "{e}");
    assert!(!out.exists(), "run() wrote {} before failing", out.display());
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- 4. Zero classes --------------------------------------------------------------------------

#[test]
fn zero_classes_are_refused() {
    let none: [&str; 0] = [];
    let no_rows: Vec<Vec<f64>> = vec![];
    let e = GroundMatrix::from_rows(none, no_rows).unwrap_err().to_string();
    assert!(e.contains("0 classes"), "{e}");
    assert!(GroundMatrix::from_array(none, &Array2::zeros((0, 0))).is_err());
    assert!(GroundMatrix::from_class_weights(none, &[]).is_err());
    assert!(ConfusionMatrix::from_counts(Array2::zeros((0, 0)), None).is_err());
    let empty = Array2::<f64>::zeros((1, 0));
    assert!(ot::sinkhorn(&empty, &empty, &Array2::zeros((0, 0)), &SinkhornConfig::default()).is_err());
    let z = Tensor::zeros((1, 0, 2), DType::F32, &Device::Cpu).unwrap();
    assert!(loss::l1_soft(&z, &z, Reduction::Mean).is_err());
}

// ---- 5. Cross-entropy's value at large logits (f32) -----------------------------------------

#[test]
fn cross_entropy_is_exact_in_f32_at_large_logits() {
    // CE = logsumexp(z) − z_y in closed form:
    //   (1e8, 1e8), y = 1:        ln 2            = 0.6931472
    //   (1e7 + 2, 1e7), y = 1:    ln(1 + e²)      = 2.126928
    //   (1e3 + 1, 1e3), y = 1:    ln(1 + e)       = 1.3132617
    // (1e7 + 2 is exact in f32: its ulp is 1.)
    let cases = [
        ([1e8f32, 1e8], 2f64.ln()),
        ([1e7 + 2.0, 1e7], (1.0 + 2f64.exp()).ln()),
        ([1001.0, 1000.0], (1.0 + 1f64.exp()).ln()),
    ];
    let y = Tensor::new(&[1u32], &Device::Cpu).unwrap();
    let zero = GroundMatrix::from_rows(["a", "b"], [[0.0, 0.0], [0.0, 0.0]]).unwrap();
    for (z, expected) in cases {
        let z = Tensor::new(&[z], &Device::Cpu).unwrap();
        let values = [
            scalar(&loss::cross_entropy(&z, &y, LossConfig::default()).unwrap()),
            scalar(&loss::importance_aware_cross_entropy(&z, &y, &[1.0, 1.0], LossConfig::default()).unwrap()),
            scalar(&loss::ce_plus_wasserstein(&z, &y, &zero, 1.0, LossConfig::default()).unwrap()),
        ];
        for v in values {
            assert!((v - expected).abs() <= 2e-7 * expected, "{z:?}: {v} vs {expected}");
        }
    }
}

#[test]
fn soft_loss_log_softmax_is_exact_in_f32_at_large_logits() {
    // Softmax of (1e8, 1e8, −1e8) is (.5, .5, 0); against t = (.7, .3, 0) the reference is
    // the f64 log-domain solver on those histograms (before the fix the f32 log-softmax was
    // (0, 0, −2e8): a = (1, 1, 0), not a histogram).
    let d = car_bus_road();
    let cfg = SinkhornConfig { tolerance: 1e-6, ..Default::default() };
    let z = Tensor::new(&[[1e8f32, 1e8, -1e8]], &Device::Cpu).unwrap();
    let t = Tensor::new(&[[0.7f32, 0.3, 0.0]], &Device::Cpu).unwrap();
    let got = scalar(&loss::wasserstein_soft(&z, &t, &d, &cfg, Reduction::Mean).unwrap().loss);
    let reference = ot::sinkhorn_wasserstein(&array![[0.5, 0.5, 0.0]], &array![[0.7, 0.3, 0.0]], &d, &cfg).unwrap();
    assert!((got - reference.values[0]).abs() < 1e-5, "{got} vs {}", reference.values[0]);
    assert!((reference.values[0] - 0.02).abs() < 1e-3); // exact: .2 of bus to car at D[car][bus] = .1
}

// ---- 6. Kernel-domain Sinkhorn with zero bins -------------------------------------------------

fn solve(s: Array2<f64>, t: Array2<f64>, domain: SinkhornDomain, value: SinkhornValue) -> ot::SinkhornOutput {
    let cfg = SinkhornConfig {
        epsilon: 0.05,
        tolerance: 1e-12,
        max_iterations: 100_000,
        domain,
        value,
        ..Default::default()
    };
    ot::sinkhorn_wasserstein(&s, &t, &car_bus_road(), &cfg).unwrap()
}

#[test]
fn kernel_domain_handles_zero_mass_bins() {
    // One-hot target: the only plan moves all of s to car, KL(P ‖ s ⊗ t) = 0, so
    // OT_ε = Σ_p s_p D[car][p] = .3·.1 + .1·.9 = 0.12 for any ε (the value; the
    // kernel domain returned −0.00185).
    for domain in [SinkhornDomain::Kernel, SinkhornDomain::Log] {
        let out = solve(array![[0.6, 0.3, 0.1]], array![[1.0, 0.0, 0.0]], domain, SinkhornValue::Entropic);
        assert!((out.values[0] - 0.12).abs() < 1e-9, "{domain:?}: {}", out.values[0]);
        assert!(out.f.iter().chain(out.g.iter()).all(|v| v.is_finite()), "{domain:?}: {:?} {:?}", out.f, out.g);
    }
    // Zeros at different bins of both histograms: s = (.6, .4, 0), t = (0, .5, .5), ε = 0.05 ×
    // max M = 0.045. POT 0.9.7 gives
    //   ot.solve(M, a, b, reg=0.045, reg_type='KL', method='sinkhorn_log', tol=1e-14)
    //   .value = 0.17369091974877313 (entropic), .value_linear = 0.16804834146387992 (sharp)
    // with M = D.T of the car/bus/road matrix.
    for domain in [SinkhornDomain::Kernel, SinkhornDomain::Log] {
        let (s, t) = (array![[0.6, 0.4, 0.0]], array![[0.0, 0.5, 0.5]]);
        let e = solve(s.clone(), t.clone(), domain, SinkhornValue::Entropic);
        assert!((e.values[0] - 0.17369091974877313).abs() < 1e-9, "{domain:?}: {}", e.values[0]);
        let sharp = solve(s, t, domain, SinkhornValue::Sharp);
        assert!((sharp.values[0] - 0.16804834146387992).abs() < 1e-9, "{domain:?}: {}", sharp.values[0]);
    }
    // The potentials of the two domains agree bin for bin, zero-mass bins included, up to the
    // constant (f + c, g − c) that leaves the dual unchanged.
    let (s, t) = (array![[0.6, 0.4, 0.0]], array![[0.0, 0.5, 0.5]]);
    let k = solve(s.clone(), t.clone(), SinkhornDomain::Kernel, SinkhornValue::Entropic);
    let l = solve(s, t, SinkhornDomain::Log, SinkhornValue::Entropic);
    let c = k.f[[0, 0]] - l.f[[0, 0]];
    for i in 0..3 {
        assert!((k.f[[0, i]] - l.f[[0, i]] - c).abs() < 1e-8, "f[{i}]: {} vs {}", k.f[[0, i]], l.f[[0, i]]);
        assert!((k.g[[0, i]] - l.g[[0, i]] + c).abs() < 1e-8, "g[{i}]: {} vs {}", k.g[[0, i]], l.g[[0, i]]);
    }
}
