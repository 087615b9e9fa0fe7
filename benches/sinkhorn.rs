//! The soft-target Wasserstein loss (batched log-domain Sinkhorn, loss + gradient) against
//! POT's batched log-domain Sinkhorn (`ot.batch.solve_batch(..., method="log_sinkhorn")`) on
//! identical inputs, both on the CPU: N = 19 classes, the Cityscapes severity matrix under
//! Huber(0.5), soft targets, the same ε and stopping tolerance, and the accuracy of both
//! against the exact solver on a sample of pixels.
//!
//! `cargo bench --bench sinkhorn` (POT is installed into target/pot-venv by
//! `benches/peers/pot-env.sh`; `RWT_QUICK=1` for a small run; `RWT_NO_PEERS=1` times rwt
//! alone). A POT that cannot be installed or whose run fails fails the benchmark. POT solves the whole batch in
//! lock-step until its slowest problem converges, so it runs on a subset of the pixels: its
//! throughput on the full batch could only be lower.

use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, Reduction};
use rwt::ot::{self, EpsilonScaling, SinkhornConfig};
use rwt::{GroundMatrix, Transform, CITYSCAPES};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

struct Case {
    epsilon: f64,
    pot_pixels: usize,
}

fn main() -> rwt::Result<()> {
    // Under `cargo test --benches` (criterion-style `--bench` flag absent) do nothing heavy.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sinkhorn bench: run with `cargo bench --bench sinkhorn`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let (h, w) = if quick { (64, 100) } else { (256, 400) };
    let cases = if quick {
        vec![Case { epsilon: 1e-1, pot_pixels: 300 }, Case { epsilon: 1e-2, pot_pixels: 200 }]
    } else {
        vec![Case { epsilon: 1e-1, pot_pixels: 4000 }, Case { epsilon: 1e-2, pot_pixels: 2000 }]
    };
    let tolerance = 1e-4;
    let max_iterations = 2000;
    let n = CITYSCAPES.len();
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 })?;
    let max_cost = d.max();
    let dev = Device::Cpu;
    let mut rng = rwt::random::seeded(2024);
    let logits = rwt::random::normal(&mut rng, (1, n, h, w), 2.0, &dev)?;
    let targets = rwt::candle_nn::ops::softmax(&rwt::random::normal(&mut rng, (1, n, h, w), 3.0, &dev)?, 1)?;
    let pixels = h * w;
    let rows = |t: &Tensor| -> rwt::Result<Tensor> {
        Ok(t.permute((0, 2, 3, 1))?.reshape((pixels, n))?.to_dtype(DType::F64)?)
    };
    let pred_rows = rows(&rwt::candle_nn::ops::softmax(&logits, 1)?)?;
    let target_rows = rows(&targets)?;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sinkhorn-bench");
    std::fs::create_dir_all(&dir).map_err(|e| rwt::Error::Io { path: dir.clone(), source: e })?;
    let python = if std::env::var("RWT_NO_PEERS").is_ok_and(|v| v == "1") {
        println!("RWT_NO_PEERS=1: timing rwt only");
        None
    } else {
        let env = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/pot-env.sh");
        let o = Command::new("bash").arg(env).output().map_err(|e| rwt::Error::Io { path: env.into(), source: e })?;
        if !o.status.success() {
            peer_failed("installing POT", &o.stderr);
        }
        Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    println!("soft-target Wasserstein, {pixels} pixels x {n} classes, Huber(0.5) severity costs (max {max_cost}), tolerance {tolerance:e} (L1 marginal error), cap {max_iterations} iterations");
    for case in cases {
        let eps_abs = case.epsilon * max_cost;
        println!("\n== epsilon = {:e} x max cost = {eps_abs:.2e}", case.epsilon);
        // rwt with the same algorithm as POT (no epsilon-scaling, no over-relaxation), and with its defaults.
        let plain = SinkhornConfig {
            epsilon: case.epsilon,
            tolerance,
            max_iterations,
            scaling: None,
            relaxation: 1.0,
            ..Default::default()
        };
        let default = SinkhornConfig { scaling: Some(EpsilonScaling::default()), relaxation: 1.5, ..plain };
        let mut rows_out = vec![];
        for (name, cfg) in [("rwt (plain log-domain)", plain), ("rwt (eps-scaling + relaxation)", default)] {
            let mut times = vec![];
            let mut stats = None;
            for _ in 0..3 {
                let v = Var::from_tensor(&logits)?;
                let start = Instant::now();
                let out = loss::wasserstein_soft(v.as_tensor(), &targets, &d, &cfg, Reduction::Mean)?;
                let grads = out.loss.backward()?;
                std::hint::black_box(grads.get(v.as_tensor()));
                times.push(start.elapsed().as_secs_f64());
                stats = Some(out.stats);
            }
            times.sort_by(f64::total_cmp);
            let t = times[1];
            let st = stats.expect("three runs");
            println!(
                "{name:<32} {:>9.0} pixels/s  ({t:.2} s; iterations mean {:.0}, max {}; not converged {})",
                pixels as f64 / t,
                st.mean_iterations,
                st.max_iterations,
                st.not_converged
            );
            rows_out.push((name, pixels as f64 / t, cfg));
        }
        // Accuracy on a sample against the exact solver.
        let sample = case.pot_pixels.min(200);
        let pred = pred_rows.narrow(0, 0, case.pot_pixels)?;
        let target = target_rows.narrow(0, 0, case.pot_pixels)?;
        let p2: Vec<Vec<f64>> = pred.narrow(0, 0, sample)?.to_vec2()?;
        let t2: Vec<Vec<f64>> = target.narrow(0, 0, sample)?.to_vec2()?;
        let exact: Vec<f64> = (0..sample)
            .map(|k| ot::exact_wasserstein(&p2[k], &t2[k], &d).map(|r| r.cost))
            .collect::<rwt::Result<_>>()?;
        let rel = |values: &[f64]| -> (f64, f64) {
            let errs: Vec<f64> = values.iter().zip(&exact).map(|(v, e)| (v - e).abs() / e.max(1e-12)).collect();
            (errs.iter().sum::<f64>() / errs.len() as f64, errs.iter().copied().fold(0.0, f64::max))
        };
        for (name, _, cfg) in &rows_out {
            let z = logits
                .permute((0, 2, 3, 1))?
                .reshape((pixels, n))?
                .narrow(0, 0, sample)?
                .t()?
                .reshape((1, n, sample))?;
            let tt = targets
                .permute((0, 2, 3, 1))?
                .reshape((pixels, n))?
                .narrow(0, 0, sample)?
                .t()?
                .reshape((1, n, sample))?;
            let map = loss::wasserstein_soft(&z, &tt, &d, cfg, Reduction::None)?
                .loss
                .flatten_all()?
                .to_dtype(DType::F64)?
                .to_vec1::<f64>()?;
            let (mean, max) = rel(&map);
            println!("  accuracy of {name:<32} mean relative error {mean:.2e}, max {max:.2e} (vs exact EMD, {sample} pixels)");
        }
        let Some(py) = python.as_deref() else { continue };
        pred.write_npy(dir.join("pred.npy"))?;
        target.write_npy(dir.join("target.npy"))?;
        Tensor::from_slice(ot::cost_matrix(&d).as_slice().expect("standard layout"), (n, n), &dev)?
            .write_npy(dir.join("cost.npy"))?;
        // `-P`: the script's folder is not put on sys.path, so no file beside it can shadow a
        // package it imports.
        let out = Command::new(py)
            .arg("-P")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/pot_sinkhorn.py"))
            .arg(&dir)
            .arg(eps_abs.to_string())
            .arg(tolerance.to_string())
            .arg(max_iterations.to_string())
            .output()
            .map_err(|e| rwt::Error::Io { path: py.into(), source: e })?;
        if !out.status.success() {
            peer_failed("POT's Sinkhorn", &out.stderr);
        }
        let report = String::from_utf8_lossy(&out.stdout);
        let secs = report
            .split("\"seconds\": ")
            .nth(1)
            .and_then(|r| r.split([',', '}']).next())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or_else(|| peer_failed("POT's Sinkhorn (no \"seconds\" in its report)", report.as_bytes()));
        let pot_rate = case.pot_pixels as f64 / secs;
        let pot_values = Tensor::read_npy(dir.join("pot_values.npy"))?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
        let (mean, max) = rel(&pot_values[..sample]);
        println!(
            "{:<32} {pot_rate:>9.0} pixels/s  ({secs:.2} s on {} pixels; {})",
            "POT ot.batch log_sinkhorn",
            case.pot_pixels,
            report.trim()
        );
        println!("  accuracy of {:<32} mean relative error {mean:.2e}, max {max:.2e}", "POT");
        for (name, rate, _) in &rows_out {
            println!("  speed-up of {name:<32} {:.1}x POT", rate / pot_rate);
        }
    }
    Ok(())
}

/// Fails the benchmark run when its peer fails: a ratio that silently goes missing is a
/// figure that cannot be reproduced (`RWT_NO_PEERS=1` times rwt alone).
fn peer_failed(what: &str, output: &[u8]) -> ! {
    eprintln!("{what} failed (RWT_NO_PEERS=1 times rwt alone): {}", String::from_utf8_lossy(output).trim());
    std::process::exit(1)
}
