//! Every CUDA path of the crate against the CPU path on the same inputs, in one process: the
//! fused pixel losses (CE, IAL, exact `W`, `CE + λW`, class-weighted `CE + λW`; f32 and f64;
//! values and gradients), the per-pixel Sinkhorn kernel of the soft-target `W`, max-pooling
//! with indices and unpooling, the four segmenters' forward and backward passes (and ENet on
//! the GPU against the PyTorch fixture), and SGD training steps of ENet at CamVid's 360×480.
//!
//! Agreement is `max |gpu − cpu| / max |cpu|` over each tensor (the error relative to the
//! tensor's scale, so that entries near zero do not divide by zero), at most 1e-4.
//!
//! Built with `--features cuda`; `cargo test --features cuda --test cuda`. Without a usable GPU
//! each test prints why and passes, unless `RWT_REQUIRE_CUDA=1` (set by
//! `target/gpu-bundle/run.sh` on a GPU machine), which makes a missing GPU a failure.

use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::candle_nn::VarMap;
use rwt::loss::{self, LossConfig, Reduction};
use rwt::models::{weights, ModelKind, Segmenter, SegmenterConfig};
use rwt::ot::SinkhornConfig;
use rwt::{GroundMatrix, Transform, CITYSCAPES};
use std::collections::HashMap;
use std::path::PathBuf;

/// The tolerance of every comparison, relative to the CPU tensor's largest magnitude.
const REL: f64 = 1e-4;

/// The first GPU, or `None` (after saying why) when there is none and none is required.
fn gpu() -> Option<Device> {
    match Device::new_cuda(0).map_err(|e| first_line(&e)) {
        Ok(d) => Some(d),
        Err(e) if std::env::var("RWT_REQUIRE_CUDA").is_ok_and(|v| v == "1") => {
            panic!("RWT_REQUIRE_CUDA=1 but no CUDA device could be opened: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no CUDA device ({e})");
            None
        }
    }
}

/// The first line of an error (candle appends a backtrace when RUST_BACKTRACE is set).
fn first_line(e: &impl std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

/// A project file: under `RWT_ROOT` when set (the GPU bundle), else in the source tree.
fn project_file(rel: &str) -> PathBuf {
    match std::env::var_os("RWT_ROOT") {
        Some(root) => PathBuf::from(root).join(rel),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel),
    }
}

