//! The environment interface and the built-in driving environment.
//!
//! [`Environment`] is the whole contract an agent trains against — `reset(seed)` and
//! `step(action)` returning observation, reward, terminated, truncated and info — small
//! enough for a CARLA client to implement later. [`DrivingEnv`] implements it with the
//! crate's own town, traffic, vehicle model, camera, route planner and reward.

use super::camera::{CameraConfig, CameraPose, Frame, Renderer, Solid};
use super::corridor::FREE_AHEAD_REACH_M;
use super::geometry::V2;
use super::infraction::{EpisodeLog, Impact, Infraction, InfractionKind, Termination, INFRACTION_ONSET, STANDING_KMH};
use super::reward::{collision_severity, lane_and_road_degrees, Obstacle, RewardConfig, Severity};
use super::route::{Command, Route};
use super::town::{Town, TownConfig};
use super::traffic::{Traffic, TrafficConfig};
use super::vehicle::{Action, Vehicle, VehicleParams};
use super::weather::Weather;
use crate::{Error, Result};
use rand::rngs::StdRng;
use std::sync::Arc;

/// Everything that defines a driving environment.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvConfig {
    /// The town.
    pub town: TownConfig,
    /// Weather and lighting.
    pub weather: Weather,
    /// The front camera.
    pub camera: CameraConfig,
    /// Road users per episode.
    pub traffic: TrafficConfig,
    /// The ego vehicle.
    pub vehicle: VehicleParams,
    /// Reward weights.
    pub reward: RewardConfig,
    /// Simulated seconds per step.
    pub dt: f32,
    /// Steps before an episode is truncated (the paper: 500).
    pub max_steps: usize,
    /// Route length range for drawn goals, metres.
    pub route_length: (f32, f32),
    /// The goal is reached within this distance along the route, metres.
    pub goal_radius: f32,
    /// End the episode ([`Termination::Blocked`], a failure) when the car has stayed within
    /// [`BLOCKED_RADIUS_M`] of one point for this many steps; `None`: never. CARLA's
    /// leaderboard ends routes this way ("agent blocked", 180 s), so that standing still is
    /// not a safe way to score; the benchmark sets it
    /// (`eval.blocked_s`), training does not unless asked.
    pub blocked_steps: Option<usize>,
}

/// Metres the car must move away from where it stood still for the count of
/// [`EnvConfig::blocked_steps`] to restart.
pub const BLOCKED_RADIUS_M: f32 = 1.0;

impl EnvConfig {
    /// The paper's setting in town `town_seed`: clear noon, the agent's 96 × 192 camera,
    /// default traffic, 0.1 s steps, 500 steps, routes of 80–220 m.
    pub fn new(town_seed: u64) -> Self {
        EnvConfig {
            town: TownConfig::new(town_seed),
            weather: Weather::ClearNoon,
            camera: CameraConfig::agent(),
            traffic: TrafficConfig::default(),
            vehicle: VehicleParams::default(),
            reward: RewardConfig::default(),
            dt: 0.1,
            max_steps: 500,
            route_length: (80.0, 220.0),
            goal_radius: 4.0,
            blocked_steps: None,
        }
    }

    /// The same with `weather`.
    pub fn with_weather(mut self, weather: Weather) -> Self {
        self.weather = weather;
        self
    }

    /// The same with `camera`.
    pub fn with_camera(mut self, camera: CameraConfig) -> Self {
        self.camera = camera;
        self
    }

    /// Checks every part, naming the bad value.
    pub fn validate(&self) -> Result<()> {
        self.town.validate()?;
        self.camera.validate()?;
        self.reward.validate()?;
        if !(self.dt.is_finite() && self.dt > 0.0 && self.dt <= 1.0) {
            return Err(Error::invalid("dt", self.dt, "must be in (0, 1] s"));
        }
        if self.max_steps == 0 {
            return Err(Error::invalid("max_steps", self.max_steps, "must be >= 1"));
        }
        let (a, b) = self.route_length;
        if !(a.is_finite() && b.is_finite() && a > 0.0 && a <= b) {
            return Err(Error::invalid("route_length", format!("({a}, {b})"), "must be 0 < min <= max"));
        }
        if !(self.goal_radius.is_finite() && self.goal_radius > 0.0) {
            return Err(Error::invalid("goal_radius", self.goal_radius, "must be > 0"));
        }
        if self.blocked_steps == Some(0) {
            return Err(Error::invalid("blocked_steps", 0, "must be >= 1 (None: never blocked)"));
        }
        Ok(())
    }
}

