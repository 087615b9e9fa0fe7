//! The driving agent from the outside: the example configs, the simulator as a training
//! dataset for the agent's segmenter, and `rwt drive train` / `rwt drive eval` end to end in
//! quick mode (no dataset needed).

use rwt::data::Split;
use rwt::rl::{BenchmarkRow, DriveConfig, DriveHistory};
use rwt::train::RunConfig;
use std::path::{Path, PathBuf};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rwt-drive-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/configs").join(name)
}

/// Asserts that the example config `variant` equals `recipe` once `undo` has checked the fields
/// that tell them apart and set them back to the recipe's (the name is always set back).
fn differs_only_in(variant: &str, recipe: &str, undo: impl Fn(&mut DriveConfig, &DriveConfig)) {
    let mut v = DriveConfig::from_file(example(variant)).unwrap();
    let r = DriveConfig::from_file(example(recipe)).unwrap();
    undo(&mut v, &r);
    v.name.clone_from(&r.name);
    assert_eq!(v, r, "{variant} differs from {recipe} in more than the fields undone");
}

#[test]
fn the_example_configs_parse_and_validate() {
    for name in [
        "drive-enet.toml",
        "drive-labels.toml",
        "drive-enet-discrete.toml",
        "drive-enet-imitation.toml",
        "drive-enet-dagger.toml",
        "drive-enet-dagger-seeing.toml",
        "drive-enet-dagger-seeing-std.toml",
        "drive-enet-dagger-seeing-adam.toml",
        "drive-enet-dagger-seeing-adam-bc.toml",
        "drive-enet-dagger-seeing-adam-a2c.toml",
        "drive-labels-dagger.toml",
        "drive-labels-dagger-brake.toml",
        "drive-enet-dagger-brake.toml",
        "drive-labels-dagger-free.toml",
        "drive-enet-dagger-free.toml",
        "drive-labels-dagger-aggregate.toml",
        "drive-enet-dagger-aggregate.toml",
        "drive-labels-dagger-long.toml",
        "drive-labels-dagger-aggregate-brake.toml",
        "drive-labels-dagger-aggregate-moving-brake.toml",
        "drive-labels-dagger-aggregate-brake-free.toml",
        "drive-enet-dagger-aggregate-brake-free.toml",
        "drive-enet-dagger-aggregate-brake.toml",
        "drive-enet-dagger-aggregate-brake-warmup.toml",
    ] {
        let cfg = DriveConfig::from_file(example(name)).unwrap();
        cfg.validate().unwrap();
        assert_eq!((cfg.actors, cfg.rollout), (10, 20), "{name}: the paper's 10 actors and 20-step rollouts");
        let env = cfg.env_config().unwrap();
        assert_eq!((env.reward.alive, env.reward.progress), (0.0, 1.0), "{name}");
    }
    // The committed records of the discrete and the imitating agents were run with these
    // configs (seeds 0, 1, 2).
    // (drive-enet-dagger-brake: two seeds, drive-enet-dagger-free: one; the others did not fit
    // their sessions. Seed 2 of the three latent -aggregate recipes ran, and its critic diverged.)
    let three: &[u64] = &[0, 1, 2];
    for (config, folder, seeds) in [
        ("drive-enet-discrete.toml", "drive-enet-discrete", three),
        ("drive-enet-imitation.toml", "drive-enet-imitation", three),
        ("drive-enet-dagger.toml", "drive-enet-dagger", three),
        ("drive-enet-dagger-seeing.toml", "drive-enet-dagger-seeing", three),
        ("drive-enet-dagger-seeing-std.toml", "drive-enet-dagger-seeing-std", three),
        ("drive-enet-dagger-seeing-adam.toml", "drive-enet-dagger-seeing-adam", three),
        ("drive-labels-dagger.toml", "drive-labels-dagger", three),
        ("drive-labels-dagger-brake.toml", "drive-labels-dagger-brake", three),
        ("drive-enet-dagger-brake.toml", "drive-enet-dagger-brake", &[0, 1]),
        ("drive-labels-dagger-free.toml", "drive-labels-dagger-free", three),
        ("drive-enet-dagger-free.toml", "drive-enet-dagger-free", &[0]),
        ("drive-labels-dagger-aggregate.toml", "drive-labels-dagger-aggregate", three),
        ("drive-enet-dagger-aggregate.toml", "drive-enet-dagger-aggregate", three),
        ("drive-labels-dagger-long.toml", "drive-labels-dagger-long", three),
        ("drive-labels-dagger-aggregate-brake.toml", "drive-labels-dagger-aggregate-brake", three),
        ("drive-labels-dagger-aggregate-moving-brake.toml", "drive-labels-dagger-aggregate-moving-brake", three),
        ("drive-labels-dagger-aggregate-brake-free.toml", "drive-labels-dagger-aggregate-brake-free", three),
        ("drive-enet-dagger-aggregate-brake-free.toml", "drive-enet-dagger-aggregate-brake-free", three),
        ("drive-enet-dagger-aggregate-brake.toml", "drive-enet-dagger-aggregate-brake", three),
        ("drive-enet-dagger-aggregate-brake-warmup.toml", "drive-enet-dagger-aggregate-brake-warmup", three),
    ] {
        let example_cfg = DriveConfig::from_file(example(config)).unwrap();
        let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results").join(folder);
        for &seed in seeds {
            let mut recorded = DriveConfig::from_file(records.join(format!("seed-{seed}/config.toml"))).unwrap();
            assert_eq!(recorded.seed, seed);
            recorded.name = example_cfg.name.clone();
            recorded.seed = example_cfg.seed;
            assert_eq!(recorded, example_cfg, "{folder}: seed {seed}'s record differs from the example config");
        }
        let segmenter = example_cfg.state.segmenter.as_ref();
        let labels = example_cfg.state.kind == "labels";
        assert!(labels || segmenter.is_some_and(|p| Path::new(env!("CARGO_MANIFEST_DIR")).join(p).is_file()));
    }
    // The optimiser probe of notebook 09's section 22 is that recipe's seed 2 with TensorFlow's
    // RMSprop, nothing else changed.
    let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results");
    let mut probe =
        DriveConfig::from_file(records.join("drive-enet-dagger-aggregate-brake-free/seed-2-rmsprop-tf/config.toml"))
            .unwrap();
    let recipe = DriveConfig::from_file(example("drive-enet-dagger-aggregate-brake-free.toml")).unwrap();
    assert_eq!((probe.seed, probe.agent.optimizer.as_str()), (2, "rmsprop-tf"));
    (probe.seed, probe.name, probe.agent.optimizer) =
        (recipe.seed, recipe.name.clone(), recipe.agent.optimizer.clone());
    assert_eq!(probe, recipe);
    // drive-enet-dagger-seeing differs from drive-enet-dagger in its name, segmenter and expert only.
    differs_only_in("drive-enet-dagger-seeing.toml", "drive-enet-dagger.toml", |seeing, dagger| {
        assert!(seeing.agent.imitation_passes && seeing.state.segmenter != dagger.state.segmenter);
        seeing.state.segmenter.clone_from(&dagger.state.segmenter);
        seeing.agent.imitation_passes = false;
    });
    // drive-enet-dagger-seeing-std differs from drive-enet-dagger-seeing in its name and the
    // standardised latent only.
    differs_only_in("drive-enet-dagger-seeing-std.toml", "drive-enet-dagger-seeing.toml", |std, seeing| {
        assert!(std.state.standardize && !seeing.state.standardize);
        std.state.standardize = false;
    });
    // drive-enet-dagger-seeing-adam differs from drive-enet-dagger-seeing-std in its name and
    // optimiser only; drive-labels-dagger in its name and state (the privileged label maps).
    differs_only_in("drive-enet-dagger-seeing-adam.toml", "drive-enet-dagger-seeing-std.toml", |adam, std| {
        assert_eq!((adam.agent.optimizer.as_str(), std.agent.optimizer.as_str()), ("adam", "rmsprop"));
        adam.agent.optimizer.clone_from(&std.agent.optimizer);
    });
    differs_only_in("drive-labels-dagger.toml", "drive-enet-dagger-seeing-std.toml", |privileged, std| {
        assert_eq!((privileged.state.kind.as_str(), privileged.state.segmenter.as_ref()), ("labels", None));
        privileged.state = std.state.clone();
    });
    // The -brake configs differ from their recipes in the name and the cloning weight of the
    // Autopilot's full brakes only; the -free configs (-brake-free: from -aggregate-brake) in the
    // name and the free distances ahead in the measurements only.
    for (brake, recipe) in [
        ("drive-labels-dagger-brake.toml", "drive-labels-dagger.toml"),
        ("drive-enet-dagger-brake.toml", "drive-enet-dagger-seeing-std.toml"),
        ("drive-labels-dagger-aggregate-brake.toml", "drive-labels-dagger-aggregate.toml"),
        ("drive-enet-dagger-aggregate-brake.toml", "drive-enet-dagger-aggregate.toml"),
    ] {
        differs_only_in(brake, recipe, |brake, recipe| {
            assert_eq!((brake.agent.imitation_brake_weight, recipe.agent.imitation_brake_weight), (4.0, 1.0));
            brake.agent.imitation_brake_weight = 1.0;
        });
    }
    // The -moving-brake config differs from the -aggregate-brake one in the name and the further
    // factor on the full brakes given while the car moves only.
    differs_only_in(
        "drive-labels-dagger-aggregate-moving-brake.toml",
        "drive-labels-dagger-aggregate-brake.toml",
        |m, b| {
            assert_eq!((m.agent.imitation_moving_brake_weight, b.agent.imitation_moving_brake_weight), (4.0, 1.0));
            m.agent.imitation_moving_brake_weight = 1.0;
        },
    );
    for (free, recipe) in [
        ("drive-labels-dagger-free.toml", "drive-labels-dagger.toml"),
        ("drive-enet-dagger-free.toml", "drive-enet-dagger-seeing-std.toml"),
        ("drive-labels-dagger-aggregate-brake-free.toml", "drive-labels-dagger-aggregate-brake.toml"),
    ] {
        differs_only_in(free, recipe, |free, recipe| {
            assert!(free.state.free_ahead && !recipe.state.free_ahead);
            free.state.free_ahead = false;
        });
    }
    // The latent -aggregate-brake-free config differs from the latent -aggregate one in the name,
    // the brake weight and the free distances ahead only: section 21's privileged recipe on the
    // latent.
    differs_only_in("drive-enet-dagger-aggregate-brake-free.toml", "drive-enet-dagger-aggregate.toml", |free, agg| {
        assert_eq!((free.agent.imitation_brake_weight, agg.agent.imitation_brake_weight), (4.0, 1.0));
        assert!(free.state.free_ahead && !agg.state.free_ahead);
        free.agent.imitation_brake_weight = 1.0;
        free.state.free_ahead = false;
    });
    // The -warmup config differs from the latent -aggregate-brake one in the name and the
    // learning-rate warm-up over the first segment only.
    differs_only_in(
        "drive-enet-dagger-aggregate-brake-warmup.toml",
        "drive-enet-dagger-aggregate-brake.toml",
        |warm, brake| {
            assert_eq!((warm.agent.lr_warmup, brake.agent.lr_warmup, warm.segment), (25, 0, 25));
            warm.agent.lr_warmup = 0;
        },
    );
    // The -aggregate configs differ from their recipes in the name and DAgger's aggregate only.
    for (aggregate, recipe, states) in [
        ("drive-labels-dagger-aggregate.toml", "drive-labels-dagger.toml", 50_000),
        ("drive-enet-dagger-aggregate.toml", "drive-enet-dagger-seeing-std.toml", 25_000),
    ] {
        differs_only_in(aggregate, recipe, |agg, recipe| {
            assert_eq!((agg.agent.dagger_states, recipe.agent.dagger_states), (states, 0));
            agg.agent.dagger_states = 0;
        });
    }
    // The -long config differs from the labels -aggregate one in its name and the length of
    // imitation only: 20 imitation segments instead of 13 (the same single A2C segment after),
    // and an aggregate that keeps all their 100,000 states.
    differs_only_in("drive-labels-dagger-long.toml", "drive-labels-dagger-aggregate.toml", |long, agg| {
        let segment = long.segment * long.rollout * long.actors;
        assert_eq!((long.agent.imitation_segments, agg.agent.imitation_segments), (20, 13));
        assert_eq!(long.total_steps - agg.total_steps, 7 * segment);
        assert_eq!(long.agent.dagger_states, 20 * segment);
        long.agent.imitation_segments = agg.agent.imitation_segments;
        long.total_steps = agg.total_steps;
        long.agent.dagger_states = agg.agent.dagger_states;
    });
    let labels = DriveConfig::from_file(example("drive-labels.toml")).unwrap();
    assert_eq!(labels.state.kind, "labels");
    let finetune = rwt::train::AblationConfig::from_file(example("sim-enet-finetune.toml")).unwrap();
    assert_eq!(finetune.variants.len(), 2);
    for name in ["sim-enet-ce.toml", "sim-enet-ce-long.toml"] {
        let sim = RunConfig::from_file(example(name)).unwrap();
        sim.validate().unwrap();
        assert_eq!(sim.classes().unwrap().len(), 19, "{name}");
    }
}

