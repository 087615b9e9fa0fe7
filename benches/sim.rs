//! Driving simulator throughput: environment steps per second including rendering at the
//! agent's 96×192 camera — one environment (the baseline; its frames are shaded in row blocks
//! on all cores) and vectorised environments (one per thread) — rendering alone, the free
//! distances ahead of the measurements alone, and synthetic dataset frames per second at
//! 360×480.
//!
//! `cargo bench --bench sim` (`RWT_QUICK=1` for fewer steps). Default traffic (30 vehicles,
//! 6 cyclists, 50 pedestrians, 12 obstacles), clear noon, the scripted driver's actions,
//! episodes restarting when they end.

use rayon::prelude::*;
use rwt::data::{Dataset, Split, Synthetic, SyntheticConfig};
use rwt::sim::{free_ahead, Action, Autopilot, DrivingEnv, EnvConfig, Environment, Frame, VecEnv, TRAINING_TOWN};
use std::time::Instant;

fn main() -> rwt::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("sim bench: run with `cargo bench --bench sim`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let steps = if quick { 400 } else { 4000 };
    let cfg = EnvConfig::new(TRAINING_TOWN);
    let driver = Autopilot::default();
    println!(
        "{} threads, camera {}x{}, {steps} steps per run",
        rayon::current_num_threads(),
        cfg.camera.height,
        cfg.camera.width
    );

    // Baseline: one environment, one thread.
    let mut env = DrivingEnv::new(cfg.clone())?;
    let mut seed = 0;
    env.reset(seed)?;
    let start = Instant::now();
    for _ in 0..steps {
        let t = env.step(driver.act(&env))?;
        if t.done() {
            seed += 1;
            env.reset(seed)?;
        }
    }
    let base = steps as f64 / start.elapsed().as_secs_f64();
    println!("{:<44} {base:>9.0} steps/s  1.00x", "1 environment (baseline)");

    for n in [2usize, 4, 10] {
        let mut vec = VecEnv::driving(&cfg, n)?;
        vec.reset(100)?;
        let rounds = steps / n;
        let start = Instant::now();
        for _ in 0..rounds {
            let actions: Vec<Action> = vec.envs().iter().map(|e| driver.act(e)).collect();
            vec.step(&actions)?;
        }
        let rate = (rounds * n) as f64 / start.elapsed().as_secs_f64();
        println!("{:<44} {rate:>9.0} steps/s  {:.2}x", format!("{n} environments, vectorised"), rate / base);
    }

    // Rendering alone, from the same viewpoints.
    let mut env = DrivingEnv::new(cfg.clone())?;
    env.reset(0)?;
    let mut frame = Frame::new(cfg.camera.width, cfg.camera.height);
    let start = Instant::now();
    for _ in 0..steps {
        env.render_into(&mut frame);
    }
    let rate = steps as f64 / start.elapsed().as_secs_f64();
    println!("{:<44} {rate:>9.0} frames/s {:.2}x", "render only, 96x192", rate / base);

    // The free distances ahead (two corridors probed against every road user and prop), which
    // every step's measurements carry: calls per second, from the viewpoints of an
    // Autopilot-driven episode.
    let mut env = DrivingEnv::new(cfg.clone())?;
    env.reset(0)?;
    let (mut calls, mut spent) = (0usize, std::time::Duration::ZERO);
    for _ in 0..steps {
        let start = Instant::now();
        for _ in 0..10 {
            std::hint::black_box(free_ahead(std::hint::black_box(&env)));
        }
        spent += start.elapsed();
        calls += 10;
        if env.step(driver.act(&env))?.done() {
            env.reset(calls as u64)?;
        }
    }
    let rate = calls as f64 / spent.as_secs_f64();
    println!("{:<44} {rate:>9.0} calls/s  {:.2}x", "free_ahead only (measurements)", rate / base);

    // The synthetic dataset at 360x480.
    let n = if quick { 8 } else { 64 };
    let ds = Synthetic::new(SyntheticConfig { frames_per_town: n, ..SyntheticConfig::default() }, Split::Train)?;
    let start = Instant::now();
    for i in 0..n {
        std::hint::black_box(ds.get(i)?);
    }
    let one = n as f64 / start.elapsed().as_secs_f64();
    println!("{:<44} {one:>9.1} frames/s", "dataset 360x480, one frame at a time");
    let start = Instant::now();
    (0..n).into_par_iter().try_for_each(|i| ds.get(i).map(|s| drop(std::hint::black_box(s))))?;
    let all = n as f64 / start.elapsed().as_secs_f64();
    println!("{:<44} {all:>9.1} frames/s ({:.2}x of one at a time)", "dataset 360x480, frames in parallel", all / one);
    Ok(())
}
