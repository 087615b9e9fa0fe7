//! CamVid from ../shared/datasets/camvid (skipped, with the reason printed, when absent).

use rwt::data::{self, CamVid, Dataset, Split};

/// Pixel share of each label 0..=11 over the training split, from the dataset's README.
const README_SHARE: [f64; 12] =
    [0.1685, 0.2326, 0.0098, 0.3166, 0.0449, 0.0972, 0.0117, 0.0113, 0.0587, 0.0064, 0.0029, 0.0395];

fn camvid_root() -> Option<std::path::PathBuf> {
    match data::locate("camvid", None) {
        Ok(p) => Some(p),
        Err(e) => {
            println!("skipped: CamVid is not available here ({e})");
            None
        }
    }
}

#[test]
fn splits_counts_shapes_and_label_histogram() {
    let Some(root) = camvid_root() else { return };
    for (split, n) in CamVid::SPLIT_SIZES {
        let ds = CamVid::new(&root, split).unwrap();
        assert_eq!(ds.len(), n, "{split}");
        for i in [0, n / 2, n - 1] {
            let s = ds.get(i).unwrap();
            assert_eq!(s.image.dimensions(), (480, 360), "{split} {i}");
            assert_eq!(s.label.dimensions(), (480, 360));
        }
    }
    let train = CamVid::new(&root, Split::Train).unwrap();
    let h = data::label_histogram(&train, 0..train.len()).unwrap();
    let total: u64 = h.iter().sum();
    assert_eq!(total, 367 * 480 * 360);
    assert!(h[12..].iter().all(|&c| c == 0), "labels above 11");
    for (k, &share) in README_SHARE.iter().enumerate() {
        let got = h[k] as f64 / total as f64;
        assert!((got - share).abs() < 6e-4, "class {k}: {got:.4} vs README {share:.4}");
    }
}