/// The measurement vector of Section III.C.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurements {
    /// Speed, m/s.
    pub speed: f32,
    /// Distance left along the route, metres.
    pub distance_to_goal: f32,
    /// Collision damage of this step: the crash cost `c` (0 without a crash).
    pub collision_damage: f32,
    /// The route planner's command.
    pub command: Command,
    /// Where the route goes: the route's points [`ROUTE_LOOKAHEAD`] metres ahead of the car's
    /// projection on it, in the car's frame, `[forward, left]` metres each (the "target
    /// points" of waypoint-conditioned driving agents, e.g. TransFuser, Chitta et al. 2022;
    /// CARLA's leaderboard hands agents the same route). Zero without a route.
    pub route_ahead: [f32; 4],
    /// How far the road ahead is free, `[along the route, along the car's heading]`, metres
    /// from the car's front to the first road user or obstacle in a corridor as wide as the
    /// car plus 0.3 m on each side, up to [`FREE_AHEAD_REACH_M`] (that when clear; see
    /// [`super::corridor::free_ahead`]). Privileged: the simulator's ground truth, what the
    /// Autopilot brakes for — a learnability probe for agents (`state.free_ahead`), not a
    /// sensor.
    pub free_ahead: [f32; 2],
}

/// Arc lengths ahead of the car's projection on the route at which
/// [`Measurements::route_ahead`] samples the route, metres.
pub const ROUTE_LOOKAHEAD: [f32; 2] = [8.0, 20.0];

impl Measurements {
    /// Length of [`Measurements::vector`].
    pub const LEN: usize = 7;

    /// Length of [`Measurements::vector_with_route`].
    pub const LEN_WITH_ROUTE: usize = Self::LEN + 4;

    /// Length of [`Measurements::vector_with`]`(route, free_ahead)`: [`Measurements::LEN`],
    /// plus 4 with the route, plus 2 with the free distances.
    pub fn len_with(route: bool, free_ahead: bool) -> usize {
        Self::LEN + 4 * route as usize + 2 * free_ahead as usize
    }

    /// The speed scale of [`Measurements::vector`]'s first entry, km/h (the entry is the speed
    /// divided by it).
    pub const SPEED_SCALE_KMH: f32 = 25.0;

    /// Does a measurement vector's first entry (speed / [`Measurements::SPEED_SCALE_KMH`]) say
    /// the car moves, at least [`STANDING_KMH`]? The rule of [`Impact::ego_standing`], read
    /// from an agent's state instead of the simulator.
    pub fn is_moving(speed_entry: f32) -> bool {
        speed_entry * Self::SPEED_SCALE_KMH >= STANDING_KMH
    }

    /// The agent's input: `[speed / 25 km/h, distance / 250 m, damage, one-hot command (4)]`.
    pub fn vector(&self) -> [f32; Self::LEN] {
        let c = self.command.one_hot();
        [
            self.speed * 3.6 / Self::SPEED_SCALE_KMH,
            self.distance_to_goal / 250.0,
            self.collision_damage,
            c[0],
            c[1],
            c[2],
            c[3],
        ]
    }

    /// [`Measurements::vector`] followed by [`Measurements::route_ahead`] / 20 m: the
    /// paper's measurements and where the route goes (`state.route = true` in a
    /// [`crate::rl::DriveConfig`]).
    pub fn vector_with_route(&self) -> [f32; Self::LEN_WITH_ROUTE] {
        let mut v = [0.0; Self::LEN_WITH_ROUTE];
        v[..Self::LEN].copy_from_slice(&self.vector());
        for (o, r) in v[Self::LEN..].iter_mut().zip(self.route_ahead) {
            *o = r / ROUTE_LOOKAHEAD[1];
        }
        v
    }

    /// The state's measurement vector: [`Measurements::vector`], then (with `route`)
    /// [`Measurements::route_ahead`] / 20 m as [`Measurements::vector_with_route`], then
    /// (with `free_ahead`) [`Measurements::free_ahead`] / [`FREE_AHEAD_REACH_M`] (1: clear);
    /// [`Measurements::len_with`] entries.
    pub fn vector_with(&self, route: bool, free_ahead: bool) -> Vec<f32> {
        let mut v = Vec::with_capacity(Self::len_with(route, free_ahead));
        if route {
            v.extend(self.vector_with_route());
        } else {
            v.extend(self.vector());
        }
        if free_ahead {
            v.extend(self.free_ahead.map(|d| d / FREE_AHEAD_REACH_M));
        }
        v
    }
}

