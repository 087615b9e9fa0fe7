//! Infractions and the driving metrics of Tables IV–VI.
//!
//! Every infraction is logged with its kind, the step and the distance driven so far. An
//! off-lane (off-road) infraction starts when the off-lane (off-road) degree rises above
//! [`INFRACTION_ONSET`] and ends when it is back to 0, so a long excursion counts once, as in
//! CARLA's benchmark.

use super::reward::{Obstacle, Severity};
use super::weather::Weather;
use crate::plot::Table;

/// Degree above which an off-lane or off-road excursion counts as an infraction.
pub const INFRACTION_ONSET: f32 = 0.2;

/// The kinds of infraction of Table IV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InfractionKind {
    /// Collision with a pedestrian or a cyclist.
    CollisionPerson,
    /// Collision with a car, truck or bus.
    CollisionVehicle,
    /// Collision with a static object.
    CollisionStatic,
    /// Driving in the opposite lane.
    OffLane,
    /// Driving off the road.
    OffRoad,
}

impl InfractionKind {
    /// Every kind, in Table IV's order.
    pub const ALL: [InfractionKind; 5] =
        [Self::CollisionPerson, Self::CollisionVehicle, Self::CollisionStatic, Self::OffLane, Self::OffRoad];

    /// The collision kind for what was hit.
    pub fn collision(what: Obstacle) -> InfractionKind {
        match what {
            Obstacle::Pedestrian | Obstacle::Cyclist => Self::CollisionPerson,
            Obstacle::Vehicle => Self::CollisionVehicle,
            Obstacle::RigidStatic | Obstacle::LightStatic => Self::CollisionStatic,
        }
    }

    /// Column name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Self::CollisionPerson => "collision: person",
            Self::CollisionVehicle => "collision: car",
            Self::CollisionStatic => "collision: static",
            Self::OffLane => "off-lane",
            Self::OffRoad => "off-road",
        }
    }
}

/// One infraction.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Infraction {
    /// What happened.
    pub kind: InfractionKind,
    /// The step of the episode (1-based).
    pub step: usize,
    /// Metres driven in the episode when it happened.
    pub distance_m: f32,
    /// For collisions: what was hit, the impact speed (km/h) and the severity class.
    pub collision: Option<(Obstacle, f32, Severity)>,
    /// For collisions: where the other party was, seen from the ego car (absent from records
    /// written before it was logged).
    #[serde(default)]
    pub impact: Option<Impact>,
}

/// The geometry of a collision, seen from the ego car at the step it was detected: who drove
/// into whom. A vehicle that drives into something ahead of it while moving is at fault; one
/// that is hit from the side or from behind, or while standing, may not be.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Impact {
    /// The ego car's speed, km/h.
    pub ego_kmh: f32,
    /// The other party's speed, km/h (0 for anything that does not move).
    pub other_kmh: f32,
    /// The other party's centre relative to the ego car's centre, metres along the ego car's
    /// heading (positive: ahead).
    pub ahead_m: f32,
    /// The same, metres to the ego car's right (positive: right).
    pub right_m: f32,
}

/// The speed under which the ego car counts as standing, km/h: for a collision
/// ([`Impact::ego_standing`]) and for brake recall ([`crate::rl::BrakeRecall`], which counts
/// only the states in which the car moves).
pub const STANDING_KMH: f32 = 1.0;

/// Where the other party of a collision was: the quadrant of its bearing from the ego car.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImpactSide {
    /// Within 45° of straight ahead.
    Front,
    /// Between 45° and 135° either side.
    Side,
    /// Within 45° of straight behind.
    Rear,
}

impl Impact {
    /// Did the ego car drive into the other party: was it moving (at least 1 km/h) with the
    /// other ahead ([`ImpactSide::Front`])? The *driven into* column of
    /// [`crate::rl::BenchmarkRow::impact_table`].
    pub fn driven_into(&self) -> bool {
        !self.ego_standing() && self.side() == ImpactSide::Front
    }

