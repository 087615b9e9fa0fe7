//! A scripted driver with privileged information: pure pursuit along the planned route, a
//! speed controller, and braking for anything in a corridor ahead. The notebook's demo
//! policy, a baseline for the driving metrics, and a source of expert actions.

use super::env::DrivingEnv;
use super::geometry::Footprint;
use super::reward::Obstacle;
use super::route::Command;
use super::vehicle::Action;

/// The scripted driver's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Autopilot {
    /// Cruising speed on straight lanes, km/h.
    pub cruise_kmh: f32,
    /// Speed through junction turns, km/h.
    pub turn_kmh: f32,
    /// Pure-pursuit look-ahead from the rear axle at rest, metres.
    pub lookahead: f32,
    /// Look-ahead added per m/s of speed, seconds.
    pub lookahead_per_speed: f32,
    /// Length of the braking corridor beyond the stopping distance, metres.
    pub margin: f32,
}

impl Default for Autopilot {
    /// 20 km/h, 10 km/h in turns, look-ahead 2.5 m + 0.3 s × speed, 4 m margin.
    fn default() -> Self {
        Autopilot { cruise_kmh: 20.0, turn_kmh: 10.0, lookahead: 2.5, lookahead_per_speed: 0.3, margin: 4.0 }
    }
}

impl Autopilot {
    /// The action for the environment's current state.
    pub fn act(&self, env: &DrivingEnv) -> Action {
        let ego = env.ego();
        let Some(route) = env.route() else { return Action::new(0.0, 0.0, 1.0) };
        let p = &ego.params;
        // Pure pursuit from the rear axle.
        let rear = ego.position - ego.heading() * p.lr;
        let ld = self.lookahead + self.lookahead_per_speed * ego.speed;
        // The route point `ld` from the rear axle (the centre is `lr` ahead of it).
        let target = route.point_at(route.progress() + (ld - p.lr).max(0.5));
        let to = target - rear;
        let alpha = ego.heading().cross(to.normalized()).asin();
        let ld = to.norm().max(1.0);
        let delta = (2.0 * (p.lf + p.lr) * alpha.sin() / ld).atan();
        let steer = (delta / p.max_steer).clamp(-1.0, 1.0);
        let turning = matches!(route.command(), Command::Left | Command::Right);
        let want = if turning { self.turn_kmh } else { self.cruise_kmh } / 3.6;
        let stopping = ego.speed * ego.speed / (2.0 * p.max_brake * 0.6) + self.margin + p.length * 0.5;
        let blocked = self.obstacle_ahead(env, stopping);
        if blocked || ego.speed > want + 1.0 {
            return Action::new(steer, 0.0, if blocked { 1.0 } else { 0.3 });
        }
        Action::new(steer, ((want - ego.speed) * 0.6 + 0.1).clamp(0.0, 1.0), 0.0)
    }

    /// Whether anything stands on the route within `reach` metres: the route ahead is swept
    /// by a box as wide as the car plus a margin, and every road user and every prop the car
    /// could hit is tested against it.
    fn obstacle_ahead(&self, env: &DrivingEnv, reach: f32) -> bool {
        let Some(route) = env.route() else { return false };
        let ego = env.ego();
        let half_width = ego.params.width * 0.5 + 0.3;
        let start = route.progress() + ego.params.length * 0.5;
        let n = (reach / 0.75).ceil() as usize;
        let town = env.town();
        (0..=n).any(|k| {
            let s = start + k as f32 * 0.75;
            let p = route.point_at(s);
            let tangent = route.point_at(s + 0.5) - route.point_at(s - 0.5);
            let probe = Footprint { center: p, yaw: tangent.angle(), half_length: 0.5, half_width };
            env.traffic().actors.iter().any(|a| probe.overlaps(&a.footprint()))
                || town.props_near(p, 1.5).any(|i| {
                    let prop = &town.props()[i];
                    Obstacle::of_prop(prop).is_some() && probe.overlaps(&prop.footprint)
                })
        })
    }
}
