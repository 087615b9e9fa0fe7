//! The driving simulator as a segmentation dataset ([`crate::sim`]): the embedded default
//! that needs no download, and a synthetic source domain for self-training toward real data
//! (as GTA5 → Cityscapes in the paper). Labels are Cityscapes' 19 train ids.
//!
//! Splits are by town: training frames come from [`SyntheticConfig::train_towns`] and the
//! test frames from towns never seen in training, so a model is always tested on new streets.
//! Frame `k` of a town is a deterministic function of (split, town, `k`): the car's place on a
//! lane (with a random offset and heading error), the traffic and the weather.

use super::{Dataset, Sample, Split};
use crate::classes::{ClassSet, CITYSCAPES};
use crate::sim::{
    self, CameraConfig, DrivingEnv, EnvConfig, Environment, Town, TownConfig, TrafficConfig, Weather, V2,
};
use crate::{Error, Result};
use rand::Rng;
use std::sync::Arc;

/// Which towns, how many frames, what size and weather.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticConfig {
    /// Town seeds of the training split.
    pub train_towns: Vec<u64>,
    /// Town seeds of the validation split.
    pub val_towns: Vec<u64>,
    /// Town seeds of the test split.
    pub test_towns: Vec<u64>,
    /// Frames drawn per town.
    pub frames_per_town: usize,
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Weather presets, cycled over the frames.
    pub weathers: Vec<Weather>,
    /// Road users per frame.
    pub traffic: TrafficConfig,
}

impl Default for SyntheticConfig {
    /// Train on the training town and towns 5, 6; validate on 7; test on the new towns
    /// 2, 3, 4; 200 frames per town at 360 × 480 (CamVid's size); all four weathers.
    fn default() -> Self {
        SyntheticConfig {
            train_towns: vec![sim::TRAINING_TOWN, 5, 6],
            val_towns: vec![7],
            test_towns: sim::NEW_TOWNS.to_vec(),
            frames_per_town: 200,
            width: 480,
            height: 360,
            weathers: Weather::ALL.to_vec(),
            traffic: TrafficConfig::default(),
        }
    }
}

impl SyntheticConfig {
    /// Checks the configuration, naming the bad value.
    pub fn validate(&self) -> Result<()> {
        if self.frames_per_town == 0 {
            return Err(Error::invalid("frames_per_town", 0, "must be >= 1"));
        }
        if self.weathers.is_empty() {
            return Err(Error::invalid("weathers", "[]", "give at least one weather preset"));
        }
        for (name, towns) in
            [("train_towns", &self.train_towns), ("val_towns", &self.val_towns), ("test_towns", &self.test_towns)]
        {
            if towns.is_empty() {
                return Err(Error::invalid(name, "[]", "every split needs at least one town"));
            }
        }
        if let Some(t) = self.test_towns.iter().find(|t| self.train_towns.contains(t)) {
            return Err(Error::invalid("test_towns", t, "is also a training town; test towns must be unseen"));
        }
        CameraConfig::dataset().with_size(self.width, self.height).validate()
    }
}

/// The simulator as a [`Dataset`].
#[derive(Clone, Debug)]
pub struct Synthetic {
    config: SyntheticConfig,
    split: Split,
    towns: Vec<Arc<Town>>,
}

impl Synthetic {
    /// Generates the towns of `split`.
    pub fn new(config: SyntheticConfig, split: Split) -> Result<Self> {
        config.validate()?;
        let seeds = match split {
            Split::Train => &config.train_towns,
            Split::Val => &config.val_towns,
            Split::Test => &config.test_towns,
        };
        let towns =
            seeds.iter().map(|&s| Town::generate(&TownConfig::new(s)).map(Arc::new)).collect::<Result<Vec<_>>>()?;
        Ok(Synthetic { config, split, towns })
    }

    /// The configuration.
    pub fn config(&self) -> &SyntheticConfig {
        &self.config
    }

    /// Town seeds of this split.
    pub fn town_seeds(&self) -> Vec<u64> {
        self.towns.iter().map(|t| t.config().seed).collect()
    }
}

impl Dataset for Synthetic {
    fn len(&self) -> usize {
        self.towns.len() * self.config.frames_per_town
    }

    fn get(&self, index: usize) -> Result<Sample> {
        if index >= self.len() {
            return Err(Error::invalid("index", index, format!("out of range for {}", self.describe())));
        }
        let (t, k) = (index / self.config.frames_per_town, index % self.config.frames_per_town);
        let town = &self.towns[t];
        let weather = self.config.weathers[k % self.config.weathers.len()];
        let mut cfg = EnvConfig::new(town.config().seed)
            .with_weather(weather)
            .with_camera(CameraConfig::dataset().with_size(self.config.width, self.config.height));
        cfg.traffic = self.config.traffic.clone();
        let mut env = DrivingEnv::with_town(cfg, Arc::clone(town))?;
        let split_salt = match self.split {
            Split::Train => 0x11,
            Split::Val => 0x22,
            Split::Test => 0x33,
        };
        let seed = (town.config().seed << 32) ^ (split_salt << 24) ^ k as u64;
        env.reset(seed)?;
        // A random lateral offset in the lane and heading error.
        let mut rng = crate::random::seeded(seed ^ 0xF00D);
        let (offset, yaw_err) = (rng.random_range(-1.2..1.2f32), rng.random_range(-0.25..0.25f32));
        let ego = *env.ego();
        let p = ego.position + V2::from_angle(ego.yaw).right() * offset;
        env.place_ego(p, ego.yaw + yaw_err, 0.0);
        let obs = env.observe();
        Ok(Sample {
            image: obs.frame.rgb,
            label: obs.frame.labels,
            name: format!("town{}-{k:04}-{}", town.config().seed, weather.name()),
        })
    }

    fn classes(&self) -> &'static ClassSet {
        &CITYSCAPES
    }

    fn describe(&self) -> String {
        format!("synthetic/{} (towns {:?}, {} frames)", self.split, self.town_seeds(), self.len())
    }
}