/// The exact rate statistics (`rl::rates`) count what the records' tables counted with their
/// own Python scripts: `drive-labels-dagger-aggregate/driven-into.md` (driven-into.py) has 15 cars
/// driven into in 7.47 km by the three seeds after imitation, and its `impacts.md` / RESULTS.md 25
/// collisions with cars, 5 with people and 3 off-road.
#[test]
fn infraction_counts_match_the_records_tables() {
    use rwt::rl::{Counted, InfractionCount};
    use rwt::sim::InfractionKind;
    let records = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results/drive-labels-dagger-aggregate");
    let rows = BenchmarkRow::read(records.join("benchmark.json")).unwrap();
    let agent: Vec<_> =
        rows.iter().filter(|r| r.condition == "training town" && r.driver.contains("after imitation")).collect();
    assert_eq!(agent.len(), 3);
    let count = |what| InfractionCount::of(agent.iter().copied(), what).unwrap();
    let into = count(Counted::DrivenInto(InfractionKind::CollisionVehicle));
    assert_eq!(into.count, 15);
    assert!((into.km - 7.47).abs() < 0.005, "{} km", into.km);
    assert_eq!(count(Counted::Kind(InfractionKind::CollisionVehicle)).count, 25);
    assert_eq!(count(Counted::Kind(InfractionKind::CollisionPerson)).count, 5);
    assert_eq!(count(Counted::Kind(InfractionKind::OffRoad)).count, 3);
    let table = rwt::rl::floor_table(&[("agent".into(), agent.clone())], "agent", 0.95).unwrap();
    assert!(
        table.to_markdown().contains(" | 0.30 (25) [0.20–0.46] | 0.50 (15) [0.30–0.89] | "),
        "{}",
        table.to_markdown()
    );
}

