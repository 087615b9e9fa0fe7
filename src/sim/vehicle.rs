//! The ego vehicle: a kinematic bicycle model driven by the paper's action.
//!
//! State `(x, y, ψ, v)` at the centre of gravity; with steering angle `δ` and slip angle
//! `β = atan(l_r tan δ / (l_f + l_r))` (Kong et al., *Kinematic and dynamic vehicle models for
//! autonomous driving control design*, IV 2015):
//!
//! ```text
//! ẋ = v cos(ψ + β),  ẏ = v sin(ψ + β),  ψ̇ = v sin β / l_r,  v̇ = a
//! ```
//!
//! integrated with a fixed time step. The acceleration is `throttle · a_max − brake · b_max`
//! minus rolling resistance and drag; the speed is kept in `[0, v_max]` with `v_max` = 25 km/h
//! as in the paper's CARLA setting (no reverse gear).

use super::geometry::{Footprint, V2};
use crate::{Error, Result};

/// The paper's action: steer ∈ [−1, 1] (positive turns left), throttle ∈ [0, 1], brake ∈ [0, 1].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Action {
    /// Steering, −1 (full right) to 1 (full left).
    pub steer: f32,
    /// Throttle, 0 to 1.
    pub throttle: f32,
    /// Brake, 0 to 1.
    pub brake: f32,
}

impl Action {
    /// `(steer, throttle, brake)`.
    pub const fn new(steer: f32, throttle: f32, brake: f32) -> Self {
        Action { steer, throttle, brake }
    }

    /// Checks the ranges; the error names the bad component and value.
    pub fn validate(&self) -> Result<()> {
        let check = |name: &'static str, v: f32, lo: f32| {
            if v.is_finite() && v >= lo && v <= 1.0 {
                Ok(())
            } else {
                Err(Error::invalid(name, v, format!("must be a number in [{lo}, 1]")))
            }
        };
        check("action.steer", self.steer, -1.0)?;
        check("action.throttle", self.throttle, 0.0)?;
        check("action.brake", self.brake, 0.0)
    }
}

/// Physical parameters of the vehicle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VehicleParams {
    /// Centre of gravity to front axle, metres.
    pub lf: f32,
    /// Centre of gravity to rear axle, metres.
    pub lr: f32,
    /// Body length, metres.
    pub length: f32,
    /// Body width, metres.
    pub width: f32,
    /// Steering angle at `steer = ±1`, radians.
    pub max_steer: f32,
    /// Acceleration at full throttle, m/s².
    pub max_accel: f32,
    /// Deceleration at full brake, m/s².
    pub max_brake: f32,
    /// Speed cap, m/s.
    pub max_speed: f32,
}

impl Default for VehicleParams {
    /// A compact car: 4.5 × 1.9 m, wheelbase 2.7 m, 35° steering, 3.5 m/s² and 8 m/s², 25 km/h.
    fn default() -> Self {
        VehicleParams {
            lf: 1.35,
            lr: 1.35,
            length: 4.5,
            width: 1.9,
            max_steer: 35f32.to_radians(),
            max_accel: 3.5,
            max_brake: 8.0,
            max_speed: 25.0 / 3.6,
        }
    }
}

/// The ego vehicle's state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vehicle {
    /// Centre of gravity.
    pub position: V2,
    /// Heading, radians counter-clockwise from east.
    pub yaw: f32,
    /// Speed, m/s (never negative).
    pub speed: f32,
    /// Parameters.
    pub params: VehicleParams,
}

impl Vehicle {
    /// A vehicle at rest.
    pub fn new(position: V2, yaw: f32, params: VehicleParams) -> Self {
        Vehicle { position, yaw, speed: 0.0, params }
    }

    /// Advances the state by `dt` seconds under `action` (assumed valid, see
    /// [`Action::validate`]).
    pub fn step(&mut self, action: Action, dt: f32) {
        let p = &self.params;
        let delta = action.steer * p.max_steer;
        let resist = if self.speed > 0.0 { 0.15 + 0.02 * self.speed } else { 0.0 };
        let accel = action.throttle * p.max_accel - action.brake * p.max_brake - resist;
        let v0 = self.speed;
        let v1 = (v0 + accel * dt).clamp(0.0, p.max_speed);
        // Trapezoidal speed over the step, so that braking to rest stops where it should.
        let v = 0.5 * (v0 + v1);
        let beta = (p.lr * delta.tan() / (p.lf + p.lr)).atan();
        self.position = self.position + V2::from_angle(self.yaw + beta) * (v * dt);
        self.yaw = wrap_angle(self.yaw + v * beta.sin() / p.lr * dt);
        self.speed = v1;
    }

    /// The body's footprint.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            center: self.position,
            yaw: self.yaw,
            half_length: self.params.length * 0.5,
            half_width: self.params.width * 0.5,
        }
    }

    /// Unit heading.
    pub fn heading(&self) -> V2 {
        V2::from_angle(self.yaw)
    }

    /// Velocity vector, m/s.
    pub fn velocity(&self) -> V2 {
        self.heading() * self.speed
    }
}

/// `a` wrapped to `(−π, π]`.
pub fn wrap_angle(a: f32) -> f32 {
    let t = std::f32::consts::TAU;
    let r = (a + std::f32::consts::PI).rem_euclid(t) - std::f32::consts::PI;
    if r <= -std::f32::consts::PI {
        r + t
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_throttle_reaches_the_cap_and_full_brake_stops() {
        let mut v = Vehicle::new(V2::new(0.0, 0.0), 0.0, VehicleParams::default());
        for _ in 0..60 {
            v.step(Action::new(0.0, 1.0, 0.0), 0.1);
        }
        assert!((v.speed - 25.0 / 3.6).abs() < 1e-5, "{}", v.speed);
        assert!(v.position.y.abs() < 1e-4);
        let x0 = v.position.x;
        let mut steps = 0;
        while v.speed > 0.0 {
            v.step(Action::new(0.0, 0.0, 1.0), 0.1);
            steps += 1;
            assert!(steps < 20);
        }
        // v² / (2 b) with b = 8 + resistance: under 3.1 m.
        let d = v.position.x - x0;
        assert!(d > 2.0 && d < 3.1, "braking distance {d}");
        let rest = v.position;
        v.step(Action::new(0.5, 0.0, 0.0), 0.1);
        assert_eq!(v.position, rest);
    }

    #[test]
    fn steering_left_turns_counter_clockwise_on_the_bicycle_radius() {
        let mut v = Vehicle::new(V2::new(0.0, 0.0), 0.0, VehicleParams::default());
        v.speed = 5.0;
        let steer = 0.5;
        // Keep the speed: throttle balancing the resistance.
        let hold = (0.15 + 0.02 * 5.0) / v.params.max_accel;
        for _ in 0..10 {
            v.step(Action::new(steer, hold, 0.0), 0.1);
        }
        let p = v.params;
        let beta = (p.lr * (steer * p.max_steer).tan() / (p.lf + p.lr)).atan();
        let expected = 5.0 * beta.sin() / p.lr * 1.0;
        assert!((v.yaw - expected).abs() < 1e-3, "yaw {} vs {expected}", v.yaw);
        assert!(v.position.y > 0.0);
        assert!(Action::new(1.5, 0.0, 0.0).validate().unwrap_err().to_string().contains("steer"));
        assert!(Action::new(0.0, f32::NAN, 0.0).validate().is_err());
    }
}
