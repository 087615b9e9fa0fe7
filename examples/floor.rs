//! The floor for km between infractions, driven long enough to rest on many infractions, and
//! the agents of committed records pooled per recipe beside it (issue 14, RESULTS.md).
//!
//! The random policy without brake ([`rl::Driver::RandomNoBrake`], the floor of `rwt drive
//! eval --baselines`) covers about 20 m an episode, so 300 episodes give it a handful of
//! collisions with people (5 in RESULTS.md's section 18), and an exact 95 % interval that
//! spans a factor of seven. `drive` drives it over benchmark seeds `0…N−1` of a run's training
//! town (`eval.episodes` episodes each, the benchmark's episode seeds and the driver's random
//! stream seeded with the config's `seed`, as `rwt drive eval` does, so that its first 30
//! seeds repeat that command's floor episode for episode) and writes the rows (`.json`, or
//! gzip-compressed `.json.gz`). `table` prints [`rl::floor_table`] with the floor and every
//! agent of the given records: their training-town rows pooled over training seeds by
//! [`rl::with_recipes`] ([`rl::pool_by_recipe`]), which leaves out the same episodes driven
//! again (benchmark seeds 0–9 and 0–29), so that no episode counts twice.
//!
//! ```text
//! cargo run --release --example floor -- drive CONFIG.toml N FLOOR.json.gz     # 10,000 episodes (N = 1000): 13 minutes
//! cargo run --release --example floor -- table FLOOR.json.gz [RECORDS.json ...]
//! ```
//!
//! Errors: a config or record that does not read, `N = 0`, a floor record without the floor.

use rwt::rl;
use rwt::{Error, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["drive", config, n, out] => drive(config, n, out),
        ["table", floor, records @ ..] => table(floor, records),
        _ => Err(Error::invalid(
            "arguments",
            args.join(" "),
            "expected `drive CONFIG.toml N FLOOR.json.gz` or `table FLOOR.json.gz [RECORDS.json ...]`",
        )),
    }
}

const FLOOR: &str = "random policy without brake";

/// Drives the floor over benchmark seeds `0…n−1` of `config`'s training town into `out`.
fn drive(config: &str, n: &str, out: &str) -> Result<()> {
    let n: u64 = n.parse().map_err(|_| Error::invalid("N", n, "expected a whole number of benchmark seeds"))?;
    if n == 0 {
        return Err(Error::invalid("N", 0, "expected at least one benchmark seed"));
    }
    let mut cfg = rl::DriveConfig::from_file(config)?;
    cfg.eval.seeds = (0..n).collect();
    let mut bench = rl::Benchmark::of(&cfg)?;
    bench.conditions.truncate(1);
    let rows = rl::evaluate(&bench, FLOOR, &mut rl::Driver::RandomNoBrake(rwt::random::seeded(cfg.seed)))?;
    rl::BenchmarkRow::write(out, &rows)?;
    println!("{FLOOR}: {} episodes, {:.2} km; written to {out}", rows[0].episodes.len(), rows[0].pooled.km);
    Ok(())
}

/// The floor of `floor` beside the agents of `records`, pooled per recipe.
fn table(floor: &str, records: &[&str]) -> Result<()> {
    let floor_rows: Vec<rl::BenchmarkRow> = rl::BenchmarkRow::read(floor)?
        .into_iter()
        .filter(|r| r.driver == FLOOR && r.condition == "training town")
        .collect();
    if floor_rows.is_empty() {
        return Err(Error::invalid("floor record", floor, format!("has no training-town row of the {FLOOR}")));
    }
    let mut agents: Vec<rl::BenchmarkRow> = vec![];
    for path in records {
        agents.extend(rl::BenchmarkRow::read(path)?);
    }
    let drivers = rl::with_recipes(vec![(FLOOR.into(), floor_rows.iter().collect())], &agents, "training town");
    let table = rl::floor_table(&drivers, &drivers[0].0.clone(), 0.95)?;
    println!(
        "Training town, km between infractions against the {FLOOR} (count, exact 95 % interval, p that the \
         rate is not below the floor's):\n{}",
        table.to_markdown()
    );
    Ok(())
}
