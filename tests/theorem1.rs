//! Eq. 2 / Theorem 1: the O(N) one-hot loss equals the optimal value of the general transport
//! problem (Eq. 1) solved exactly, for random predictions, random asymmetric ground matrices
//! and every f; special cases IAL (Fig. 2 right) and the step transform (Eq. 5).

mod common;
use common::*;
use rwt::loss::{self, LossConfig, Reduction};
use rwt::{ot, GroundMatrix, ImportanceWeights, Transform, CAMVID, CITYSCAPES};

#[test]
fn exact_loss_equals_optimal_transport() {
    let mut rng = Rng(2024);
    let (b, n, h, w) = (2, 7, 3, 4);
    let s = h * w;
    let cfg = LossConfig { reduction: Reduction::None, ..Default::default() };
    let transforms = [
        Transform::Linear,
        Transform::Power { rho: 2.0 },
        Transform::Power { rho: 3.0 },
        Transform::Huber { tau: 0.4 },
        Transform::Step,
    ];
    for trial in 0..5 {
        let d = random_ground(&mut rng, n, 0.05, 1.5);
        let logits = logits_f64(&mut rng, (b, n, h, w), 1.0 + trial as f64);
        let labels = labels_u32(&mut rng, (b, h, w), n, None, 0.0);
        let z = logits.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let y = labels.flatten_all().unwrap().to_vec1::<u32>().unwrap();
        for f in transforms {
            let df = d.transform(f).unwrap();
            let map = loss::wasserstein(&logits, &labels, &df, cfg).unwrap();
            let map = map.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            for bi in 0..b {
                for j in 0..s {
                    let probs = softmax_at(&z, n, s, bi, j);
                    let label = y[bi * s + j] as usize;
                    let target: Vec<f64> = (0..n).map(|k| if k == label { 1.0 } else { 0.0 }).collect();
                    let exact = ot::exact_wasserstein(&probs, &target, &df).unwrap();
                    let got = map[bi * s + j];
                    assert!(
                        (got - exact.cost).abs() <= 1e-12 * (1.0 + exact.cost),
                        "f = {f}: Eq. 2 gives {got}, exact OT {}",
                        exact.cost
                    );
                    // Theorem 1: the plan sends every predicted bin to the true class.
                    for (p, &sp) in probs.iter().enumerate() {
                        assert!((exact.plan[[p, label]] - sp).abs() < 1e-12);
                    }
                }
            }
        }
    }
}

#[test]
fn importance_matrix_gives_linearised_ial() {
    let mut rng = Rng(5);
    let weights = ImportanceWeights::new([0.2, 0.4, 1.5, 3.0]).unwrap();
    for set in [CAMVID, CITYSCAPES] {
        let n = set.len();
        let d = GroundMatrix::importance_aware(&set, &weights).unwrap();
        let logits = logits_f64(&mut rng, (2, n, 3, 5), 2.0);
        let labels = labels_u32(&mut rng, (2, 3, 5), n, Some(set.ignore_index), 0.2);
        let cfg = LossConfig { ignore_index: Some(set.ignore_index), reduction: Reduction::None };
        let map =
            loss::wasserstein(&logits, &labels, &d, cfg).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let z = logits.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let y = labels.flatten_all().unwrap().to_vec1::<u32>().unwrap();
        let w = weights.class_weights(&set);
        for bi in 0..2 {
            for j in 0..15 {
                let label = y[bi * 15 + j];
                let expected = if label == set.ignore_index {
                    0.0
                } else {
                    let sy = softmax_at(&z, n, 15, bi, j)[label as usize];
                    w[label as usize] * (1.0 - sy)
                };
                assert!(
                    (map[bi * 15 + j] - expected).abs() < 1e-12,
                    "{}: {} vs {}",
                    set.name,
                    map[bi * 15 + j],
                    expected
                );
            }
        }
    }
}

#[test]
fn step_transform_gives_half_l1() {
    let mut rng = Rng(77);
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Step).unwrap();
    let logits = logits_f64(&mut rng, (3, 19, 4, 4), 3.0);
    let labels = labels_u32(&mut rng, (3, 4, 4), 19, Some(255), 0.25);
    let cfg = LossConfig { ignore_index: Some(255), reduction: Reduction::None };
    let w = loss::wasserstein(&logits, &labels, &d, cfg).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let l1 = loss::l1(&logits, &labels, cfg).unwrap().flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for (a, b) in w.iter().zip(&l1) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    assert!(w.iter().any(|&v| v > 0.1));
}

#[test]
fn fused_and_composed_agree_in_f32() {
    let mut rng = Rng(9);
    let d = GroundMatrix::severity(&CAMVID).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let logits = logits_f64(&mut rng, (2, 11, 5, 7), 4.0).to_dtype(rwt::candle_core::DType::F32).unwrap();
    let labels = labels_u32(&mut rng, (2, 5, 7), 11, Some(11), 0.3);
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        let cfg = LossConfig { ignore_index: Some(11), reduction };
        let a = loss::wasserstein(&logits, &labels, &d, cfg).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = loss::wasserstein_composed(&logits, &labels, &d, cfg)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 2e-6 * (1.0 + y.abs()), "{reduction:?}: {x} vs {y}");
        }
    }
}
