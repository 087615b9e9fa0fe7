//! Every public loss on random finite and non-finite inputs returns an `Err` or a finite value
//! (and, where it returns one, a finite gradient): never a panic, never a NaN.

use ndarray::Array2;
use proptest::prelude::*;
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::ot::{self, SinkhornConfig, SinkhornDomain, SinkhornValue};
use rwt::GroundMatrix;

/// A logit: mostly ordinary, sometimes huge, infinite or NaN.
fn logit() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -20.0f64..20.0,
        1 => prop_oneof![Just(1e8), Just(-1e8), Just(1e30), Just(-1e30), Just(3e38), Just(-3e38), Just(1e300)],
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ]
}

/// A mass of a target histogram before normalisation: mostly ordinary, sometimes 0 or bad.
fn mass() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => 0.0f64..1.0,
        2 => Just(0.0),
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-0.5)],
    ]
}

/// One problem: `N` classes, `B = 2` images of `S` pixels, logits `[B, N, S]`, labels (the
/// value `N` is the ignore label), targets `[B, N, S]` (normalised per pixel where they can
/// be), a ground matrix (entries up to 1e3) and a dtype.
#[derive(Debug, Clone)]
struct Problem {
    n: usize,
    s: usize,
    logits: Vec<f64>,
    labels: Vec<u32>,
    targets: Vec<f64>,
    ground: Vec<f64>,
    f32: bool,
}

fn problem() -> impl Strategy<Value = Problem> {
    (2usize..5, 1usize..4).prop_flat_map(|(n, s)| {
        (
            prop::collection::vec(logit(), 2 * n * s),
            prop::collection::vec(0..=n as u32, 2 * s),
            prop::collection::vec(mass(), 2 * n * s),
            prop::collection::vec(prop_oneof![3 => 0.0f64..1.0, 1 => 0.0f64..1e3], n * n),
            any::<bool>(),
        )
            .prop_map(move |(logits, labels, mut targets, ground, f32)| {
                // Normalise each pixel's target where its masses are finite and positive.
                for b in 0..2 {
                    for j in 0..s {
                        let idx: Vec<usize> = (0..n).map(|k| (b * n + k) * s + j).collect();
                        let sum: f64 = idx.iter().map(|&i| targets[i]).sum();
                        if sum.is_finite() && sum > 0.0 {
                            for &i in &idx {
                                targets[i] /= sum;
                            }
                        }
                    }
                }
                Problem { n, s, logits, labels, targets, ground, f32 }
            })
    })
}

impl Problem {
    fn dtype(&self) -> DType {
        if self.f32 {
            DType::F32
        } else {
            DType::F64
        }
    }
    fn logits(&self) -> Var {
        let t = Tensor::from_slice(&self.logits, (2, self.n, self.s), &Device::Cpu).unwrap();
        Var::from_tensor(&t.to_dtype(self.dtype()).unwrap()).unwrap()
    }
    fn labels(&self) -> Tensor {
        Tensor::from_slice(&self.labels, (2, self.s), &Device::Cpu).unwrap()
    }
    fn targets(&self) -> Tensor {
        Tensor::from_slice(&self.targets, (2, self.n, self.s), &Device::Cpu).unwrap().to_dtype(self.dtype()).unwrap()
    }
    fn ground(&self) -> GroundMatrix {
        let n = self.n;
        let rows: Vec<Vec<f64>> =
            (0..n).map(|i| (0..n).map(|j| if i == j { 0.0 } else { self.ground[i * n + j] }).collect()).collect();
        GroundMatrix::from_rows((0..n).map(|k| k.to_string()), rows).unwrap()
    }
}

/// `Err`, or a finite value and a finite gradient.
fn check(name: &str, z: &Var, r: rwt::Result<Tensor>) -> Result<(), TestCaseError> {
    let Ok(l) = r else { return Ok(()) };
    let v = l.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    prop_assert!(v.iter().all(|x| x.is_finite()), "{}: Ok with a non-finite value {:?}", name, v);
    let g = l.sum_all().unwrap().backward().unwrap();
    if let Some(g) = g.get(z.as_tensor()) {
        let g = g.to_dtype(DType::F64).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        prop_assert!(g.iter().all(|x| x.is_finite()), "{}: Ok with a non-finite gradient {:?}", name, g);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_loss_is_err_or_finite(p in problem(), red in 0usize..3) {
        let reduction = [Reduction::Mean, Reduction::Sum, Reduction::None][red];
        let cfg = LossConfig { ignore_index: Some(p.n as u32), reduction };
        let (y, d) = (p.labels(), p.ground());
        let weights: Vec<f64> = (0..p.n).map(|k| 1.0 + k as f64).collect();
        let z = p.logits();
        let zt = z.as_tensor();
        check("wasserstein", &z, loss::wasserstein(zt, &y, &d, cfg))?;
        check("wasserstein_composed", &z, loss::wasserstein_composed(zt, &y, &d, cfg))?;
        check("cross_entropy", &z, loss::cross_entropy(zt, &y, cfg))?;
        check("importance_aware_cross_entropy", &z, loss::importance_aware_cross_entropy(zt, &y, &weights, cfg))?;
        check("l1", &z, loss::l1(zt, &y, cfg))?;
        check("ce_plus_wasserstein", &z, loss::ce_plus_wasserstein(zt, &y, &d, 0.5, cfg))?;
        check("l1_soft", &z, loss::l1_soft(zt, &p.targets(), reduction))?;
        let soft = SinkhornConfig { max_iterations: 300, ..Default::default() };
        check(
            "wasserstein_soft",
            &z,
            loss::wasserstein_soft(zt, &p.targets(), &d, &soft, reduction).map(|o| o.loss),
        )?;
    }

    #[test]
    fn sinkhorn_is_err_or_finite(p in problem(), kernel in any::<bool>(), entropic in any::<bool>()) {
        // Histograms: the targets as predictions (image 0) against the targets of image 1.
        let (n, s) = (p.n, p.s);
        let rows = |b: usize| Array2::from_shape_fn((s, n), |(j, k)| p.targets[(b * n + k) * s + j]);
        let cfg = SinkhornConfig {
            max_iterations: 300,
            domain: if kernel { SinkhornDomain::Kernel } else { SinkhornDomain::Log },
            value: if entropic { SinkhornValue::Entropic } else { SinkhornValue::Sharp },
            ..Default::default()
        };
        if let Ok(out) = ot::sinkhorn_wasserstein(&rows(0), &rows(1), &p.ground(), &cfg) {
            prop_assert!(out.values.iter().all(|v| v.is_finite()), "values {:?}", out.values);
            prop_assert!(out.f.iter().chain(out.g.iter()).all(|v| v.is_finite()), "f {:?} g {:?}", out.f, out.g);
        }
    }
}
