//! Every CUDA path of the crate against the CPU path on the same inputs, in one process: the
//! fused pixel losses (CE, IAL, exact `W`, `CE + λW`, class-weighted `CE + λW`; f32 and f64;
//! values and gradients), the per-pixel Sinkhorn kernel of the soft-target `W`, max-pooling
//! with indices and unpooling, the batch-norm and PReLU kernels, the four segmenters' forward and backward passes (and ENet on
//! the GPU against the PyTorch fixture), and SGD training steps of ENet at CamVid's 360×480.
//!
//! Agreement is `max |gpu − cpu| / max |cpu|` over each tensor (the error relative to the
//! tensor's scale, so that entries near zero do not divide by zero), at most 1e-4 — for the
//! losses, the Sinkhorn kernel, pooling and ENet's evaluation forward pass, which are well
//! conditioned, and for each candle op the segmenters use, in f32 against f64 (the GPU's error
//! within 1e-4 or [`FACTOR`] times the CPU's). A deep network's gradients and training steps
//! are not well conditioned: with batch statistics at initialisation f32 rounding alone moves
//! DeepLab-v2's gradients by up to 35 % and ENet's by about 1 %, and even in evaluation mode a
//! pre-activation within rounding of a ReLU's kink (or of a max-pool's tie) flips its unit's
//! gradient, so that two f32 evaluations that differ only in rounding disagree by up to 1e-2
//! of a gradient's scale (measured on the CPU: DeepLab-v2's evaluation-mode gradients move from
//! 4e-7 to 1.3e-2 when the convolutions' values are rounded from f64 instead of summed in f32).
//! There the GPU's f32 values are measured against the same network run in f64 on the CPU, and
//! pass where their error is within 1e-4 or within [`FACTOR`] times the largest error of three
//! f32 evaluations on the CPU (the layers composed from candle ops, convolutions as on the GPU; the fused
//! CPU kernels; the composed layers with f64 convolution values,
//! [`rwt::kernels::with_f64_convolution_values`]) — for logits, loss and running statistics
//! tensor by tensor, for gradients over all of the network's gradients in that mode, since a
//! flipped unit moves whichever gradients it reaches: the GPU is as exact as f32 determines
//! these values. The same networks in f64 on the GPU must agree with the CPU's f64 to 1e-9,
//! and so must each candle op they use: a wrong GPU operation then shows apart from f32
//! rounding.
//! `RWT_CUDA_TESTS_ON_CPU=1` runs every test with the CPU in the GPU's place, to try the tests
//! themselves.
//!
//! Built with `--features cuda`; `cargo test --features cuda --test cuda`. Without a usable GPU
//! each test prints why and passes, unless `RWT_REQUIRE_CUDA=1` (set by
//! `target/gpu-bundle/run.sh` on a GPU machine), which makes a missing GPU a failure.

use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::candle_nn::{VarBuilder, VarMap};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::models::{weights, ModelKind, Segmenter, SegmenterConfig};
use rwt::ot::SinkhornConfig;
use rwt::{GroundMatrix, Transform, CITYSCAPES};
use std::collections::HashMap;
use std::path::PathBuf;

/// The tolerance of every comparison, relative to the CPU tensor's largest magnitude.
const REL: f64 = 1e-4;

/// The tolerance of a comparison in f64 (GPU f64 against CPU f64).
const F64_REL: f64 = 1e-9;

/// How much larger than the CPU f32 path's error (both against f64) the GPU's may be.
const FACTOR: f64 = 4.0;

/// The first GPU, or `None` (after saying why) when there is none and none is required.
fn gpu() -> Option<Device> {
    // RWT_CUDA_TESTS_ON_CPU=1 runs the tests with the CPU in the GPU's place: a check of the
    // tests themselves (every comparison then holds trivially), and of their time.
    if std::env::var("RWT_CUDA_TESTS_ON_CPU").is_ok_and(|v| v == "1") {
        return Some(Device::Cpu);
    }
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

/// `max |a − b| / max(max |b|, floor)` (absolute when that is zero), over f64 copies on the CPU.
fn rel_err(a: &Tensor, b: &Tensor, floor: f64) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let diff = max_abs(&(f64_cpu(a) - f64_cpu(b)).unwrap());
    let scale = max_abs(b).max(floor);
    if diff.is_nan() {
        return f64::INFINITY;
    }
    if scale > 0.0 {
        diff / scale
    } else {
        diff
    }
}

