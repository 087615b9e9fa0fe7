//! The segmenters: ENet against an independent PyTorch implementation, parameter counts
//! against the published ones, shapes for odd inputs, gradients reaching every parameter,
//! checkpoints and pretrained-encoder loading, and a short overfit on real CamVid images.

use rwt::candle_core::{DType, Device, Tensor};
use rwt::candle_nn::{Optimizer, VarBuilder, VarMap};
use rwt::loss::{self, LossConfig};
use rwt::models::weights::{self, Pretrained};
use rwt::models::{Enet, ModelKind, Segmenter, SegmenterConfig};
use std::collections::HashMap;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/enet").join(name)
}

#[test]
fn enet_matches_the_pytorch_reference() {
    // Fixture from tests/fixtures/make_enet_fixture.py (PyTorch 2.15, eval mode).
    let vm = VarMap::new();
    let net = Enet::new(&SegmenterConfig::new(11), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let report = weights::load(&vm, fixture("weights.safetensors"), true).unwrap();
    assert_eq!(report.loaded.len(), vm.all_vars().len());
    let io = rwt::candle_core::safetensors::load(fixture("io.safetensors"), &Device::Cpu).unwrap();
    let out = net.forward_all(&io["input"], false).unwrap();
    let diff = (&out.logits - &io["logits"]).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    let scale = io["logits"].abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
    assert!(diff < 1e-4 * scale.max(1.0), "max |rwt − PyTorch| = {diff} (logits up to {scale})");
}

#[test]
fn parameter_counts_match_the_published_networks() {
    let count = |kind: ModelKind, classes| {
        let (vm, _) = weights::build(kind, &SegmenterConfig::new(classes), &Device::Cpu).unwrap();
        weights::parameter_count(&vm)
    };
    // ENet: the PyTorch reference of tests/fixtures/make_enet_fixture.py counts 353,770 for 11
    // classes; the paper says 0.37 M.
    assert_eq!(count(ModelKind::Enet, 11), 353_770);
    // FCN-8s: torchvision's vgg16 has 138,357,544 parameters, of which the convolutions are
    // 14,714,688, fc6 102,764,544 and fc7 16,781,312 (fc8 4,097,000 is dropped); plus the three
    // score layers (4096 + 512 + 256 + 3)·N and the two learned 4×4 upsamplings 2·16·N².
    let n = 11;
    assert_eq!(
        count(ModelKind::Fcn8s, n),
        14_714_688 + 102_764_544 + 16_781_312 + (4096 + 512 + 256 + 3) * n + 2 * 16 * n * n
    );
    // SegNet: vgg16_bn's convolutions and batch-norms (14,723,136) plus the mirrored decoder;
    // the SegNet paper reports 29.5 M.
    let segnet = count(ModelKind::SegNet, 11);
    assert!((segnet as f64 - 29.5e6).abs() < 0.01 * 29.5e6, "SegNet {segnet}");
    // DeepLab-v2: torchvision's resnet101 has 44,549,160 parameters including the 2,049,000 of
    // its ImageNet classifier; ASPP adds 4 dilated 3×3 convolutions 2048 → N with bias.
    let n = 19;
    assert_eq!(count(ModelKind::DeepLabV2, n), 44_549_160 - 2_049_000 + 4 * (2048 * 9 * n + n));
}

#[test]
fn logits_have_the_input_size_for_odd_inputs() {
    for kind in ModelKind::ALL {
        let width = if kind == ModelKind::Enet { 1.0 } else { 0.125 };
        let (_, net) = weights::build(kind, &SegmenterConfig::new(7).with_width(width), &Device::Cpu).unwrap();
        for (h, w) in [(45, 61), (33, 40), (64, 64), (17, 95)] {
            let out = net.forward_all(&Tensor::zeros((2, 3, h, w), DType::F32, &Device::Cpu).unwrap(), false).unwrap();
            assert_eq!(out.logits.dims(), &[2, 7, h, w], "{kind} {h}x{w}");
            assert_eq!(out.latent.dim(0).unwrap(), 2);
            assert!(out.penultimate.dim(2).unwrap() <= h && out.penultimate.dim(3).unwrap() <= w);
        }
        let e = net
            .forward_all(&Tensor::zeros((1, 4, 8, 8), DType::F32, &Device::Cpu).unwrap(), false)
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("3 (RGB)")));
    }
}

