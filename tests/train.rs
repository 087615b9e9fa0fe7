//! Training and evaluation plumbing: pixel counts of `evaluate` on a dataset the test builds,
//! and a short CE training then W fine-tuning on real CamVid images.

use rwt::classes::{ClassSet, CAMVID};
use rwt::data::{Dataset, Loader, LoaderConfig, Sample};
use rwt::image::{GrayImage, RgbImage};
use rwt::models::{weights, ModelKind, SegmenterConfig};
use rwt::optim::{Schedule, Sgd};
use rwt::prelude::*;
use rwt::train::{self, Objective, Progress};
use std::sync::Arc;

/// Four 32×48 images; label = column band (classes 0..3), the top row void (11).
struct Bands;

impl Dataset for Bands {
    fn len(&self) -> usize {
        4
    }
    fn get(&self, index: usize) -> rwt::Result<Sample> {
        let image =
            RgbImage::from_fn(48, 32, |x, y| rwt::image::Rgb([(x * 5) as u8, (y * 7) as u8, (index * 40) as u8]));
        let label = GrayImage::from_fn(48, 32, |x, y| rwt::image::Luma([if y == 0 { 11 } else { (x / 12) as u8 }]));
        Ok(Sample { image, label, name: format!("bands-{index}") })
    }
    fn classes(&self) -> &'static ClassSet {
        &CAMVID
    }
    fn describe(&self) -> String {
        "bands (4 images)".into()
    }
}

#[test]
fn evaluate_counts_every_non_void_pixel_once() {
    let loader =
        Loader::new(Arc::new(Bands), LoaderConfig { batch_size: 3, shuffle: false, ..Default::default() }, Device::Cpu)
            .unwrap();
    let (_vm, net) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu).unwrap();
    let cm = train::evaluate(net.as_ref(), &loader).unwrap();
    assert_eq!(cm.total(), 4 * 31 * 48);
    // Every true pixel is one of the four bands, 4·31·12 each.
    for t in 0..11 {
        let row: u64 = cm.counts().row(t).sum();
        assert_eq!(row, if t < 4 { 4 * 31 * 12 } else { 0 }, "class {t}");
    }
    let (_vm, net19) = weights::build(ModelKind::Enet, &SegmenterConfig::new(19), &Device::Cpu).unwrap();
    assert!(train::evaluate(net19.as_ref(), &loader).is_err());
}

#[test]
fn cross_entropy_then_wasserstein_fine_tuning_lower_their_losses() {
    let Ok(root) = rwt::data::locate("camvid", None) else {
        println!("skipped: CamVid is not available here");
        return;
    };
    let ds = Arc::new(rwt::data::CamVid::new(root, rwt::data::Split::Train).unwrap());
    let cfg = LoaderConfig {
        batch_size: 2,
        shuffle: true,
        seed: 1,
        augment: rwt::data::Augment { resize: Some((96, 128)), ..Default::default() },
        limit: Some(4),
        ..Default::default()
    };
    let loader = Loader::new(ds, cfg, Device::Cpu).unwrap();
    rwt::random::seed_global(0);
    let (vm, net) = weights::build_seeded(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu, 1).unwrap();
    let mut opt = Sgd::new(vm.all_vars(), 0.05, 0.9, 1e-4).unwrap();
    let epochs = 12;
    let mut progress = Progress {
        base_rate: 0.05,
        schedule: Schedule::Poly { power: 0.9 },
        step: 0,
        total_steps: 2 * epochs,
        log_every: 0,
        seed: 0,
    };
    let mut means = vec![];
    for e in 0..epochs {
        let s = train::train_epoch(net.as_ref(), &Objective::CrossEntropy, &mut opt, &loader, e, &mut progress, |_| {})
            .unwrap();
        assert_eq!(s.losses.len(), 2);
        means.push(s.mean_loss());
    }
    assert_eq!(progress.step, 2 * epochs);
    println!("CE by epoch: {means:?}");
    assert!(means[epochs - 1] < 0.8 * means[0], "CE {:?}", means);
    // Fine-tune with W under the severity matrix: its loss goes down too.
    let w = Objective::Wasserstein { ground: GroundMatrix::severity(&CAMVID) };
    let mut p2 =
        Progress { base_rate: 0.05, schedule: Schedule::Constant, step: 0, total_steps: 8, log_every: 1, seed: 0 };
    let mut lines = 0;
    let first =
        train::train_epoch(net.as_ref(), &w, &mut opt, &loader, 0, &mut p2, |_| lines += 1).unwrap().mean_loss();
    let mut last = first;
    for e in 1..4 {
        last = train::train_epoch(net.as_ref(), &w, &mut opt, &loader, e, &mut p2, |_| {}).unwrap().mean_loss();
    }
    assert_eq!(lines, 2);
    println!("W: {first:.4} -> {last:.4}");
    assert!(last < first, "W went from {first} to {last}");
    let bad = Objective::ImportanceAware { weights: vec![1.0; 3] };
    assert!(train::train_epoch(net.as_ref(), &bad, &mut opt, &loader, 0, &mut p2, |_| {}).is_err());
}