/// `max |a − b| / max |b|` (absolute when `b` is all zeros), over f64 copies on the CPU.
fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let f = |t: &Tensor| t.to_device(&Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
    let (a, b) = (f(a), f(b));
    let diff = (&a - &b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
    let scale = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
    if diff.is_nan() {
        return f64::INFINITY;
    }
    if scale > 0.0 {
        diff / scale
    } else {
        diff
    }
}

/// The comparisons of one test: every one is made (a GPU run is rare, so one run should show
/// every mismatch), the worst is printed, and [`Checks::finish`] fails on any above [`REL`].
struct Checks {
    test: &'static str,
    count: usize,
    worst: (f64, String),
    failures: Vec<String>,
}

impl Checks {
    fn new(test: &'static str) -> Self {
        Checks { test, count: 0, worst: (-1.0, String::new()), failures: vec![] }
    }

    fn close(&mut self, what: &str, gpu: &Tensor, cpu: &Tensor) {
        let e = rel_err(gpu, cpu);
        self.count += 1;
        if !(e <= self.worst.0) {
            self.worst = (e, what.to_string());
        }
        if !(e <= REL) {
            self.failures.push(format!("{what}: GPU vs CPU relative error {e:.2e} > {REL:e}"));
        }
    }

    fn finish(self) {
        eprintln!("{}: {} comparisons, worst {:.2e} ({})", self.test, self.count, self.worst.0, self.worst.1);
        assert!(
            self.failures.is_empty(),
            "{} of {} comparisons failed:\n{}",
            self.failures.len(),
            self.count,
            self.failures.join("\n")
        );
    }
}

/// `(value, ∂value/∂logits)` of `f(logits)` on the device the logits live on.
fn value_and_grad(logits: &Tensor, f: impl Fn(&Tensor) -> Tensor) -> (Tensor, Tensor) {
    let v = Var::from_tensor(logits).unwrap();
    let value = f(v.as_tensor());
    let grads = value.sum_all().unwrap().backward().unwrap();
    (value, grads.get(v.as_tensor()).expect("a gradient").clone())
}

#[test]
fn fused_pixel_losses_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("fused_pixel_losses_match_the_cpu");
    let (b, n, h, w) = (2, 19, 37, 53);
    let ground = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let class_weights: Vec<f64> = (0..n).map(|k| 1.0 + 0.25 * k as f64).collect();
    let mut rng = rwt::random::seeded(19);
    let z = rwt::random::normal(&mut rng, (b, n, h, w), 3.0, &Device::Cpu).unwrap();
    // Labels with some 255s (ignored) among the classes.
    let y: Vec<u32> = rwt::random::labels(&mut rng, b * h * w, n + 2, &Device::Cpu).unwrap().to_vec1::<u32>().unwrap();
    let y: Vec<u32> = y.into_iter().map(|v| if v as usize >= n { 255 } else { v }).collect();
    let y = Tensor::from_vec(y, (b, h, w), &Device::Cpu).unwrap();
    type Loss<'a> = Box<dyn Fn(&Tensor, &Tensor, LossConfig) -> Tensor + 'a>;
    let losses: Vec<(&str, Loss)> = vec![
        ("cross_entropy", Box::new(|z, y, c| loss::cross_entropy(z, y, c).unwrap())),
        ("ial", Box::new(|z, y, c| loss::importance_aware_cross_entropy(z, y, &class_weights, c).unwrap())),
        ("wasserstein", Box::new(|z, y, c| loss::wasserstein(z, y, &ground, c).unwrap())),
        ("ce_plus_wasserstein", Box::new(|z, y, c| loss::ce_plus_wasserstein(z, y, &ground, 0.5, c).unwrap())),
        (
            "weighted_ce_plus_wasserstein",
            Box::new(|z, y, c| loss::weighted_ce_plus_wasserstein(z, y, &class_weights, &ground, 0.5, c).unwrap()),
        ),
    ];
    for dtype in [DType::F32, DType::F64] {
        let zc = z.to_dtype(dtype).unwrap();
        let zg = zc.to_device(&dev).unwrap();
        let yg = y.to_device(&dev).unwrap();
        for (name, f) in &losses {
            for reduction in [Reduction::Mean, Reduction::None] {
                let cfg = LossConfig::ignoring(255).with_reduction(reduction);
                let (vc, gc) = value_and_grad(&zc, |z| f(z, &y, cfg));
                let (vg, gg) = value_and_grad(&zg, |z| f(z, &yg, cfg));
                assert!(vg.device().is_cuda(), "{name} left the GPU");
                checks.close(&format!("{name} {dtype:?} {reduction:?} value"), &vg, &vc);
                checks.close(&format!("{name} {dtype:?} {reduction:?} gradient"), &gg, &gc);
            }
        }
    }
    checks.finish();
}

#[test]
fn sinkhorn_kernel_matches_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("sinkhorn_kernel_matches_the_cpu");
    let (b, n, h, w) = (2, 19, 23, 29);
    let ground = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let mut rng = rwt::random::seeded(7);
    let z = rwt::random::normal(&mut rng, (b, n, h, w), 2.0, &Device::Cpu).unwrap();
    // Soft targets, with one pixel of each image one-hot (the CPU's closed form, the kernel's
    // iterations) and one without mass (ignored by both).
    let soft =
        rwt::candle_nn::ops::softmax(&rwt::random::normal(&mut rng, (b, n, h, w), 3.0, &Device::Cpu).unwrap(), 1)
            .unwrap();
    // Pixel-major rows [B·H·W, N] to edit, renormalised in f64 (f32 rounding would leave the
    // two marginals' masses ~1e-7 apart, a floor under the f64 solver's marginal error), then
    // back to [B, N, H, W].
    let mut t: Vec<f64> = soft
        .permute((0, 2, 3, 1))
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    for row in t.chunks_mut(n) {
        let mass: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= mass);
    }
    for img in 0..b {
        let p = img * h * w;
        for k in 0..n {
            t[p * n + k] = if k == 3 { 1.0 } else { 0.0 };
            t[(p + 1) * n + k] = 0.0;
        }
    }
    let t = Tensor::from_vec(t, (b, h, w, n), &Device::Cpu).unwrap().permute((0, 3, 1, 2)).unwrap();
    // ε = 0.1 (at the default 0.01 a few f32 pixels of these inputs stall above a 1e-4 marginal
    // error on the CPU too); f64 to a tight tolerance (both solve to 1e-9, so they agree far
    // below 1e-4), f32 to 1e-5 (an iteration more or less moves a value by less than 1e-4).
    let f64_cfg = SinkhornConfig { epsilon: 0.1, tolerance: 1e-9, ..Default::default() };
    let f32_cfg = SinkhornConfig { epsilon: 0.1, tolerance: 1e-5, ..Default::default() };
    for (dtype, cfg) in [(DType::F64, f64_cfg), (DType::F32, f32_cfg)] {
        let (zc, tc) = (z.to_dtype(dtype).unwrap(), t.to_dtype(dtype).unwrap().contiguous().unwrap());
        let (zg, tg) = (zc.to_device(&dev).unwrap(), tc.to_device(&dev).unwrap());
        let run = |z: &Tensor, t: &Tensor| {
            let v = Var::from_tensor(z).unwrap();
            let out = loss::wasserstein_soft(v.as_tensor(), t, &ground, &cfg, Reduction::None).unwrap();
            let g = out.loss.sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
            (out.loss, g, out.stats)
        };
        let (vc, gc, sc) = run(&zc, &tc);
        let (vg, gg, sg) = run(&zg, &tg);
        assert!(sc.converged && sg.converged, "{dtype:?}: CPU {sc:?}, GPU {sg:?}");
        // The CPU solves one-hot pixels in closed form, the kernel iterates them.
        for st in [&sc, &sg] {
            assert_eq!(st.problems + st.ignored + st.closed_form, b * h * w, "{dtype:?}: every pixel once: {st:?}");
        }
        assert_eq!(sg.ignored, sc.ignored, "{dtype:?}: the massless pixels are ignored by both");
        checks.close(&format!("soft W {dtype:?} per-pixel values"), &vg, &vc);
        checks.close(&format!("soft W {dtype:?} gradient"), &gg, &gc);
    }
    checks.finish();
}

