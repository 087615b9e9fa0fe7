//! Exact Wasserstein loss (Eq. 2) against cross-entropy, forward + backward, on
//! `[8, 19, 256, 512]` f32 logits on the CPU — the shape of a Cityscapes batch at half
//! resolution. Prints the ratio W / CE at the end (target ≤ 1.1×; the paper's PyTorch code
//! was 2.2–2.4× slower than CE), and of the class-weighted CE + λW fine-tuning objective
//! (target ≤ 1.15×).
//!
//! `cargo bench --bench exact_loss` (set `RWT_QUICK=1` for a smaller `[2, 19, 128, 256]`).

use criterion::Criterion;
use rwt::candle_core::{DType, Device, Tensor, Var};
use rwt::loss::{self, LossConfig};
use rwt::{GroundMatrix, Transform, CITYSCAPES};
use std::hint::black_box;

fn shape() -> (usize, usize, usize, usize) {
    if std::env::var("RWT_QUICK").is_ok_and(|v| v == "1") {
        (2, 19, 128, 256)
    } else {
        (8, 19, 256, 512)
    }
}

fn group_name() -> String {
    let (b, n, h, w) = shape();
    format!("exact_loss_{b}x{n}x{h}x{w}")
}

/// CE as a candle user writes it: log-softmax over the class axis and a gather.
fn candle_cross_entropy(logits: &Tensor, labels: &Tensor) -> rwt::candle_core::Result<Tensor> {
    let logp = rwt::candle_nn::ops::log_softmax(logits, 1)?;
    logp.gather(&labels.unsqueeze(1)?, 1)?.neg()?.mean_all()
}

fn main() {
    let (b, n, h, w) = shape();
    let dev = Device::Cpu;
    let logits = Var::from_tensor(&(Tensor::randn(0f32, 1.0, (b, n, h, w), &dev).unwrap() * 3.0).unwrap()).unwrap();
    let labels = Tensor::rand(0f32, n as f32, (b, h, w), &dev).unwrap().floor().unwrap().to_dtype(DType::U32).unwrap();
    let d = GroundMatrix::severity(&CITYSCAPES).transform(Transform::Huber { tau: 0.5 }).unwrap();
    let cfg = LossConfig::ignoring(255);
    let class_weights: Vec<f64> = (0..n).map(|k| 1.0 + 0.25 * k as f64).collect();

    let mut c = Criterion::default().sample_size(10).configure_from_args();
    {
        let mut g = c.benchmark_group(group_name());
        let z = logits.as_tensor();
        g.bench_function("cross_entropy_fused", |bench| {
            bench.iter(|| black_box(loss::cross_entropy(z, &labels, cfg).unwrap().backward().unwrap()))
        });
        g.bench_function("wasserstein_fused", |bench| {
            bench.iter(|| black_box(loss::wasserstein(z, &labels, &d, cfg).unwrap().backward().unwrap()))
        });
        // The paper's fine-tuning objective, CE + λW, in one fused pass (with ENet's class
        // weights on the CE term, as the Table II protocol runs it).
        g.bench_function("ce_plus_wasserstein_fused", |bench| {
            bench.iter(|| {
                black_box(
                    loss::weighted_ce_plus_wasserstein(z, &labels, &class_weights, &d, 0.5, cfg)
                        .unwrap()
                        .backward()
                        .unwrap(),
                )
            })
        });
        g.bench_function("wasserstein_composed", |bench| {
            bench.iter(|| black_box(loss::wasserstein_composed(z, &labels, &d, cfg).unwrap().backward().unwrap()))
        });
        g.bench_function("cross_entropy_candle_ops", |bench| {
            bench.iter(|| black_box(candle_cross_entropy(z, &labels).unwrap().backward().unwrap()))
        });
        g.finish();
    }
    c.final_summary();
    report();
}

/// Reads criterion's estimates back and prints the ratios against the fused CE.
fn report() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("../criterion").join(group_name());
    let mean = |id: &str| -> Option<f64> {
        let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["mean"]["point_estimate"].as_f64()
    };
    let Some(ce) = mean("cross_entropy_fused") else {
        println!("(no estimates found under {}; run without --test to measure)", dir.display());
        return;
    };
    println!("\nforward+backward, mean time, ratio to fused cross-entropy ({}):", group_name());
    for id in [
        "cross_entropy_fused",
        "wasserstein_fused",
        "ce_plus_wasserstein_fused",
        "wasserstein_composed",
        "cross_entropy_candle_ops",
    ] {
        if let Some(t) = mean(id) {
            println!("  {id:<26} {:>9.2} ms   {:>5.2}x", t / 1e6, t / ce);
        }
    }
}
