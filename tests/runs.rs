//! Run configs, run folders, ablations and the `rwt` command line, on CamVid in quick mode
//! (skipped where CamVid is absent), and the records and figures they produce.

use rwt::classes::CAMVID;
use rwt::image::{GrayImage, Luma, Rgb, RgbImage};
use rwt::metrics::ConfusionMatrix;
use rwt::prelude::*;
use rwt::train::{self, AblationConfig, EvalReport, Objective, RunConfig, RunEvent};
use std::path::PathBuf;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rwt-runs-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn camvid() -> bool {
    let ok = rwt::data::locate("camvid", None).is_ok();
    if !ok {
        println!("skipped: CamVid is not available here");
    }
    ok
}

#[test]
fn configs_parse_validate_and_name_bad_values() {
    let cfg = RunConfig::from_toml(
        "name = \"x\"\nepochs = 3\n[loss]\nkind = \"w\"\ntransform = \"huber\"\ntau = 0.25\n[optim]\nkind = \"adam\"\n",
    )
    .unwrap();
    assert_eq!((cfg.epochs, cfg.data.batch_size, cfg.model.kind.as_str()), (3, 4, "enet"));
    cfg.validate().unwrap();
    // The objective is the severity matrix under Huber(0.25), entry for entry.
    let Objective::Wasserstein { ground } = cfg.objective(&CAMVID).unwrap() else { panic!("not W") };
    let want = GroundMatrix::severity(&CAMVID).transform(Transform::Huber { tau: 0.25 }).unwrap();
    assert_eq!(ground.values(), want.values());
    // TOML round trip.
    assert_eq!(RunConfig::from_toml(&cfg.to_toml().unwrap()).unwrap(), cfg);
    // Unknown keys and bad values are named.
    let e = RunConfig::from_toml("[loss]\nknd = \"w\"\n").unwrap_err().to_string();
    assert!(e.contains("knd"), "{e}");
    for (text, needle) in [
        ("[loss]\nkind = \"kl\"\n", "kl"),
        ("[loss]\ntransform = \"power\"\nrho = -1.0\n", "rho"),
        ("[optim]\nschedule = \"cosine\"\n", "cosine"),
        ("[model]\nkind = \"unet\"\n", "unet"),
        ("epochs = 0\n", "epochs"),
        ("[data]\neval_split = \"dev\"\n", "dev"),
    ] {
        let e = RunConfig::from_toml(text).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    let missing = RunConfig::from_file("/nonexistent/run.toml").unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/run.toml"), "{missing}");
}

#[test]
fn ground_matrices_from_csv_files() {
    let dir = temp("csv");
    let n = CAMVID.len();
    let rows: Vec<String> = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| if i == j { "0".into() } else { format!("{}", (i + j) as f64 / 20.0) })
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let path = dir.join("d.csv");
    std::fs::write(&path, format!("# a comment\n{}\n", rows.join("\n"))).unwrap();
    let cfg = RunConfig::from_toml(&format!("[loss]\nground = {:?}\n", path.display().to_string())).unwrap();
    let d = cfg.ground(&CAMVID).unwrap();
    assert_eq!(d.get(2, 5), 7.0 / 20.0);
    std::fs::write(&path, "0,1\n1,zero\n").unwrap();
    let e = cfg.ground(&CAMVID).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("zero"), "{e}");
}