#[test]
fn pooling_and_unpooling_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("pooling_and_unpooling_match_the_cpu");
    let mut rng = rwt::random::seeded(3);
    let x = rwt::random::normal(&mut rng, (2, 5, 17, 23), 1.0, &Device::Cpu).unwrap();
    for dtype in [DType::F32, DType::F64] {
        for (kernel, stride) in [(2, 2), (3, 2), (3, 1)] {
            let xc = x.to_dtype(dtype).unwrap();
            let xg = xc.to_device(&dev).unwrap();
            // pool → unpool to the input's size: exercises argmax, gather and scatter, and
            // through the gradient the scatter and gather again.
            let run = |x: &Tensor| {
                let v = Var::from_tensor(x).unwrap();
                let (pooled, idx) = rwt::models::ops::max_pool2d_with_indices(v.as_tensor(), kernel, stride).unwrap();
                let up = rwt::models::ops::max_unpool2d(&(&pooled * 2.0).unwrap(), &idx, 17, 23).unwrap();
                let g = (&up * &up).unwrap().sum_all().unwrap().backward().unwrap().get(v.as_tensor()).unwrap().clone();
                (pooled, idx, up, g)
            };
            let (pc, ic, uc, gc) = run(&xc);
            let (pg, ig, ug, gg) = run(&xg);
            let what = format!("{dtype:?} kernel {kernel} stride {stride}");
            assert_eq!(
                ig.to_device(&Device::Cpu).unwrap().flatten_all().unwrap().to_vec1::<u32>().unwrap(),
                ic.flatten_all().unwrap().to_vec1::<u32>().unwrap(),
                "{what}: indices"
            );
            checks.close(&format!("{what}: pooled"), &pg, &pc);
            checks.close(&format!("{what}: unpooled"), &ug, &uc);
            checks.close(&format!("{what}: gradient"), &gg, &gc);
        }
    }
    checks.finish();
}

/// The variables of `vm` by name.
fn vars(vm: &VarMap) -> HashMap<String, Var> {
    vm.data().lock().unwrap().clone()
}