/// The floor table of notebook 09's section 18, from the committed 300-episode records, cell for
/// cell as `results/drive-floor/floor.py` computed it without the crate (its own Garwood
/// bisection and binomial sum, `floor.md`).
#[test]
fn the_floor_table_matches_the_records_python() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results/drive-floor");
    let rows = BenchmarkRow::read(dir.join("benchmark.json")).unwrap();
    let pool = |prefix: &str| -> Vec<&BenchmarkRow> {
        rows.iter().filter(|r| r.condition == "training town" && r.driver.starts_with(prefix)).collect()
    };
    let floor = "random policy without brake";
    let drivers: Vec<(String, Vec<&BenchmarkRow>)> = vec![
        (floor.into(), pool(floor)),
        ("Autopilot (privileged)".into(), pool("Autopilot (privileged)")),
        ("labels agent, 13 imitation segments (section 17)".into(), pool("agent: drive-labels-dagger-aggregate")),
        ("labels agent, 20 imitation segments (section 18)".into(), pool("agent: drive-labels-dagger-long")),
        (
            "latent agent, 13 imitation segments (section 17; 2 seeds × 100 episodes)".into(),
            pool("agent: drive-enet-dagger-aggregate"),
        ),
    ];
    assert_eq!(drivers.iter().map(|(_, r)| r.len()).collect::<Vec<_>>(), [1, 1, 3, 3, 2]);
    assert_eq!(floor_table_cells(&drivers, &dir.join("floor.md")), 5);
}

