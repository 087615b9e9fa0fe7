//! The fixed, seeded driving benchmark of Tables IV–VI: the same routes, traffic and weather
//! for every driver, in three conditions — the training town, a new town, and new weather in
//! the training town — with each benchmark seed drawing its own set of episodes.
//!
//! Drivers ([`Driver`]): a uniformly random policy (the floor; it brakes as much as it
//! accelerates and barely moves), a random policy that never brakes (the floor for km between
//! infractions), the scripted [`Autopilot`] with
//! privileged access to the simulator (the ceiling), the same Autopilot braking only for what a
//! segmenter shows it (perception in the loop, the analogue of Table V), and the actor-critic
//! agent on its state (the segmenter's latent, or the privileged label maps). [`evaluate`] drives them all over
//! the same episodes and [`BenchmarkRow::table`] prints Table IV's km between infractions by
//! kind (pooled over seeds) and Tables V–VI's Drive %, km/h and success rate (mean ± sd over
//! seeds); [`BenchmarkRow::impact_table`] splits the collisions by where the other party was
//! (driven into, at the side, from behind, standing).
//!
//! Drive % counts the steps driven before a failure ends an episode (crash, off-lane, off-road,
//! or standing still for `eval.blocked_s` seconds: [`crate::sim::Termination::Blocked`]), out
//! of the step limit — an episode that reaches its goal counts as fully driven. Without the
//! blocked rule a policy that never moves scores 100 %; with it, `blocked_s` / the episode's
//! length (10 s of 50 s: 20 %).
//!
//! Episode seeds are `2⁴⁰ + 1000·seed + i`, disjoint from every training episode's.

use super::brakes::BrakeRecall;
use super::config::DriveConfig;
use super::network::ActorCritic;
use super::state::{frames_tensor, StateEncoder};
use crate::data::Normalize;
use crate::models::Segmenter;
use crate::plot::Table;
use crate::sim::{
    Action, Autopilot, DrivingEnv, DrivingMetrics, EnvConfig, Environment, EpisodeLog, ImpactSide, InfractionKind,
    Observation, Town, Weather,
};
use crate::{Error, Result};
use candle_core::Device;
use image::{GrayImage, RgbImage};
use rand::rngs::StdRng;
use rand::Rng;
use rayon::prelude::*;
use std::sync::Arc;

/// A driving condition: a town and a weather.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// Its name in tables (`training town`, `new town`, `new weather`).
    pub name: String,
    /// The environment (town, weather, camera, step limit).
    pub env: EnvConfig,
}

/// The benchmark: conditions × seeds × episodes.
#[derive(Clone, Debug, PartialEq)]
pub struct Benchmark {
    /// The conditions, in table order.
    pub conditions: Vec<Condition>,
    /// Episodes per condition and seed.
    pub episodes: usize,
    /// Benchmark seeds.
    pub seeds: Vec<u64>,
}

impl Benchmark {
    /// The benchmark of a run: its training environment, the same in `eval.new_town`, and in
    /// `eval.new_weather`, each `eval.episodes` episodes for every seed of `eval.seeds`; in
    /// all three an episode ends as blocked after `eval.blocked_s` seconds of standing still.
    pub fn of(cfg: &DriveConfig) -> Result<Benchmark> {
        cfg.validate()?;
        let mut train = cfg.env_config()?;
        // The nearest whole number of steps; any positive time is at least one.
        let blocked = (cfg.eval.blocked_s / train.dt as f64).round().max(1.0) as usize;
        train.blocked_steps = (cfg.eval.blocked_s > 0.0).then_some(blocked);
        let mut town = train.clone();
        town.town = crate::sim::TownConfig::new(cfg.eval.new_town);
        let weather: Weather = cfg.eval.new_weather.parse()?;
        Ok(Benchmark {
            conditions: vec![
                Condition { name: "training town".into(), env: train.clone() },
                Condition { name: "new town".into(), env: town },
                Condition { name: "new weather".into(), env: train.with_weather(weather) },
            ],
            episodes: cfg.eval.episodes,
            seeds: cfg.eval.seeds.clone(),
        })
    }