#[test]
fn segmenters_forward_and_backward_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("segmenters_forward_and_backward_match_the_cpu");
    let mut rng = rwt::random::seeded(11);
    let (b, h, w) = (2, 64, 96);
    let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, &Device::Cpu).unwrap();
    let y = rwt::random::labels(&mut rng, (b, h, w), 11, &Device::Cpu).unwrap();
    for kind in ModelKind::ALL {
        // Narrow VGG/ResNet encoders keep the CPU side quick; no dropout (its masks are random).
        let width = if kind == ModelKind::Enet { 1.0 } else { 0.25 };
        let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(11).with_width(width) };
        let (vm_c, net_c) = weights::build_seeded(kind, &cfg, &Device::Cpu, 5).unwrap();
        let (vm_g, net_g) = weights::build_seeded(kind, &cfg, &dev, 5).unwrap();
        let (xg, yg) = (x.to_device(&dev).unwrap(), y.to_device(&dev).unwrap());
        let name = kind.as_str();
        // Evaluation forward (running statistics).
        let (ec, eg) = (net_c.forward_all(&x, false).unwrap(), net_g.forward_all(&xg, false).unwrap());
        checks.close(&format!("{name} eval logits"), &eg.logits, &ec.logits);
        // Training forward (batch statistics) and the backward pass of the CE loss.
        let step = |net: &dyn Segmenter, x: &Tensor, y: &Tensor| {
            let out = net.forward_all(x, true).unwrap();
            let l = loss::cross_entropy(&out.logits, y, LossConfig::default()).unwrap();
            let grads = l.backward().unwrap();
            (out.logits, l, grads)
        };
        let (lc, loss_c, grads_c) = step(net_c.as_ref(), &x, &y);
        let (lg, loss_g, grads_g) = step(net_g.as_ref(), &xg, &yg);
        checks.close(&format!("{name} train logits"), &lg, &lc);
        checks.close(&format!("{name} loss"), &loss_g, &loss_c);
        let (vc, vg) = (vars(&vm_c), vars(&vm_g));
        let mut names: Vec<&String> = vc.keys().collect();
        names.sort();
        for var in names {
            let (c, g) = (&vc[var], &vg[var]);
            if var.ends_with("running_mean") || var.ends_with("running_var") {
                // Updated by the training forward pass.
                checks.close(&format!("{name} {var}"), g.as_tensor(), c.as_tensor());
                continue;
            }
            let gc = grads_c.get(c.as_tensor()).unwrap_or_else(|| panic!("{name} {var}: no CPU gradient"));
            let gg = grads_g.get(g.as_tensor()).unwrap_or_else(|| panic!("{name} {var}: no GPU gradient"));
            checks.close(&format!("{name} gradient of {var}"), gg, gc);
        }
    }
    checks.finish();
}

#[test]
fn enet_on_the_gpu_matches_the_pytorch_reference() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("enet_on_the_gpu_matches_the_pytorch_reference");
    // The fixture of tests/models.rs (tests/fixtures/make_enet_fixture.py, eval mode).
    let dir = project_file("tests/fixtures/enet");
    let vm = VarMap::new();
    let net = rwt::models::Enet::new(
        &SegmenterConfig::new(11),
        rwt::candle_nn::VarBuilder::from_varmap(&vm, DType::F32, &dev),
    )
    .unwrap();
    weights::load(&vm, dir.join("weights.safetensors"), true).unwrap();
    let io = rwt::candle_core::safetensors::load(dir.join("io.safetensors"), &dev).unwrap();
    let out = net.forward_all(&io["input"], false).unwrap();
    checks.close("ENet (GPU) vs PyTorch logits", &out.logits, &io["logits"]);
    checks.finish();
}

#[test]
fn enet_training_steps_at_camvid_size_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("enet_training_steps_at_camvid_size_match_the_cpu");
    // CamVid's 360×480, batch 2, 11 classes; SGD with momentum (linear in the gradients, so
    // the two devices' steps stay comparable; Adam's first step is about lr·sign(g), which
    // would amplify rounding in gradients near zero).
    let (b, h, w) = (2, 360, 480);
    let mut rng = rwt::random::seeded(360);
    let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(11) };
    let (vm_c, net_c) = weights::build_seeded(ModelKind::Enet, &cfg, &Device::Cpu, 1).unwrap();
    let (vm_g, net_g) = weights::build_seeded(ModelKind::Enet, &cfg, &dev, 1).unwrap();
    let mut opt_c = rwt::optim::Sgd::from_varmap(&vm_c, 0.05, 0.9, 2e-4).unwrap();
    let mut opt_g = rwt::optim::Sgd::from_varmap(&vm_g, 0.05, 0.9, 2e-4).unwrap();
    let mut losses = vec![];
    for step in 0..3 {
        let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, &Device::Cpu).unwrap();
        let y = rwt::random::labels(&mut rng, (b, h, w), 11, &Device::Cpu).unwrap();
        let lc = loss::cross_entropy(&net_c.forward_all(&x, true).unwrap().logits, &y, LossConfig::default()).unwrap();
        let (xg, yg) = (x.to_device(&dev).unwrap(), y.to_device(&dev).unwrap());
        let lg =
            loss::cross_entropy(&net_g.forward_all(&xg, true).unwrap().logits, &yg, LossConfig::default()).unwrap();
        opt_c.backward_step(&lc).unwrap();
        opt_g.backward_step(&lg).unwrap();
        assert!(lg.to_scalar::<f32>().unwrap().is_finite(), "step {step}: loss {lg}");
        checks.close(&format!("step {step} loss"), &lg, &lc);
        losses.push(lg.to_scalar::<f32>().unwrap());
    }
    let (vc, vg) = (vars(&vm_c), vars(&vm_g));
    for (name, c) in &vc {
        checks.close(&format!("{name} after 3 steps"), vg[name].as_tensor(), c.as_tensor());
    }
    eprintln!("ENet 360x480 batch {b}, SGD: GPU losses {losses:?}");
    checks.finish();
}
