//! Forward and forward+backward images/s of the four segmenters on the CPU at CamVid's
//! 360×480, batch 4, and ENet against the same ENet in PyTorch (`benches/peers/`) with the same
//! number of threads, as a ratio measured in one run.
//!
//! `cargo bench --bench models` (PyTorch CPU is installed into target/torch-venv by
//! `benches/peers/torch-env.sh`; a PyTorch that cannot be installed or whose run fails fails
//! the benchmark; `RWT_NO_PEERS=1` times rwt alone; `RWT_QUICK=1` for a small run: 120×160, batch 2, ENet and
//! SegNet only; `RWT_MODELS=enet,fcn8s` for a subset). Forward is in evaluation mode without a graph; forward+backward is a training
//! step's cross-entropy loss and its backward pass (no optimiser update), as in the PyTorch
//! script. Each figure is the median of the timed repeats after one warm-up run.

use rwt::candle_core::{Device, Tensor};
use rwt::loss::{self, LossConfig};
use rwt::models::{weights, ModelKind, SegmenterConfig};
#[path = "common/torch_peer.rs"]
mod torch_peer;
use std::time::Instant;

fn median(mut f: impl FnMut() -> rwt::Result<()>, repeats: usize) -> rwt::Result<f64> {
    f()?;
    let mut t = Vec::with_capacity(repeats);
    for _ in 0..repeats {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// `(forward s, forward+backward s)` of rwt's `kind`; `padded` calls
/// `Segmenter::forward_padded` (the input's sides must be multiples of the stride), which
/// leaves the C allocator's settings as they are, instead of `forward_all`.
fn time_rwt(kind: ModelKind, x: &Tensor, y: &Tensor, repeats: usize, padded: bool) -> rwt::Result<(f64, f64)> {
    let (_vm, net) = weights::build(kind, &SegmenterConfig::new(11), &Device::Cpu)?;
    let forward = |train| if padded { net.forward_padded(x, train) } else { net.forward_all(x, train) };
    let fwd = median(|| forward(false).map(|_| ()), repeats)?;
    let step = median(
        || {
            let out = forward(true)?;
            loss::cross_entropy(&out.logits, y, LossConfig::default())?.backward()?;
            Ok(())
        },
        repeats,
    )?;
    Ok((fwd, step))
}

/// PyTorch's ENet `(forward s, forward+backward s, version)`, or why not.
fn time_torch(threads: usize, b: usize, h: usize, w: usize, repeats: usize) -> Result<(f64, f64, String), String> {
    let v = torch_peer::run("torch_enet_bench.py", &[threads, b, h, w, repeats])?;
    let get = |k: &str| v[k].as_f64().ok_or(format!("no {k} in {v}"));
    Ok((get("forward_s")?, get("forward_backward_s")?, v["torch"].as_str().unwrap_or("?").to_string()))
}

fn main() -> rwt::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("models bench: run with `cargo bench --bench models`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let (b, h, w) = if quick { (2, 120, 160) } else { (4, 360, 480) };
    let threads = rayon::current_num_threads();
    // `RWT_MODELS=enet,segnet` times a subset (ENet always runs: the ratio needs it).
    let kinds: Vec<ModelKind> = match std::env::var("RWT_MODELS") {
        Ok(list) => {
            let mut k: Vec<ModelKind> = list.split(',').map(str::parse).collect::<rwt::Result<_>>()?;
            if !k.contains(&ModelKind::Enet) {
                k.insert(0, ModelKind::Enet);
            }
            k
        }
        Err(_) if quick => vec![ModelKind::Enet, ModelKind::SegNet],
        Err(_) => ModelKind::ALL.to_vec(),
    };
    let mut rng = rwt::random::seeded(0);
    let x = rwt::random::normal(&mut rng, (b, 3, h, w), 1.0, &Device::Cpu)?;
    let y = rwt::random::labels(&mut rng, (b, h, w), 11, &Device::Cpu)?;
    println!("segmenters on the CPU ({threads} threads), {h}x{w}, batch {b}, 11 classes");
    println!("| network | forward s | forward img/s | fwd+bwd s | fwd+bwd img/s |");
    println!("|---|---|---|---|---|");
    // ENet first with the C allocator as the process found it (`forward_padded`), then every
    // network through `forward_all`, which applies `device::retain_freed_memory` on the CPU.
    let (f0, s0) = time_rwt(ModelKind::Enet, &x, &y, 5, true)?;
    let ips = |t: f64| b as f64 / t;
    println!("| enet (default allocator) | {f0:.3} | {:.2} | {s0:.3} | {:.2} |", ips(f0), ips(s0));
    let retained = rwt::device::retain_freed_memory();
    let mut enet = (0.0, 0.0);
    for kind in kinds.iter().copied() {
        let repeats = if kind == ModelKind::Enet { 5 } else { 1 };
        let (f, s) = time_rwt(kind, &x, &y, repeats, false)?;
        if kind == ModelKind::Enet {
            enet = (f, s);
        }
        let note = if retained { " (retained memory)" } else { "" };
        println!("| {}{note} | {f:.3} | {:.2} | {s:.3} | {:.2} |", kind.as_str(), ips(f), ips(s));
    }
    if std::env::var("RWT_NO_PEERS").is_ok_and(|v| v == "1") {
        println!("\nRWT_NO_PEERS=1: no PyTorch ratio");
        return Ok(());
    }
    match time_torch(threads, b, h, w, 5) {
        Ok((tf, ts, version)) => {
            println!("\nENet, PyTorch {version} on the same {threads} threads: forward {tf:.3} s, fwd+bwd {ts:.3} s");
            println!(
                "ratio (PyTorch time / rwt time, > 1 = rwt faster): forward {:.2}x, fwd+bwd {:.2}x",
                tf / enet.0,
                ts / enet.1
            );
            println!("with the default allocator: forward {:.2}x, fwd+bwd {:.2}x", tf / f0, ts / s0);
        }
        Err(e) => {
            // A ratio that silently goes missing is a figure that cannot be reproduced.
            eprintln!("PyTorch's ENet failed (RWT_NO_PEERS=1 times rwt alone): {e}");
            std::process::exit(1);
        }
    }
    Ok(())
}