/// Train two epochs, checkpoint, train a third; then restore the checkpoint into a network
/// built from another seed and train the third again: the same losses and weights, bit for
/// bit (dropout on, momentum buffers restored, shuffling and masks seeded per epoch).
#[test]
fn a_resumed_run_repeats_exactly() {
    let loader =
        Loader::new(Arc::new(Bands), LoaderConfig { batch_size: 2, seed: 5, ..Default::default() }, Device::Cpu)
            .unwrap();
    let cfg = SegmenterConfig::new(11);
    let progress = || Progress {
        base_rate: 0.02,
        schedule: Schedule::Poly { power: 0.9 },
        step: 0,
        total_steps: 6,
        log_every: 0,
        seed: 9,
    };
    let flat = |vm: &rwt::candle_nn::VarMap| -> Vec<f32> {
        let data = vm.data().lock().unwrap();
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        names.iter().flat_map(|n| data[*n].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()).collect()
    };
    let dir = std::env::temp_dir().join(format!("rwt-resume-{}", std::process::id()));
    let (vm, net) = weights::build_seeded(ModelKind::Enet, &cfg, &Device::Cpu, 1).unwrap();
    let mut opt = Sgd::from_varmap(&vm, 0.02, 0.9, 1e-4).unwrap();
    let mut p = progress();
    for e in 0..2 {
        train::train_epoch(net.as_ref(), &Objective::CrossEntropy, &mut opt, &loader, e, &mut p, |_| {}).unwrap();
    }
    train::checkpoint::save(&dir, &vm, &opt, &p, 2).unwrap();
    let first =
        train::train_epoch(net.as_ref(), &Objective::CrossEntropy, &mut opt, &loader, 2, &mut p, |_| {}).unwrap();

    let (vm2, net2) = weights::build_seeded(ModelKind::Enet, &cfg, &Device::Cpu, 2).unwrap();
    let mut opt2 = Sgd::from_varmap(&vm2, 0.5, 0.9, 1e-4).unwrap();
    let mut p2 = progress();
    let next = train::checkpoint::load(&dir, &vm2, &mut opt2, &mut p2).unwrap();
    assert_eq!((next, p2.step), (2, 4));
    let again =
        train::train_epoch(net2.as_ref(), &Objective::CrossEntropy, &mut opt2, &loader, next, &mut p2, |_| {}).unwrap();
    assert_eq!(first, again);
    assert!(flat(&vm) == flat(&vm2), "weights differ after the resumed epoch");

    // A damaged state file is an error naming it; the checkpoint folder otherwise stays usable.
    std::fs::write(dir.join("state.txt"), "next_epoch = two\nstep = 4\n").unwrap();
    let e = train::checkpoint::load(&dir, &vm2, &mut opt2, &mut p2).unwrap_err().to_string();
    assert!(e.contains("state.txt") && e.contains("next_epoch"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
