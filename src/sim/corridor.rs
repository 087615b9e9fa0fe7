//! The corridor ahead of the car: the box it would sweep driving on, as wide as the car plus a
//! margin on each side, probed every [`CORRIDOR_STEP_M`] metres against every road user and
//! every prop the car could hit ([`Obstacle::of_prop`]). The [`super::Autopilot`] brakes for
//! what lies in the corridor along its route; the privileged measurement
//! [`super::Measurements::free_ahead`] says how far two corridors are free — the
//! ground truth a state built from the camera has to see for itself.

use super::env::DrivingEnv;
use super::geometry::{Footprint, V2};
use super::reward::Obstacle;
use super::route::Route;

/// Spacing of the probes along a corridor, metres.
pub const CORRIDOR_STEP_M: f32 = 0.75;

/// Margin on each side of the car's width of [`super::Measurements::free_ahead`]'s corridors
/// (and of the Autopilot's braking corridor), metres.
pub const CORRIDOR_MARGIN_M: f32 = 0.3;

/// How far ahead of the car's front [`super::Measurements::free_ahead`] looks, metres: what
/// is free up to here reads as this.
pub const FREE_AHEAD_REACH_M: f32 = 20.0;

/// The distance from the car's front to the first probe of a corridor that touches an obstacle:
/// probes are boxes 1 m long and `2·margin` wider than the car, centred `s = from + k ·`
/// [`CORRIDOR_STEP_M`] metres beyond the car's front (`k = 0, …, ⌈(to − from) / step⌉`: the
/// last at `to` or less than a step beyond) on the centre line `centre(s) = (point, unit
/// direction)`, tested against every road user (those standing still only, with
/// `only_static`) and every prop the car could hit; with what that probe touched first (road
/// users before props, in the traffic's order). `None` when the corridor is clear. On a
/// straight corridor, an obstacle whose near edge is `g` metres ahead is first touched by the
/// probe at `s ∈ (g − ½, g + ¼]`.
pub fn first_obstacle(
    env: &DrivingEnv,
    centre: impl Fn(f32) -> (V2, V2),
    from: f32,
    to: f32,
    margin: f32,
    only_static: bool,
) -> Option<(f32, Obstacle)> {
    let half_width = env.ego().params.width * 0.5 + margin;
    let n = ((to - from).max(0.0) / CORRIDOR_STEP_M).ceil() as usize;
    let probes: Vec<(f32, Footprint)> = (0..=n)
        .map(|k| {
            let s = from + k as f32 * CORRIDOR_STEP_M;
            let (p, t) = centre(s);
            (s, Footprint { center: p, yaw: t.angle(), half_length: 0.5, half_width })
        })
        .collect();
    // Only the road users whose bounding circle meets the probes' bounding box can touch one.
    let r = 0.5f32.hypot(half_width);
    let (mut lo, mut hi) = (V2::new(f32::INFINITY, f32::INFINITY), V2::new(f32::NEG_INFINITY, f32::NEG_INFINITY));
    for (_, f) in &probes {
        lo = V2::new(lo.x.min(f.center.x - r), lo.y.min(f.center.y - r));
        hi = V2::new(hi.x.max(f.center.x + r), hi.y.max(f.center.y + r));
    }
    let near: Vec<(Footprint, Obstacle)> = env
        .traffic()
        .actors
        .iter()
        .filter(|a| !only_static || a.speed.abs() < 0.1)
        .map(|a| (a.footprint(), Obstacle::of_actor(a.kind)))
        .filter(|(f, _)| {
            let ra = f.half_length.hypot(f.half_width);
            f.center.x + ra >= lo.x && f.center.x - ra <= hi.x && f.center.y + ra >= lo.y && f.center.y - ra <= hi.y
        })
        .collect();
    let town = env.town();
    probes.iter().find_map(|(s, probe)| {
        let user = near.iter().find(|(f, _)| probe.overlaps(f)).map(|&(_, o)| o);
        let hit = user.or_else(|| {
            town.props_near(probe.center, 1.5).find_map(|i| {
                let prop = &town.props()[i];
                Obstacle::of_prop(prop).filter(|_| probe.overlaps(&prop.footprint))
            })
        });
        hit.map(|o| (*s, o))
    })
}

/// The centre line of the corridor along `route`, shifted `left` metres to its left, as
/// [`first_obstacle`] takes it: `s` metres beyond the front of the car whose projection on the
/// route is at [`Route::progress`].
pub fn along_route<'a>(env: &'a DrivingEnv, route: &'a Route, left: f32) -> impl Fn(f32) -> (V2, V2) + 'a {
    let start = route.progress() + env.ego().params.length * 0.5;
    move |s| {
        let t = tangent(route, start + s);
        (route.point_at(start + s) - t.right() * left, t)
    }
}

/// The centre line of the corridor straight along the car's heading, as [`first_obstacle`]
/// takes it.
pub fn along_heading(env: &DrivingEnv) -> impl Fn(f32) -> (V2, V2) + '_ {
    let ego = env.ego();
    let f = ego.heading();
    let front = ego.position + f * (ego.params.length * 0.5);
    move |s| (front + f * s, f)
}

/// [`super::Measurements::free_ahead`]: how far the corridor along the route and the one
/// along the car's heading are free (the [`first_obstacle`] of each, margin
/// [`CORRIDOR_MARGIN_M`], from the car's front to [`FREE_AHEAD_REACH_M`]; that reach when
/// clear). Without a route, both are the heading's.
pub fn free_ahead(env: &DrivingEnv) -> [f32; 2] {
    let free = |c: &dyn Fn(f32) -> (V2, V2)| {
        first_obstacle(env, c, 0.0, FREE_AHEAD_REACH_M, CORRIDOR_MARGIN_M, false).map_or(FREE_AHEAD_REACH_M, |(s, _)| s)
    };
    let heading = free(&along_heading(env));
    let route = env.route().map_or(heading, |r| free(&along_route(env, r, 0.0)));
    [route, heading]
}

/// The route's unit direction at `s`.
pub fn tangent(route: &Route, s: f32) -> V2 {
    (route.point_at(s + 0.5) - route.point_at(s - 0.5)).normalized()
}
