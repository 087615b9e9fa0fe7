//! Every malformed input returns an `Err` that names the problem — never a panic or a NaN.

use rwt::candle_core::{DType, Device, Tensor};
use rwt::loss::{self, LossConfig};
use rwt::{Error, GroundMatrix, CAMVID};

fn logits() -> Tensor {
    Tensor::zeros((2, 11, 3, 4), DType::F32, &Device::Cpu).unwrap()
}

fn labels() -> Tensor {
    Tensor::zeros((2, 3, 4), DType::U32, &Device::Cpu).unwrap()
}

fn msg(e: Error) -> String {
    e.to_string()
}

#[test]
fn malformed_ground_matrices() {
    let e = msg(GroundMatrix::from_rows(["a", "b", "c"], [vec![0.0, 1.0, 1.0], vec![1.0, 0.0]]).unwrap_err());
    assert!(e.contains("must be square"), "{e}");
    let e = msg(GroundMatrix::from_rows(["a", "b"], [[0.0, f64::NAN], [1.0, 0.0]]).unwrap_err());
    assert!(e.contains("D[0][1] is NaN"), "{e}");
    let e = msg(GroundMatrix::from_rows(["a", "b"], [[0.0, f64::INFINITY], [1.0, 0.0]]).unwrap_err());
    assert!(e.contains("D[0][1] is inf"), "{e}");
}

#[test]
fn label_out_of_range() {
    let d = GroundMatrix::severity(&CAMVID);
    let mut v = vec![0u32; 24];
    v[17] = 12; // neither a class (0..=10) nor the ignore label 11
    let bad = Tensor::from_vec(v, (2, 3, 4), &Device::Cpu).unwrap();
    for r in [
        loss::wasserstein(&logits(), &bad, &d, LossConfig::ignoring(11)),
        loss::wasserstein_composed(&logits(), &bad, &d, LossConfig::ignoring(11)),
        loss::cross_entropy(&logits(), &bad, LossConfig::ignoring(11)),
        loss::l1(&logits(), &bad, LossConfig::ignoring(11)),
    ] {
        let e = msg(r.unwrap_err());
        assert!(e.contains("label 12 at flat position 17") && e.contains("ignore label 11"), "{e}");
    }
    // Without an ignore label, 11 itself is out of range.
    let e = msg(loss::wasserstein(
        &logits(),
        &Tensor::full(11u8, (2, 3, 4), &Device::Cpu).unwrap(),
        &d,
        LossConfig::default(),
    )
    .unwrap_err());
    assert!(e.contains("label 11") && e.contains("ignore label none"), "{e}");
    // Negative labels.
    let neg = Tensor::full(-1i64, (2, 3, 4), &Device::Cpu).unwrap();
    let e = msg(loss::cross_entropy(&logits(), &neg, LossConfig::default()).unwrap_err());
    assert!(e.contains("label -1"), "{e}");
}

#[test]
fn shape_mismatch() {
    let d = GroundMatrix::severity(&CAMVID);
    let wrong = Tensor::zeros((2, 4, 3), DType::U32, &Device::Cpu).unwrap();
    let e = msg(loss::wasserstein(&logits(), &wrong, &d, LossConfig::default()).unwrap_err());
    assert!(e.contains("[2, 3, 4]") && e.contains("[2, 4, 3]"), "{e}");
    let e = msg(loss::cross_entropy(
        &Tensor::zeros(5, DType::F32, &Device::Cpu).unwrap(),
        &labels(),
        LossConfig::default(),
    )
    .unwrap_err());
    assert!(e.contains("[B, N]"), "{e}");
    // Ground matrix for another class count.
    let small = GroundMatrix::from_rows(["a", "b"], [[0.0, 1.0], [1.0, 0.0]]).unwrap();
    let e = msg(loss::wasserstein(&logits(), &labels(), &small, LossConfig::default()).unwrap_err());
    assert!(e.contains("expected 11 classes, got 2"), "{e}");
    let e =
        msg(loss::importance_aware_cross_entropy(&logits(), &labels(), &[1.0; 3], LossConfig::default()).unwrap_err());
    assert!(e.contains("expected 11 classes, got 3"), "{e}");
    let e = msg(loss::l1_soft(
        &logits(),
        &Tensor::zeros((2, 11, 3), DType::F32, &Device::Cpu).unwrap(),
        Default::default(),
    )
    .unwrap_err());
    assert!(e.contains("targets vs logits"), "{e}");
}

#[test]
fn wrong_dtypes() {
    let d = GroundMatrix::severity(&CAMVID);
    let float_labels = labels().to_dtype(DType::F32).unwrap();
    let e = msg(loss::wasserstein(&logits(), &float_labels, &d, LossConfig::default()).unwrap_err());
    assert!(e.contains("labels has dtype F32"), "{e}");
    let int_logits = logits().to_dtype(DType::U8).unwrap();
    let e = msg(loss::cross_entropy(&int_logits, &labels(), LossConfig::default()).unwrap_err());
    assert!(e.contains("logits has dtype U8, expected f32 or f64"), "{e}");
}

#[test]
fn bad_parameters_and_non_finite_logits() {
    let d = GroundMatrix::severity(&CAMVID);
    let e = msg(loss::ce_plus_wasserstein(&logits(), &labels(), &d, f64::NAN, LossConfig::default()).unwrap_err());
    assert!(e.contains("lambda = NaN"), "{e}");
    let e = msg(
        loss::importance_aware_cross_entropy(&logits(), &labels(), &[-1.0; 11], LossConfig::default()).unwrap_err()
    );
    assert!(e.contains("class weight = -1"), "{e}");
    let mut z = vec![0f32; 2 * 11 * 12];
    z[11 * 12 + 5] = f32::NAN; // image 1, class 0, pixel 5
    let nan = Tensor::from_vec(z, (2, 11, 3, 4), &Device::Cpu).unwrap();
    let e = msg(loss::wasserstein(&nan, &labels(), &d, LossConfig::default()).unwrap_err());
    assert!(e.contains("image 1 at pixel 5 are not finite"), "{e}");
}
