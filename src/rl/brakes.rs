//! Does a driver brake where the Autopilot would, and for what? The benchmark's km between
//! collisions say *that* a driver hits people or cars; brake recall says whether it fails to
//! stop for them. At every step in which the ego car moves (at least [`STANDING_KMH`], 1 km/h), the
//! scripted [`Autopilot`] is asked what it would brake fully for
//! ([`Autopilot::braking_for`]: the first road user or obstacle in its corridor within its
//! stopping distance), and the driver's own action is checked for a full brake (at least
//! [`FULL_BRAKE`]). Per cause — a person (pedestrian or cyclist), a vehicle, a static obstacle —
//! the recall is the share of the Autopilot's braking states in which the driver braked too;
//! on clear states (the Autopilot does not brake fully) the share is how often the driver
//! brakes alone. What the driver did instead is counted too: a gentler brake, coasting or
//! throttle ([`BrakeRecall::response_table`]) — whether it slows at all where it should stop.
//!
//! This is a per-state measure, taken on the states the driver's own driving reaches: a driver
//! that brakes a step later than the Autopilot loses that step, and one that never comes near
//! a pedestrian has no person states. It is the benchmark's counterpart of
//! [`super::brake_agreement`], which compares the policy's most likely action with the
//! Autopilot's on the states of an imitation segment. [`super::evaluate`] counts it for every
//! benchmark row ([`super::BenchmarkRow::brakes`]). Tested on hand-placed scenes in
//! `tests/sim.rs`, and through the benchmark in `tests/drive.rs`.

use super::a2c::FULL_BRAKE;
use crate::plot::Table;
use crate::sim::{Action, Autopilot, DrivingEnv, Obstacle, STANDING_KMH};

/// States counted, and of them those in which the driver braked fully, braked gently, or
/// gave throttle (the rest coasted: no brake, no throttle).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrakeCount {
    /// States (steps of one car) counted.
    pub states: u64,
    /// Of them, those in which the driver's brake was at least [`FULL_BRAKE`].
    pub braked: u64,
    /// … those in which it braked, but less than [`FULL_BRAKE`] (0 when read from records
    /// written before it was counted).
    #[serde(default)]
    pub gentle: u64,
    /// … those without brake and with throttle (0 in older records).
    #[serde(default)]
    pub throttled: u64,
}

impl BrakeCount {
    /// `braked / states`, `None` without states.
    pub fn fraction(&self) -> Option<f64> {
        (self.states > 0).then(|| self.braked as f64 / self.states as f64)
    }

    /// The states in which the driver neither braked nor gave throttle.
    pub fn coasted(&self) -> u64 {
        self.states.saturating_sub(self.braked + self.gentle + self.throttled)
    }

    fn add(&mut self, action: &Action) {
        self.states += 1;
        if action.brake >= FULL_BRAKE {
            self.braked += 1;
        } else if action.brake > 0.0 {
            self.gentle += 1;
        } else if action.throttle > 0.0 {
            self.throttled += 1;
        }
    }

    fn merge(&mut self, other: &BrakeCount) {
        self.states += other.states;
        self.braked += other.braked;
        self.gentle += other.gentle;
        self.throttled += other.throttled;
    }

    /// `"full / gentle / coast / throttle"` in % of the states, or `–` without states.
    fn response_cell(&self) -> String {
        if self.states == 0 {
            return "–".into();
        }
        let pct = |n: u64| 100.0 * n as f64 / self.states as f64;
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0}",
            pct(self.braked),
            pct(self.gentle),
            pct(self.coasted()),
            pct(self.throttled)
        )
    }

    /// `"p % of n"`, or `–` without states.
    fn cell(&self) -> String {
        match self.fraction() {
            Some(f) => format!("{:.0} % of {}", 100.0 * f, self.states),
            None => "–".into(),
        }
    }
}

/// A driver's brakes against the Autopilot's, by what the Autopilot brakes for (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BrakeRecall {
    /// States in which the Autopilot brakes fully for a pedestrian or cyclist (the benchmark's
    /// *person*).
    pub person: BrakeCount,
    /// … for a vehicle (car, truck, bus, parked car).
    pub vehicle: BrakeCount,
    /// … for a static obstacle (barrier, prop, fence).
    pub static_obstacle: BrakeCount,
    /// States in which the Autopilot does not brake fully: there `braked` counts the driver's
    /// brakes alone.
    pub clear: BrakeCount,
}

impl BrakeRecall {
    /// Counts one step of `env`, before `action` is applied: nothing when the ego car moves
    /// slower than [`STANDING_KMH`] (a car at rest needs no brake to stay out of what is
    /// ahead); else the state goes to the column of what
    /// `autopilot` would brake fully for ([`Autopilot::braking_for`]; `clear` when nothing),
    /// braked when `action.brake ≥` [`FULL_BRAKE`], gently when `0 < brake <` [`FULL_BRAKE`],
    /// throttled when there is no brake and `throttle > 0`.
    pub fn observe(&mut self, autopilot: &Autopilot, env: &DrivingEnv, action: &Action) {
        if env.ego().speed * 3.6 < STANDING_KMH {
            return;
        }
        let column = match autopilot.braking_for(env) {
            None => &mut self.clear,
            Some(Obstacle::Pedestrian | Obstacle::Cyclist) => &mut self.person,
            Some(Obstacle::Vehicle) => &mut self.vehicle,
            Some(Obstacle::RigidStatic | Obstacle::LightStatic) => &mut self.static_obstacle,
        };
        column.add(action);
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &BrakeRecall) {
        self.person.merge(&other.person);
        self.vehicle.merge(&other.vehicle);
        self.static_obstacle.merge(&other.static_obstacle);
        self.clear.merge(&other.clear);
    }

    /// A table of named recalls: per row, the share of the Autopilot's full-brake states for
    /// a person, a vehicle and a static obstacle in which the driver braked fully too, and of
    /// the clear states in which it braked alone (`p % of n` states; `–` without states).
    pub fn table(rows: &[(String, BrakeRecall)]) -> Table {
        Self::per_cause(
            ["driver", "brakes with it: person", "vehicle", "static", "brakes alone (clear states)"],
            rows,
            BrakeCount::cell,
        )
    }

    /// A table of what the named drivers did, per cause: the % of the states in which they
    /// braked fully, braked gently, coasted and gave throttle (`full / gentle / coast /
    /// throttle`; `–` without states). Where the Autopilot brakes fully, a driver that coasts
    /// or brakes gently at least slows down; one that gives throttle does not. Records written
    /// before the gentle and throttle counts existed (read as 0) show all their other states as
    /// coasting: drive them again for this table.
    pub fn response_table(rows: &[(String, BrakeRecall)]) -> Table {
        Self::per_cause(
            ["driver", "person: full / gentle / coast / throttle %", "vehicle", "static", "clear states"],
            rows,
            BrakeCount::response_cell,
        )
    }

    /// A row per named driver: its name, then `cell` of its person, vehicle, static and clear
    /// counts, under `header`.
    fn per_cause(header: [&str; 5], rows: &[(String, BrakeRecall)], cell: fn(&BrakeCount) -> String) -> Table {
        let mut t = Table::new(header);
        for (name, r) in rows {
            t.push(vec![name.clone(), cell(&r.person), cell(&r.vehicle), cell(&r.static_obstacle), cell(&r.clear)]);
        }
        t
    }
}