/// The largest [`rel_err`] of `evaluations` against `reference`.
fn largest_rel_err(evaluations: &[&Tensor], reference: &Tensor, floor: f64) -> f64 {
    evaluations.iter().map(|t| rel_err(t, reference, floor)).fold(0.0, f64::max)
}

/// The comparisons of one test: every one is made (a GPU run is rare, so one run should show
/// every mismatch), the worst is printed (the largest error for [`Checks::close`], the largest
/// share of the bound for [`Checks::against`]), and [`Checks::finish`] fails on any out of bounds.
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
        self.close_within(what, gpu, cpu, REL, 0.0)
    }

    /// [`Checks::close`] with the tolerance `tol` and the scale at least `floor`.
    fn close_within(&mut self, what: &str, gpu: &Tensor, cpu: &Tensor, tol: f64, floor: f64) {
        let e = rel_err(gpu, cpu, floor);
        self.count += 1;
        if !within(e, self.worst.0) {
            self.worst = (e, what.to_string());
        }
        if !within(e, tol) {
            self.failures.push(format!("{what}: GPU vs CPU relative error {e:.2e} > {tol:e}"));
        }
    }

    /// The GPU's `gpu` and the CPU's `cpu` (both f32, the CPU's layers composed) against the
    /// f64 `reference`: the errors `max |· − reference| / scale`, with
    /// `scale = max(max |reference|, floor)`, and the GPU's at most `max(REL, FACTOR × the CPU's)`.
    fn against(&mut self, what: &str, gpu: &Tensor, cpu: &Tensor, reference: &Tensor, floor: f64) {
        self.against_spread(what, gpu, &[cpu], reference, floor)
    }

    /// [`Checks::against`] with several f32 evaluations on the CPU that differ only in rounding
    /// (`cpus`): the GPU's error is bounded by `max(REL, FACTOR × the largest of theirs)`, the
    /// spread of f32 rounding for this tensor.
    fn against_spread(&mut self, what: &str, gpu: &Tensor, cpus: &[&Tensor], reference: &Tensor, floor: f64) {
        let eg = rel_err(gpu, reference, floor);
        let ec = largest_rel_err(cpus, reference, floor);
        let bound = REL.max(FACTOR * ec);
        self.count += 1;
        // Worst as the share of the bound used.
        if !within(eg / bound, self.worst.0) {
            self.worst = (eg / bound, format!("{what}: GPU {eg:.2e}, CPU {ec:.2e}"));
        }
        if !within(eg, bound) {
            self.failures
                .push(format!("{what}: GPU error {eg:.2e} against f64 > max({REL:e}, {FACTOR} x the CPU's {ec:.2e})"));
        }
    }

    /// The gradients of one network in one mode: each GPU error `eg` (against f64) at most
    /// `max(REL, FACTOR × spread)`, where `spread` is the largest error of any of the CPU's f32
    /// evaluations over all of the network's gradients (`ec`, each the largest over the
    /// evaluations of that gradient). One rounding spread per network and mode, because a
    /// flipped unit (a ReLU's kink, a max-pool's tie, a batch statistic at initialisation)
    /// lands in whichever gradients it reaches, a different set for each evaluation.
    fn against_group(&mut self, group: &str, items: &[(String, f64, f64)]) {
        let spread = items.iter().map(|&(_, _, ec)| ec).fold(0.0, f64::max);
        let bound = REL.max(FACTOR * spread);
        let worst_gpu = items.iter().map(|&(_, eg, _)| eg).fold(0.0, f64::max);
        eprintln!("{group}: {} gradients, GPU error at most {worst_gpu:.2e}, CPU f32 spread {spread:.2e}", items.len());
        for (what, eg, ec) in items {
            self.count += 1;
            if !within(eg / bound, self.worst.0) {
                self.worst = (eg / bound, format!("{what}: GPU {eg:.2e}, CPU {ec:.2e}, spread {spread:.2e}"));
            }
            if !within(*eg, bound) {
                self.failures.push(format!(
                    "{what}: GPU error {eg:.2e} against f64 > max({REL:e}, {FACTOR} x the CPU's f32 spread {spread:.2e})"
                ));
            }
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

/// `x <= bound`, false for NaN (so that a NaN error fails and counts as the worst).
fn within(x: f64, bound: f64) -> bool {
    x <= bound
}

/// An f64 copy on the CPU.
fn f64_cpu(t: &Tensor) -> Tensor {
    t.to_device(&Device::Cpu).unwrap().to_dtype(DType::F64).unwrap()
}

/// `max |t|` (in f64).
fn max_abs(t: &Tensor) -> f64 {
    f64_cpu(t).abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
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
                assert!(vg.device().same_device(&dev), "{name} left the GPU");
                checks.close(&format!("{name} {dtype:?} {reduction:?} value"), &vg, &vc);
                checks.close(&format!("{name} {dtype:?} {reduction:?} gradient"), &gg, &gc);
            }
        }
    }
    // Labels out of range: the GPU kernel finds them as it reads the labels, and the error
    // names the same label and position as the CPU's scan (the first in row-major order).
    for (dtype, bad) in [(DType::U32, 19i64), (DType::I64, -1), (DType::U8, 21)] {
        let mut v: Vec<i64> = y.flatten_all().unwrap().to_dtype(DType::I64).unwrap().to_vec1().unwrap();
        let (first, second) = (1234, 2345);
        v[second] = 40;
        v[first] = bad;
        let yb = Tensor::from_vec(v, y.dims(), &Device::Cpu).unwrap();
        let yb = if dtype == DType::I64 { yb } else { yb.to_dtype(dtype).unwrap() };
        let cfg = LossConfig::ignoring(255);
        let zc = z.clone();
        for (name, f) in [
            (
                "cross_entropy",
                Box::new(|z: &Tensor, y: &Tensor| loss::cross_entropy(z, y, cfg))
                    as Box<dyn Fn(&Tensor, &Tensor) -> rwt::Result<Tensor>>,
            ),
            ("wasserstein", Box::new(|z: &Tensor, y: &Tensor| loss::wasserstein(z, y, &ground, cfg))),
            (
                "ce_plus_wasserstein",
                Box::new(|z: &Tensor, y: &Tensor| loss::ce_plus_wasserstein(z, y, &ground, 0.5, cfg)),
            ),
        ] {
            let cpu = f(&zc, &yb).expect_err("a label out of range on the CPU").to_string();
            let on_gpu = f(&zc.to_device(&dev).unwrap(), &yb.to_device(&dev).unwrap())
                .expect_err("a label out of range on the GPU")
                .to_string();
            checks.count += 1;
            if cpu != on_gpu || !on_gpu.contains(&bad.to_string()) || !on_gpu.contains(&first.to_string()) {
                checks.failures.push(format!("{name} {dtype:?}: GPU error {on_gpu:?}, CPU error {cpu:?}"));
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

/// Batch-norm followed by each activation (PReLU, ReLU, none) and a PReLU alone — on CUDA the
/// crate's kernels (`kernels::batch_norm_device`, `kernels::prelu_device`) — against the same
/// layers in f64 on the CPU (composed from candle ops there): outputs, the gradients of the
/// input and of every parameter, and the running statistics after a training pass; f32 and f64
/// on the GPU; shapes whose reductions take many slices per channel, a plane smaller than a
/// block, more channels than a block has threads, and a `[B, C]` input for the PReLU.
#[test]
fn batch_norm_and_prelu_kernels_match_the_cpu() {
    use rwt::models::layers::{batch_norm, Act, PRelu};
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("batch_norm_and_prelu_kernels_match_the_cpu");
    // The layer's variables with values drawn once (γ around 1, β, running statistics, slopes
    // around 0.25), on `device` in `dtype`.
    let layer = |c: usize, device: &Device, dtype: DType| {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, dtype, device);
        let (bn, act) = (batch_norm(c, vb.pp("bn")).unwrap(), Act::prelu(c, vb.pp("act")).unwrap());
        let mut rng = rwt::random::seeded(c as u64);
        let mut names: Vec<String> = vars(&vm).into_keys().collect();
        names.sort();
        for name in names {
            let z = rwt::random::normal(&mut rng, c, 1.0, &Device::Cpu).unwrap();
            let v = match name.as_str() {
                "bn.weight" => (z * 0.5).unwrap() + 1.0,
                "bn.bias" | "bn.running_mean" => z * 0.3,
                "bn.running_var" => z.abs().unwrap() + 0.5,
                _ => (z * 0.2).unwrap() + 0.25,
            }
            .unwrap();
            vars(&vm)[&name].set(&v.to_dtype(dtype).unwrap().to_device(device).unwrap()).unwrap();
        }
        (vm, bn, act)
    };
    for shape in [vec![4, 8, 64, 96], vec![2, 3, 5, 7], vec![2, 300, 3, 3], vec![6, 5]] {
        let c = shape[1];
        let mut rng = rwt::random::seeded(17);
        let x = (rwt::random::normal(&mut rng, shape.as_slice(), 1.5, &Device::Cpu).unwrap() + 0.4).unwrap();
        let g = rwt::random::normal(&mut rng, shape.as_slice(), 1.0, &Device::Cpu).unwrap();
        // Batch-norm takes [B, C, H, W]; the PReLU also [B, C].
        let acts: &[&str] = if shape.len() == 4 { &["PReLU", "ReLU", "none", "PReLU alone"] } else { &["PReLU alone"] };
        for dtype in [DType::F32, DType::F64] {
            let tol = if dtype == DType::F64 { F64_REL } else { REL };
            for train in [true, false] {
                for &act_name in acts {
                    // (output, gradients by name, running statistics by name) on one device.
                    let run = |device: &Device, dtype: DType| {
                        let (vm, bn, act) = layer(c, device, dtype);
                        let xv = Var::from_tensor(&x.to_dtype(dtype).unwrap().to_device(device).unwrap()).unwrap();
                        let y = match act_name {
                            "PReLU" => act.after(&bn, xv.as_tensor(), train),
                            "ReLU" => Act::Relu.after(&bn, xv.as_tensor(), train),
                            "none" => Act::Identity.after(&bn, xv.as_tensor(), train),
                            _ => {
                                let slopes = vars(&vm)["act.weight"].as_tensor().clone();
                                rwt::candle_core::Module::forward(&PRelu::from_weight(slopes), xv.as_tensor())
                            }
                        }
                        .unwrap();
                        let gd = g.to_dtype(dtype).unwrap().to_device(device).unwrap();
                        let grads = (&y * &gd).unwrap().sum_all().unwrap().backward().unwrap();
                        let mut named = vec![("input".to_string(), grads.get(xv.as_tensor()).unwrap().clone())];
                        let mut names: Vec<(String, Var)> = vars(&vm).into_iter().collect();
                        names.sort_by(|a, b| a.0.cmp(&b.0));
                        for (name, v) in names {
                            if name.contains("running") {
                                named.push((format!("{name} after the pass"), v.as_tensor().clone()));
                            } else if let Some(gr) = grads.get(v.as_tensor()) {
                                named.push((format!("gradient of {name}"), gr.clone()));
                            }
                        }
                        (y, named)
                    };
                    let (yg, ng) = run(&dev, dtype);
                    let (yr, nr) = run(&Device::Cpu, DType::F64);
                    let what = format!("{shape:?} {dtype:?} {} {act_name}", if train { "train" } else { "eval" });
                    checks.close_within(&format!("{what}: output"), &yg, &yr, tol, 0.0);
                    assert_eq!(
                        ng.iter().map(|n| &n.0).collect::<Vec<_>>(),
                        nr.iter().map(|n| &n.0).collect::<Vec<_>>(),
                        "{what}: the same gradients on both devices"
                    );
                    for ((name, tg), (_, tr)) in ng.iter().zip(&nr) {
                        checks.close_within(&format!("{what}: {name}"), tg, tr, tol, 0.0);
                    }
                }
            }
        }
    }
    checks.finish();
}

/// The variables of `vm` by name.
fn vars(vm: &VarMap) -> HashMap<String, Var> {
    vm.data().lock().unwrap().clone()
}

/// The network of `kind` built a third time, in f64 on the CPU, with `vm`'s values: candle's
/// composed ops (the crate's fused CPU kernels serve f32 only), the reference of both f32 paths.
fn f64_twin(kind: ModelKind, cfg: &SegmenterConfig, vm: &VarMap) -> (VarMap, Box<dyn Segmenter>) {
    f64_twin_on(kind, cfg, vm, &Device::Cpu)
}

/// [`f64_twin`] on `device`.
fn f64_twin_on(kind: ModelKind, cfg: &SegmenterConfig, vm: &VarMap, device: &Device) -> (VarMap, Box<dyn Segmenter>) {
    let twin = VarMap::new();
    let net = kind.build(cfg, VarBuilder::from_varmap(&twin, DType::F64, device)).unwrap();
    {
        let (from, to) = (vm.data().lock().unwrap(), twin.data().lock().unwrap());
        for (name, var) in to.iter() {
            var.set(&f64_cpu(from[name].as_tensor()).to_device(device).unwrap()).unwrap();
        }
    }
    (twin, net)
}

/// `max |·|` over every gradient in `grads` of the variables of `vm` (the model's gradient scale).
fn largest_gradient(vm: &VarMap, grads: &rwt::candle_core::backprop::GradStore) -> f64 {
    vars(vm).values().filter_map(|v| grads.get(v.as_tensor())).map(max_abs).fold(0.0, f64::max)
}

/// The share of the model's largest gradient below which a gradient counts as zero: the
/// biases of convolutions followed by batch normalisation have an exactly zero gradient with
/// batch statistics, and whatever either f32 path computes for them is rounding.
const ZERO_GRADIENT: f64 = 1e-2;

#[test]
fn segmenters_forward_and_backward_match_the_cpu() {
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("segmenters_forward_and_backward_match_the_cpu");
    let mut rng = rwt::random::seeded(11);
    let (b, h, w) = (2, 64, 96);
    let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, &Device::Cpu).unwrap();
    let y = rwt::random::labels(&mut rng, (b, h, w), 11, &Device::Cpu).unwrap();
    let x64 = x.to_dtype(DType::F64).unwrap();
    let (xg, yg) = (x.to_device(&dev).unwrap(), y.to_device(&dev).unwrap());
    for kind in ModelKind::ALL {
        // Narrow VGG/ResNet encoders keep the CPU side quick; no dropout (its masks are random).
        let width = if kind == ModelKind::Enet { 1.0 } else { 0.25 };
        let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(11).with_width(width) };
        let name = kind.as_str();
        // Evaluation mode (running statistics, well conditioned) and training mode (batch
        // statistics, which also updates the running statistics): logits, loss, gradients.
        for train in [false, true] {
            let mode = if train { "train" } else { "eval" };
            let (vm_c, net_c) = weights::build_seeded(kind, &cfg, &Device::Cpu, 5).unwrap();
            let (vm_g, net_g) = weights::build_seeded(kind, &cfg, &dev, 5).unwrap();
            let (vm_r, net_r) = f64_twin(kind, &cfg, &vm_c);
            let (vm_g64, net_g64) = f64_twin_on(kind, &cfg, &vm_c, &dev);
            let step = |net: &dyn Segmenter, x: &Tensor, y: &Tensor| {
                let out = net.forward_all(x, train).unwrap();
                let l = loss::cross_entropy(&out.logits, y, LossConfig::default()).unwrap();
                let grads = l.backward().unwrap();
                (out.logits, l, grads)
            };
            // The CPU in f32 through the layers composed from candle ops (the convolutions as on
            // the GPU; batch-norm and PReLU there are the crate's kernels): the baseline of the
            // GPU's f32 error.
            let (lc, loss_c, grads_c) = rwt::kernels::with_composed_layers(|| step(net_c.as_ref(), &x, &y));
            // Two more f32 evaluations on the CPU that differ from it only in rounding, on fresh
            // copies of the network (a training pass updates the running statistics): the fused
            // CPU kernels, and the composed layers with each convolution's value rounded from
            // f64. A pre-activation within rounding of a ReLU's kink (or a max-pool's tie)
            // flips its unit's gradient, so these move a deep network's gradients by up to
            // 1e-2 of their scale: f32 does not determine them better, and the GPU is held to
            // that spread, one per network and mode ([`Checks::against_group`]); its f64 run
            // below is held to 1e-9 gradient by gradient.
            let (vm_f, net_f) = weights::build_seeded(kind, &cfg, &Device::Cpu, 5).unwrap();
            let (lf, loss_f, grads_f) = step(net_f.as_ref(), &x, &y);
            let (vm_e, net_e) = weights::build_seeded(kind, &cfg, &Device::Cpu, 5).unwrap();
            let (le, loss_e, grads_e) = rwt::kernels::with_f64_convolution_values(|| step(net_e.as_ref(), &x, &y));
            let (lg, loss_g, grads_g) = step(net_g.as_ref(), &xg, &yg);
            let (lr, loss_r, grads_r) = step(net_r.as_ref(), &x64, &y);
            // The GPU in f64 against the CPU in f64: the same arithmetic up to f64 rounding, so
            // that a disagreement of the f32 paths can be told from a wrong GPU operation.
            let (lg64, _, grads_g64) = step(net_g64.as_ref(), &xg.to_dtype(DType::F64).unwrap(), &yg);
            checks.close_within(&format!("{name} {mode} logits, f64"), &lg64, &lr, F64_REL, 0.0);
            checks.against_spread(&format!("{name} {mode} logits"), &lg, &[&lc, &lf, &le], &lr, 0.0);
            checks.against_spread(&format!("{name} {mode} loss"), &loss_g, &[&loss_c, &loss_f, &loss_e], &loss_r, 0.0);
            let floor = ZERO_GRADIENT * largest_gradient(&vm_r, &grads_r);
            let (vc, vg, vr) = (vars(&vm_c), vars(&vm_g), vars(&vm_r));
            let (vf, ve) = (vars(&vm_f), vars(&vm_e));
            let mut names: Vec<&String> = vc.keys().collect();
            names.sort();
            let mut gradients = vec![];
            for var in names {
                let (c, g, r) = (vc[var].as_tensor(), vg[var].as_tensor(), vr[var].as_tensor());
                if var.ends_with("running_mean") || var.ends_with("running_var") {
                    // Updated by the training forward pass.
                    let (f, e) = (vf[var].as_tensor(), ve[var].as_tensor());
                    checks.against_spread(&format!("{name} {mode} {var}"), g, &[c, f, e], r, 0.0);
                    continue;
                }
                let grad = |gs: &rwt::candle_core::backprop::GradStore, t: &Tensor, side: &str| {
                    gs.get(t).unwrap_or_else(|| panic!("{name} {mode} {var}: no {side} gradient")).clone()
                };
                let (gc, gg, gr) = (grad(&grads_c, c, "CPU"), grad(&grads_g, g, "GPU"), grad(&grads_r, r, "f64"));
                let gf = grad(&grads_f, vf[var].as_tensor(), "CPU fused");
                let ge = grad(&grads_e, ve[var].as_tensor(), "CPU f64 convolution values");
                let ec = largest_rel_err(&[&gc, &gf, &ge], &gr, floor);
                gradients.push((format!("{name} {mode} gradient of {var}"), rel_err(&gg, &gr, floor), ec));
                let g64 = grad(&grads_g64, vars(&vm_g64)[var].as_tensor(), "GPU f64");
                checks.close_within(&format!("{name} {mode} gradient of {var}, f64"), &g64, &gr, F64_REL, floor);
            }
            checks.against_group(&format!("{name} {mode}"), &gradients);
        }
    }
    checks.finish();
}