/// Asserts that `rl::floor_table` of `drivers` (the first of them the floor) has the cells of
/// the Python table `python` (which has a column more: the number of rows pooled), row for
/// row; returns the row count.
fn floor_table_cells(drivers: &[(String, Vec<&BenchmarkRow>)], python: &Path) -> usize {
    let ours = rwt::rl::floor_table(drivers, &drivers[0].0, 0.95).unwrap().to_markdown();
    let python = std::fs::read_to_string(python).unwrap();
    let cells = |line: &str, skip: usize| -> Vec<String> {
        line.trim().trim_matches('|').split(" | ").skip(skip).map(|c| c.trim().to_string()).collect()
    };
    let ours: Vec<_> = ours.lines().skip(2).map(|l| cells(l, 2)).collect();
    let python: Vec<_> = python.lines().skip(2).map(|l| cells(l, 3)).collect();
    assert_eq!(ours, python);
    ours.len()
}

/// The records every long-floor table starts from: the 10,000-episode floor
/// (`floor-1000.json.gz`) and section 18's 300-episode benchmark (`benchmark.json`, whose
/// Autopilot the tables show).
struct LongFloor {
    floor: Vec<BenchmarkRow>,
    short: Vec<BenchmarkRow>,
}

impl LongFloor {
    /// The two records in `dir` (`notebooks/results/drive-floor`).
    fn read(dir: &Path) -> Self {
        LongFloor {
            floor: BenchmarkRow::read(dir.join("floor-1000.json.gz")).unwrap(),
            short: BenchmarkRow::read(dir.join("benchmark.json")).unwrap(),
        }
    }

    /// The drivers of a long-floor table, as notebook 09 builds them: the floor, the
    /// Autopilot, and every agent recipe of `agents` pooled by `rl::with_recipes`.
    fn drivers<'a>(&'a self, agents: &'a [BenchmarkRow]) -> Vec<(String, Vec<&'a BenchmarkRow>)> {
        let autopilot = self.short.iter().filter(|r| r.driver == "Autopilot (privileged)").collect();
        rwt::rl::with_recipes(
            vec![
                ("random policy without brake".into(), self.floor.iter().collect()),
                ("Autopilot (privileged)".into(), autopilot),
            ],
            agents,
            "training town",
        )
    }
}

