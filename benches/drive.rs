//! Throughput of the driving agent's whole training loop (issue 14): environment steps per
//! second with 10 actors and 20-step rollouts at the agent's 96×192 camera — simulation and
//! rendering, the frozen ENet's latent for the 10 actors in one batch, the actor-critic's
//! forward pass and sampling, and the A2C update — with the time of each part. The paper's
//! GPU set-up did about 130 steps/s (5 M steps, 10 actors, 10.5 h).
//!
//! `cargo bench --bench drive` (`RWT_QUICK=1` for fewer updates). ENet is untrained (the
//! speed does not depend on its weights); the agent's policy is the freshly initialised one.
//! The loop runs twice, with the paper's Beta policy and with CARLA's 9 discrete actions (the
//! same network but for the head), and prints the ratio of their steps/s.
//!
//! Then the update alone against PyTorch: the same network, a Beta policy, n-step returns, the
//! A2C loss, clipping and an RMSprop step on the same `(T + 1)·N` states, on the same number of
//! threads, in `benches/peers/torch_a2c_update.py` (PyTorch installed by
//! `benches/peers/torch-env.sh`; a failed peer fails the benchmark; `RWT_NO_PEERS=1` skips it).

use rwt::candle_core::Device;
use rwt::models::{weights, ModelKind, SegmenterConfig};
use rwt::rl::{
    collect, frozen_segmenter, reset_states, A2c, A2cConfig, ActionSpace, ActorCritic, ActorCriticConfig, CollectTimes,
    Rollout, StateEncoder,
};
use rwt::sim::{DrivingEnv, EnvConfig, VecEnv, TRAINING_TOWN};
use std::time::Instant;

#[path = "common/torch_peer.rs"]
mod torch_peer;

/// Median seconds per A2C update of PyTorch's same network: `(update_s, version)`.
fn torch_update(
    threads: usize,
    steps: usize,
    actors: usize,
    c: usize,
    h: usize,
    w: usize,
) -> Result<(f64, String), String> {
    let v = torch_peer::run("torch_a2c_update.py", &[threads, steps, actors, c, h, w, 5])?;
    let s = v["update_s"].as_f64().ok_or(format!("no update_s in {v}"))?;
    Ok((s, v["torch"].as_str().unwrap_or("?").to_string()))
}

/// The loop's parts for one policy head: 10 actors in the training town, the untrained ENet
/// encoder, the seeded actor-critic, its A2C learner and a begun 20-step rollout.
struct Loop {
    env: VecEnv<DrivingEnv>,
    encoder: StateEncoder,
    net: ActorCritic,
    a2c: A2c,
    rollout: Rollout,
    rng: rand::rngs::StdRng,
    run_steps: usize,
    /// The latent map's `[C, H, W]`.
    latent: (usize, usize, usize),
}

impl Loop {
    fn new(space: ActionSpace, actors: usize, steps: usize) -> rwt::Result<Loop> {
        let dev = Device::Cpu;
        let env_cfg = EnvConfig::new(TRAINING_TOWN);
        let mut env = VecEnv::driving(&env_cfg, actors)?;
        let seg_cfg = SegmenterConfig { num_classes: 19, width: 1.0, dropout: false };
        let (seg_vars, _) = weights::build(ModelKind::Enet, &seg_cfg, &dev)?;
        let mut encoder = StateEncoder::new(frozen_segmenter(ModelKind::Enet, &seg_cfg, &seg_vars, &dev)?, &dev);
        let (h, w) = (env_cfg.camera.height as usize, env_cfg.camera.width as usize);
        let (c, lh, lw) = encoder.latent_shape(h, w)?;
        let net_cfg = ActorCriticConfig::for_latent(c, lh, lw).with_action_space(space);
        let (agent_vars, net) = ActorCritic::seeded(&net_cfg, &dev, 0)?;
        let a2c = A2c::new(A2cConfig::default(), &agent_vars)?;
        let mut rollout = Rollout::new(steps, actors)?;
        rollout.begin(&reset_states(&mut env, &mut encoder, 0)?)?;
        Ok(Loop { env, encoder, net, a2c, rollout, rng: rwt::random::seeded(0), run_steps: 0, latent: (c, lh, lw) })
    }

