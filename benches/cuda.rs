//! The CUDA benchmarks, each a ratio measured in one run on the GPU:
//!
//! - `losses`: the exact one-hot `W` (Eq. 2) against the fused cross-entropy, forward +
//!   backward on f32 logits `[8, 19, 512, 1024]` (target: `W` ≤ 1.1× CE), and the
//!   class-weighted `CE + λW`; beside them PyTorch's `F.cross_entropy` and the same `W` written
//!   in PyTorch.
//! - `sinkhorn`: the soft-target `W` (a log-domain Sinkhorn per pixel, loss + gradient) in
//!   pixels/s on `[2, 19, 256, 512]`, plain (the algorithm PyTorch runs) and with rwt's
//!   defaults (ε-scaling, over-relaxation), against a batched log-domain Sinkhorn in PyTorch
//!   on the same inputs, ε and tolerance.
//! - `enet`: ENet forward (evaluation, no graph), the training-mode forward with its loss, and
//!   forward + backward (a training step's CE loss) at 512×1024, batch 8, 19 classes, against
//!   PyTorch's ENet with cuDNN. Built with `--features cudnn`, candle's convolutions run on
//!   cuDNN (`make gpu-bundle` with `RWT_GPU_BUNDLE_CUDNN=1` adds that build as a second binary).
//!
//! Each figure is the median of the timed repeats after one warm-up, the GPU synchronised
//! around each. PyTorch runs where `python3 -c "import torch"` works and sees the GPU
//! (`RWT_TORCH_PYTHON` names another interpreter, `RWT_BENCH_NO_PEER=1` skips it); else it is
//! skipped with a message.
//!
//! - `enet-parts`: where an ENet step's time goes — the layers of its first stage at 512×1024,
//!   batch 8 (a 3×3 and a 1×1 convolution, forward, input gradient and weight gradient, and the
//!   1×1 convolution as ENet's layer runs it on CUDA, a matrix product; the
//!   batch-norm + PReLU unit forward and backward, by the crate's CUDA kernels and composed from
//!   candle ops; one element-wise op over the same tensor).
//!
//! `cargo bench --features cuda --bench cuda [-- losses sinkhorn enet enet-parts]` (all by default;
//! `RWT_QUICK=1` for small shapes; `RWT_BENCH_JSON=file` also appends the figures, a JSON line
//! per benchmark).
//! Without a GPU it says so and exits 0, unless `RWT_REQUIRE_CUDA=1`.

use rwt::candle_core::{Device, Tensor, Var};
use rwt::loss::{self, LossConfig, Reduction};
use rwt::models::{weights, ModelKind, SegmenterConfig};
use rwt::ot::SinkhornConfig;
use rwt::{GroundMatrix, Transform, CITYSCAPES};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() -> rwt::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("cuda bench: run with `cargo bench --features cuda --bench cuda`");
        return Ok(());
    }
    let mut which: Vec<&str> = args.iter().map(String::as_str).filter(|a| !a.starts_with('-')).collect();
    if which.is_empty() {
        which = vec!["losses", "sinkhorn", "enet", "enet-parts"];
    }
    let dev = match Device::new_cuda(0).map_err(|e| first_line(&e)) {
        Ok(d) => d,
        Err(e) if std::env::var("RWT_REQUIRE_CUDA").is_ok_and(|v| v == "1") => {
            eprintln!("RWT_REQUIRE_CUDA=1 but no CUDA device could be opened: {e}");
            std::process::exit(1)
        }
        Err(e) => {
            println!("cuda bench skipped: no CUDA device ({e})");
            return Ok(());
        }
    };
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let torch = Torch::find();
    for w in which {
        let r = match w {
            "losses" => losses(&dev, quick, &torch)?,
            "sinkhorn" => sinkhorn(&dev, quick, &torch)?,
            "enet" => enet(&dev, quick, &torch)?,
            "enet-parts" => enet_parts(&dev, quick)?,
            other => {
                eprintln!("unknown benchmark {other} (losses, sinkhorn, enet, enet-parts)");
                std::process::exit(2)
            }
        };
        // One JSON line per benchmark, appended: run.sh calls the benchmarks one at a time.
        if let Ok(path) = std::env::var("RWT_BENCH_JSON") {
            use std::io::Write;
            let mut line = serde_json::Map::new();
            line.insert(w.to_string(), r);
            let line = Value::Object(line).to_string();
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| writeln!(f, "{line}"))
                .map_err(|e| rwt::Error::Io { path: path.into(), source: e })?;
        }
    }
    Ok(())
}