    /// The episode seeds of benchmark seed `seed`.
    pub fn episode_seeds(&self, seed: u64) -> Vec<u64> {
        (0..self.episodes as u64).map(|i| (1u64 << 40) + 1000 * seed + i).collect()
    }
}

/// How an evaluated agent picks its action from its policy (`eval.greedy`,
/// `eval.expected_action`, `eval.marginal_action`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acting {
    /// The Beta mean / the categorical's most likely action ([`super::Policy::greedy`]).
    Greedy,
    /// The expected action ([`super::Policy::expected_actions`]; Beta: its mean, as `Greedy`).
    Expected,
    /// The mode of each marginal, steering and longitudinal command
    /// ([`super::Policy::marginal_modes`]; Beta: its mean, as `Greedy`).
    Marginal,
    /// A draw from the policy.
    Sampled,
}

impl Acting {
    /// Its suffix in row names: "", ", expected actions", ", marginal modes" or ", sampled
    /// actions".
    pub fn suffix(self) -> &'static str {
        match self {
            Acting::Greedy => "",
            Acting::Expected => ", expected actions",
            Acting::Marginal => ", marginal modes",
            Acting::Sampled => ", sampled actions",
        }
    }
}

/// Who drives.
pub enum Driver<'a> {
    /// Steer ~ U[−1, 1], throttle ~ U[0, 1], brake ~ U[0, 1], independently every step.
    /// Its mean acceleration, `0.5 · 3.5 − 0.5 · 8` m/s² before drag, is a braking one: it
    /// barely moves, so it commits no infraction and its km between infractions is undefined.
    Random(StdRng),
    /// Steer ~ U[−1, 1], throttle ~ U[0, 1], brake 0: a random policy that moves (mean
    /// acceleration 1.75 m/s² before drag, up to the speed cap), the floor for km between
    /// infractions, which [`Driver::Random`] cannot give.
    RandomNoBrake(StdRng),
    /// The scripted driver (sees the simulator's ground truth).
    Autopilot(Autopilot),
    /// The scripted driver made to see ([`Autopilot::act_perceiving`]): it brakes for what the
    /// segmenter predicts on its camera (`None`: the simulator's labels, perfect perception),
    /// located with the depth image.
    Perceiving(Autopilot, Option<Arc<dyn Segmenter>>),
    /// The actor-critic on its state encoder, acting as `acting` says.
    Agent {
        /// The network.
        net: &'a ActorCritic,
        /// Its state encoder (its memory is reset at every batch of episodes).
        encoder: StateEncoder,
        /// Greedy, expected, marginal or sampled actions.
        acting: Acting,
        /// For sampling.
        rng: StdRng,
    },
}

impl Driver<'_> {
    /// The actions for every environment; `start` marks the episodes' first frames.
    fn act(&mut self, envs: &[DrivingEnv], observations: &[&Observation], start: bool) -> Result<Vec<Action>> {
        match self {
            Driver::Random(rng) => Ok(envs
                .iter()
                .map(|_| Action::new(rng.random_range(-1.0f32..=1.0), rng.random::<f32>(), rng.random::<f32>()))
                .collect()),
            Driver::RandomNoBrake(rng) => Ok(envs
                .iter()
                .map(|_| Action::new(rng.random_range(-1.0f32..=1.0), rng.random::<f32>(), 0.0))
                .collect()),
            Driver::Autopilot(a) => Ok(envs.iter().map(|e| a.act(e)).collect()),
            Driver::Perceiving(a, segmenter) => {
                let predicted: Vec<GrayImage> = match segmenter {
                    Some(seg) => predict_batch(seg.as_ref(), observations)?,
                    None => observations.iter().map(|o| o.frame.labels.clone()).collect(),
                };
                envs.iter()
                    .zip(observations)
                    .zip(&predicted)
                    .map(|((e, o), labels)| a.act_perceiving(e, labels, &o.frame.depth))
                    .collect()
            }
            Driver::Agent { net, encoder, acting, rng } => {
                if start {
                    encoder.reset();
                }
                let state = encoder.encode(observations, &vec![start; observations.len()])?;
                let out = net.forward(&state.latent, &state.measurements)?;
                let policy = net.policy(&out)?;
                match acting {
                    Acting::Greedy => policy.actions(&policy.greedy()?),
                    Acting::Expected => policy.expected_actions(),
                    Acting::Marginal => policy.marginal_modes(),
                    Acting::Sampled => policy.actions(&policy.sample(rng)?),
                }
            }
        }
    }
}