    /// One rollout collected; its episodes that ended and the collection's times.
    fn collect(&mut self) -> rwt::Result<(usize, CollectTimes)> {
        let (finished, t) = collect(
            &mut self.env,
            &mut self.encoder,
            &self.net,
            &mut self.rollout,
            &mut self.rng,
            &mut self.run_steps,
        )?;
        Ok((finished.len(), t))
    }
}

/// The whole loop of `lp`: `updates` A2C updates after one warm-up. Prints and returns
/// steps/s.
fn whole_loop(lp: &mut Loop, name: &str, updates: usize) -> rwt::Result<f64> {
    // One warm-up iteration (allocations, thread pools).
    lp.collect()?;
    lp.a2c.update(&lp.net, &lp.rollout)?;
    lp.rollout.carry_over()?;

    let (mut times, mut update_s, mut episodes) = (CollectTimes::default(), 0.0, 0);
    let counted = lp.run_steps;
    let start = Instant::now();
    for _ in 0..updates {
        let (ended, t) = lp.collect()?;
        times.add(&t);
        episodes += ended;
        let t0 = Instant::now();
        lp.a2c.update(&lp.net, &lp.rollout)?;
        update_s += t0.elapsed().as_secs_f64();
        lp.rollout.carry_over()?;
    }
    let total = start.elapsed().as_secs_f64();
    let n = (lp.run_steps - counted) as f64;
    println!(
        "{:<34} {:>9.1} steps/s  ({n} steps, {episodes} episodes ended)",
        format!("whole loop, {name} policy"),
        n / total
    );
    for (part, s) in [
        ("simulation + rendering", times.env_s),
        ("ENet latent (10 actors, batched)", times.latent_s),
        ("policy forward + sampling", times.policy_s),
        ("A2C update (200 states)", update_s),
    ] {
        println!("  {part:<32} {:>9.2} ms/step  {:>5.1} %", 1e3 * s / n, 100.0 * s / total);
    }
    Ok(n / total)
}

fn main() -> rwt::Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("drive bench: run with `cargo bench --bench drive`");
        return Ok(());
    }
    let quick = std::env::var("RWT_QUICK").is_ok_and(|v| v == "1");
    let updates = if quick { 3 } else { 20 };
    let (actors, steps) = (10, 20);
    println!(
        "{} threads, camera 96x192, ENet latent, {actors} actors x {steps} steps, {updates} updates per policy",
        rayon::current_num_threads()
    );
    // The paper's Beta policy, then CARLA's 9 discrete actions (`action_space = "discrete"`):
    // the same network but for the head, in the same process.
    let mut beta = Loop::new(ActionSpace::Beta, actors, steps)?;
    let beta_rate = whole_loop(&mut beta, "beta", updates)?;
    let discrete_rate = whole_loop(&mut Loop::new(ActionSpace::Discrete, actors, steps)?, "discrete", updates)?;
    println!("discrete / Beta steps/s: {:.2}x", discrete_rate / beta_rate);
    let (c, lh, lw) = beta.latent;

    // The update alone, rwt against PyTorch on the same shapes and threads, on one full
    // rollout updated five times.
    beta.collect()?;
    let mut times = vec![];
    for _ in 0..5 {
        let t0 = Instant::now();
        beta.a2c.update(&beta.net, &beta.rollout)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let ours = times[times.len() / 2];
    println!("\nA2C update of {} states, rwt: {:.3} s (median of 5)", (steps + 1) * actors, ours);
    if std::env::var("RWT_NO_PEERS").is_ok_and(|v| v == "1") {
        println!("RWT_NO_PEERS=1: no PyTorch ratio");
        return Ok(());
    }
    let threads = rayon::current_num_threads();
    match torch_update(threads, steps, actors, 2 * c, lh, lw) {
        Ok((theirs, version)) => {
            println!("A2C update, PyTorch {version} on {threads} threads: {theirs:.3} s");
            println!("rwt / PyTorch time: {:.2}x (below 1: rwt faster)", ours / theirs);
        }
        Err(e) => {
            eprintln!("PyTorch's A2C update failed (RWT_NO_PEERS=1 times rwt alone): {e}");
            std::process::exit(1);
        }
    }
    Ok(())
}
