//! Step 2 of the reinforced ground matrix (issue 18, Section III.C): with the networks fixed,
//! the class centroids of ENet's unit-normalised penultimate responses over 200 simulator frames
//! at the agent's 96×192 camera, their L1 distances and `D ← (f(d) + α·D_prev) / (1 + α)`
//! ([`rwt::rl::reinforce::ground_step`]) — against its unavoidable part, the same 200 frames
//! rendered and run through ENet's forward pass, in the same process: the ratio is what the
//! centroid accumulation and the update add.
//!
//! `cargo bench --bench ground_step` (`RWT_QUICK=1`: 40 frames). ENet is untrained (the speed
//! does not depend on its weights).

use rwt::candle_core::Device;
use rwt::models::{weights, ModelKind, SegmenterConfig};
use rwt::rl::reinforce::{centroid_loader, ground_step};
use rwt::rl::ReinforceConfig;
use rwt::Transform;
use std::time::Instant;

fn main() -> rwt::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("ground_step bench: run with `cargo bench --bench ground_step`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let mut cfg = ReinforceConfig { centroid_frames: if quick { 40 } else { 200 }, ..Default::default() };
    cfg.segmenter.data.batch_size = 8;
    let dev = Device::Cpu;
    let frames = centroid_loader(&cfg, &dev)?;
    let seg_cfg = SegmenterConfig { num_classes: 19, width: 1.0, dropout: false };
    let (_vars, net) = weights::build(ModelKind::Enet, &seg_cfg, &dev)?;
    let d0 = cfg.initial_ground()?;
    let f = Transform::Huber { tau: 0.5 };
    println!(
        "{} threads, {} frames at {:?}, batches of {}",
        rayon::current_num_threads(),
        frames.len(),
        cfg.segmenter.data.size,
        cfg.segmenter.data.batch_size
    );
    // Warm-up: thread pools, allocations, the towns.
    ground_step(net.as_ref(), &frames, &d0, f, 10.0)?;

    let (mut forward, mut step) = (vec![], vec![]);
    for _ in 0..3 {
        let t0 = Instant::now();
        for batch in frames.epoch(0) {
            net.forward_all(&batch?.images, false)?;
        }
        forward.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        ground_step(net.as_ref(), &frames, &d0, f, 10.0)?;
        step.push(t0.elapsed().as_secs_f64());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (fw, st) = (median(&mut forward), median(&mut step));
    println!("{:<52} {:>7.2} s", "frames rendered + ENet forward (baseline)", fw);
    println!("{:<52} {:>7.2} s", "step 2: the same + centroids, distances, update", st);
    println!("step 2 / baseline: {:.2}x (the centroids and the update add {:.2} s)", st / fw, st - fw);
    Ok(())
}