/// With σ = 0 the soft targets are one-hot, where Sinkhorn's sharp cost must equal the exact
/// Eq. 2 value (the plan is forced); with σ > 0 targets are histograms.
#[test]
fn soft_wasserstein_objective_agrees_with_the_exact_loss_on_one_hot_targets() {
    let dev = Device::Cpu;
    let logits = Tensor::randn(0f32, 1.5, (2, 11, 3, 4), &dev).unwrap();
    let mut labels: Vec<u32> = (0..24).map(|k| (k * 7 % 11) as u32).collect();
    labels[5] = 11;
    let labels = Tensor::from_vec(labels, (2, 3, 4), &dev).unwrap();
    let d = GroundMatrix::severity(&CAMVID);
    let cfg = LossConfig::ignoring(11);
    let exact = Objective::Wasserstein { ground: d.clone() }.loss(&logits, &labels, cfg).unwrap();
    let soft = Objective::SoftWasserstein { ground: d, smoothing: 0.0, sinkhorn: Default::default() }
        .loss(&logits, &labels, cfg)
        .unwrap();
    let (e, s) = (exact.to_scalar::<f32>().unwrap(), soft.to_scalar::<f32>().unwrap());
    assert!((e - s).abs() < 1e-3 * e.max(1e-3), "exact {e} vs Sinkhorn {s}");
    let t = train::smoothed_targets(&labels, 11, 0.1, Some(11)).unwrap();
    let sums = t.sum(1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for (k, s) in sums.iter().enumerate() {
        let want = if k == 5 { 0.0 } else { 1.0 };
        assert!((s - want).abs() < 1e-6, "pixel {k}: {s}");
    }
    assert!(train::smoothed_targets(&labels, 11, 1.0, None).is_err());
}

/// A report of a hand-made confusion matrix: IoU by hand, group 3+4 = {road, sidewalk, sign,
/// car, pedestrian, bicyclist}, the severity cost as Σ C·D / Σ C.
#[test]
fn reports_and_the_confusion_spread_follow_the_counts() {
    let mut cm = ConfusionMatrix::for_classes(&CAMVID);
    // truth car (8): 6 right, 3 as road (3), 1 as pedestrian (9); truth road: 10 right.
    let truth = [vec![8u32; 10], vec![3; 10]].concat();
    let pred = [vec![8u32; 6], vec![3; 3], vec![9], vec![3; 10]].concat();
    cm.update(&pred, &truth).unwrap();
    let r = EvalReport::new(&cm, &CAMVID).unwrap();
    assert_eq!(r.iou_of("car"), Some(6.0 / 10.0));
    assert_eq!(r.iou_of("road"), Some(10.0 / 13.0));
    assert_eq!(r.iou_of("pedestrian"), Some(0.0));
    assert_eq!(r.iou_of("sky"), None);
    let g34 = (6.0 / 10.0 + 10.0 / 13.0 + 0.0) / 3.0;
    assert!((r.group34_iou.unwrap() - g34).abs() < 1e-12);
    let d = GroundMatrix::severity(&CAMVID);
    let cost = (3.0 * d.get(8, 3) + d.get(8, 9)) / 20.0;
    assert!((r.severity_cost.unwrap() - cost).abs() < 1e-12);
    assert_eq!(r.confusion_matrix(Some(11)).unwrap(), cm);
    let chart = train::confusion_spread(&[("A".into(), r.clone())], "car").unwrap();
    assert_eq!(chart.categories.len(), 10);
    let road = chart.categories.iter().position(|c| c == "road").unwrap();
    assert_eq!(chart.series[0].1[road], 30.0);
    assert!(train::confusion_spread(&[("A".into(), r)], "truck").unwrap_err().to_string().contains("truck"));
}

#[test]
fn wins_map_marks_where_a_beats_b() {
    let image = RgbImage::from_pixel(3, 1, Rgb([90, 90, 90]));
    let truth = GrayImage::from_vec(3, 1, vec![1, 2, 11]).unwrap();
    let a = GrayImage::from_vec(3, 1, vec![1, 0, 0]).unwrap();
    let b = GrayImage::from_vec(3, 1, vec![0, 2, 0]).unwrap();
    let w = rwt::plot::wins_map(&image, &truth, &a, &b, 11).unwrap();
    assert_eq!(w.get_pixel(0, 0).0, [0, 200, 0]);
    assert_eq!(w.get_pixel(1, 0).0, [220, 0, 0]);
    assert_eq!(w.get_pixel(2, 0).0, [0, 0, 0]);
    let small = GrayImage::from_pixel(2, 1, Luma([0]));
    assert!(rwt::plot::wins_map(&image, &small, &a, &b, 11).is_err());
}

fn quick_config(name: &str) -> RunConfig {
    RunConfig::from_toml(&format!(
        "name = {name:?}\nepochs = 2\n[data]\nsize = [64, 96]\ntrain_limit = 4\neval_limit = 2\nbatch_size = 2\n\
         [optim]\nkind = \"adam\"\nlr = 1e-3\n"
    ))
    .unwrap()
}

/// A run writes its folder; a copy of the folder taken after epoch 1 resumes to the same
/// final metrics, bit for bit; a finished run is not retrained; another config is refused.
#[test]
fn runs_record_everything_and_resume_to_the_same_metrics() {
    if !camvid() {
        return;
    }
    let dir = temp("run");
    let (full, copy) = (dir.join("full"), dir.join("copy"));
    let cfg = quick_config("quick-ce");
    let mut snapshot = false;
    let trained = train::run(&cfg, &full, |e| {
        if let RunEvent::Epoch(r) = e {
            if r.epoch == 0 {
                std::fs::create_dir_all(copy.join("checkpoint")).unwrap();
                for f in [
                    "config.toml",
                    "history.json",
                    "checkpoint/model.safetensors",
                    "checkpoint/optimizer.safetensors",
                    "checkpoint/state.txt",
                ] {
                    std::fs::copy(full.join(f), copy.join(f)).unwrap();
                }
                snapshot = true;
            }
        }
    })
    .unwrap();
    assert!(snapshot);
    for f in ["config.toml", "history.json", "metrics.json", "curves.svg", "confusion.svg", "checkpoint/state.txt"] {
        assert!(full.join(f).is_file(), "{f} missing");
    }
    assert_eq!(trained.history.epochs.len(), 2);
    assert_eq!(EvalReport::read(full.join("metrics.json")).unwrap(), trained.report);
    assert_eq!(trained.report.pixels, 2 * 64 * 96 - count_void(&cfg));
    let mut epochs_seen = vec![];
    let resumed = train::run(&cfg, &copy, |e| {
        if let RunEvent::Epoch(r) = e {
            epochs_seen.push(r.epoch)
        }
    })
    .unwrap();
    assert_eq!(epochs_seen, vec![1], "only the second epoch is trained again");
    assert_eq!(resumed.report, trained.report);
    assert_eq!(resumed.history, trained.history.clone().with_seconds_of(&resumed.history));
    // Finished: nothing is retrained, the metrics are the recorded ones.
    let mut batches = 0;
    let again = train::run(&cfg, &full, |e| batches += matches!(e, RunEvent::Batch(_)) as usize).unwrap();
    assert_eq!((batches, again.report), (0, trained.report.clone()));
    // The weights evaluate to the recorded metrics.
    assert_eq!(train::eval(&cfg, &full).unwrap(), trained.report);
    let other = RunConfig { epochs: 3, ..cfg.clone() };
    let e = train::run(&other, &full, |_| {}).err().expect("a different config must be refused").to_string();
    assert!(e.contains("different config"), "{e}");
}

/// Void pixels of the first `eval_limit` evaluation images at the config's size.
fn count_void(cfg: &RunConfig) -> u64 {
    let eval = cfg.eval_loader(&Device::Cpu).unwrap();
    eval.epoch(0)
        .map(|b| {
            let l = b.unwrap().labels.flatten_all().unwrap().to_vec1::<u32>().unwrap();
            l.iter().filter(|&&v| v == 11).count() as u64
        })
        .sum()
}

/// A run with class weights counted from its training images records them (the same numbers
/// as `ClassFrequencies` on those images), and evaluation at native size counts every
/// non-void pixel of the 360×480 labels while the network saw 64×96 images.
#[test]
fn class_weights_are_recorded_and_evaluation_runs_at_native_size() {
    if !camvid() {
        return;
    }
    let dir = temp("weights");
    let mut cfg = quick_config("weighted");
    cfg.epochs = 1;
    cfg.data.eval_native = true;
    // Fence (class 7) is absent from the first four training images: median-frequency
    // balancing would give it an infinite weight, and says so before training.
    cfg.loss.class_weights = train::ClassWeighting::MedianFrequency;
    let e = train::run(&cfg, dir.join("median"), |_| {}).err().expect("an absent class must be refused").to_string();
    assert!(e.contains("class 7"), "{e}");
    cfg.loss.class_weights = train::ClassWeighting::Enet;
    let trained = train::run(&cfg, &dir, |_| {}).unwrap();
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("class_weights.json")).unwrap()).unwrap();
    let train_set =
        rwt::data::CamVid::new(rwt::data::locate("camvid", None).unwrap(), rwt::data::Split::Train).unwrap();
    let freq = train::ClassFrequencies::of(&train_set, Some(4)).unwrap();
    assert_eq!(freq.images, 4);
    let want = freq.enet_weights(1.02).unwrap();
    let got: Vec<f64> = rec["weights"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(got, want);
    assert_eq!(rec["weighting"], "enet");
    // Native-size evaluation: every labelled pixel of the first two 360×480 test images.
    let native = RunConfig { data: rwt::train::config::DataConfig { size: None, ..cfg.data.clone() }, ..cfg.clone() };
    assert_eq!(trained.report.pixels, 2 * 360 * 480 - count_void(&native));
    // The run's evaluation is what train::eval gives for the same weights.
    assert_eq!(train::eval(&cfg, &dir).unwrap(), trained.report);
    // Weights only apply to CE terms; native evaluation needs a training size.
    let bad = RunConfig { loss: rwt::train::config::LossSpec { kind: "w".into(), ..cfg.loss.clone() }, ..cfg.clone() };
    assert!(bad.validate().unwrap_err().to_string().contains("class_weights"));
    let bad = RunConfig { data: rwt::train::config::DataConfig { size: None, ..cfg.data.clone() }, ..cfg.clone() };
    assert!(bad.validate().unwrap_err().to_string().contains("eval_native"));
}