/// One frame of a recorded episode.
#[derive(Clone, Debug)]
pub struct RecordedFrame {
    /// The camera image.
    pub rgb: RgbImage,
    /// The simulator's labels (Cityscapes train ids).
    pub labels: GrayImage,
    /// The segmenter's prediction, when the driver has a segmenter.
    pub predicted: Option<GrayImage>,
    /// The action taken on this frame.
    pub action: Action,
    /// Speed, km/h.
    pub speed_kmh: f32,
}

/// An environment's new observation after a step, and its episode's log when it ended.
type Stepped = (Observation, Option<EpisodeLog>);

/// Drives one episode of every seed in `seeds` in `env` (in parallel environments sharing the
/// town), until each has ended; returns their logs in seed order. With `record = Some(i)`,
/// also returns the frames of episode `i`.
pub fn drive(
    env: &EnvConfig,
    seeds: &[u64],
    driver: &mut Driver,
    record: Option<usize>,
) -> Result<(Vec<EpisodeLog>, Vec<RecordedFrame>)> {
    drive_observed(env, seeds, driver, record, &mut |_, _| {})
}

/// [`drive`], calling `observe(env, action)` for every running episode at every step, before
/// the driver's `action` is applied to `env` (e.g. [`BrakeRecall::observe`]).
pub fn drive_observed(
    env: &EnvConfig,
    seeds: &[u64],
    driver: &mut Driver,
    record: Option<usize>,
    observe: &mut dyn FnMut(&DrivingEnv, &Action),
) -> Result<(Vec<EpisodeLog>, Vec<RecordedFrame>)> {
    if seeds.is_empty() {
        return Err(Error::invalid("episode seeds", "[]", "give at least one"));
    }
    let town = Arc::new(Town::generate(&env.town)?);
    let mut envs =
        seeds.iter().map(|_| DrivingEnv::with_town(env.clone(), town.clone())).collect::<Result<Vec<_>>>()?;
    let mut obs: Vec<Observation> =
        envs.par_iter_mut().zip(seeds.par_iter()).map(|(e, &s)| e.reset(s)).collect::<Result<_>>()?;
    let mut logs: Vec<Option<EpisodeLog>> = vec![None; seeds.len()];
    let mut frames = vec![];
    let mut start = true;
    while logs.iter().any(Option::is_none) {
        let refs: Vec<&Observation> = obs.iter().collect();
        let actions = driver.act(&envs, &refs, start)?;
        start = false;
        if let Some(i) = record.filter(|&i| i < seeds.len() && logs[i].is_none()) {
            let segmenter = match driver {
                Driver::Agent { encoder, .. } => encoder.segmenter(),
                Driver::Perceiving(_, seg) => seg.as_ref(),
                _ => None,
            };
            let predicted = match segmenter {
                Some(seg) => predict_batch(seg.as_ref(), &[&obs[i]])?.pop(),
                None => None,
            };
            frames.push(RecordedFrame {
                rgb: obs[i].frame.rgb.clone(),
                labels: obs[i].frame.labels.clone(),
                predicted,
                action: actions[i],
                speed_kmh: obs[i].measurements.speed * 3.6,
            });
        }
        for ((e, a), _) in envs.iter().zip(&actions).zip(&logs).filter(|(_, log)| log.is_none()) {
            observe(e, a);
        }
        let steps: Vec<Result<Option<Stepped>>> = envs
            .par_iter_mut()
            .zip(actions.par_iter())
            .zip(logs.par_iter())
            .map(|((e, &a), log)| {
                if log.is_some() {
                    return Ok(None);
                }
                let t = e.step(a)?;
                let done = t.done();
                Ok(Some((t.observation, if done { t.info.episode } else { None })))
            })
            .collect();
        for (i, s) in steps.into_iter().enumerate() {
            if let Some((o, log)) = s? {
                obs[i] = o;
                if log.is_some() {
                    logs[i] = log;
                }
            }
        }
    }
    Ok((logs.into_iter().flatten().collect(), frames))
}