/// `(output, ∂Σ(output·r)/∂inputs)` of `f` for random weights `r` on the inputs' device.
fn op_grads(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor, seed: u64) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
    let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let out = f(&ts);
    let mut rng = rwt::random::seeded(seed);
    let r = rwt::random::normal(&mut rng, out.shape(), 1.0, &Device::Cpu).unwrap();
    let r = r.to_dtype(out.dtype()).unwrap().to_device(out.device()).unwrap();
    let grads = (&out * &r).unwrap().sum_all().unwrap().backward().unwrap();
    let gs = ts.iter().map(|t| grads.get(t).expect("a gradient").clone()).collect();
    (out, gs)
}

#[test]
fn candle_ops_of_the_segmenters_match_the_cpu() {
    // Each candle operation the segmenters use on the GPU, forward and backward, in f64 on
    // both devices (the same arithmetic, so agreement to 1e-9): a wrong GPU operation shows
    // here by name, apart from f32 rounding.
    let Some(dev) = gpu() else { return };
    let mut checks = Checks::new("candle_ops_of_the_segmenters_match_the_cpu");
    let mut rng = rwt::random::seeded(64);
    let x = rwt::random::normal(&mut rng, (2, 8, 24, 32), 1.0, &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
    let mut run = |what: &str, inputs: Vec<Tensor>, f: &dyn Fn(&[Tensor]) -> Tensor| {
        let (oc, gc) = op_grads(&inputs, f, 1);
        let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to_device(&dev).unwrap()).collect();
        let (og, gg) = op_grads(&on_gpu, f, 1);
        checks.close_within(&format!("{what}: output"), &og, &oc, F64_REL, 0.0);
        for (i, (g, c)) in gg.iter().zip(&gc).enumerate() {
            checks.close_within(&format!("{what}: gradient of input {i}"), g, c, F64_REL, 0.0);
        }
        // The same op in f32 on both devices against the f64 values above: one op's rounding,
        // well conditioned (random inputs), so the GPU within max(1e-4, 4 × the CPU's error).
        let f32s = |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.to_dtype(DType::F32).unwrap()).collect() };
        let (oc32, gc32) = op_grads(&f32s(&inputs), f, 1);
        let (og32, gg32) = op_grads(&f32s(&on_gpu), f, 1);
        checks.against(&format!("{what}: output, f32"), &og32, &oc32, &oc, 0.0);
        for (i, ((g, c), r)) in gg32.iter().zip(&gc32).zip(&gc).enumerate() {
            checks.against(&format!("{what}: gradient of input {i}, f32"), g, c, r, 0.0);
        }
    };
    // conv2d: (kernel h, kernel w, stride, padding, dilation), as in ENet, SegNet, FCN, DeepLab-v2.
    for (kh, kw, stride, pad, dil) in [
        (3, 3, 1, 1, 1),
        (3, 3, 1, 2, 2),
        (3, 3, 1, 4, 4),
        (3, 3, 1, 6, 6),
        (3, 3, 1, 12, 12),
        (1, 1, 1, 0, 1),
        (1, 1, 2, 0, 1),
        (2, 2, 2, 0, 1),
        (3, 3, 2, 1, 1),
        (7, 7, 2, 3, 1),
        (5, 1, 1, 0, 1),
        (1, 5, 1, 0, 1),
    ] {
        let k = rwt::random::normal(&mut rng, (6, 8, kh, kw), 0.3, &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
        run(
            &format!("conv2d {kh}x{kw} stride {stride} padding {pad} dilation {dil}"),
            vec![x.clone(), k],
            &|t: &[Tensor]| t[0].conv2d(&t[1], pad, stride, dil, 1).unwrap(),
        );
    }
    // conv_transpose2d: (kernel, stride, padding, output padding), as in ENet's and FCN's decoders.
    for (kk, stride, pad, opad) in [(2, 2, 0, 0), (3, 2, 1, 1), (4, 2, 1, 0), (16, 8, 4, 0), (3, 1, 1, 0)] {
        let k = rwt::random::normal(&mut rng, (8, 6, kk, kk), 0.3, &Device::Cpu).unwrap().to_dtype(DType::F64).unwrap();
        run(
            &format!("conv_transpose2d {kk}x{kk} stride {stride} padding {pad} output padding {opad}"),
            vec![x.clone(), k],
            &|t: &[Tensor]| t[0].conv_transpose2d(&t[1], pad, opad, stride, 1).unwrap(),
        );
    }
    run("max_pool2d 2", vec![x.clone()], &|t: &[Tensor]| t[0].max_pool2d(2).unwrap());
    run("resize_bilinear x8", vec![x.clone()], &|t: &[Tensor]| {
        rwt::models::layers::resize_bilinear(&t[0], 192, 256).unwrap()
    });
    run("resize_bilinear to 37x53", vec![x.clone()], &|t: &[Tensor]| {
        rwt::models::layers::resize_bilinear(&t[0], 37, 53).unwrap()
    });
    run("relu", vec![x.clone()], &|t: &[Tensor]| t[0].relu().unwrap());
    run("cat on channels", vec![x.clone(), x.affine(0.5, 1.0).unwrap()], &|t: &[Tensor]| {
        Tensor::cat(&[&t[0], &t[1]], 1).unwrap()
    });
    run("mean over batch and space (batch statistics)", vec![x.clone()], &|t: &[Tensor]| {
        t[0].mean_keepdim(0).unwrap().mean_keepdim(2).unwrap().mean_keepdim(3).unwrap()
    });
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
    // would amplify rounding in gradients near zero). The reference is the same three steps
    // in f64 on the CPU.
    let (b, h, w) = (2, 360, 480);
    let mut rng = rwt::random::seeded(360);
    let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(11) };
    let (vm_c, net_c) = weights::build_seeded(ModelKind::Enet, &cfg, &Device::Cpu, 1).unwrap();
    let (vm_g, net_g) = weights::build_seeded(ModelKind::Enet, &cfg, &dev, 1).unwrap();
    let (vm_r, net_r) = f64_twin(ModelKind::Enet, &cfg, &vm_c);
    let initial: HashMap<String, Tensor> = vars(&vm_r).into_iter().map(|(k, v)| (k, f64_cpu(v.as_tensor()))).collect();
    let sgd = |vm: &VarMap| rwt::optim::Sgd::from_varmap(vm, 0.05, 0.9, 2e-4).unwrap();
    let (mut opt_c, mut opt_g, mut opt_r) = (sgd(&vm_c), sgd(&vm_g), sgd(&vm_r));
    let mut losses = vec![];
    for step in 0..3 {
        let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, &Device::Cpu).unwrap();
        let y = rwt::random::labels(&mut rng, (b, h, w), 11, &Device::Cpu).unwrap();
        let ce = |net: &dyn Segmenter, x: &Tensor, y: &Tensor| {
            loss::cross_entropy(&net.forward_all(x, true).unwrap().logits, y, LossConfig::default()).unwrap()
        };
        let lc = rwt::kernels::with_composed_layers(|| ce(net_c.as_ref(), &x, &y));
        let lg = ce(net_g.as_ref(), &x.to_device(&dev).unwrap(), &y.to_device(&dev).unwrap());
        let lr = ce(net_r.as_ref(), &x.to_dtype(DType::F64).unwrap(), &y);
        rwt::kernels::with_composed_layers(|| opt_c.backward_step(&lc)).unwrap();
        opt_g.backward_step(&lg).unwrap();
        opt_r.backward_step(&lr).unwrap();
        assert!(lg.to_scalar::<f32>().unwrap().is_finite(), "step {step}: loss {lg}");
        checks.against(&format!("step {step} loss"), &lg, &lc, &lr, 0.0);
        losses.push(lg.to_scalar::<f32>().unwrap());
    }
    // What the three steps changed: the parameters' updates (many start at zero), with the
    // largest update of the model as the floor of the scale; the running statistics as they are.
    let (vc, vg, vr) = (vars(&vm_c), vars(&vm_g), vars(&vm_r));
    let update = |v: &Var, name: &str| (f64_cpu(v.as_tensor()) - &initial[name]).unwrap();
    let floor = ZERO_GRADIENT
        * vr.iter().filter(|(k, _)| !k.contains("running")).map(|(k, v)| max_abs(&update(v, k))).fold(0.0, f64::max);
    let mut names: Vec<&String> = vc.keys().collect();
    names.sort();
    for name in names {
        let (c, g, r) = (&vc[name], &vg[name], &vr[name]);
        if name.contains("running") {
            checks.against(&format!("{name} after 3 steps"), g.as_tensor(), c.as_tensor(), r.as_tensor(), 0.0);
        } else {
            let (uc, ug, ur) = (update(c, name), update(g, name), update(r, name));
            checks.against(&format!("update of {name} over 3 steps"), &ug, &uc, &ur, floor);
        }
    }
    eprintln!("ENet 360x480 batch {b}, SGD: GPU losses {losses:?}");
    checks.finish();
}