/// What the agent sees after a reset or a step.
#[derive(Clone, Debug)]
pub struct Observation {
    /// The front camera's RGB, labels and depth.
    pub frame: Frame,
    /// Speed, distance to goal, collision damage, command.
    pub measurements: Measurements,
}

/// Details of a step.
#[derive(Clone, Debug, PartialEq)]
pub struct StepInfo {
    /// Step number in the episode (1-based).
    pub step: usize,
    /// Off-lane degree `ol`.
    pub off_lane: f32,
    /// Off-road degree `or`.
    pub off_road: f32,
    /// The collision of this step, if any: what, impact speed (km/h), severity.
    pub collision: Option<(Obstacle, f32, Severity)>,
    /// Infractions that started this step.
    pub infractions: Vec<Infraction>,
    /// Metres driven in the episode.
    pub distance_m: f64,
    /// Why the episode ended, on its last step.
    pub termination: Option<Termination>,
    /// The episode's record, on its last step.
    pub episode: Option<EpisodeLog>,
}

/// The result of a step.
#[derive(Clone, Debug)]
pub struct Transition {
    /// The new observation.
    pub observation: Observation,
    /// The reward `r = 1 − α·ol − β·or − ψ·c`.
    pub reward: f32,
    /// The episode ended (goal, crash, off-lane, off-road).
    pub terminated: bool,
    /// The episode hit the step limit.
    pub truncated: bool,
    /// Details.
    pub info: StepInfo,
}

impl Transition {
    /// Whether the episode is over (terminated or truncated).
    pub fn done(&self) -> bool {
        self.terminated || self.truncated
    }
}

/// A driving environment: what an agent needs, and all it needs.
pub trait Environment: Send {
    /// Starts an episode; same seed, same episode.
    fn reset(&mut self, seed: u64) -> Result<Observation>;

    /// Applies `action` for one time step. An error for an invalid action, or when the
    /// episode is over and [`Environment::reset`] was not called.
    fn step(&mut self, action: Action) -> Result<Transition>;
}

/// The built-in simulator as an [`Environment`].
#[derive(Clone, Debug)]
pub struct DrivingEnv {
    config: EnvConfig,
    town: Arc<Town>,
    renderer: Renderer,
    rng: StdRng,
    ego: Vehicle,
    traffic: Traffic,
    route: Option<Route>,
    goal: (usize, f32),
    seed: u64,
    steps: usize,
    odometer: f64,
    total_reward: f64,
    infractions: Vec<Infraction>,
    off_lane_on: bool,
    off_road_on: bool,
    /// Where the car last stood still, and for how many steps it has stayed within
    /// [`BLOCKED_RADIUS_M`] of it.
    still: (V2, usize),
    done: bool,
    solids: Vec<Solid>,
}

impl DrivingEnv {
    /// An environment in a freshly generated town.
    pub fn new(config: EnvConfig) -> Result<DrivingEnv> {
        config.validate()?;
        let town = Arc::new(Town::generate(&config.town)?);
        Self::with_town(config, town)
    }

