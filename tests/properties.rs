//! Property tests of the exact Wasserstein loss (Eq. 2) on generated problems.

use proptest::prelude::*;
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::GroundMatrix;

/// A problem: N classes, a ground matrix with off-diagonal entries in [0.01, 1], one pixel's
/// logits and its label.
fn problem(max_abs_logit: f64) -> impl Strategy<Value = (usize, Vec<f64>, Vec<f64>, usize)> {
    (2usize..9).prop_flat_map(move |n| {
        (
            Just(n),
            prop::collection::vec(0.01f64..1.0, n * n),
            prop::collection::vec(-max_abs_logit..max_abs_logit, n),
            0..n,
        )
    })
}

fn ground(n: usize, raw: &[f64]) -> GroundMatrix {
    let rows: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| if i == j { 0.0 } else { raw[i * n + j] }).collect()).collect();
    GroundMatrix::from_rows((0..n).map(|k| k.to_string()), rows).unwrap()
}

fn pixel_loss(d: &GroundMatrix, z: &[f64], y: usize, dtype: DType) -> f64 {
    let logits = Tensor::from_slice(z, (1, z.len()), &Device::Cpu).unwrap().to_dtype(dtype).unwrap();
    let labels = Tensor::new(&[y as u32], &Device::Cpu).unwrap();
    loss::wasserstein(&logits, &labels, d, LossConfig::default())
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `min_{p≠y} D[y][p] (1 − s_y) ≤ L ≤ max_p D[y][p] (1 − s_y)`: the loss is ≥ 0 and is 0
    /// exactly when all the mass sits on the true class.
    #[test]
    fn nonnegative_and_zero_iff_all_mass_on_truth((n, raw, z, y) in problem(30.0)) {
        let d = ground(n, &raw);
        let l = pixel_loss(&d, &z, y, DType::F64);
        let s = softmax(&z);
        // 1 − s_y, summed over the other classes to avoid cancellation when s_y ≈ 1.
        let off: f64 = (0..n).filter(|&p| p != y).map(|p| s[p]).sum();
        let row: Vec<f64> = (0..n).filter(|&p| p != y).map(|p| d.get(y, p)).collect();
        let lo = row.iter().copied().fold(f64::INFINITY, f64::min) * off;
        let hi = row.iter().copied().fold(0.0, f64::max) * off;
        prop_assert!(l >= 0.0);
        prop_assert!(l >= lo * (1.0 - 1e-12) && l <= hi * (1.0 + 1e-12), "{lo} <= {l} <= {hi}");
        prop_assert_eq!(l == 0.0, off == 0.0);
    }

    /// Raising one entry of D never lowers the loss (by exactly `s_p · δ`).
    #[test]
    fn monotone_in_each_entry((n, raw, z, y) in problem(8.0), pick in 0usize..64, delta in 0.0f64..2.0) {
        let d = ground(n, &raw);
        let (t, p) = ((pick / 8) % n, pick % n);
        prop_assume!(t != p);
        let mut rows: Vec<Vec<f64>> = (0..n).map(|i| d.row(i).to_vec()).collect();
        rows[t][p] += delta;
        let d2 = GroundMatrix::from_rows(d.names().to_vec(), rows).unwrap();
        let (a, b) = (pixel_loss(&d, &z, y, DType::F64), pixel_loss(&d2, &z, y, DType::F64));
        prop_assert!(b >= a);
        let expected = if t == y { softmax(&z)[p] * delta } else { 0.0 };
        prop_assert!((b - a - expected).abs() < 1e-12);
    }

    /// Finite logits up to |z| = 1e4 give a finite loss and a finite gradient in f32.
    #[test]
    fn no_nan_for_extreme_logits((n, raw, z, y) in problem(1e4)) {
        let d = ground(n, &raw);
        let v = Var::from_tensor(&Tensor::from_slice(&z, (1, n), &Device::Cpu).unwrap().to_dtype(DType::F32).unwrap()).unwrap();
        let labels = Tensor::new(&[y as u32], &Device::Cpu).unwrap();
        for l in [
            loss::wasserstein(v.as_tensor(), &labels, &d, LossConfig::default()).unwrap(),
            loss::cross_entropy(v.as_tensor(), &labels, LossConfig::default()).unwrap(),
            loss::ce_plus_wasserstein(v.as_tensor(), &labels, &d, 1.0, LossConfig::default()).unwrap(),
        ] {
            let value = l.to_scalar::<f32>().unwrap();
            prop_assert!(value.is_finite() && value >= 0.0, "loss {value}");
            let g = l.backward().unwrap().get(v.as_tensor()).unwrap().to_vec2::<f32>().unwrap();
            prop_assert!(g[0].iter().all(|x| x.is_finite()), "gradient {:?}", g);
        }
        let map = loss::wasserstein(v.as_tensor(), &labels, &d, LossConfig { reduction: Reduction::None, ..Default::default() }).unwrap();
        prop_assert_eq!(map.dims(), &[1]);
    }
}