/// Each driver's episode count, in the table's order.
fn episode_counts(drivers: &[(String, Vec<&BenchmarkRow>)]) -> Vec<usize> {
    drivers.iter().map(|(_, rows)| rows.iter().map(|r| r.episodes.len()).sum()).collect()
}

/// Notebook 09's section 21: the floor over 10,000 episodes, beside the Autopilot and every
/// agent recipe of the committed records, pooled by `rl::pool_by_recipe` over all of them
/// (which must leave out the episodes two records share), cell for cell as
/// `results/drive-floor/floor-1000.py` computed it without the crate, from the one record per
/// recipe that holds its most episodes (`floor-1000.md`). The long floor's first 300 episodes
/// are section 18's floor, episode for episode: it extends that floor, it is not another one.
#[test]
fn the_long_floor_table_matches_the_records_python() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results");
    let dir = results.join("drive-floor");
    let floor = "random policy without brake";
    let records = LongFloor::read(&dir);
    let short_floor = records.short.iter().find(|r| r.driver == floor).unwrap();
    assert_eq!(records.floor.len(), 1);
    assert_eq!(records.floor[0].episodes.len(), 10_000);
    assert_eq!(records.floor[0].episodes[..300], short_floor.episodes[..]);
    let mut agents = records.short.clone();
    for record in [
        "drive-brakes/benchmark.json",
        "drive-labels-dagger-aggregate-moving-brake/brakes-100.json",
        "drive-labels-dagger-aggregate-brake-free/brakes-100.json",
        "drive-enet-dagger-aggregate-brake-free/brakes-100.json",
    ] {
        agents.extend(BenchmarkRow::read(results.join(record)).unwrap());
    }
    let drivers = records.drivers(&agents);
    assert_eq!(drivers[0].0, format!("{floor} (10,000 episodes)"));
    assert_eq!(episode_counts(&drivers), [10_000, 300, 200, 200, 900, 300, 300, 300, 900]);
    assert_eq!(floor_table_cells(&drivers, &dir.join("floor-1000.md")), 9);
}

/// Notebook 09's section 22: the latent agents beside the long floor, each recipe pooled by
/// `rl::with_recipes` over all its records (section 21's 100 episodes per seed are the first
/// 100 of the 300 and must count once) and each seed on its own, cell for cell as
/// `results/drive-floor/floor-latent.py` computed it without the crate.
#[test]
fn the_latent_floor_table_matches_the_records_python() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results");
    let dir = results.join("drive-floor");
    let records = LongFloor::read(&dir);
    let free = BenchmarkRow::read(results.join("drive-enet-dagger-aggregate-brake-free/brakes-300.json.gz")).unwrap();
    let brake = BenchmarkRow::read(results.join("drive-enet-dagger-aggregate-brake/brakes-200.json.gz")).unwrap();
    let mut latent: Vec<BenchmarkRow> =
        records.short.iter().filter(|r| r.driver.ends_with("latent state)")).cloned().collect();
    latent.extend(BenchmarkRow::read(results.join("drive-enet-dagger-aggregate-brake-free/brakes-100.json")).unwrap());
    latent.extend(free.iter().cloned());
    latent.extend(brake.iter().cloned());
    let mut drivers = records.drivers(&latent);
    drivers.extend(free.iter().chain(&brake).map(|r| (r.driver.clone(), vec![r])));
    assert_eq!(episode_counts(&drivers), [10_000, 300, 200, 400, 600, 300, 300, 200, 200]);
    assert_eq!(floor_table_cells(&drivers, &dir.join("floor-latent.md")), 9);
}

/// Notebook 09's section 23: the paper's-state latent recipe with and without the
/// learning-rate warm-up beside the long floor, each recipe pooled by `rl::with_recipes`, the
/// three seeds with seed 2 alone warmed up (0 and 1 without the warm-up, 2 with it) pooled, and
/// each warmed-up seed on its own, cell for cell as `results/drive-floor/floor-warmup.py` computed it without the
/// crate.
#[test]
fn the_warmup_floor_table_matches_the_records_python() {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks/results");
    let dir = results.join("drive-floor");
    let records = LongFloor::read(&dir);
    let brake = BenchmarkRow::read(results.join("drive-enet-dagger-aggregate-brake/brakes-200.json.gz")).unwrap();
    let warm = BenchmarkRow::read(results.join("drive-enet-dagger-aggregate-brake-warmup/brakes-200.json.gz")).unwrap();
    let latent: Vec<BenchmarkRow> = brake.iter().chain(&warm).cloned().collect();
    let mut drivers = records.drivers(&latent);
    let seed2 = warm.iter().find(|r| r.driver.contains("-warmup-seed2 ")).unwrap();
    drivers.push(("three seeds".into(), brake.iter().chain([seed2]).collect()));
    drivers.extend(warm.iter().map(|r| (r.driver.clone(), vec![r])));
    assert_eq!(episode_counts(&drivers), [10_000, 300, 400, 600, 600, 200, 200, 200]);
    assert_eq!(floor_table_cells(&drivers, &dir.join("floor-warmup.md")), 8);
}