/// The segmenter's labels for every observation, in one batch.
fn predict_batch(seg: &dyn Segmenter, observations: &[&Observation]) -> Result<Vec<GrayImage>> {
    let x = frames_tensor(observations, &Normalize::default(), &Device::Cpu)?;
    let labels = seg.forward_all(&x, false)?.logits.argmax(1)?;
    (0..observations.len()).map(|i| crate::plot::label_image(&labels.get(i)?)).collect()
}

/// An animation of recorded frames: the camera, the segmenter's prediction (when there is
/// one) and the simulator's labels side by side, over a strip of three bars — steer (white,
/// from the centre: left of centre steers right), throttle (green), brake (red) — and the speed
/// (blue, full width = 30 km/h). Every `stride`-th frame, at most `max_frames`, played in real
/// time (0.1 s per simulated step).
pub fn animate(
    frames: &[RecordedFrame],
    title: &str,
    stride: usize,
    max_frames: usize,
) -> Result<crate::plot::Animation> {
    let stride = stride.max(1);
    let mut anim = crate::plot::Animation::new(title, 100 * stride as u32).with_caption(if frames
        .first()
        .is_some_and(|f| f.predicted.is_some())
    {
        "camera | segmenter's prediction | simulator's labels; bars: steer (white, from the centre), throttle (green), brake (red), speed (blue, full = 30 km/h)"
    } else {
        "camera | simulator's labels; bars: steer (white, from the centre), throttle (green), brake (red), speed (blue, full = 30 km/h)"
    });
    for f in frames.iter().step_by(stride).take(max_frames) {
        anim.push(frame_image(f, true))?;
    }
    Ok(anim)
}

/// Two recordings of the same episode one above the other (`top` over `bottom`, e.g. the
/// Autopilot seeing two segmenters), each frame as [`animate`] draws it without the
/// simulator's labels (the two cars see different views once they part); the shorter episode
/// holds its last frame (its car stopped: crashed or done) while the other goes on.
///
/// # Errors
/// Either recording is empty, or they have different camera sizes.
pub fn animate_pair(
    top: &[RecordedFrame],
    bottom: &[RecordedFrame],
    title: &str,
    caption: &str,
    stride: usize,
    max_frames: usize,
) -> Result<crate::plot::Animation> {
    let (Some(t0), Some(b0)) = (top.first(), bottom.first()) else {
        return Err(Error::invalid("recorded episodes", "[]", "both recordings need at least one frame"));
    };
    if t0.rgb.dimensions() != b0.rgb.dimensions() {
        return Err(Error::shape(
            "recorded frames",
            format!("{:?}", t0.rgb.dimensions()),
            format!("{:?}", b0.rgb.dimensions()),
        ));
    }
    let stride = stride.max(1);
    let mut anim = crate::plot::Animation::new(title, 100 * stride as u32).with_caption(caption);
    let n = top.len().max(bottom.len());
    for k in (0..n).step_by(stride).take(max_frames) {
        let (t, b) = (&top[k.min(top.len() - 1)], &bottom[k.min(bottom.len() - 1)]);
        let (ti, bi) = (frame_image(t, false), frame_image(b, false));
        let gap = 4;
        let mut img = RgbImage::from_pixel(
            ti.width().max(bi.width()),
            ti.height() + gap + bi.height(),
            image::Rgb([255, 255, 255]),
        );
        image::imageops::replace(&mut img, &ti, 0, 0);
        image::imageops::replace(&mut img, &bi, 0, (ti.height() + gap) as i64);
        anim.push(img)?;
    }
    Ok(anim)
}

