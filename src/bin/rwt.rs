//! `rwt`: train, evaluate and ablate severity-aware segmenters from TOML configs.
//!
//! ```text
//! rwt train  --config configs/camvid-enet-ce.toml            # → runs/<name>/
//! rwt eval   --config configs/camvid-enet-ce.toml --weights runs/enet-ce
//! rwt ablate --config configs/camvid-ablation.toml           # → runs/<name>/<variant>/, results.md
//! ```
//! `--quick` (or `RWT_QUICK=1`) shrinks any run to a few small images and two epochs.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
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
    Ablate(RunArgs),
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
        Command::Ablate(RunArgs { config, out, quick }) => {
            let mut cfg = AblationConfig::from_file(&config)?;
            cfg.base = shrink(cfg.base, quick);
            let out = out.unwrap_or_else(|| PathBuf::from("runs").join(&cfg.base.name));
            let result = train::ablate(&cfg, &out, progress_bar())?;
            println!("{}", result.table());
            println!("ablation folder: {}", out.display());
        }
    }
    Ok(())
}
