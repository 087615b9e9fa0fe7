//! The paper's reward (Section III.C): `r = 1 − α·ol − β·or − ψ·c`, with the off-lane and
//! off-road degrees `ol, or ∈ [0, 1]` and the crash cost `c ∈ {0, ¼, ½, ¾, 1}` for no crash
//! and ISO 26262 severity classes S0–S3; α = β = 1, ψ = 10.
//!
//! As written, that reward pays for *time*: a car that stands still earns the maximum, 1 per
//! step, and never has an infraction. [`RewardConfig`] therefore generalises the constant to
//! `r = a + κ·Δs − α·ol − β·or − ψ·c`, with `Δs` the metres advanced along the route in the
//! step (CARLA's A3C baseline rewards the decrease of the distance to the goal the same way,
//! Dosovitskiy et al. 2017). The default `a = 1, κ = 0` is the paper's reward; the driving
//! agent's configs use `a = 0, κ = 1` (see `rl::DriveConfig`).
//!
//! # Severity of a collision
//!
//! ISO 26262-3 grades the harm of a hazardous event: **S0** no injuries, **S1** light and
//! moderate injuries, **S2** severe and life-threatening injuries (survival probable), **S3**
//! life-threatening (survival uncertain) and fatal injuries. Its informative examples (Annex
//! B) rate bumps with infrastructure and very-low-speed car contacts S0, moderate-speed car
//! impacts S1–S2, and pedestrian or cyclist impacts at urban speeds S2–S3. The simulator grades
//! a collision by what was hit and the impact speed `v` (the relative speed, km/h):
//!
//! | what was hit | S0 | S1 | S2 | S3 |
//! |---|---|---|---|---|
//! | pedestrian, cyclist | v < 2 | 2 ≤ v < 10 | 10 ≤ v < 20 | v ≥ 20 |
//! | car, truck, bus (moving or parked) | v < 8 | 8 ≤ v < 16 | v ≥ 16 | — |
//! | rigid static: building, wall, barrier, pole, traffic light / sign, tree | v < 8 | 8 ≤ v < 16 | v ≥ 16 | — |
//! | light static: fence | v < 16 | v ≥ 16 | — | — |
//!
//! S3 is out of reach for car-to-car and car-to-object impacts under the 25 km/h cap (the
//! standard's S3 examples for them are high-speed crashes).
//!
//! # Off-lane and off-road degrees
//!
//! As CARLA's `intersection_otherlane` / `intersection_offroad`: the fraction of the car's
//! footprint (sampled on a 8 × 4 grid) on road cells whose lane runs against the car's heading
//! (ol), and on cells that are not road (or), see [`lane_and_road_degrees`].

use super::geometry::Footprint;
use super::town::{Prop, PropKind, Surface, Town};
use super::traffic::ActorKind;
use crate::{Error, Result};

/// Height of the ego car: props whose bottom is at least this high are passed under.
pub const CLEARANCE: f32 = 1.5;

/// ISO 26262 severity class of a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum Severity {
    /// No injuries.
    S0,
    /// Light and moderate injuries.
    S1,
    /// Severe and life-threatening injuries (survival probable).
    S2,
    /// Life-threatening (survival uncertain) and fatal injuries.
    S3,
}

impl Severity {
    /// The paper's crash cost `c`: ¼, ½, ¾, 1 for S0–S3.
    pub fn cost(self) -> f32 {
        match self {
            Severity::S0 => 0.25,
            Severity::S1 => 0.5,
            Severity::S2 => 0.75,
            Severity::S3 => 1.0,
        }
    }
}

/// What the ego car hit, for severity and for the infraction kinds of Table IV.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Obstacle {
    /// A pedestrian.
    Pedestrian,
    /// A cyclist.
    Cyclist,
    /// A car, truck or bus, moving or parked.
    Vehicle,
    /// A building, wall, barrier, pole, traffic light or sign, or tree.
    RigidStatic,
    /// A fence.
    LightStatic,
}

impl Obstacle {
    /// The obstacle class of a road user.
    pub fn of_actor(kind: ActorKind) -> Obstacle {
        match kind {
            ActorKind::Pedestrian => Obstacle::Pedestrian,
            ActorKind::Cyclist => Obstacle::Cyclist,
            ActorKind::Car | ActorKind::Truck | ActorKind::Bus | ActorKind::ParkedCar => Obstacle::Vehicle,
            ActorKind::Barrier => Obstacle::RigidStatic,
        }
    }

    /// The obstacle class of a prop, `None` for what the car passes under (canopies, plates
    /// and lamps whose bottom is at least [`CLEARANCE`] above the ground).
    pub fn of_prop(prop: &Prop) -> Option<Obstacle> {
        match prop.kind {
            _ if prop.z0 >= CLEARANCE => None,
            PropKind::Canopy => None,
            PropKind::Fence => Some(Obstacle::LightStatic),
            _ => Some(Obstacle::RigidStatic),
        }
    }
}