/// One recorded frame as [`animate`] draws it: the camera, the prediction (when there is one)
/// and, with `labels`, the simulator's labels side by side over the action and speed bars.
fn frame_image(f: &RecordedFrame, labels: bool) -> RgbImage {
    let classes = &crate::classes::CITYSCAPES;
    let (w, h) = f.rgb.dimensions();
    let mut panels = vec![f.rgb.clone()];
    if let Some(p) = &f.predicted {
        panels.push(crate::plot::colorize(p, classes));
    }
    if labels {
        panels.push(crate::plot::colorize(&f.labels, classes));
    }
    let bar_h = 6u32;
    let total_w = w * panels.len() as u32;
    let mut img = RgbImage::from_pixel(total_w, h + 4 * bar_h, image::Rgb([24, 24, 24]));
    for (k, p) in panels.iter().enumerate() {
        image::imageops::replace(&mut img, p, (k as u32 * w) as i64, 0);
    }
    let mut bar = |row: u32, from: f32, to: f32, colour: [u8; 3]| {
        let (a, b) = (from.min(to).clamp(0.0, 1.0), from.max(to).clamp(0.0, 1.0));
        let (x0, x1) =
            ((a * total_w as f32) as u32, ((b * total_w as f32) as u32).max((a * total_w as f32) as u32 + 1));
        for y in h + row * bar_h + 1..h + (row + 1) * bar_h - 1 {
            for x in x0..x1.min(total_w) {
                img.put_pixel(x, y, image::Rgb(colour));
            }
        }
    };
    // Positive steer turns left: drawn to the left of the centre.
    bar(0, 0.5, 0.5 - 0.5 * f.action.steer, [235, 235, 235]);
    bar(1, 0.0, f.action.throttle, [60, 200, 80]);
    bar(2, 0.0, f.action.brake, [230, 60, 50]);
    bar(3, 0.0, f.speed_kmh / 30.0, [70, 130, 240]);
    img
}

/// One driver in one condition: the metrics of every seed and of all episodes pooled.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BenchmarkRow {
    /// The driver's name.
    pub driver: String,
    /// The condition's name.
    pub condition: String,
    /// Metrics per benchmark seed.
    pub per_seed: Vec<DrivingMetrics>,
    /// Metrics of all the row's episodes.
    pub pooled: DrivingMetrics,
    /// Every episode's log.
    pub episodes: Vec<EpisodeLog>,
    /// Its full brakes against the default [`Autopilot`]'s, by what that brakes for, over
    /// all the row's episodes ([`BrakeRecall`]; all zero in records written before it was).
    #[serde(default)]
    pub brakes: BrakeRecall,
}

/// Drives `driver` over every condition and seed of `benchmark`; a row per condition.
pub fn evaluate(benchmark: &Benchmark, name: &str, driver: &mut Driver) -> Result<Vec<BenchmarkRow>> {
    let mut rows = vec![];
    for c in &benchmark.conditions {
        let mut per_seed = vec![];
        let mut all = vec![];
        let mut brakes = BrakeRecall::default();
        let autopilot = Autopilot::default();
        for &seed in &benchmark.seeds {
            let mut observe = |e: &DrivingEnv, a: &Action| brakes.observe(&autopilot, e, a);
            let (logs, _) = drive_observed(&c.env, &benchmark.episode_seeds(seed), driver, None, &mut observe)?;
            per_seed.push(DrivingMetrics::from_episodes(&logs));
            all.extend(logs);
        }
        rows.push(BenchmarkRow {
            driver: name.into(),
            condition: c.name.clone(),
            per_seed,
            pooled: DrivingMetrics::from_episodes(&all),
            episodes: all,
            brakes,
        });
    }
    Ok(rows)
}

/// `mean ± sd` (sample standard deviation; just the mean for one value).
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
    (mean, var.sqrt())
}

/// Whether a record's name ends in `.gz`.
fn is_gzip(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "gz")
}