    /// An environment in an existing town (shared by the environments of a [`super::VecEnv`]);
    /// `config.town` must be the town's configuration.
    pub fn with_town(config: EnvConfig, town: Arc<Town>) -> Result<DrivingEnv> {
        config.validate()?;
        if town.config() != &config.town {
            return Err(Error::invalid(
                "town",
                town.config().seed,
                format!("was generated from another configuration than config.town (seed {})", config.town.seed),
            ));
        }
        let renderer = Renderer::new(config.camera.clone())?;
        let ego = Vehicle::new(V2::default(), 0.0, config.vehicle);
        Ok(DrivingEnv {
            config,
            town,
            renderer,
            rng: crate::random::seeded(0),
            ego,
            traffic: Traffic::default(),
            route: None,
            goal: (0, 0.0),
            seed: 0,
            steps: 0,
            odometer: 0.0,
            total_reward: 0.0,
            infractions: vec![],
            off_lane_on: false,
            off_road_on: false,
            still: (V2::default(), 0),
            done: true,
            solids: vec![],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EnvConfig {
        &self.config
    }

    /// The town.
    pub fn town(&self) -> &Arc<Town> {
        &self.town
    }

    /// The ego vehicle.
    pub fn ego(&self) -> &Vehicle {
        &self.ego
    }

    /// The road users.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The road users, to build test scenes.
    pub fn traffic_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }

    /// The planned route (after a reset).
    pub fn route(&self) -> Option<&Route> {
        self.route.as_ref()
    }

    /// Steps taken in this episode.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Metres driven in this episode.
    pub fn distance(&self) -> f64 {
        self.odometer
    }

    /// Sum of the rewards of this episode.
    pub fn total_reward(&self) -> f64 {
        self.total_reward
    }

    /// Infractions so far in this episode.
    pub fn infractions(&self) -> &[Infraction] {
        &self.infractions
    }

    /// Sets the weather from the next rendered frame on.
    pub fn set_weather(&mut self, weather: Weather) {
        self.config.weather = weather;
    }

    /// Moves the ego car (for constructed scenes and dataset viewpoints). On a lane, the
    /// route is planned again from there to the goal; elsewhere the car is projected onto the
    /// current route.
    pub fn place_ego(&mut self, position: V2, yaw: f32, speed: f32) {
        self.ego.position = position;
        self.ego.yaw = yaw;
        self.ego.speed = speed.clamp(0.0, self.config.vehicle.max_speed);
        self.replan();
    }

    /// Sets the goal `s` metres along `lane` and plans the route to it (for constructed
    /// scenes; [`Environment::reset`] draws one).
    pub fn set_goal(&mut self, lane: usize, s: f32) -> Result<()> {
        let Some(l) = self.town.lanes().get(lane) else {
            return Err(Error::invalid("goal lane", lane, format!("the town has {} lanes", self.town.lanes().len())));
        };
        if !(s.is_finite() && s >= 0.0 && s <= l.length()) {
            return Err(Error::invalid(
                "goal position",
                s,
                format!("must be in [0, {}] m along lane {lane}", l.length()),
            ));
        }
        self.goal = (lane, s);
        self.replan();
        Ok(())
    }

    fn replan(&mut self) {
        match self.town.lane_at(self.ego.position, self.ego.heading()) {
            Some((lane, s)) => {
                if let Some(r) = Route::plan(&self.town, lane, s, self.goal.0, self.goal.1) {
                    self.route = Some(r);
                }
            }
            None => {
                if let Some(r) = self.route.as_mut() {
                    r.relocate(self.ego.position);
                }
            }
        }
    }

    /// Renders the current view and measurements.
    pub fn observe(&mut self) -> Observation {
        self.observation(0.0)
    }

    /// A freshly rendered frame and the measurements with collision damage `damage`.
    fn observation(&mut self, damage: f32) -> Observation {
        let mut frame = Frame::new(self.config.camera.width, self.config.camera.height);
        self.render_into(&mut frame);
        Observation { frame, measurements: self.measurements(damage) }
    }

    /// Renders the current view into `frame` (reusing its buffers).
    pub fn render_into(&mut self, frame: &mut Frame) {
        self.solids.clear();
        for a in &self.traffic.actors {
            a.solids(&mut self.solids);
        }
        let pose = CameraPose::mounted(&self.config.camera, self.ego.position, self.ego.yaw);
        let noise = (self.seed as u32).wrapping_mul(0x9E37_79B9) ^ self.steps as u32;
        self.renderer.render(&self.town, &self.solids, &pose, self.config.weather, noise, frame);
    }

    fn measurements(&self, damage: f32) -> Measurements {
        let (distance, command) =
            self.route.as_ref().map_or((0.0, Command::FollowLane), |r| (r.remaining(), r.command()));
        let mut route_ahead = [0.0; 4];
        if let Some(r) = &self.route {
            let forward = V2::from_angle(self.ego.yaw);
            for (k, ahead) in ROUTE_LOOKAHEAD.iter().enumerate() {
                let d = r.point_at(r.progress() + ahead) - self.ego.position;
                route_ahead[2 * k] = d.dot(forward);
                route_ahead[2 * k + 1] = -d.dot(forward.right());
            }
        }
        Measurements {
            speed: self.ego.speed,
            distance_to_goal: distance,
            collision_damage: damage,
            command,
            route_ahead,
            free_ahead: super::corridor::free_ahead(self),
        }
    }

    /// The most severe collision of the ego car's current footprint, if any: what was hit,
    /// the impact speed (km/h, relative to a moving road user) and the severity class.
    pub fn collision(&self) -> Option<(Obstacle, f32, Severity)> {
        self.collision_and_impact().map(|(c, _)| c)
    }

    /// [`DrivingEnv::collision`] and where its other party was (for a town object, the
    /// centre of its footprint).
    fn collision_and_impact(&self) -> Option<((Obstacle, f32, Severity), Impact)> {
        let body = self.ego.footprint();
        let ego_v = self.ego.velocity();
        let heading = self.ego.heading();
        let impact = |centre: V2, other_v: V2| {
            let d = centre - body.center;
            Impact {
                ego_kmh: self.ego.speed * 3.6,
                other_kmh: other_v.norm() * 3.6,
                ahead_m: d.dot(heading),
                right_m: d.dot(heading.right()),
            }
        };
        let mut worst: Option<((Obstacle, f32, Severity), Impact)> = None;
        let mut consider = |what: Obstacle, kmh: f32, impact: Impact| {
            let s = collision_severity(what, kmh);
            if worst.is_none_or(|w| s > w.0 .2) {
                worst = Some(((what, kmh, s), impact));
            }
        };
        for k in self.town.props_near(body.center, 4.0) {
            let p = &self.town.props()[k];
            if let Some(what) = Obstacle::of_prop(p) {
                if body.overlaps(&p.footprint) {
                    consider(what, self.ego.speed * 3.6, impact(p.footprint.center, V2::new(0.0, 0.0)));
                }
            }
        }
        for a in &self.traffic.actors {
            if body.overlaps(&a.footprint()) {
                consider(
                    Obstacle::of_actor(a.kind),
                    (ego_v - a.velocity()).norm() * 3.6,
                    impact(a.position, a.velocity()),
                );
            }
        }
        worst
    }

    /// A top view around the ego car: the town map with the route (white), road users
    /// (their class colours) and the ego car (red); `radius` metres around it, `pixels_per_metre`.
    pub fn map_image(&self, radius: f32, pixels_per_metre: f32) -> image::RgbImage {
        let k = pixels_per_metre.clamp(0.5, 8.0);
        let mut img = self.town.map_image(k);
        let h = self.town.size().y;
        let palette = crate::classes::CITYSCAPES.palette;
        if let Some(route) = &self.route {
            for w in route.points().windows(2) {
                let n = (w[0].dist(w[1]) * k).ceil().max(1.0) as usize;
                for i in 0..=n {
                    let p = w[0] + (w[1] - w[0]) * (i as f32 / n as f32);
                    let fp = super::geometry::Footprint { center: p, yaw: 0.0, half_length: 0.4, half_width: 0.4 };
                    super::town::fill_footprint(&mut img, &fp, [255, 255, 255], k, h);
                }
            }
        }
        for a in &self.traffic.actors {
            super::town::fill_footprint(&mut img, &a.footprint(), palette[a.kind.label() as usize], k, h);
        }
        super::town::fill_footprint(&mut img, &self.ego.footprint(), [230, 20, 20], k, h);
        let c = self.ego.position;
        let x0 = ((c.x - radius) * k).clamp(0.0, img.width() as f32 - 1.0) as u32;
        let y0 = ((h - c.y - radius) * k).clamp(0.0, img.height() as f32 - 1.0) as u32;
        let side = (2.0 * radius * k) as u32;
        image::imageops::crop_imm(&img, x0, y0, side.min(img.width() - x0).max(1), side.min(img.height() - y0).max(1))
            .to_image()
    }
}

impl Environment for DrivingEnv {
    fn reset(&mut self, seed: u64) -> Result<Observation> {
        let town = Arc::clone(&self.town);
        self.seed = seed;
        self.rng = crate::random::seeded(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ town.config().seed);
        let (lane, s0) = town.random_lane_position(&mut self.rng, 8.0);
        let l = town.lanes()[lane];
        self.ego = Vehicle::new(l.at(s0), l.dir.angle(), self.config.vehicle);
        let (lo, hi) = self.config.route_length;
        let mut fallback = None;
        let mut route = None;
        for _ in 0..200 {
            let (goal_lane, s1) = town.random_lane_position(&mut self.rng, 5.0);
            if goal_lane == lane {
                continue;
            }
            if let Some(r) = Route::plan(&town, lane, s0, goal_lane, s1) {
                if r.length() >= lo && r.length() <= hi {
                    route = Some((r, (goal_lane, s1)));
                    break;
                }
                if fallback.is_none() {
                    fallback = Some((r, (goal_lane, s1)));
                }
            }
        }
        let (route, goal) = route
            .or(fallback)
            .ok_or_else(|| Error::invalid("town", town.config().seed, "has no route between two lanes"))?;
        self.route = Some(route);
        self.goal = goal;
        self.traffic = Traffic::spawn(&town, &self.config.traffic, self.ego.position, &mut self.rng);
        self.steps = 0;
        self.odometer = 0.0;
        self.total_reward = 0.0;
        self.infractions.clear();
        self.off_lane_on = false;
        self.off_road_on = false;
        self.still = (self.ego.position, 0);
        self.done = false;
        Ok(self.observe())
    }

    fn step(&mut self, action: Action) -> Result<Transition> {
        if self.done {
            return Err(Error::invalid(
                "step",
                self.steps,
                "the episode is over (or was never started): call reset(seed) first",
            ));
        }
        action.validate()?;
        let town = Arc::clone(&self.town);
        let before = self.ego.position;
        self.ego.step(action, self.config.dt);
        self.odometer += before.dist(self.ego.position) as f64;
        self.traffic.step(&town, &self.ego.footprint(), self.config.dt, &mut self.rng);
        self.steps += 1;

        let hit = self.collision_and_impact();
        let collision = hit.map(|(c, _)| c);
        let (ol, or) = lane_and_road_degrees(&town, &self.ego.footprint());
        let remaining_before = self.route.as_ref().map_or(0.0, |r| r.remaining());

        let mut new = vec![];
        let at = |kind, hit: Option<((Obstacle, f32, Severity), Impact)>| Infraction {
            kind,
            step: self.steps,
            distance_m: self.odometer as f32,
            collision: hit.map(|(c, _)| c),
            impact: hit.map(|(_, i)| i),
        };
        if let Some(((what, _, _), _)) = hit {
            new.push(at(InfractionKind::collision(what), hit));
        }
        if ol > INFRACTION_ONSET && !self.off_lane_on {
            new.push(at(InfractionKind::OffLane, None));
        }
        if or > INFRACTION_ONSET && !self.off_road_on {
            new.push(at(InfractionKind::OffRoad, None));
        }
        self.off_lane_on = if self.off_lane_on { ol > 0.0 } else { ol > INFRACTION_ONSET };
        self.off_road_on = if self.off_road_on { or > 0.0 } else { or > INFRACTION_ONSET };
        self.infractions.extend(new.iter().cloned());
        self.still = if self.ego.position.dist(self.still.0) < BLOCKED_RADIUS_M {
            (self.still.0, self.still.1 + 1)
        } else {
            (self.ego.position, 0)
        };

        let remaining = match self.route.as_mut() {
            Some(r) => r.track(self.ego.position),
            None => f32::INFINITY,
        };
        let advanced = if remaining.is_finite() { remaining_before - remaining } else { 0.0 };
        let reward = self.config.reward.reward_with_progress(ol, or, collision.map(|c| c.2), advanced);
        self.total_reward += reward as f64;
        let termination = if collision.is_some() {
            Some(Termination::Crash)
        } else if ol >= 1.0 {
            Some(Termination::OffLane)
        } else if or >= 0.5 {
            Some(Termination::OffRoad)
        } else if remaining <= self.config.goal_radius {
            Some(Termination::GoalReached)
        } else if self.config.blocked_steps.is_some_and(|b| self.still.1 >= b) {
            Some(Termination::Blocked)
        } else if self.steps >= self.config.max_steps {
            Some(Termination::TimeLimit)
        } else {
            None
        };
        let truncated = termination == Some(Termination::TimeLimit);
        let terminated = termination.is_some() && !truncated;
        self.done = termination.is_some();
        let episode = termination.map(|t| EpisodeLog {
            town: town.config().seed,
            seed: self.seed,
            weather: self.config.weather.name().to_string(),
            steps: self.steps,
            max_steps: self.config.max_steps,
            distance_m: self.odometer,
            duration_s: self.steps as f64 * self.config.dt as f64,
            total_reward: self.total_reward,
            termination: t,
            infractions: self.infractions.clone(),
        });
        let observation = self.observation(collision.map_or(0.0, |c| c.2.cost()));
        Ok(Transition {
            observation,
            reward,
            terminated,
            truncated,
            info: StepInfo {
                step: self.steps,
                off_lane: ol,
                off_road: or,
                collision,
                infractions: new,
                distance_m: self.odometer,
                termination,
                episode,
            },
        })
    }
}