/// Brake recall through the benchmark (`rl::evaluate` fills `BenchmarkRow::brakes`): the
/// default Autopilot, the reference itself, brakes fully in every moving state it brakes for and
/// in none of the clear ones (its brake without cause is 0.3, under `FULL_BRAKE`); the random
/// driver without brake never brakes. The Autopilot must meet something to brake for in 20
/// episodes.
#[test]
fn the_autopilot_has_full_brake_recall_and_the_brakeless_driver_none() {
    use rwt::rl::{evaluate, Benchmark, BrakeCount, Driver};
    let mut cfg = DriveConfig::from_file(example("drive-labels-dagger-aggregate.toml")).unwrap();
    cfg.eval.episodes = 10;
    cfg.eval.seeds = vec![0, 1];
    let mut bench = Benchmark::of(&cfg).unwrap();
    bench.conditions.truncate(1);
    let auto = evaluate(&bench, "Autopilot", &mut Driver::Autopilot(rwt::sim::Autopilot::default())).unwrap();
    let b = auto[0].brakes;
    let full = |c: BrakeCount| c.braked == c.states;
    assert!(full(b.person) && full(b.vehicle) && full(b.static_obstacle), "{b:?}");
    assert!(b.vehicle.states + b.person.states + b.static_obstacle.states > 0, "{b:?}");
    assert!(b.clear.states > 1000 && b.clear.braked == 0, "{b:?}");
    let mut moving = Driver::RandomNoBrake(rwt::random::seeded(0));
    let random = evaluate(&bench, "random policy without brake", &mut moving).unwrap();
    let r = random[0].brakes;
    assert!(r.clear.states > 0 && [r.person, r.vehicle, r.static_obstacle, r.clear].iter().all(|c| c.braked == 0));
    let table = BenchmarkRow::brake_table(&[auto[0].clone(), random[0].clone()]).to_markdown();
    assert!(table.contains("Autopilot (training town) | 100 % of"), "{table}");
}

/// `dataset = "synthetic"` renders the simulator at `data.size` in `data.weathers`; a bad
/// weather is named, and `weathers` with another dataset is refused.
#[test]
fn the_simulator_is_a_run_config_dataset() {
    let cfg = RunConfig::from_toml(
        "[data]\ndataset = \"synthetic\"\nsize = [48, 96]\nweathers = [\"dusk\"]\ntrain_limit = 2\n",
    )
    .unwrap();
    cfg.validate().unwrap();
    let sc = cfg.synthetic_config().unwrap();
    assert_eq!((sc.height, sc.width), (48, 96));
    assert_eq!(sc.weathers, vec![rwt::sim::Weather::Dusk]);
    let ds = cfg.dataset(Split::Train).unwrap();
    let s = ds.get(0).unwrap();
    assert_eq!(s.label.dimensions(), (96, 48));
    let bad = RunConfig::from_toml("[data]\ndataset = \"synthetic\"\nweathers = [\"snow\"]\n").unwrap();
    assert!(bad.dataset(Split::Train).err().unwrap().to_string().contains("snow"));
    let camvid = RunConfig::from_toml("[data]\nweathers = [\"dusk\"]\n").unwrap();
    assert!(camvid.dataset(Split::Train).err().unwrap().to_string().contains("data.weathers"));
}