impl BenchmarkRow {
    /// Reads rows written by [`BenchmarkRow::write`] (or `rwt drive eval --json`): JSON, or
    /// gzip-compressed JSON when the name ends in `.gz`. The error names the file.
    pub fn read(path: impl AsRef<std::path::Path>) -> Result<Vec<BenchmarkRow>> {
        let path = path.as_ref();
        let bad = |e: String| Error::invalid("benchmark rows", path.display(), e);
        let text = if is_gzip(path) {
            let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
            let mut text = String::new();
            std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
                .map_err(|e| bad(format!("not gzip-compressed UTF-8 text: {e}")))?;
            text
        } else {
            crate::io::read_text(path)?
        };
        serde_json::from_str(&text).map_err(|e| bad(e.to_string()))
    }

    /// Writes rows as JSON, atomically; gzip-compressed when the name ends in `.gz` (a
    /// floor's 10,000 episode logs: 7.8 MB as plain JSON, 0.6 MB compressed).
    pub fn write(path: impl AsRef<std::path::Path>, rows: &[BenchmarkRow]) -> Result<()> {
        let path = path.as_ref();
        if !is_gzip(path) {
            return crate::train::report::write_json(path, &rows);
        }
        let json =
            serde_json::to_vec(rows).map_err(|e| Error::invalid("benchmark rows", path.display(), e.to_string()))?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let io = |source| Error::Io { path: path.to_path_buf(), source };
        std::io::Write::write_all(&mut gz, &json).map_err(io)?;
        crate::io::write_atomic(path, &gz.finish().map_err(io)?)
    }

    /// Tables IV–VI in one: per row, km driven, km between infractions of each kind (pooled
    /// over seeds; "> x" when none happened in x km), and Drive %, km/h and success rate as
    /// mean ± sd over seeds.
    pub fn table(rows: &[BenchmarkRow]) -> Table {
        let mut headers = vec!["driver".to_string(), "condition".into(), "episodes".into(), "km".into()];
        headers.extend(InfractionKind::ALL.iter().map(|k| format!("km / {}", k.name())));
        headers.extend(["Drive %".into(), "km/h".into(), "success %".into()]);
        let mut t = Table::new(headers);
        for r in rows {
            let m = &r.pooled;
            let mut cells = vec![r.driver.clone(), r.condition.clone(), m.episodes.to_string(), format!("{:.2}", m.km)];
            cells.extend(InfractionKind::ALL.iter().map(|&k| match m.km_between(k) {
                Some(v) => format!("{v:.3}"),
                None => format!("> {:.2}", m.km),
            }));
            let pm = |f: &dyn Fn(&DrivingMetrics) -> f64| {
                let (mean, sd) = mean_sd(&r.per_seed.iter().map(f).collect::<Vec<_>>());
                format!("{mean:.1} ± {sd:.1}")
            };
            cells.push(pm(&|m| m.drive_percent));
            cells.push(pm(&|m| m.km_per_hour));
            cells.push(pm(&|m| 100.0 * m.success_rate));
            t.push(cells);
        }
        t
    }

    /// Who drove into whom: per row, the collisions of `kind` (pooled over seeds) by where
    /// the other party was when they touched ([`crate::sim::Impact`]) — *driven into* (ahead,
    /// within 45° of the ego car's heading, the ego car moving), *at the side*, *from behind*,
    /// *standing* (the ego car under 1 km/h, wherever the other was), and *not logged*
    /// (records written before impacts were).
    pub fn impact_table(rows: &[BenchmarkRow], kind: InfractionKind) -> Table {
        let mut t = Table::new([
            "driver",
            "condition",
            "km",
            &format!("{}s", kind.name()),
            "driven into (ahead, moving)",
            "at the side",
            "from behind",
            "standing",
            "not logged",
        ]);
        for r in rows {
            let mut n = [0usize; 5];
            for i in r.episodes.iter().flat_map(|e| &e.infractions).filter(|i| i.kind == kind) {
                n[match i.impact {
                    None => 4,
                    Some(im) if im.ego_standing() => 3,
                    Some(im) => match im.side() {
                        ImpactSide::Front => 0,
                        ImpactSide::Side => 1,
                        ImpactSide::Rear => 2,
                    },
                }] += 1;
            }
            let mut cells = vec![r.driver.clone(), r.condition.clone(), format!("{:.2}", r.pooled.km)];
            cells.push(n.iter().sum::<usize>().to_string());
            cells.extend(n.iter().map(usize::to_string));
            t.push(cells);
        }
        t
    }

