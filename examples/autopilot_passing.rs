//! The scripted Autopilot with and without passing static obstacles (`Autopilot::pass_static`)
//! on the benchmark of `examples/configs/drive-enet-dagger.toml` (10 routes × 3 seeds × the
//! training town, a new town and new weather; an episode standing still for 10 s ends as
//! blocked): Drive %, success, km and the infractions per condition.
//!
//! `cargo run --release --example autopilot_passing` (about half a minute).

use rwt::rl::{self, mean_sd, Benchmark, DriveConfig, Driver};
use rwt::sim::{Autopilot, Termination};

fn main() -> rwt::Result<()> {
    let cfg = DriveConfig::from_file(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/configs/drive-enet-dagger.toml"))?;
    let bench = Benchmark::of(&cfg)?;
    println!("| driver | condition | Drive % | success % | km | blocked | collisions (person, vehicle, static) | off-lane | off-road |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, pass_static) in [("Autopilot", false), ("Autopilot passing static obstacles", true)] {
        let mut driver = Driver::Autopilot(Autopilot { pass_static, ..Autopilot::default() });
        for row in rl::evaluate(&bench, name, &mut driver)? {
            let m = &row.pooled;
            let (drive, sd) = mean_sd(&row.per_seed.iter().map(|m| m.drive_percent).collect::<Vec<_>>());
            let blocked = row.episodes.iter().filter(|e| e.termination == Termination::Blocked).count();
            let count = |k: usize| m.counts[k].1;
            println!(
                "| {name} | {} | {drive:.1} ± {sd:.1} | {:.1} | {:.2} | {blocked} of {} | {}, {}, {} | {} | {} |",
                row.condition,
                m.success_rate * 100.0,
                m.km,
                row.episodes.len(),
                count(0),
                count(1),
                count(2),
                count(3),
                count(4)
            );
        }
    }
    Ok(())
}
