//! `rwt`: train, evaluate and ablate severity-aware segmenters from TOML configs.
//!
//! ```text
//! rwt train  --config configs/camvid-enet-ce.toml            # → runs/<name>/
//! rwt eval   --config configs/camvid-enet-ce.toml --weights runs/enet-ce
//! rwt ablate --config configs/camvid-ablation.toml           # → runs/<name>/<variant>/, results.md
//! rwt ablate --config configs/camvid-ablation.toml --report-only  # rewrite the reports from the records
//! rwt self-train --config configs/selftrain-sim-camvid.toml  # → runs/<name>/source-only, <method>/seed-<s>/
//! rwt drive train --config configs/drive-enet.toml           # → runs/<name>/ (the driving agent)
//! rwt reinforce --config configs/reinforce-learned.toml       # → runs/<name>/ (segmenter, agent and D, alternating)
//! ```
//! `--quick` (or `RWT_QUICK=1`) shrinks any run to a few small images and two epochs.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rwt::rl;
use rwt::train::{self, AblationConfig, RunConfig, RunEvent};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "rwt", version, about = "Severity-aware segmentation with the Wasserstein loss")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train (or fine-tune) a segmenter; resumes when the run folder holds a checkpoint.
    Train(RunArgs),
    /// Evaluate weights on the config's evaluation split and print the metrics.
    Eval {
        /// The run config (TOML): network and data.
        #[arg(long)]
        config: PathBuf,
        /// A .safetensors file, checkpoint folder or run folder.
        #[arg(long)]
        weights: PathBuf,
        /// Split to evaluate instead of the config's (val, test).
        #[arg(long)]
        split: Option<String>,
        /// Also write the report here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Small images, few of them (also RWT_QUICK=1).
        #[arg(long)]
        quick: bool,
    },
    /// Fine-tune every variant of an ablation config and print the comparison table.
    Ablate {
        #[command(flatten)]
        run: RunArgs,
        /// Train nothing: re-read the recorded runs (metrics.json, history.json) in the
        /// output folder and rewrite results.md, summary.md and ablation.svg from them.
        #[arg(long)]
        report_only: bool,
    },
    /// Self-training toward an unlabelled target (Table III): the source-only run, then CBST,
    /// CRST-LRENT and CRST-LRENT + W from its weights; resumes unfinished parts.
    SelfTrain(RunArgs),
    /// The driving agent (Section III.C): train it, or drive the benchmark of Tables IV–VI.
    #[command(subcommand)]
    Drive(DriveCommand),
    /// The reinforced ground matrix (Section III.C, Fig. 4): rounds of segmenter fine-tuning
    /// under D and agent training, then D rebuilt from the class centroids; resumes unfinished
    /// rounds.
    Reinforce(RunArgs),
}

#[derive(Subcommand)]
enum DriveCommand {
    /// Train the actor-critic agent; resumes when the run folder holds a checkpoint.
    Train(RunArgs),
    /// Drive the benchmark (training town, new town, new weather) with trained agents and,
    /// with --baselines, the random policies (uniform, and without brake) and the Autopilot;
    /// print Tables IV–VI.
    Eval {
        /// Run folders of trained agents (repeat for several).
        #[arg(long = "run", required = true)]
        runs: Vec<PathBuf>,
        /// Also drive the random policy, the random policy without brake (one that moves, the
        /// floor for km between infractions), the first run's network untrained (its initial
        /// weights: the floor learning starts from) and the scripted Autopilot over the same
        /// episodes (and the Autopilot that passes static obstacles, when the first run
        /// imitated it: `agent.imitation_passes`).
        #[arg(long)]
        baselines: bool,
        /// Also drive the Autopilot braking only for what the first run's segmenter predicts
        /// on its camera, and for the simulator's labels (perception in the loop).
        #[arg(long)]
        perception: bool,
        /// Also drive the Autopilot braking for what this segmenter predicts: `NAME=PATH`
        /// (a run folder, checkpoint folder or .safetensors file of the first run's
        /// architecture); repeat for several.
        #[arg(long = "segmenter", value_name = "NAME=PATH")]
        segmenters: Vec<String>,
        /// Write the rows (with every episode's log) here as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write an animated GIF of the first agent's first training-town episode here.
        #[arg(long)]
        gif: Option<PathBuf>,
        /// Sample the agents' actions from their policies instead of taking the mean (Beta) /
        /// mode (discrete): `eval.greedy = false`. The greedy action of a categorical policy
        /// that spreads its mass over steering actions is often always "throttle".
        #[arg(long)]
        sampled: bool,
        /// Act with the expected action of the agents' policies (`eval.expected_action = true`):
        /// for a discrete policy, E[steer] and E[throttle − brake] instead of its most likely
        /// entry. Ignored with --sampled.
        #[arg(long)]
        expected: bool,
        /// Act with the mode of each marginal of the agents' policies
        /// (`eval.marginal_action = true`): for a discrete policy, the steering value and the
        /// throttle/brake command that each carry the most probability, instead of its most
        /// likely entry. Ignored with --sampled; not with --expected.
        #[arg(long, conflicts_with = "expected")]
        marginal: bool,
        /// Drive benchmark seeds 0, 1, …, N−1 instead of the config's `eval.seeds`: N ×
        /// `eval.episodes` episodes per condition, for km between infractions that rest on
        /// more infractions (a random driver covers about 20 m per episode).
        #[arg(long, value_name = "N")]
        seeds: Option<u64>,
        /// Drive the training town only (Table IV), not the new town and new weather.
        #[arg(long)]
        training_town: bool,
        /// Two episodes per condition, one seed unless --seeds says otherwise (also
        /// RWT_QUICK=1).
        #[arg(long)]
        quick: bool,
    },
}