trait WithSeconds {
    fn with_seconds_of(self, other: &train::History) -> train::History;
}

impl WithSeconds for train::History {
    /// The same history with the timings of `other` (wall-clock time differs between runs).
    fn with_seconds_of(mut self, other: &train::History) -> train::History {
        for (a, b) in self.epochs.iter_mut().zip(&other.epochs) {
            a.seconds = b.seconds;
        }
        self
    }
}

#[test]
fn ablations_fine_tune_every_variant_from_the_same_weights() {
    if !camvid() {
        return;
    }
    let dir = temp("ablate");
    let base = quick_config("base");
    let init = train::run(&RunConfig { epochs: 1, ..base.clone() }, dir.join("ce"), |_| {}).unwrap();
    let text = format!(
        "{}\n[[variants]]\nname = \"W, f = d\"\nloss = {{ kind = \"w\" }}\n\n[[variants]]\nname = \"W, f = Huber\"\nloss = {{ kind = \"w\", transform = \"huber\", tau = 0.5 }}\n",
        RunConfig { epochs: 1, model: rwt::train::config::ModelConfig { init: Some(dir.join("ce")), ..base.model.clone() }, ..base.clone() }
            .to_toml()
            .unwrap()
    );
    let cfg = AblationConfig::from_toml(&text).unwrap();
    assert_eq!(cfg.variants.len(), 2);
    let out = train::ablate(&cfg, dir.join("ablation"), |_| {}).unwrap();
    assert_eq!(out.rows.len(), 2);
    assert_eq!(out.rows[0].0, "W, f = d");
    assert!(dir.join("ablation/w-f-huber/metrics.json").is_file());
    let md = std::fs::read_to_string(dir.join("ablation/results.md")).unwrap();
    assert!(md.contains("| W, f = Huber |"), "{md}");
    assert!(out.table().to_html().contains("<table"));
    assert!(out.chart().to_svg().starts_with("<svg"));
    // The variants differ from the starting network and from each other only by the objective.
    assert_ne!(out.rows[0].1, init.report);
    let dup = AblationConfig { variants: vec![cfg.variants[0].clone(), cfg.variants[0].clone()], ..cfg.clone() };
    assert!(train::ablate(&dup, dir.join("dup"), |_| {}).unwrap_err().to_string().contains("share"));
    let none = AblationConfig { variants: vec![], ..cfg.clone() };
    assert!(train::ablate(&none, dir.join("none"), |_| {}).is_err());
    // Two seeds: a run per variant and seed, and a mean ± sd summary whose mIoU is the mean
    // of the two runs'.
    let seeded = AblationConfig { seeds: vec![0, 1], variants: vec![cfg.variants[0].clone()], ..cfg.clone() };
    let out = train::ablate(&seeded, dir.join("seeds"), |_| {}).unwrap();
    assert_eq!(out.rows.len(), 2);
    assert_eq!(out.rows[1].0, "W, f = d (seed 1)");
    assert!(dir.join("seeds/w-f-d/seed-1/metrics.json").is_file());
    assert_eq!(out.variant_of_row, vec![0, 0]);
    let summary = out.summary().to_markdown();
    let (a, b) = (out.rows[0].1.miou.unwrap(), out.rows[1].1.miou.unwrap());
    let sd = ((a - b).abs() / 2f64.sqrt()) * 100.0;
    let want = format!("{:.1} ± {sd:.1}", 50.0 * (a + b));
    assert!(summary.contains(&want), "{want} not in {summary}");
    assert!(std::fs::read_to_string(dir.join("seeds/summary.md")).unwrap().contains(&want));
    // The records alone (metrics.json, history.json; no checkpoints, as committed) read back
    // as the same ablation, with nothing trained.
    let records = dir.join("records");
    for s in ["seed-0", "seed-1"] {
        std::fs::create_dir_all(records.join("w-f-d").join(s)).unwrap();
        for f in ["metrics.json", "history.json"] {
            std::fs::copy(dir.join("seeds/w-f-d").join(s).join(f), records.join("w-f-d").join(s).join(f)).unwrap();
        }
    }
    let read = train::Ablation::read(&seeded, &records).unwrap();
    assert_eq!(read.rows, out.rows);
    assert_eq!(read.variant_of_row, out.variant_of_row);
    assert_eq!(read.summary().to_markdown(), summary);
    assert!(!records.join("w-f-d/seed-0/checkpoint").exists());
    // ... and rewrite the reports `ablate` wrote, byte for byte (`rwt ablate --report-only`).
    read.write_reports(&seeded, &records).unwrap();
    for f in ["results.md", "summary.md", "ablation.svg"] {
        let (want, got) = (std::fs::read(dir.join("seeds").join(f)).unwrap(), std::fs::read(records.join(f)).unwrap());
        assert!(want == got, "{f} differs when rewritten from the records");
    }
    std::fs::remove_file(records.join("w-f-d/seed-1/metrics.json")).unwrap();
    let e = train::Ablation::read(&seeded, &records).unwrap_err().to_string();
    assert!(e.contains("seed-1") && e.contains("metrics.json"), "{e}");
    let twice = AblationConfig { seeds: vec![3, 3], ..seeded };
    assert!(train::ablate(&twice, dir.join("twice"), |_| {}).unwrap_err().to_string().contains("twice"));
}