    /// Was the ego car standing (under [`STANDING_KMH`])? The *standing* column of
    /// [`crate::rl::BenchmarkRow::impact_table`], wherever the other party was.
    pub fn ego_standing(&self) -> bool {
        self.ego_kmh < STANDING_KMH
    }

    /// The quadrant of the other party's bearing: [`ImpactSide::Front`] when `ahead_m >
    /// |right_m|`, [`ImpactSide::Rear`] when `−ahead_m > |right_m|`, else [`ImpactSide::Side`].
    pub fn side(&self) -> ImpactSide {
        if self.ahead_m > self.right_m.abs() {
            ImpactSide::Front
        } else if -self.ahead_m > self.right_m.abs() {
            ImpactSide::Rear
        } else {
            ImpactSide::Side
        }
    }
}

/// Why an episode ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Termination {
    /// The goal was reached.
    GoalReached,
    /// A collision.
    Crash,
    /// Entirely in the opposite lane.
    OffLane,
    /// Half or more off the road.
    OffRoad,
    /// The car stood still for [`super::EnvConfig::blocked_steps`] steps (CARLA's "agent
    /// blocked"): a failure, like the three before.
    Blocked,
    /// The step limit (a truncation, not a termination).
    TimeLimit,
}

/// The record of one finished episode.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpisodeLog {
    /// Seed of the town.
    pub town: u64,
    /// Seed of the episode.
    pub seed: u64,
    /// Weather preset name.
    pub weather: String,
    /// Steps taken.
    pub steps: usize,
    /// The step limit.
    pub max_steps: usize,
    /// Metres driven.
    pub distance_m: f64,
    /// Simulated seconds.
    pub duration_s: f64,
    /// Sum of rewards.
    pub total_reward: f64,
    /// Why it ended.
    pub termination: Termination,
    /// Every infraction, in order.
    pub infractions: Vec<Infraction>,
}

impl EpisodeLog {
    /// Whether the goal was reached.
    pub fn success(&self) -> bool {
        self.termination == Termination::GoalReached
    }

    /// The weather preset, when the name is one of the presets.
    pub fn weather_preset(&self) -> Option<Weather> {
        self.weather.parse().ok()
    }
}

/// Driving metrics over a set of episodes (Tables IV–VI).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DrivingMetrics {
    /// Number of episodes.
    pub episodes: usize,
    /// Kilometres driven.
    pub km: f64,
    /// Hours driven (simulated).
    pub hours: f64,
    /// Average speed, km/h.
    pub km_per_hour: f64,
    /// Drive % (Table V): steps driven / steps possible, where an episode could have run to
    /// its step limit unless it reached its goal (then its own steps: no route was left).
    /// The paper: "100 % indicates the agent does not have the early termination"; only the
    /// failures (crash, off-lane, off-road, blocked) lower it.
    pub drive_percent: f64,
    /// Fraction of episodes that reached the goal (Table VI).
    pub success_rate: f64,
    /// Per kind (in [`InfractionKind::ALL`]'s order): number of infractions.
    pub counts: Vec<(InfractionKind, usize)>,
    /// Per kind: kilometres per infraction, `None` when there was none (then more than `km`).
    pub km_between: Vec<(InfractionKind, Option<f64>)>,
}

impl DrivingMetrics {
    /// The metrics of `episodes`.
    pub fn from_episodes(episodes: &[EpisodeLog]) -> DrivingMetrics {
        let km: f64 = episodes.iter().map(|e| e.distance_m).sum::<f64>() / 1000.0;
        let hours: f64 = episodes.iter().map(|e| e.duration_s).sum::<f64>() / 3600.0;
        let steps: usize = episodes.iter().map(|e| e.steps).sum();
        let possible: usize = episodes.iter().map(|e| if e.success() { e.steps } else { e.max_steps }).sum();
        let successes = episodes.iter().filter(|e| e.success()).count();
        let counts: Vec<(InfractionKind, usize)> = InfractionKind::ALL
            .iter()
            .map(|&k| (k, episodes.iter().flat_map(|e| &e.infractions).filter(|i| i.kind == k).count()))
            .collect();
        let km_between = counts.iter().map(|&(k, n)| (k, (n > 0).then(|| km / n as f64))).collect();
        DrivingMetrics {
            episodes: episodes.len(),
            km,
            hours,
            km_per_hour: if hours > 0.0 { km / hours } else { 0.0 },
            drive_percent: if possible > 0 { 100.0 * steps as f64 / possible as f64 } else { 0.0 },
            success_rate: if episodes.is_empty() { 0.0 } else { successes as f64 / episodes.len() as f64 },
            counts,
            km_between,
        }
    }