/// The severity of hitting `what` at `impact_kmh` (the table in the module docs).
pub fn collision_severity(what: Obstacle, impact_kmh: f32) -> Severity {
    let v = impact_kmh.max(0.0);
    match what {
        Obstacle::Pedestrian | Obstacle::Cyclist => match v {
            v if v < 2.0 => Severity::S0,
            v if v < 10.0 => Severity::S1,
            v if v < 20.0 => Severity::S2,
            _ => Severity::S3,
        },
        Obstacle::Vehicle | Obstacle::RigidStatic => match v {
            v if v < 8.0 => Severity::S0,
            v if v < 16.0 => Severity::S1,
            _ => Severity::S2,
        },
        Obstacle::LightStatic => {
            if v < 16.0 {
                Severity::S0
            } else {
                Severity::S1
            }
        }
    }
}

/// The reward's weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RewardConfig {
    /// α, weight of the off-lane degree.
    pub alpha: f32,
    /// β, weight of the off-road degree.
    pub beta: f32,
    /// ψ, weight of the crash cost.
    pub psi: f32,
    /// `a`, the reward of every step (the paper: 1).
    pub alive: f32,
    /// `κ`, the reward per metre advanced along the route (the paper: 0).
    pub progress: f32,
}

impl Default for RewardConfig {
    /// The paper's α = β = 1, ψ = 10, `a = 1`, `κ = 0`.
    fn default() -> Self {
        RewardConfig { alpha: 1.0, beta: 1.0, psi: 10.0, alive: 1.0, progress: 0.0 }
    }
}

impl RewardConfig {
    /// `r = a − α·ol − β·or − ψ·c` (Section III.C with `a = 1`); `ol`, `or` in [0, 1], `c`
    /// the crash cost. The progress term is [`RewardConfig::reward_with_progress`]'s.
    pub fn reward(&self, off_lane: f32, off_road: f32, crash: Option<Severity>) -> f32 {
        self.alive - self.alpha * off_lane - self.beta * off_road - self.psi * crash.map_or(0.0, Severity::cost)
    }

    /// `r = a + κ·Δs − α·ol − β·or − ψ·c` with `advanced` = `Δs`, metres advanced along the
    /// route in the step (negative when moving away from the goal).
    pub fn reward_with_progress(&self, off_lane: f32, off_road: f32, crash: Option<Severity>, advanced: f32) -> f32 {
        self.reward(off_lane, off_road, crash) + self.progress * advanced
    }

    /// Checks the weights are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("reward.alpha", self.alpha),
            ("reward.beta", self.beta),
            ("reward.psi", self.psi),
            ("reward.alive", self.alive),
            ("reward.progress", self.progress),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(Error::invalid(name, v, "must be finite and >= 0"));
            }
        }
        Ok(())
    }
}

/// Off-lane and off-road degrees `(ol, or)` of a car with footprint `body` in `town`.
///
/// A sample point counts as off-road when its ground is not road, and as off-lane when it is
/// on a lane whose travel direction is more than 90° from the car's heading (junction boxes
/// have no direction and are never off-lane).
pub fn lane_and_road_degrees(town: &Town, body: &Footprint) -> (f32, f32) {
    let heading = super::geometry::V2::from_angle(body.yaw);
    let (mut other_lane, mut off_road, mut n) = (0u32, 0u32, 0u32);
    for p in body.sample_points(8, 4) {
        n += 1;
        let g = town.ground_at(p);
        if g.surface() != Surface::Road {
            off_road += 1;
        } else if g.lane_direction().is_some_and(|d| d.dot(heading) < 0.0) {
            other_lane += 1;
        }
    }
    (other_lane as f32 / n as f32, off_road as f32 / n as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_by_hand() {
        let r = RewardConfig::default();
        assert_eq!(r.reward(0.0, 0.0, None), 1.0);
        assert_eq!(r.reward(0.5, 0.25, None), 0.25);
        assert_eq!(r.reward(0.0, 0.0, Some(Severity::S0)), 1.0 - 2.5);
        assert_eq!(r.reward(1.0, 0.0, Some(Severity::S3)), -10.0);
        assert_eq!(r.reward_with_progress(0.0, 0.0, None, 0.5), 1.0, "the paper's reward has no progress term");
        let shaped = RewardConfig { alive: 0.0, progress: 1.0, ..r };
        assert_eq!(shaped.reward_with_progress(0.0, 0.0, None, 0.0), 0.0, "standing still earns nothing");
        assert_eq!(shaped.reward_with_progress(0.5, 0.0, None, 0.75), 0.25);
        assert_eq!(shaped.reward_with_progress(0.0, 0.0, Some(Severity::S1), 0.5), 0.5 - 5.0);
        assert!(RewardConfig { progress: -1.0, ..r }.validate().unwrap_err().to_string().contains("progress"));
        assert_eq!(collision_severity(Obstacle::Pedestrian, 25.0), Severity::S3);
        assert_eq!(collision_severity(Obstacle::Pedestrian, 5.0), Severity::S1);
        assert_eq!(collision_severity(Obstacle::Vehicle, 25.0), Severity::S2);
        assert_eq!(collision_severity(Obstacle::LightStatic, 10.0), Severity::S0);
        assert!(RewardConfig { psi: f32::NAN, ..r }.validate().unwrap_err().to_string().contains("psi"));
    }
}