#[cfg(feature = "cli")]
#[test]
fn drive_train_then_eval_from_the_command_line() {
    let exe = env!("CARGO_BIN_EXE_rwt");
    let dir = temp("cli");
    // A config with an unknown key is refused, naming the key and the file.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[agent]\nlearning_rate = 1e-3\n").unwrap();
    let out = std::process::Command::new(exe).args(["drive", "train", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("learning_rate") && err.contains("bad.toml"), "{err}");

    // The example config without its trained segmenter (an untrained narrow ENet), quick.
    let mut cfg = DriveConfig::from_file(example("drive-enet.toml")).unwrap();
    cfg.state.segmenter = None;
    // (An agent that would imitate the passing Autopilot: its benchmark adds that driver.)
    cfg.agent.imitation_passes = true;
    let file = dir.join("drive.toml");
    std::fs::write(&file, cfg.to_toml().unwrap()).unwrap();
    let run = dir.join("run");
    let out = std::process::Command::new(exe)
        .args(["drive", "train", "--quick", "--config"])
        .arg(&file)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("segment 2") && stdout.contains("steps/s"), "{stdout}");
    let history = DriveHistory::read(run.join("history.json")).unwrap();
    assert_eq!(history.segments.len(), 2);
    assert!(run.join("checkpoint/agent.safetensors").is_file() && run.join("curves.svg").is_file());

    let (json, gif) = (dir.join("bench.json"), dir.join("episode.gif"));
    let out = std::process::Command::new(exe)
        .args(["drive", "eval", "--quick", "--baselines", "--perception", "--run"])
        .arg(&run)
        .arg("--json")
        .arg(&json)
        .arg("--gif")
        .arg(&gif)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = BenchmarkRow::read(&json).unwrap();
    // The random policy (uniform and without brake), the untrained agent, Autopilot, the
    // passing Autopilot, Autopilot seeing the true labels and the run's segmenter, and the
    // agent, each in three conditions, 2 episodes each.
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| r.pooled.episodes == 2 && r.per_seed.len() == 1));
    assert_eq!(&std::fs::read(&gif).unwrap()[..6], b"GIF89a");
    // The collisions with cars by where the car was, one line per row after Table IV–VI's.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (_, cars) = stdout.split_once("Collisions with cars, by where the car was:").expect("the impact table");
    let (cars, brakes) = cars.split_once("Brake recall:").expect("the brake recall table");
    let (brakes, responses) = brakes.split_once("What the driver did there").expect("the response table");
    let (responses, floor) =
        responses.split_once("Training town, km between infractions against").expect("the floor table");
    assert_eq!(cars.lines().filter(|l| l.starts_with("| ")).count(), 1 + rows.len(), "{cars}");
    // Brake recall, one line per row: the Autopilot's own is 100 % wherever it braked while moving.
    assert_eq!(brakes.lines().filter(|l| l.starts_with("| ")).count(), 1 + rows.len(), "{brakes}");
    let auto = rows.iter().find(|r| r.driver == "Autopilot (privileged)").unwrap();
    assert!([auto.brakes.person, auto.brakes.vehicle, auto.brakes.static_obstacle]
        .iter()
        .all(|c| c.braked == c.states));
    // What the drivers did there, one line per row; the random driver without brake never
    // brakes, so all its moving states are coasting or throttle.
    assert_eq!(responses.lines().filter(|l| l.starts_with("| ")).count(), 1 + rows.len(), "{responses}");
    let brakeless = rows.iter().find(|r| r.driver == "random policy without brake").unwrap();
    assert_eq!(brakeless.brakes.clear.braked + brakeless.brakes.clear.gentle, 0);
    assert!(brakeless.brakes.clear.throttled > 0);
    // Against the random driver without brake: every training-town driver that moved, p for
    // all but the floor itself.
    let moved = rows.iter().filter(|r| r.condition == "training town" && r.pooled.km > 0.0).count();
    assert_eq!(floor.lines().filter(|l| l.starts_with("| ")).count(), 1 + moved, "{floor}");
    assert!(floor.lines().filter(|l| l.contains(" p=") || l.contains(" p<")).count() == moved - 1, "{floor}");
    // The same episodes for every driver.
    let seeds = |d: &str| {
        rows.iter()
            .filter(|r| r.driver.starts_with(d))
            .flat_map(|r| r.episodes.iter().map(|e| (e.town, e.seed)))
            .collect::<Vec<_>>()
    };
    assert_eq!(seeds("random policy without brake"), seeds("Autopilot (privileged)"));
    // Both random policies' rows, uniform first, each on the same episodes.
    assert_eq!(seeds("random"), [seeds("Autopilot (privileged)"), seeds("Autopilot (privileged)")].concat());
    assert_eq!(seeds("random policy without brake"), seeds("Autopilot passing static obstacles (privileged)"));
    assert_eq!(seeds("random policy without brake"), seeds("Autopilot seeing the true labels"));
    assert_eq!(seeds("random policy without brake"), seeds("agent"));
    assert_eq!(seeds("random policy without brake"), seeds("untrained"));
    // `rwt drive eval --quick <flags> --run <run> --json <dir>/<file>`, which must succeed: its rows.
    let eval_rows = |flags: &[&str], file: &str| {
        let json = dir.join(file);
        let out = std::process::Command::new(exe)
            .args(["drive", "eval", "--quick"])
            .args(flags)
            .arg("--run")
            .arg(&run)
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(out.status.success(), "{flags:?}: {}", String::from_utf8_lossy(&out.stderr));
        BenchmarkRow::read(&json).unwrap()
    };
    // --sampled: the agents sample their actions (the rows say so), on the same episodes.
    let sampled = eval_rows(&["--sampled"], "bench-sampled.json");
    assert_eq!(sampled.len(), 3);
    assert!(sampled.iter().all(|r| r.driver.starts_with("agent") && r.driver.ends_with("sampled actions)")));
    let greedy: Vec<_> = rows.iter().filter(|r| r.driver.starts_with("agent")).collect();
    let distances = |r: &BenchmarkRow| r.episodes.iter().map(|e| e.distance_m).collect::<Vec<_>>();
    assert!(
        greedy.iter().zip(&sampled).any(|(g, s)| distances(g) != distances(s)),
        "sampled actions drove exactly the greedy episodes"
    );
    // --marginal: the agents act with the mode of each marginal (the rows say so); not with
    // --expected.
    let marginal = eval_rows(&["--training-town", "--marginal"], "bench-marginal.json");
    assert_eq!(marginal.len(), 1);
    assert!(marginal[0].driver.ends_with("marginal modes)"), "{}", marginal[0].driver);
    let out = std::process::Command::new(exe)
        .args(["drive", "eval", "--quick", "--marginal", "--expected", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--expected"));
    // --seeds 3 --training-town: benchmark seeds 0, 1, 2 (two episodes each in quick mode), in
    // the training town only; the first seed's episodes are the ones driven above.
    let more = eval_rows(&["--seeds", "3", "--training-town"], "bench-more.json");
    assert_eq!(more.len(), 1);
    assert_eq!((more[0].condition.as_str(), more[0].per_seed.len(), more[0].pooled.episodes), ("training town", 3, 6));
    assert_eq!(more[0].episodes[..2], greedy[0].episodes[..]);
    let out = std::process::Command::new(exe)
        .args(["drive", "eval", "--quick", "--seeds", "0", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seeds"));
    // A --segmenter without NAME=PATH is named.
    let out = std::process::Command::new(exe)
        .args(["drive", "eval", "--quick", "--segmenter", "nonsense", "--run"])
        .arg(&run)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=PATH"));
    // Evaluating a folder with no trained agent names the missing file.
    let out =
        std::process::Command::new(exe).args(["drive", "eval", "--run"]).arg(dir.join("nothing")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.toml"));
}

/// The reinforced ground matrix's example configs parse and validate: the four runs share
/// their schedule and differ only in the objective and whether `D` is learned.
#[test]
fn the_reinforce_configs_differ_only_in_the_objective() {
    let read = |n: &str| rwt::rl::ReinforceConfig::from_file(example(&format!("reinforce-{n}.toml"))).unwrap();
    let learned = read("learned");
    learned.validate().unwrap();
    assert!(learned.update && learned.alpha == [10.0, 0.0], "the paper's α: 10 → 0");
    for n in ["ce", "ial", "preset"] {
        let c = read(n);
        c.validate().unwrap();
        assert!(!c.update, "{n}: D fixed");
        assert_eq!((c.rounds, c.centroid_frames), (learned.rounds, learned.centroid_frames), "{n}");
        assert_eq!(c.segmenter.data, learned.segmenter.data, "{n}");
        assert_eq!(
            (&c.segmenter.optim, c.segmenter.epochs),
            (&learned.segmenter.optim, learned.segmenter.epochs),
            "{n}"
        );
        assert_eq!(c.segmenter.model, learned.segmenter.model, "{n}");
    }
    assert_eq!(read("ce").agent.unwrap().total_steps, learned.agent.unwrap().total_steps);
}

#[cfg(feature = "cli")]
#[test]
fn reinforce_from_the_command_line() {
    let exe = env!("CARGO_BIN_EXE_rwt");
    let dir = temp("reinforce");
    // The example without its trained starting weights (absent on a fresh clone), quick.
    let mut cfg = rwt::rl::ReinforceConfig::from_file(example("reinforce-learned.toml")).unwrap();
    cfg.segmenter.model.init = None;
    cfg.segmenter.model.width = 0.25;
    let file = dir.join("reinforce.toml");
    std::fs::write(&file, cfg.to_toml().unwrap()).unwrap();
    let run = dir.join("run");
    let go = || {
        std::process::Command::new(exe)
            .args(["reinforce", "--quick", "--config"])
            .arg(&file)
            .arg("--out")
            .arg(&run)
            .output()
            .unwrap()
    };
    let out = go();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("round 2:") && stdout.contains("max |ΔD|") && stdout.contains("| round |"), "{stdout}");
    let done = rwt::rl::Reinforced::read(&run).unwrap();
    assert_eq!(done.history.rounds.len(), 2);
    assert_eq!(done.history.grounds().unwrap().len(), 3);
    for f in ["fig6.svg", "ground/round-2.csv", "agent/checkpoint/state.txt", "segmenter.safetensors"] {
        assert!(run.join(f).is_file(), "{f}");
    }
    // Run again: everything is done, nothing is retrained, the same record.
    let out = go();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(rwt::rl::Reinforced::read(&run).unwrap().history, done.history);
    // A bad α is named.
    std::fs::write(&file, cfg.to_toml().unwrap().replace("alpha = [10.0, 0.0]", "alpha = [10.0, -1.0]")).unwrap();
    let out = go();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alpha[1]"), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}