    /// The number of infractions of `kind`.
    pub fn count(&self, kind: InfractionKind) -> usize {
        self.counts.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    /// Kilometres between infractions of `kind` (`None` when there was none).
    pub fn km_between(&self, kind: InfractionKind) -> Option<f64> {
        self.km_between.iter().find(|(k, _)| *k == kind).and_then(|(_, v)| *v)
    }

    /// A table with one row per named condition: Table IV's km between infractions, and
    /// Drive %, km, km/h and success rate (Tables V–VI). "> x" marks no infraction in x km.
    pub fn table(rows: &[(&str, &DrivingMetrics)]) -> Table {
        let mut headers = vec!["condition".to_string(), "episodes".into(), "km".into()];
        headers.extend(InfractionKind::ALL.iter().map(|k| format!("km / {}", k.name())));
        headers.extend(["Drive %".into(), "km/h".into(), "success".into()]);
        let mut t = Table::new(headers);
        for (name, m) in rows {
            let mut cells = vec![name.to_string(), m.episodes.to_string(), format!("{:.2}", m.km)];
            cells.extend(InfractionKind::ALL.iter().map(|&k| match m.km_between(k) {
                Some(v) => format!("{v:.3}"),
                None => format!("> {:.2}", m.km),
            }));
            cells.extend([
                format!("{:.1}", m.drive_percent),
                format!("{:.1}", m.km_per_hour),
                format!("{:.0} %", 100.0 * m.success_rate),
            ]);
            t.push(cells);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(steps: usize, metres: f64, termination: Termination, kinds: &[InfractionKind]) -> EpisodeLog {
        EpisodeLog {
            town: 1,
            seed: 0,
            weather: "clear-noon".into(),
            steps,
            max_steps: 500,
            distance_m: metres,
            duration_s: steps as f64 * 0.1,
            total_reward: 0.0,
            termination,
            infractions: kinds
                .iter()
                .map(|&kind| Infraction { kind, step: 1, distance_m: 0.0, collision: None, impact: None })
                .collect(),
        }
    }

    #[test]
    fn metrics_by_hand() {
        use InfractionKind::*;
        let eps = [
            log(500, 300.0, Termination::TimeLimit, &[OffLane, OffLane]),
            log(250, 150.0, Termination::Crash, &[OffRoad, CollisionPerson]),
            log(100, 50.0, Termination::GoalReached, &[]),
        ];
        let m = DrivingMetrics::from_episodes(&eps);
        assert!((m.km - 0.5).abs() < 1e-12);
        assert!((m.hours - 85.0 / 3600.0).abs() < 1e-12);
        assert!((m.km_per_hour - 0.5 / (85.0 / 3600.0)).abs() < 1e-9);
        // The goal-reached episode could not have driven more than its 100 steps.
        assert!((m.drive_percent - 100.0 * 850.0 / 1100.0).abs() < 1e-9);
        assert!((m.success_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(m.km_between(OffLane), Some(0.25));
        assert_eq!(m.km_between(CollisionPerson), Some(0.5));
        assert_eq!(m.km_between(CollisionVehicle), None);
        assert_eq!((m.count(OffLane), m.count(CollisionPerson), m.count(CollisionVehicle)), (2, 1, 0));
        let t = DrivingMetrics::table(&[("train town", &m)]).to_markdown();
        assert!(t.contains("> 0.50") && t.contains("0.250"), "{t}");
    }
}