/// Median seconds of `repeats` runs of `f` after one warm-up, synchronising the GPU.
fn median(dev: &Device, repeats: usize, mut f: impl FnMut() -> rwt::Result<()>) -> rwt::Result<f64> {
    f()?;
    dev.synchronize()?;
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let s = Instant::now();
        f()?;
        dev.synchronize()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// PyTorch with CUDA, when present: `benches/peers/torch_cuda_bench.py` under it.
struct Torch {
    python: Option<String>,
}

impl Torch {
    fn find() -> Torch {
        if std::env::var("RWT_BENCH_NO_PEER").is_ok_and(|v| v == "1") {
            println!("PyTorch peers skipped: RWT_BENCH_NO_PEER=1");
            return Torch { python: None };
        }
        let python = std::env::var("RWT_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
        let probe = Command::new(&python)
            .args(["-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"])
            .output();
        match probe {
            Ok(o) if o.status.success() => Torch { python: Some(python) },
            Ok(o) if o.status.code() == Some(3) => {
                println!("PyTorch peers skipped: `{python}` has torch but it sees no GPU");
                Torch { python: None }
            }
            Ok(_) | Err(_) => {
                println!("PyTorch peers skipped: `{python} -c \"import torch\"` failed");
                Torch { python: None }
            }
        }
    }

    /// The peer's JSON line, or `None` after printing why it failed.
    fn run(&self, args: &[String], envs: &[(&str, &str)]) -> Option<Value> {
        let python = self.python.as_ref()?;
        let script = project_file("benches/peers/torch_cuda_bench.py");
        let out = Command::new(python).arg("-P").arg(&script).args(args).envs(envs.iter().copied()).output();
        match out {
            Ok(o) if o.status.success() => match serde_json::from_slice(&o.stdout) {
                Ok(v) => Some(v),
                Err(e) => {
                    println!("PyTorch peer {args:?}: unreadable output ({e}): {}", String::from_utf8_lossy(&o.stdout));
                    None
                }
            },
            Ok(o) => {
                println!("PyTorch peer {args:?} failed: {}", String::from_utf8_lossy(&o.stderr).trim());
                None
            }
            Err(e) => {
                println!("PyTorch peer {args:?} could not start: {e}");
                None
            }
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

fn strs(v: &[usize]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn losses(dev: &Device, quick: bool, torch: &Torch) -> rwt::Result<Value> {
    let (b, n, h, w) = if quick { (2, 19, 128, 256) } else { (8, 19, 512, 1024) };
    let repeats = 10;
    let mut rng = rwt::random::seeded(0);
    let z = Var::from_tensor(&(rwt::random::normal(&mut rng, (b, n, h, w), 3.0, dev)?))?;
    let y = rwt::random::labels(&mut rng, (b, h, w), n, dev)?;
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 })?;
    let class_weights: Vec<f64> = (0..n).map(|k| 1.0 + 0.25 * k as f64).collect();
    let cfg = LossConfig::ignoring(255);
    let zt = z.as_tensor();
    let ce = median(dev, repeats, || {
        loss::cross_entropy(zt, &y, cfg)?.backward()?;
        Ok(())
    })?;
    // Where the time goes: the forward pass alone, and one candle op over the logits (a read,
    // a write and a fresh allocation) as the floor of any pass.
    let ce_fwd = median(dev, repeats, || {
        loss::cross_entropy(zt, &y, cfg)?;
        Ok(())
    })?;
    let one_op = median(dev, repeats, || {
        zt.affine(1.0, 0.0)?;
        Ok(())
    })?;
    let wass = median(dev, repeats, || {
        loss::wasserstein(zt, &y, &d, cfg)?.backward()?;
        Ok(())
    })?;
    let ce_w = median(dev, repeats, || {
        loss::weighted_ce_plus_wasserstein(zt, &y, &class_weights, &d, 0.5, cfg)?.backward()?;
        Ok(())
    })?;
    println!("\n== losses on the GPU, forward + backward, f32 logits [{b}, {n}, {h}, {w}], median of {repeats}");
    println!("| loss | ms | ratio to fused CE |");
    println!("|---|---|---|");
    for (name, t) in [
        ("cross_entropy (fused)", ce),
        ("wasserstein (fused)", wass),
        ("weighted CE + 0.5 W (fused)", ce_w),
        ("cross_entropy, forward only", ce_fwd),
        ("one candle op over the logits (affine)", one_op),
    ] {
        println!("| {name} | {:.2} | {:.2}x |", t * 1e3, t / ce);
    }
    println!("W / CE = {:.3} (target <= 1.1)", wass / ce);
    let mut r = json!({"shape": [b, n, h, w], "cross_entropy_s": ce, "wasserstein_s": wass,
        "weighted_ce_plus_wasserstein_s": ce_w, "w_over_ce": wass / ce, "cross_entropy_forward_s": ce_fwd,
        "affine_s": one_op});
    if let Some(p) = torch.run(&[vec!["losses".into()], strs(&[b, n, h, w, repeats])].concat(), &[]) {
        let (tce, tw) =
            (p["cross_entropy_s"].as_f64().unwrap_or(f64::NAN), p["wasserstein_s"].as_f64().unwrap_or(f64::NAN));
        println!(
            "PyTorch {} ({}): F.cross_entropy {:.2} ms, W in PyTorch ops {:.2} ms",
            p["torch"],
            p["device"],
            tce * 1e3,
            tw * 1e3
        );
        println!(
            "ratio (PyTorch time / rwt time, > 1 = rwt faster): CE {:.2}x, W {:.2}x; PyTorch's own W / CE = {:.2}",
            tce / ce,
            tw / wass,
            tw / tce
        );
        r["torch"] = p;
    }
    Ok(r)
}

fn sinkhorn(dev: &Device, quick: bool, torch: &Torch) -> rwt::Result<Value> {
    let (b, n, h, w) = if quick { (1, 19, 64, 128) } else { (2, 19, 256, 512) };
    let pixels = b * h * w;
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 })?;
    let mut rng = rwt::random::seeded(2024);
    let logits = rwt::random::normal(&mut rng, (b, n, h, w), 2.0, &Device::Cpu)?;
    let targets = rwt::candle_nn::ops::softmax(&rwt::random::normal(&mut rng, (b, n, h, w), 3.0, &Device::Cpu)?, 1)?;
    let (zg, tg) = (logits.to_device(dev)?, targets.to_device(dev)?);
    let (epsilon, tolerance, max_iterations) = (1e-2, 1e-4, 2000);
    let plain =
        SinkhornConfig { epsilon, tolerance, max_iterations, scaling: None, relaxation: 1.0, ..Default::default() };
    let default = SinkhornConfig { epsilon, tolerance, max_iterations, ..Default::default() };
    println!("\n== soft-target W on the GPU: {pixels} pixels x {n} classes, eps = {epsilon} x max cost, tolerance {tolerance:e}, cap {max_iterations}");
    let mut r = json!({"pixels": pixels, "classes": n, "epsilon": epsilon, "tolerance": tolerance});
    for (name, cfg) in [("plain", plain), ("default", default)] {
        let mut stats = None;
        let t = median(dev, 3, || {
            let v = Var::from_tensor(&zg)?;
            let out = loss::wasserstein_soft(v.as_tensor(), &tg, &d, &cfg, Reduction::Mean)?;
            out.loss.backward()?;
            stats = Some(out.stats);
            Ok(())
        })?;
        let st = stats.expect("ran");
        println!(
            "rwt ({name:<7}) {:>12.0} pixels/s ({:.3} s; iterations mean {:.0}, max {}; not converged {})",
            pixels as f64 / t,
            t,
            st.mean_iterations,
            st.max_iterations,
            st.not_converged
        );
        r[name] = json!({"seconds": t, "pixels_per_s": pixels as f64 / t, "mean_iterations": st.mean_iterations,
            "not_converged": st.not_converged});
    }
    if torch.python.is_some() {
        let dir = std::env::temp_dir().join(format!("rwt-cuda-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| rwt::Error::Io { path: dir.clone(), source: e })?;
        let rows = |t: &Tensor| -> rwt::Result<Tensor> { Ok(t.permute((0, 2, 3, 1))?.reshape((pixels, n))?) };
        rows(&rwt::candle_nn::ops::softmax(&logits, 1)?)?.write_npy(dir.join("pred.npy"))?;
        rows(&targets)?.write_npy(dir.join("target.npy"))?;
        let cost: Vec<f32> = rwt::ot::cost_matrix(&d).iter().map(|&c| c as f32).collect();
        Tensor::from_vec(cost, (n, n), &Device::Cpu)?.write_npy(dir.join("cost.npy"))?;
        let eps_abs = epsilon * d.max();
        let args: Vec<String> = vec![
            "sinkhorn".into(),
            pixels.to_string(),
            n.to_string(),
            eps_abs.to_string(),
            tolerance.to_string(),
            max_iterations.to_string(),
        ];
        let dir_s = dir.display().to_string();
        if let Some(p) = torch.run(&args, &[("RWT_SINKHORN_DIR", &dir_s)]) {
            let secs = p["seconds"].as_f64().unwrap_or(f64::NAN);
            let rate = pixels as f64 / secs;
            println!(
                "PyTorch batched log-domain Sinkhorn {:>12.0} pixels/s ({secs:.3} s, {} iterations in lock-step)",
                rate, p["iterations"]
            );
            for name in ["plain", "default"] {
                let ours = r[name]["pixels_per_s"].as_f64().unwrap_or(f64::NAN);
                println!("  speed-up of rwt ({name}) {:.1}x PyTorch", ours / rate);
            }
            r["torch"] = p;
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(r)
}

fn enet(dev: &Device, quick: bool, torch: &Torch) -> rwt::Result<Value> {
    let (b, h, w, classes) = if quick { (2, 128, 256, 19) } else { (8, 512, 1024, 19) };
    let repeats = 5;
    // No dropout: benches/peers/enet_reference.py has none.
    let cfg = SegmenterConfig { dropout: false, ..SegmenterConfig::new(classes) };
    let (_vm, net) = weights::build(ModelKind::Enet, &cfg, dev)?;
    let mut rng = rwt::random::seeded(0);
    let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, dev)?;
    let y = rwt::random::labels(&mut rng, (b, h, w), classes, dev)?;
    let fwd = median(dev, repeats, || {
        net.forward_padded(&x, false)?;
        Ok(())
    })?;
    // The training-mode forward and loss alone: the backward pass is the rest of a step.
    let fwd_train = median(dev, repeats, || {
        let out = net.forward_padded(&x, true)?;
        loss::cross_entropy(&out.logits, &y, LossConfig::default())?;
        Ok(())
    })?;
    let step = median(dev, repeats, || {
        let out = net.forward_padded(&x, true)?;
        loss::cross_entropy(&out.logits, &y, LossConfig::default())?.backward()?;
        Ok(())
    })?;
    // The same step with the layers composed from candle ops (no batch-norm or PReLU kernels,
    // 1×1 convolutions by candle's conv2d): what the crate's CUDA layer paths change, measured
    // in the same process.
    let step_composed = rwt::kernels::with_composed_layers(|| {
        median(dev, repeats, || {
            let out = net.forward_padded(&x, true)?;
            loss::cross_entropy(&out.logits, &y, LossConfig::default())?.backward()?;
            Ok(())
        })
    })?;
    let ips = |t: f64| b as f64 / t;
    // Built with the `cudnn` feature, candle runs the forward convolutions (and the weight
    // gradients, which are convolutions too) with cuDNN; input gradients stay its own kernel.
    let convs = if cfg!(feature = "cudnn") { "cuDNN convolutions" } else { "candle's im2col + cuBLAS convolutions" };
    println!("\n== ENet on the GPU ({convs}), {h}x{w}, batch {b}, {classes} classes, f32, median of {repeats}");
    println!("| | s | img/s |");
    println!("|---|---|---|");
    println!("| rwt forward | {fwd:.4} | {:.1} |", ips(fwd));
    println!("| rwt forward + loss, training mode | {fwd_train:.4} | {:.1} |", ips(fwd_train));
    println!("| rwt forward + backward | {step:.4} | {:.1} |", ips(step));
    println!(
        "| rwt forward + backward, layers composed from candle ops | {step_composed:.4} | {:.1} |",
        ips(step_composed)
    );
    println!("speed-up of the CUDA layer paths (composed time / their time): {:.2}x", step_composed / step);
    let mut r = json!({"shape": [b, 3, h, w], "forward_s": fwd, "forward_train_s": fwd_train,
                       "forward_backward_s": step, "forward_backward_composed_s": step_composed,
                       "cudnn": cfg!(feature = "cudnn")});
    if let Some(p) = torch.run(&[vec!["enet".into()], strs(&[b, h, w, classes, repeats])].concat(), &[]) {
        let (tf, ts) =
            (p["forward_s"].as_f64().unwrap_or(f64::NAN), p["forward_backward_s"].as_f64().unwrap_or(f64::NAN));
        println!("| PyTorch {} forward (cuDNN {}) | {tf:.4} | {:.1} |", p["torch"], p["cudnn"], ips(tf));
        println!("| PyTorch forward + backward | {ts:.4} | {:.1} |", ips(ts));
        println!(
            "ratio (PyTorch time / rwt time, > 1 = rwt faster): forward {:.2}x, forward + backward {:.2}x (target >= 1)",
            tf / fwd,
            ts / step
        );
        r["torch"] = p;
    }
    Ok(r)
}

/// The parts of an ENet step at its first stage (1/4 resolution of 512×1024, batch 8: 64
/// channels at 128×256 in and out of a bottleneck, 16 inside): seconds of each, median of 5.
fn enet_parts(dev: &Device, quick: bool) -> rwt::Result<Value> {
    use rwt::candle_core::DType;
    use rwt::candle_nn::{VarBuilder, VarMap};
    let (b, h, w) = if quick { (2, 32, 64) } else { (8, 128, 256) };
    let repeats = 5;
    let mut rng = rwt::random::seeded(3);
    let mut r = serde_json::Map::new();
    let mut row = |name: &str, t: f64| {
        println!("| {name} | {:.2} |", t * 1e3);
        r.insert(name.to_string(), json!(t));
    };
    println!("\n== ENet's first-stage layers on the GPU, [{b}, 64 | 16, {h}, {w}], f32, median of {repeats}");
    println!("| part | ms |");
    println!("|---|---|");
    // Convolutions: forward, then each gradient on its own (a gradient of the other input is
    // not asked for: the other is a constant).
    for (name, c_in, c_out, k, pad) in [("3x3 conv 16 -> 16", 16, 16, 3, 1), ("1x1 conv 64 -> 16", 64, 16, 1, 0)] {
        let x = rwt::random::normal(&mut rng, (b, c_in, h, w), 1.0, dev)?;
        let wt = rwt::random::normal(&mut rng, (c_out, c_in, k, k), 0.1, dev)?;
        let g = rwt::random::normal(&mut rng, (b, c_out, h, w), 1.0, dev)?;
        row(
            &format!("{name}: forward"),
            median(dev, repeats, || {
                x.conv2d(&wt, pad, 1, 1, 1)?;
                Ok(())
            })?,
        );
        let xv = Var::from_tensor(&x)?;
        row(
            &format!("{name}: input gradient (transposed conv)"),
            backward_median(dev, repeats, &g, || Ok(xv.as_tensor().conv2d(&wt, pad, 1, 1, 1)?))?,
        );
        let wv = Var::from_tensor(&wt)?;
        row(
            &format!("{name}: weight gradient"),
            backward_median(dev, repeats, &g, || Ok(x.conv2d(wv.as_tensor(), pad, 1, 1, 1)?))?,
        );
    }
    // The 1×1 convolution as ENet's layer runs it on CUDA (kernels::conv::pointwise: one
    // batched matrix product each way), against candle's conv2d above.
    {
        use rwt::candle_core::Module;
        use rwt::models::layers::{Conv, ConvSpec};
        let vm = VarMap::new();
        let conv = Conv::new(64, 16, ConvSpec::pointwise(), VarBuilder::from_varmap(&vm, DType::F32, dev))?;
        let x = rwt::random::normal(&mut rng, (b, 64, h, w), 1.0, dev)?;
        let g = rwt::random::normal(&mut rng, (b, 16, h, w), 1.0, dev)?;
        row(
            "1x1 conv 64 -> 16, the layer (matrix product): forward",
            median(dev, repeats, || {
                conv.forward(&x)?;
                Ok(())
            })?,
        );
        let xv = Var::from_tensor(&x)?;
        row(
            "1x1 conv 64 -> 16, the layer: forward + input and weight gradients",
            backward_median(dev, repeats, &g, || Ok(conv.forward(xv.as_tensor())?))?,
        );
    }
    // Batch-norm (batch statistics) + PReLU over 64 channels: the crate's CUDA kernels
    // (kernels::batch_norm_device), and the same layer composed from candle ops.
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, dev);
    let bn = rwt::models::layers::batch_norm(64, vb.pp("bn"))?;
    let act = rwt::models::layers::Act::prelu(64, vb.pp("act"))?;
    let x = rwt::random::normal(&mut rng, (b, 64, h, w), 1.0, dev)?;
    let g = rwt::random::normal(&mut rng, (b, 64, h, w), 1.0, dev)?;
    let xv = Var::from_tensor(&x)?;
    for (how, composed) in [("kernels", false), ("composed", true)] {
        let run = |f: &mut dyn FnMut() -> rwt::Result<f64>| {
            if composed {
                rwt::kernels::with_composed_layers(f)
            } else {
                f()
            }
        };
        row(
            &format!("batch-norm + PReLU 64, {how}: forward (training)"),
            run(&mut || {
                median(dev, repeats, || {
                    act.after(&bn, &x, true)?;
                    Ok(())
                })
            })?,
        );
        row(
            &format!("batch-norm + PReLU 64, {how}: forward + backward"),
            run(&mut || backward_median(dev, repeats, &g, || Ok(act.after(&bn, xv.as_tensor(), true)?)))?,
        );
    }
    row(
        "one element-wise op over [b, 64, h, w] (affine)",
        median(dev, repeats, || {
            x.affine(2.0, 1.0)?;
            Ok(())
        })?,
    );
    Ok(Value::Object(r))
}

/// [`median`] of `f` and the backward pass of `Σ f() ⊙ g` (the output gradient `g`).
fn backward_median(dev: &Device, repeats: usize, g: &Tensor, f: impl Fn() -> rwt::Result<Tensor>) -> rwt::Result<f64> {
    median(dev, repeats, || {
        (f()? * g)?.sum_all()?.backward()?;
        Ok(())
    })
}
