//! Does a trained driving agent use its latent state (the camera), or only the measurements?
//!
//! For each run folder given, the scripted Autopilot drives three training-town episodes of
//! up to 300 steps; at every step from the 51st on, the agent's policy head is evaluated on
//! the true state and on the same measurements with the latent of 50 steps earlier. Prints the
//! largest and mean absolute change of the head (logits for a discrete action space, Beta
//! parameters for the continuous one) and how often the greedy action changes. A policy whose
//! head never changes does not depend on its latent at all (RESULTS.md, issue 14: training
//! seed 0 of `drive-enet-dagger-seeing`). It also prints, for the latent branch's four layers
//! (conv 1, conv 2, FC 1, FC 2), how many units are live on every 10th of those states
//! (`ActorCritic::latent_activity`): a layer with none passes no gradient and the camera is
//! cut off.
//!
//! `cargo run --release --example latent_dependence -- runs/drive-enet-dagger-seeing/imitation …`
//!
//! Errors: no run folder given; a folder without an agent checkpoint (named by `rl::load`).

use rwt::candle_core::{DType, Tensor};
use rwt::rl::{self, DriveConfig};
use rwt::sim::{Autopilot, DrivingEnv, Environment};

fn main() -> rwt::Result<()> {
    let runs: Vec<String> = std::env::args().skip(1).collect();
    if runs.is_empty() {
        return Err(rwt::Error::invalid("run folders", "none", "give one or more run folders of `rwt drive train`"));
    }
    println!("| run | states | max |Δ head| | mean |Δ head| | greedy action changed | live units: conv 1, conv 2, FC 1, FC 2 |");
    println!("|---|---:|---:|---:|---:|---|");
    for dir in &runs {
        let mut agent = rl::load(dir)?;
        let cfg = DriveConfig::from_file(std::path::Path::new(dir).join("config.toml"))?;
        let mut env = DrivingEnv::new(cfg.env_config()?)?;
        let pilot = Autopilot::default();
        let (mut max, mut sum, mut changed, mut n) = (0f64, 0f64, 0usize, 0usize);
        let mut latents: Vec<Tensor> = vec![];
        for episode in 0..3u64 {
            let mut obs = env.reset(1000 + episode)?;
            agent.encoder.reset();
            for step in 0..300 {
                let state = agent.encoder.encode(&[&obs], &[step == 0])?;
                latents.push(state.latent.clone());
                if latents.len() > 50 {
                    let earlier = &latents[latents.len() - 51];
                    let a = agent.net.forward(&state.latent, &state.measurements)?.head;
                    let b = agent.net.forward(earlier, &state.measurements)?.head;
                    let d = (&a - &b)?.abs()?.max_all()?.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                    let greedy = |head: &Tensor| -> rwt::Result<Vec<f64>> {
                        let policy = agent.net.config().action_space.policy(head)?;
                        Ok(policy.greedy()?.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
                    };
                    max = max.max(d);
                    sum += d;
                    changed += usize::from(greedy(&a)? != greedy(&b)?);
                    n += 1;
                }
                let t = env.step(pilot.act(&env))?;
                if t.done() {
                    break;
                }
                obs = t.observation;
            }
        }
        // Every 10th state (the convolution of all of them at once would take gigabytes).
        let sample: Vec<Tensor> = latents.iter().step_by(10).cloned().collect();
        let activity = agent.net.latent_activity(&Tensor::cat(&sample, 0)?)?;
        let live = activity.map(|a| format!("{:.0} %", 100.0 * a)).join(", ");
        println!("| {dir} | {n} | {max:.3e} | {:.3e} | {changed} | {live} |", sum / n.max(1) as f64);
    }
    Ok(())
}