/// The arguments of `train` and `ablate`.
#[derive(clap::Args)]
struct RunArgs {
    /// The config (TOML): a run config, or for `ablate` shared settings plus [[variants]].
    #[arg(long)]
    config: PathBuf,
    /// The output folder (default: runs/<name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Small images, few of them, two epochs (also RWT_QUICK=1).
    #[arg(long)]
    quick: bool,
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn shrink(cfg: RunConfig, quick: bool) -> RunConfig {
    if quick || train::quick_mode() {
        cfg.quick()
    } else {
        cfg
    }
}

/// A progress bar per epoch with the loss; epoch summaries printed above it.
fn progress_bar() -> impl FnMut(&RunEvent) {
    let mut bar: Option<ProgressBar> = None;
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    move |event| match event {
        RunEvent::Started { name, first_epoch, epochs, batches } => {
            println!("{name}: epochs {}..={epochs}, {batches} batches each", first_epoch + 1);
        }
        RunEvent::Batch(b) => {
            let pb = bar.get_or_insert_with(|| {
                let pb = ProgressBar::new(b.batches as u64).with_style(style.clone());
                pb.set_prefix(format!("epoch {}", b.epoch + 1));
                pb
            });
            pb.set_position((b.batch + 1) as u64);
            pb.set_message(format!("loss {:.4} lr {:.2e}", b.loss, b.rate));
        }
        RunEvent::Epoch(r) => {
            if let Some(pb) = bar.take() {
                pb.finish_and_clear();
            }
            println!("{}", train::epoch_line(r));
        }
    }
}

/// The source-only run's bar, then a bar per adaptation epoch and a line per round.
fn self_train_progress() -> impl FnMut(&train::self_training::SelfTrainEvent) {
    use train::self_training::SelfTrainEvent as E;
    let mut source = progress_bar();
    let mut bar: Option<ProgressBar> = None;
    let mut prefix = String::new();
    move |event| match event {
        E::Source(e) => source(e),
        E::Started { method, seed, first_epoch, epochs, batches } => {
            prefix = format!("{method} (seed {seed})");
            println!("{prefix}: epochs {}..={epochs}, {batches} batches each", first_epoch + 1);
        }
        E::PseudoLabels(r) => println!(
            "  round {}: portion {:.2}, kept {:.1} % of the target pixels, mean entropy {:.3} ({:.0} s)",
            r.round,
            r.thresholds.portion,
            100.0 * r.pseudo_labels.kept_fraction,
            r.pseudo_labels.mean_entropy,
            r.pseudo_label_seconds
        ),
        E::Batch { batch, batches, loss } => {
            let pb = bar.get_or_insert_with(|| {
                let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                let pb = ProgressBar::new(*batches as u64).with_style(style);
                pb.set_prefix(prefix.clone());
                pb
            });
            pb.set_position((batch + 1) as u64);
            pb.set_message(format!("loss {loss:.4}"));
        }
        E::Epoch(e) => {
            if let Some(pb) = bar.take() {
                pb.finish_and_clear();
            }
            let sinkhorn = e.sinkhorn.map_or(String::new(), |s| {
                format!(
                    ", Sinkhorn {:.1} iterations, {} of {} at the cap",
                    s.mean_iterations, s.not_converged, s.problems
                )
            });
            println!(
                "  epoch {} (round {}): source {:.4}, target {:.4} ({:.0} s, {:.0} s in the target loss{sinkhorn})",
                e.epoch + 1,
                e.round,
                e.source_loss,
                e.target_loss,
                e.seconds,
                e.target_loss_seconds
            );
        }
    }
}

/// A progress bar over the run's updates with steps/s and the mean episode reward.
fn drive_progress() -> impl FnMut(&rl::DriveEvent) {
    let mut bar: Option<ProgressBar> = None;
    move |event| match event {
        rl::DriveEvent::Started { name, first_update, total_updates } => {
            println!("{name}: updates {}..={total_updates}", first_update + 1);
            let style = ProgressStyle::with_template("[{bar:30}] {pos}/{len} updates {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            let pb = ProgressBar::new(*total_updates as u64).with_style(style);
            pb.set_position(*first_update as u64);
            bar = Some(pb);
        }
        rl::DriveEvent::Update { update, steps_per_second, mean_reward, stats, .. } => {
            if let Some(pb) = &bar {
                pb.set_position(*update as u64);
                let reward = mean_reward.map_or("–".to_string(), |r| format!("{r:.1}"));
                pb.set_message(format!("{steps_per_second:.0} steps/s, reward {reward}, entropy {:.2}", stats.entropy));
            }
        }
        rl::DriveEvent::Segment(s) => {
            let line = format!(
                "segment {} ({} steps{}): {} episodes, loss {:.3}, entropy {:.3}, |steer| {:.2} throttle {:.2} brake {:.2}, {:.0} steps/s{}",
                s.segment + 1,
                s.run_steps,
                match (s.expert_share > 0.0, s.imitation_loss) {
                    (true, _) => format!(
                        ", imitating: Autopilot share {:.2}{}",
                        s.expert_share,
                        match s.brake_agreement.as_ref().and_then(|b| Some((b.recall()?, b.false_brakes()?))) {
                            Some((recall, alone)) => format!(
                                ", brakes with it {:.0} %, alone {:.0} %",
                                100.0 * recall,
                                100.0 * alone
                            ),
                            None => String::new(),
                        }
                    ),
                    (false, Some(nll)) => format!(", cloning term {nll:.3}"),
                    (false, None) => String::new(),
                },
                s.episodes,
                s.loss,
                s.entropy,
                s.action_means[0],
                s.action_means[1],
                s.action_means[2],
                s.steps_per_second,
                if s.skipped.is_empty() { String::new() } else { format!(", {} updates skipped", s.skipped.len()) }
            );
            // A hidden bar (output not a terminal, e.g. a log file) would drop the line.
            match &bar {
                Some(pb) if !pb.is_hidden() => pb.println(line),
                _ => println!("{line}"),
            }
        }
    }
}

/// The segmenter's bar (per round), the agent's bar, and a line per finished round.
fn reinforce_progress() -> impl FnMut(&rl::ReinforceEvent) {
    let mut segmenter = progress_bar();
    let mut agent = drive_progress();
    move |event| match event {
        rl::ReinforceEvent::Started { name, first_round, rounds } => {
            println!("{name}: rounds {}..={rounds}", first_round + 1)
        }
        rl::ReinforceEvent::Segmenter { event, .. } => segmenter(event),
        rl::ReinforceEvent::Agent { event, .. } => agent(event),
        rl::ReinforceEvent::Round(r) => {
            let pct = |v: Option<f64>| v.map_or("–".into(), |x| format!("{:.1}", 100.0 * x));
            println!(
                "round {}: segmenter mIoU {} G3+G4 {}; D updated with α = {:.2}, max |ΔD| = {:.3}{}; \
                 {:.0} s segmenter, {:.0} s agent, {:.1} s D",
                r.round + 1,
                pct(r.segmenter.miou),
                pct(r.segmenter.group34_iou),
                r.alpha,
                r.change,
                if r.absent.is_empty() { String::new() } else { format!(" (absent, kept: {})", r.absent.join(", ")) },
                r.segmenter_seconds,
                r.agent_seconds,
                r.ground_seconds
            )
        }
    }
}

fn drive_main(command: DriveCommand) -> rwt::Result<()> {
    let quick = |q: bool| q || train::quick_mode();
    match command {
        DriveCommand::Train(RunArgs { config, out, quick: q }) => {
            let mut cfg = rl::DriveConfig::from_file(&config)?;
            if quick(q) {
                cfg = cfg.quick();
            }
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            let trained = rl::train(&cfg, &out, drive_progress())?;
            let n = trained.history.episodes.len();
            println!("{n} training episodes; run folder: {}", out.display());
        }
        DriveCommand::Eval {
            runs,
            baselines,
            perception,
            segmenters,
            json,
            gif,
            sampled,
            expected,
            marginal,
            seeds,
            training_town,
            quick: q,
        } => {
            if seeds == Some(0) {
                return Err(rwt::Error::invalid("--seeds", 0, "expected at least one benchmark seed"));
            }
            let mut rows = vec![];
            for (k, dir) in runs.iter().enumerate() {
                let agent = rl::load(dir)?;
                let mut cfg = rl::DriveConfig::from_file(dir.join("config.toml"))?;
                if quick(q) {
                    cfg.eval.episodes = cfg.eval.episodes.min(2);
                    cfg.eval.seeds.truncate(1);
                }
                if let Some(n) = seeds {
                    cfg.eval.seeds = (0..n).collect();
                }
                if sampled {
                    cfg.eval.greedy = false;
                }
                if expected {
                    cfg.eval.expected_action = true;
                }
                if marginal {
                    cfg.eval.marginal_action = true;
                }
                let acting = cfg.eval.acting().suffix();
                let mut bench = rl::Benchmark::of(&cfg)?;
                if training_town {
                    bench.conditions.truncate(1);
                }
                if k == 0 && baselines {
                    let mut random = rl::Driver::Random(rwt::random::seeded(cfg.seed));
                    rows.extend(rl::evaluate(&bench, "random policy", &mut random)?);
                    let mut moving = rl::Driver::RandomNoBrake(rwt::random::seeded(cfg.seed));
                    rows.extend(rl::evaluate(&bench, "random policy without brake", &mut moving)?);
                    let (_, untrained) = rl::agent(&cfg, &agent.encoder, &rwt::candle_core::Device::Cpu)?;
                    let mut fresh = rl::Driver::Agent {
                        net: &untrained,
                        encoder: agent.encoder.clone(),
                        acting: cfg.eval.acting(),
                        rng: rwt::random::seeded(cfg.seed),
                    };
                    rows.extend(rl::evaluate(
                        &bench,
                        &format!("untrained agent (initial weights{acting})"),
                        &mut fresh,
                    )?);
                    let mut auto = rl::Driver::Autopilot(rwt::sim::Autopilot::default());
                    rows.extend(rl::evaluate(&bench, "Autopilot (privileged)", &mut auto)?);
                    if cfg.agent.imitation_passes {
                        let passing = rwt::sim::Autopilot { pass_static: true, ..Default::default() };
                        let mut passing = rl::Driver::Autopilot(passing);
                        rows.extend(rl::evaluate(
                            &bench,
                            "Autopilot passing static obstacles (privileged)",
                            &mut passing,
                        )?);
                    }
                }
                if k == 0 && perception {
                    let auto = rwt::sim::Autopilot::default();
                    let mut truth = rl::Driver::Perceiving(auto, None);
                    rows.extend(rl::evaluate(&bench, "Autopilot seeing the true labels", &mut truth)?);
                    if let Some(seg) = agent.encoder.segmenter() {
                        let mut seeing = rl::Driver::Perceiving(auto, Some(seg.clone()));
                        rows.extend(rl::evaluate(
                            &bench,
                            &format!("Autopilot seeing {}'s segmenter", cfg.name),
                            &mut seeing,
                        )?);
                    }
                }
                if k == 0 {
                    for spec in &segmenters {
                        let (name, path) = spec.split_once('=').ok_or_else(|| {
                            rwt::Error::invalid(
                                "--segmenter",
                                spec,
                                "expected NAME=PATH (a run folder or weights file)",
                            )
                        })?;
                        let mut seg_cfg = cfg.clone();
                        seg_cfg.state.kind = "latent".into();
                        seg_cfg.state.segmenter = Some(path.into());
                        let encoder = rl::state_encoder(&seg_cfg, &rwt::candle_core::Device::Cpu)?;
                        let seg = encoder
                            .segmenter()
                            .cloned()
                            .ok_or_else(|| rwt::Error::invalid("--segmenter", spec, "has no segmenter"))?;
                        let mut seeing = rl::Driver::Perceiving(rwt::sim::Autopilot::default(), Some(seg));
                        rows.extend(rl::evaluate(&bench, &format!("Autopilot seeing {name}"), &mut seeing)?);
                    }
                }
                let name =
                    format!("agent: {} (training seed {}, {} state{acting})", cfg.name, cfg.seed, cfg.state.kind);
                let mut driver = rl::Driver::Agent {
                    net: &agent.net,
                    encoder: agent.encoder.clone(),
                    acting: cfg.eval.acting(),
                    rng: rwt::random::seeded(cfg.seed),
                };
                rows.extend(rl::evaluate(&bench, &name, &mut driver)?);
                if let (0, Some(path)) = (k, &gif) {
                    let seeds = bench.episode_seeds(bench.seeds[0]);
                    let (_, frames) = rl::drive(&bench.conditions[0].env, &seeds[..1], &mut driver, Some(0))?;
                    rl::animate(&frames, &name, 2, 250)?.save(path)?;
                    println!("animation: {}", path.display());
                }
            }
            println!("{}", rl::BenchmarkRow::table(&rows).to_markdown());
            let cars = rl::BenchmarkRow::impact_table(&rows, rwt::sim::InfractionKind::CollisionVehicle);
            println!("\nCollisions with cars, by where the car was:\n{}", cars.to_markdown());
            println!(
                "\nBrake recall: of the states in which the Autopilot would brake fully (moving, by what \
                 it brakes for), those in which the driver did; and its brakes on clear states:\n{}",
                rl::BenchmarkRow::brake_table(&rows).to_markdown()
            );
            println!(
                "\nWhat the driver did there, % of those states (full brake / gentle brake / coast / throttle):\n{}",
                rl::BenchmarkRow::response_table(&rows).to_markdown()
            );
            if let Some(path) = json {
                rl::BenchmarkRow::write(path, &rows)?;
            }
            if baselines {
                // Every driver that moved in the training town against the random driver that
                // moves: the count behind each km-between figure, its exact 95 % interval, and
                // the one-sided p that the driver's rate is not below the floor's (rl::rates).
                let floor = "random policy without brake";
                let drivers: Vec<(String, Vec<&rl::BenchmarkRow>)> = rows
                    .iter()
                    .filter(|r| r.condition == "training town" && r.pooled.km > 0.0)
                    .map(|r| (r.driver.clone(), vec![r]))
                    .collect();
                if drivers.iter().any(|(name, _)| name == floor) {
                    let table = rl::floor_table(&drivers, floor, 0.95)?;
                    println!(
                        "\nTraining town, km between infractions against the {floor} (count, exact 95 % \
                         interval, p that the rate is not below the floor's):\n{}",
                        table.to_markdown()
                    );
                } else {
                    println!("\nThe {floor} drove no distance in the training town: no floor to compare with.");
                }
            }
        }
    }
    Ok(())
}

fn real_main() -> rwt::Result<()> {
    match Cli::parse().command {
        Command::Train(RunArgs { config, out, quick }) => {
            let cfg = shrink(RunConfig::from_file(&config)?, quick);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            let trained = train::run(&cfg, &out, progress_bar())?;
            println!("{}", train::results_table(&[(cfg.name.clone(), trained.report)]));
            println!("run folder: {}", out.display());
        }
        Command::Eval { config, weights, split, json, quick } => {
            let mut cfg = shrink(RunConfig::from_file(&config)?, quick);
            if let Some(s) = split {
                cfg.data.eval_split = s;
            }
            let report = train::eval(&cfg, &weights)?;
            println!("{}", train::results_table(&[(weights.display().to_string(), report.clone())]));
            if let Some(path) = json {
                train::report::write_json(path, &report)?;
            }
        }
        Command::Ablate { run: RunArgs { config, out, quick }, report_only } => {
            let mut cfg = AblationConfig::from_file(&config)?;
            cfg.base = shrink(cfg.base, quick);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.base.name));
            let result = if report_only {
                let recorded = train::Ablation::read(&cfg, &out)?;
                recorded.write_reports(&cfg, &out)?;
                recorded
            } else {
                train::ablate(&cfg, &out, progress_bar())?
            };
            println!("{}", result.table());
            println!("ablation folder: {}", out.display());
        }
        Command::SelfTrain(RunArgs { config, out, quick }) => {
            let mut cfg = train::SelfTrainConfig::from_file(&config)?;
            if quick || train::quick_mode() {
                cfg = cfg.quick();
            }
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            let result = train::self_train(&cfg, &out, self_train_progress())?;
            println!("{}", result.table());
            println!("{}", result.timing_table());
            println!("run folder: {}", out.display());
        }
        Command::Drive(d) => drive_main(d)?,
        Command::Reinforce(RunArgs { config, out, quick }) => {
            let mut cfg = rl::ReinforceConfig::from_file(&config)?;
            if quick || train::quick_mode() {
                cfg = cfg.quick();
            }
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.name));
            let done = rl::reinforce(&cfg, &out, reinforce_progress())?;
            println!("{}", done.history.table().to_markdown());
            println!("run folder: {}", out.display());
        }
    }
    Ok(())
}