#[cfg(feature = "cli")]
#[test]
fn the_command_line_trains_evaluates_and_reports_bad_configs() {
    let exe = env!("CARGO_BIN_EXE_rwt");
    let dir = temp("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[loss]\nkind = \"w\"\ntransfrom = \"huber\"\n").unwrap();
    let out = std::process::Command::new(exe).args(["train", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("transfrom") && err.contains("bad.toml"), "{err}");
    if !camvid() {
        return;
    }
    let cfg = dir.join("run.toml");
    std::fs::write(&cfg, quick_config("cli").to_toml().unwrap()).unwrap();
    let run = dir.join("run");
    let out = std::process::Command::new(exe)
        .args(["train", "--quick", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(&run)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("epoch 2 loss") && stdout.contains("severity cost"), "{stdout}");
    let report = EvalReport::read(run.join("metrics.json")).unwrap();
    let json = dir.join("eval.json");
    let out = std::process::Command::new(exe)
        .args(["eval", "--quick", "--config"])
        .arg(&cfg)
        .arg("--weights")
        .arg(&run)
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(EvalReport::read(&json).unwrap(), report);
}

/// A self-training experiment small enough for a test: two epochs of the simulator (CamVid's
/// classes), 8 CamVid training images, two rounds.
fn self_training_config(methods: &str, rounds: usize, epochs_per_round: usize) -> train::SelfTrainConfig {
    let mut cfg = train::SelfTrainConfig::from_toml(&format!(
        "name = \"st\"\nrounds = {rounds}\nepochs_per_round = {epochs_per_round}\n\
         [source]\nname = \"source-only\"\nepochs = 2\n\
         [source.data]\ndataset = \"synthetic\"\nclasses = \"camvid\"\nbatch_size = 4\n\
         [source.optim]\nkind = \"adam\"\nlr = 1e-3\n\
         [target]\ndataset = \"camvid\"\nbatch_size = 4\neval_split = \"test\"\n{methods}"
    ))
    .unwrap()
    .quick();
    // quick() keeps one epoch per round; the tests choose.
    cfg.epochs_per_round = epochs_per_round;
    cfg
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Self-training records every round (thresholds, pseudo-label statistics, Sinkhorn
/// statistics, evaluations); a copy taken after the first epoch of the second method resumes
/// to the same evaluation, the finished method and the source run untouched.
#[test]
fn self_training_records_every_round_and_resumes_exactly() {
    use train::self_training::SelfTrainEvent;
    if !camvid() {
        return;
    }
    let dir = temp("self-training");
    let (full, copy) = (dir.join("full"), dir.join("copy"));
    let methods = "[[methods]]\nname = \"CBST\"\nkind = \"cbst\"\n\
                   [[methods]]\nname = \"LRENT + W\"\nkind = \"lrent-w\"\ntransform = \"power\"\nrho = 2.0\n";
    let cfg = self_training_config(methods, 2, 1);
    let mut method = String::new();
    let out = train::self_train(&cfg, &full, |e| match e {
        SelfTrainEvent::Started { method: m, .. } => method = m.to_string(),
        SelfTrainEvent::Epoch(r) if r.epoch == 0 && method == "LRENT + W" => copy_dir(&full, &copy),
        _ => {}
    })
    .unwrap();
    for f in [
        "config.toml",
        "results.md",
        "summary.json",
        "source-only/metrics.json",
        "cbst/seed-0/round-1/teacher.safetensors",
        "cbst/seed-0/round-2/teacher.safetensors",
        "lrent-w/seed-0/history.json",
        "lrent-w/seed-0/metrics.json",
    ] {
        assert!(full.join(f).is_file(), "{f} missing");
    }
    assert_eq!(out.methods.len(), 2);
    for m in &out.methods {
        assert_eq!(m.rounds.len(), 2, "{}", m.method);
        for (r, round) in m.rounds.iter().enumerate() {
            // CRST's portions, thresholds in (0, 1], something kept, one evaluation per round.
            assert!((round.thresholds.portion - [0.2, 0.25][r]).abs() < 1e-12);
            assert!(round.thresholds.lambda.iter().all(|l| *l > 0.0 && *l <= 1.0), "{:?}", round.thresholds);
            assert!(round.pseudo_labels.kept_fraction > 0.0 && round.pseudo_labels.kept_fraction <= 1.0);
            assert!(round.eval.is_some());
            assert_eq!(round.epochs.len(), 1);
        }
    }
    // Hard labels have no entropy; the W rows report their Sinkhorn solves.
    assert!(out.methods[0].rounds.iter().all(|r| r.pseudo_labels.mean_entropy == 0.0));
    let stats = out.methods[1].rounds[0].epochs[0].sinkhorn.expect("Sinkhorn statistics");
    assert!(stats.problems + stats.closed_form > 0 && stats.max_marginal_error <= 1e-4 + 1e-9, "{stats:?}");
    assert!(out.methods[0].rounds[0].epochs[0].sinkhorn.is_none());
    let md = std::fs::read_to_string(full.join("results.md")).unwrap();
    assert!(md.contains("source only") && md.contains("CBST") && md.contains("LRENT + W"), "{md}");

    // Resume the copy: the source run and CBST are finished, LRENT + W trains its last epoch.
    let mut started = vec![];
    let mut source_batches = 0;
    let resumed = train::self_train(&cfg, &copy, |e| match e {
        SelfTrainEvent::Started { method, first_epoch, .. } => started.push((method.to_string(), *first_epoch)),
        SelfTrainEvent::Source(train::RunEvent::Batch(_)) => source_batches += 1,
        _ => {}
    })
    .unwrap();
    assert_eq!(source_batches, 0);
    assert_eq!(started, [("CBST".to_string(), 2), ("LRENT + W".to_string(), 1)]);
    for (a, b) in out.methods.iter().zip(&resumed.methods) {
        assert_eq!(a.last_eval(), b.last_eval(), "{}", a.method);
        for (ra, rb) in a.rounds.iter().zip(&b.rounds) {
            assert_eq!((&ra.thresholds, &ra.pseudo_labels), (&rb.thresholds, &rb.pseudo_labels));
            let losses = |r: &train::self_training::RoundRecord| -> Vec<(f64, f64)> {
                r.epochs.iter().map(|e| (e.source_loss, e.target_loss)).collect()
            };
            assert_eq!(losses(ra), losses(rb));
        }
    }
    // Another config in the same folder is refused.
    let other = train::SelfTrainConfig { alpha: 0.5, ..cfg.clone() };
    let e = train::self_train(&other, &full, |_| {}).unwrap_err().to_string();
    assert!(e.contains("different self-training config"), "{e}");
}

/// A run interrupted inside a round resumes from the round's teacher; without it the error
/// names the missing file.
#[test]
fn self_training_inside_a_round_needs_its_teacher() {
    use train::self_training::SelfTrainEvent;
    if !camvid() {
        return;
    }
    let dir = temp("self-training-teacher");
    let (full, copy) = (dir.join("full"), dir.join("copy"));
    let cfg = self_training_config("[[methods]]\nname = \"LRENT\"\nkind = \"lrent\"\n", 1, 2);
    let out = train::self_train(&cfg, &full, |e| {
        if let SelfTrainEvent::Epoch(r) = e {
            if r.epoch == 0 {
                copy_dir(&full, &copy);
            }
        }
    })
    .unwrap();
    std::fs::remove_file(copy.join("lrent/seed-0/round-1/teacher.safetensors")).unwrap();
    let e = train::self_train(&cfg, &copy, |_| {}).unwrap_err().to_string();
    assert!(e.contains("round-1/teacher.safetensors") && e.contains("missing"), "{e}");
    // Restored, the run resumes to the same evaluation.
    std::fs::copy(
        full.join("lrent/seed-0/round-1/teacher.safetensors"),
        copy.join("lrent/seed-0/round-1/teacher.safetensors"),
    )
    .unwrap();
    let resumed = train::self_train(&cfg, &copy, |_| {}).unwrap();
    assert_eq!(resumed.methods[0].last_eval(), out.methods[0].last_eval());
}

/// Bad self-training configs are refused before anything is written, naming the problem.
#[test]
fn self_training_configs_name_bad_values() {
    let good = "[source.data]\ndataset = \"synthetic\"\nclasses = \"camvid\"\n[target]\ndataset = \"camvid\"\n\
                [[methods]]\nname = \"CBST\"\nkind = \"cbst\"\n";
    let cfg = train::SelfTrainConfig::from_toml(good).unwrap();
    cfg.validate().unwrap();
    assert_eq!(train::SelfTrainConfig::from_toml(&cfg.to_toml().unwrap()).unwrap(), cfg);
    for (text, needle) in [
        // The source trains in Cityscapes' classes, the target is CamVid: the label spaces differ.
        (good.replace("classes = \"camvid\"\n", ""), "source.data.classes"),
        (good.replace("classes = \"camvid\"", "classes = \"kitti\""), "kitti"),
        (good.replace("kind = \"cbst\"", "kind = \"crst\""), "crst"),
        (format!("alpha = 0.0\n{good}"), "alpha"),
        (format!("rounds = 0\n{good}"), "rounds"),
        (format!("seeds = []\n{good}"), "seeds"),
        (format!("portion = {{ start = 0.6, step = 0.05, max = 0.5 }}\n{good}"), "portion.max"),
        (format!("target_weight = -1.0\n{good}"), "target_weight"),
        (good.replace("[[methods]]\nname = \"CBST\"\nkind = \"cbst\"\n", ""), "methods"),
        (format!("{good}[[methods]]\nname = \"CBST\"\nkind = \"lrent\"\n"), "share"),
        (
            format!("{good}[[methods]]\nname = \"W\"\nkind = \"lrent-w\"\nground = \"/nonexistent/d.csv\"\n"),
            "/nonexistent/d.csv",
        ),
        (format!("{good}[[methods]]\nname = \"W\"\nkind = \"lrent-w\"\nepsilon = 0.0\n"), "epsilon"),
    ] {
        let e = train::SelfTrainConfig::from_toml(&text).unwrap().validate().unwrap_err().to_string();
        assert!(e.contains(needle), "{text:?}: {e}");
    }
    let e = train::SelfTrainConfig::from_toml("[methods]\n").unwrap_err().to_string();
    assert!(e.contains("methods"), "{e}");
    // A ground matrix over the wrong number of classes is named with its counts.
    let dir = temp("self-training-csv");
    let csv = dir.join("d19.csv");
    let row = |i: usize| (0..19).map(|j| if i == j { "0" } else { "1" }).collect::<Vec<_>>().join(",");
    std::fs::write(&csv, (0..19).map(row).collect::<Vec<_>>().join("\n")).unwrap();
    let text =
        format!("{good}[[methods]]\nname = \"W\"\nkind = \"lrent-w\"\nground = {:?}\n", csv.display().to_string());
    let e = train::SelfTrainConfig::from_toml(&text).unwrap().validate().unwrap_err().to_string();
    assert!(e.contains("19") && e.contains("11"), "{e}");
}

/// `data.classes` maps the simulator's Cityscapes labels into CamVid's classes.
#[test]
fn relabelled_datasets_hold_only_target_classes() {
    use rwt::data::Dataset;
    let cfg = RunConfig::from_toml(
        "[data]\ndataset = \"synthetic\"\nclasses = \"camvid\"\nsize = [48, 64]\neval_dataset = \"synthetic\"\n",
    )
    .unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.classes().unwrap().name, "camvid");
    let train_set = cfg.dataset(rwt::data::Split::Train).unwrap();
    assert_eq!(train_set.classes().name, "camvid");
    assert!(train_set.describe().ends_with("as camvid"), "{}", train_set.describe());
    let raw = rwt::data::Synthetic::new(cfg.synthetic_config().unwrap(), rwt::data::Split::Train).unwrap();
    let mapping = rwt::data::LabelMapping::cityscapes_to_camvid();
    for i in [0, 7, 31] {
        let (a, b) = (raw.get(i).unwrap().label, train_set.get(i).unwrap().label);
        for (x, y) in a.as_raw().iter().zip(b.as_raw()) {
            assert_eq!(*y as u32, mapping.target_of(*x as u32).unwrap_or(11));
        }
    }
    let bad = RunConfig::from_toml("[data]\ndataset = \"camvid\"\nclasses = \"cityscapes\"\n").unwrap();
    let e = bad.validate().unwrap_err().to_string();
    assert!(e.contains("camvid -> cityscapes"), "{e}");
}