    /// Brake recall per row ([`BrakeRecall::table`]), named `driver (condition)`: how often
    /// the driver braked fully where the Autopilot would have, by what for, and alone.
    pub fn brake_table(rows: &[BenchmarkRow]) -> Table {
        BrakeRecall::table(&Self::named_brakes(rows))
    }

    /// What each row's driver did where the Autopilot would brake fully, and on clear states
    /// ([`BrakeRecall::response_table`]), named `driver (condition)`.
    pub fn response_table(rows: &[BenchmarkRow]) -> Table {
        BrakeRecall::response_table(&Self::named_brakes(rows))
    }

    /// Each row's brake counts named `driver (condition)`.
    fn named_brakes(rows: &[BenchmarkRow]) -> Vec<(String, BrakeRecall)> {
        rows.iter().map(|r| (format!("{} ({})", r.driver, r.condition), r.brakes)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_sd() {
        let (m, s) = mean_sd(&[1.0, 2.0, 4.0]);
        assert!((m - 7.0 / 3.0).abs() < 1e-12);
        // Σ(x − m)² = 16/9 + 1/9 + 25/9 = 42/9; / (n − 1) = 7/3.
        assert!((s - (7.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!(mean_sd(&[5.0]), (5.0, 0.0));
    }

    /// The benchmark's episodes are the same for every driver (same seeds, same logs for the
    /// same driver), the Autopilot drives farther without crashing than the random policy
    /// on the same short episodes, and the random policy without brake farther than the
    /// uniform one.
    #[test]
    fn same_episodes_for_every_driver_and_autopilot_beats_random() {
        let mut cfg = DriveConfig::default().quick();
        cfg.env.max_steps = 80;
        cfg.eval.episodes = 4;
        let b = Benchmark::of(&cfg).unwrap();
        assert_eq!(b.conditions.len(), 3);
        assert_ne!(b.conditions[1].env.town, b.conditions[0].env.town);
        assert_ne!(b.conditions[2].env.weather, b.conditions[0].env.weather);
        // eval.blocked_s = 10 at 0.1 s per step, in every condition; 0 turns it off.
        assert!(b.conditions.iter().all(|c| c.env.blocked_steps == Some(100)));
        let mut never = cfg.clone();
        never.eval.blocked_s = 0.0;
        assert!(Benchmark::of(&never).unwrap().conditions.iter().all(|c| c.env.blocked_steps.is_none()));
        let seeds = b.episode_seeds(0);
        let env = &b.conditions[0].env;
        let (auto, _) = drive(env, &seeds, &mut Driver::Autopilot(Autopilot::default()), None).unwrap();
        let (again, frames) = drive(env, &seeds, &mut Driver::Autopilot(Autopilot::default()), Some(1)).unwrap();
        assert_eq!(auto, again);
        assert_eq!(frames.len(), auto[1].steps);
        let (random, _) = drive(env, &seeds, &mut Driver::Random(crate::random::seeded(0)), None).unwrap();
        assert_eq!(random.len(), 4);
        assert!(random.iter().zip(&auto).all(|(r, a)| r.seed == a.seed && r.town == a.town));
        let (ma, mr) = (DrivingMetrics::from_episodes(&auto), DrivingMetrics::from_episodes(&random));
        assert!(ma.km > mr.km, "autopilot {} km, random {} km", ma.km, mr.km);
        // Without the brake the random policy moves: from rest, 80 steps of 0.1 s at a mean
        // 1.75 m/s² (less drag, at most 25 km/h) cover metres, not the uniform one's centimetres.
        let (moving, _) = drive(env, &seeds, &mut Driver::RandomNoBrake(crate::random::seeded(0)), None).unwrap();
        let mm = DrivingMetrics::from_episodes(&moving);
        assert!(mm.km > 4.0 * mr.km.max(1e-3), "random without brake {} km, random {} km", mm.km, mr.km);
        let rows = evaluate(&b, "autopilot", &mut Driver::Autopilot(Autopilot::default())).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].pooled, ma);
        let md = BenchmarkRow::table(&rows).to_markdown();
        assert!(md.contains("new weather") && md.contains("±"), "{md}");
    }

    /// Rows read back from `.json` and `.json.gz` equal the rows written, field for field; the
    /// `.gz` file is gzip (its magic bytes `1f 8b`); a `.gz` that is not gzip is an `Err`
    /// naming the file, not a panic.
    #[test]
    fn rows_round_trip_as_json_and_gzip() {
        let mut cfg = DriveConfig::default().quick();
        cfg.env.max_steps = 40;
        cfg.eval.episodes = 2;
        let mut b = Benchmark::of(&cfg).unwrap();
        b.conditions.truncate(1);
        let rows = evaluate(&b, "random", &mut Driver::RandomNoBrake(crate::random::seeded(3))).unwrap();
        let dir = std::env::temp_dir().join(format!("rwt-benchmark-rows-{}", std::process::id()));
        let as_value = |rows: &[BenchmarkRow]| serde_json::to_value(rows).unwrap();
        for name in ["rows.json", "rows.json.gz"] {
            let path = dir.join(name);
            BenchmarkRow::write(&path, &rows).unwrap();
            assert_eq!(as_value(&BenchmarkRow::read(&path).unwrap()), as_value(&rows), "{name}");
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.starts_with(&[0x1f, 0x8b]), name.ends_with(".gz"), "{name}");
        }
        let fake = dir.join("fake.json.gz");
        std::fs::write(&fake, "[]").unwrap();
        let err = BenchmarkRow::read(&fake).unwrap_err().to_string();
        assert!(err.contains("fake.json.gz") && err.contains("gzip"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Each collision of the asked kind lands in exactly one column, by the rule in the doc
    /// comment, on hand-made impacts.
    #[test]
    fn impact_table_sorts_collisions_by_who_drove_into_whom() {
        use crate::sim::{Impact, Infraction, Termination};
        let hit = |kind, impact: Option<(f32, f32, f32)>| Infraction {
            kind,
            step: 1,
            distance_m: 0.0,
            collision: None,
            impact: impact.map(|(ego_kmh, ahead_m, right_m)| Impact { ego_kmh, other_kmh: 10.0, ahead_m, right_m }),
        };
        let car = InfractionKind::CollisionVehicle;
        let infractions = vec![
            hit(car, Some((20.0, 3.0, 1.0))),  // ahead: driven into
            hit(car, Some((20.0, 3.0, 0.0))),  // ahead: driven into
            hit(car, Some((20.0, 1.0, -2.0))), // at the left side
            hit(car, Some((5.0, -4.0, 0.5))),  // from behind
            hit(car, Some((0.5, 3.0, 0.0))),   // ahead, but standing
            hit(car, None),                    // an old record
            hit(InfractionKind::CollisionPerson, Some((20.0, 3.0, 0.0))),
            hit(InfractionKind::OffLane, None),
        ];
        let log = EpisodeLog {
            town: 1,
            seed: 0,
            weather: "clear-noon".into(),
            steps: 10,
            max_steps: 10,
            distance_m: 100.0,
            duration_s: 1.0,
            total_reward: 0.0,
            termination: Termination::Crash,
            infractions,
        };
        let pooled = DrivingMetrics::from_episodes(std::slice::from_ref(&log));
        let row = BenchmarkRow {
            driver: "d".into(),
            condition: "c".into(),
            per_seed: vec![pooled.clone()],
            pooled,
            episodes: vec![log],
            brakes: Default::default(),
        };
        let t = BenchmarkRow::impact_table(std::slice::from_ref(&row), car);
        assert_eq!(t.rows[0][3..], ["6", "2", "1", "1", "1", "1"]);
        let t = BenchmarkRow::impact_table(&[row], InfractionKind::CollisionPerson);
        assert_eq!(t.rows[0][3..], ["1", "1", "0", "0", "0", "0"]);
    }
}