#[test]
fn every_parameter_receives_a_gradient() {
    for kind in ModelKind::ALL {
        let width = if kind == ModelKind::Enet { 1.0 } else { 0.0625 };
        let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(5).with_width(width) };
        let (vm, net) = weights::build(kind, &cfg, &Device::Cpu).unwrap();
        let mut rng = rwt::random::seeded(3);
        let x = rwt::random::normal(&mut rng, (2, 3, 40, 56), 1.0, &Device::Cpu).unwrap();
        let y = rwt::random::labels(&mut rng, (2, 40, 56), 5, &Device::Cpu).unwrap();
        let logits = net.forward_t(&x, true).unwrap();
        let grads = loss::cross_entropy(&logits, &y, LossConfig::default()).unwrap().backward().unwrap();
        let data = vm.data().lock().unwrap();
        for (name, var) in data.iter() {
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                continue;
            }
            let g = grads.get(var.as_tensor()).unwrap_or_else(|| panic!("{kind}: {name} has no gradient"));
            let norm = g.abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(norm.is_finite() && norm > 0.0, "{kind}: {name} has gradient norm {norm}");
        }
    }
}

#[test]
fn checkpoints_round_trip_and_encoders_load_by_torchvision_name() {
    let dir = std::env::temp_dir().join(format!("rwt-ckpt-{}", std::process::id()));
    let (vm, net) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu).unwrap();
    let path = dir.join("enet.safetensors");
    weights::save(&vm, &path).unwrap();
    let (vm2, net2) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu).unwrap();
    weights::load(&vm2, &path, true).unwrap();
    let x = rwt::random::normal(&mut rwt::random::seeded(1), (1, 3, 32, 32), 1.0, &Device::Cpu).unwrap();
    let (a, b) = (net.forward_t(&x, false).unwrap(), net2.forward_t(&x, false).unwrap());
    assert_eq!(a.flatten_all().unwrap().to_vec1::<f32>().unwrap(), b.flatten_all().unwrap().to_vec1::<f32>().unwrap());
    // A checkpoint of another model is refused by a strict load, naming what differs.
    let (vm3, _) = weights::build(ModelKind::Enet, &SegmenterConfig::new(19), &Device::Cpu).unwrap();
    let e = weights::load(&vm3, &path, true).unwrap_err().to_string();
    assert!(e.contains("fullconv"), "{e}");
    assert!(weights::load(&vm3, dir.join("missing.safetensors"), true)
        .unwrap_err()
        .to_string()
        .contains("missing.safetensors"));

    // A torchvision-named vgg16 file (as data-scripts/convert_torchvision.py writes it) loads
    // into FCN-8s: features by name, fc6/fc7 reshaped, the ImageNet classifier skipped.
    let cfg = SegmenterConfig::new(5).with_width(0.0625);
    let (vm, _) = weights::build(ModelKind::Fcn8s, &cfg, &Device::Cpu).unwrap();
    let data = vm.data().lock().unwrap();
    let mut file: HashMap<String, Tensor> = HashMap::new();
    for (name, var) in data.iter() {
        let t = Tensor::ones(var.shape(), DType::F32, &Device::Cpu).unwrap();
        if let Some(rest) = name.strip_prefix("encoder.") {
            file.insert(rest.to_string(), t);
        } else if let Some(rest) = name.strip_prefix("fc6.") {
            let flat = if rest == "weight" { t.flatten_from(1).unwrap() } else { t };
            file.insert(format!("classifier.0.{rest}"), flat);
        } else if let Some(rest) = name.strip_prefix("fc7.") {
            let flat = if rest == "weight" { t.flatten_from(1).unwrap() } else { t };
            file.insert(format!("classifier.3.{rest}"), flat);
        }
    }
    drop(data);
    file.insert("classifier.6.weight".into(), Tensor::ones((1000, 8), DType::F32, &Device::Cpu).unwrap());
    let vgg = dir.join("vgg16.safetensors");
    rwt::candle_core::safetensors::save(&file, &vgg).unwrap();
    let report = Pretrained::Vgg16.load(&vm, &vgg).unwrap();
    assert!(
        report.loaded.iter().any(|n| n == "fc6.weight")
            && report.loaded.iter().any(|n| n == "encoder.features.28.weight")
    );
    assert_eq!(report.unused, vec!["classifier.6.weight".to_string()]);
    assert!(report.missing.iter().all(|n| n.starts_with("score") || n.starts_with("upscore")), "{:?}", report.missing);
    let w = vm.data().lock().unwrap()["fc6.weight"].as_tensor().sum_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(w as usize, vm.data().lock().unwrap()["fc6.weight"].elem_count());
    // Shape mismatches name the tensor.
    file.insert("features.0.weight".into(), Tensor::ones((3, 3), DType::F32, &Device::Cpu).unwrap());
    rwt::candle_core::safetensors::save(&file, &vgg).unwrap();
    let e = Pretrained::Vgg16.load(&vm, &vgg).unwrap_err().to_string();
    assert!(e.contains("features.0.weight"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn enet_overfits_a_few_camvid_images() {
    let Ok(root) = rwt::data::locate("camvid", None) else {
        println!("skipped: CamVid is not available here");
        return;
    };
    use rwt::data::{Augment, CamVid, Loader, LoaderConfig, Split};
    let ds = std::sync::Arc::new(CamVid::new(root, Split::Train).unwrap());
    let cfg = LoaderConfig {
        batch_size: 4,
        shuffle: false,
        augment: Augment { resize: Some((96, 128)), ..Default::default() },
        limit: Some(4),
        ..Default::default()
    };
    let batch = Loader::new(ds, cfg, Device::Cpu).unwrap().epoch(0).next().unwrap().unwrap();
    rwt::random::seed_global(0);
    let (vm, net) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu).unwrap();
    let mut opt = rwt::candle_nn::AdamW::new(
        vm.all_vars(),
        rwt::candle_nn::ParamsAdamW { lr: 5e-3, weight_decay: 0.0, ..Default::default() },
    )
    .unwrap();
    let mut losses = vec![];
    for _ in 0..60 {
        let logits = net.forward_t(&batch.images, true).unwrap();
        let l = loss::cross_entropy(&logits, &batch.labels, LossConfig::ignoring(11)).unwrap();
        losses.push(l.to_scalar::<f32>().unwrap());
        opt.backward_step(&l).unwrap();
    }
    let (first, last) = (losses[0], losses[losses.len() - 1]);
    println!("cross-entropy {first:.3} → {last:.3}");
    assert!(last < 0.35 * first, "loss went from {first} to {last}");
}

/// The summary's counts by hand: ENet's initial block is one 3×3, stride-2 convolution 3 → 13
/// (no bias) beside a max-pool, so on a 64×96 image it makes 32·48 outputs of 13 channels,
/// each 3·3·3 multiply-adds, and holds 13·27 weights plus 16 batch-norm scales and shifts and
/// 16 PReLU slopes; the per-block parameters add up to the whole count.
#[test]
fn summary_counts_parameters_and_multiply_adds() {
    use rwt::models::summary;
    let (vm, net) = weights::build(ModelKind::Enet, &SegmenterConfig::new(11), &Device::Cpu).unwrap();
    let s = summary::summarize(net.as_ref(), &vm, (64, 96), 1).unwrap();
    let initial = s.rows.iter().find(|r| r.block == "initial").expect("an initial block");
    assert_eq!(initial.macs, 32 * 48 * 13 * 27);
    assert_eq!(initial.parameters, 13 * 27 + 2 * 16 + 16);
    assert_eq!(initial.convolutions, 1);
    assert_eq!(s.parameters(), weights::parameter_count(&vm));
    // Doubling both sides quadruples every convolution's work.
    let s2 = summary::summarize(net.as_ref(), &vm, (128, 192), 1).unwrap();
    assert_eq!(s2.macs(), 4 * s.macs());
    assert!(summary::summarize(net.as_ref(), &vm, (0, 5), 1).is_err());
}

/// Initial weights are reproducible from a seed and follow the Kaiming-normal rule.
#[test]
fn seeded_initialisation_is_reproducible() {
    let cfg = SegmenterConfig::new(11);
    let first = |seed| {
        let (vm, _) = weights::build_seeded(ModelKind::Enet, &cfg, &Device::Cpu, seed).unwrap();
        let data = vm.data().lock().unwrap();
        data["b2_1.conv2.weight"].as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (a, b, c) = (first(3), first(3), first(4));
    assert_eq!(a, b);
    assert_ne!(a, c);
    // b2_1.conv2: 32 → 32 channels, 3 × 3: std = sqrt(2 / 288) = 0.0833.
    let n = a.len() as f64;
    let sd = (a.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / n).sqrt();
    assert!((sd - (2.0f64 / 288.0).sqrt()).abs() < 0.006, "std {sd}");
}
