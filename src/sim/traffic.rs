//! Everything that moves or stands in the way and is not part of the town: cars, trucks and
//! buses following lanes, cyclists at the right edge of the lane, pedestrians walking round
//! the blocks and across the zebra crossings, and static obstacles (parked cars and concrete
//! barriers in the lane). Spawned from the episode seed.
//!
//! Vehicles keep their lane, pick a random exit at every junction, and stop for anything in a
//! short corridor ahead of them (the ego car included); pedestrians do not look before they
//! cross. Traffic lights are scenery: nobody obeys them.

use super::camera::Solid;
use super::geometry::{Footprint, V2};
use super::town::{label, Town};
use rand::rngs::StdRng;
use rand::Rng;

/// How many of each road user an episode spawns.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficConfig {
    /// Cars, trucks and buses (about 80 / 12 / 8 %).
    pub vehicles: usize,
    /// Cyclists.
    pub cyclists: usize,
    /// Pedestrians.
    pub pedestrians: usize,
    /// Parked cars sticking into a lane.
    pub parked_cars: usize,
    /// Concrete barriers in a lane.
    pub barriers: usize,
}

impl Default for TrafficConfig {
    /// 30 vehicles, 6 cyclists, 50 pedestrians, 8 parked cars, 4 barriers.
    fn default() -> Self {
        TrafficConfig { vehicles: 30, cyclists: 6, pedestrians: 50, parked_cars: 8, barriers: 4 }
    }
}

impl TrafficConfig {
    /// No one else in town.
    pub fn empty() -> Self {
        TrafficConfig { vehicles: 0, cyclists: 0, pedestrians: 0, parked_cars: 0, barriers: 0 }
    }
}

/// What a road user is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActorKind {
    /// A car driving.
    Car,
    /// A truck driving.
    Truck,
    /// A bus driving.
    Bus,
    /// A cyclist riding.
    Cyclist,
    /// A pedestrian walking.
    Pedestrian,
    /// A parked car (static obstacle).
    ParkedCar,
    /// A concrete barrier (static obstacle).
    Barrier,
}

impl ActorKind {
    /// Length, width, height in metres.
    pub fn size(self) -> (f32, f32, f32) {
        match self {
            ActorKind::Car | ActorKind::ParkedCar => (4.4, 1.8, 1.5),
            ActorKind::Truck => (7.0, 2.4, 3.2),
            ActorKind::Bus => (11.0, 2.5, 3.2),
            ActorKind::Cyclist => (1.7, 0.6, 1.75),
            ActorKind::Pedestrian => (0.45, 0.45, 1.75),
            ActorKind::Barrier => (2.0, 0.6, 0.8),
        }
    }

    /// The Cityscapes train id of its main body (a cyclist's bicycle; the rider on it is
    /// labelled rider).
    pub fn label(self) -> u8 {
        match self {
            ActorKind::Car | ActorKind::ParkedCar => label::CAR,
            ActorKind::Truck => label::TRUCK,
            ActorKind::Bus => label::BUS,
            ActorKind::Cyclist => label::BICYCLE,
            ActorKind::Pedestrian => label::PERSON,
            ActorKind::Barrier => label::WALL,
        }
    }

    /// Whether it is a vulnerable road user.
    pub fn is_vulnerable(self) -> bool {
        matches!(self, ActorKind::Cyclist | ActorKind::Pedestrian)
    }
}

#[derive(Clone, Debug)]
enum Motion {
    /// Following `path` (a lane or a junction connector); `lane` is the lane the path is or
    /// leads into; `offset` shifts the actor right of the lane centre.
    Lane { path: Vec<V2>, seg: usize, t: f32, lane: usize, in_lane: bool, offset: f32, cruise: f32 },
    /// Walking round block `(bx, by)` from corner to corner, or across a road.
    Walk { from: V2, to: V2, t: f32, block: (usize, usize), corner: usize, crossing: bool, pace: f32 },
    /// Not moving.
    Static,
}

/// One road user.
#[derive(Clone, Debug)]
pub struct Actor {
    /// What it is.
    pub kind: ActorKind,
    /// Centre.
    pub position: V2,
    /// Heading.
    pub yaw: f32,
    /// Speed, m/s.
    pub speed: f32,
    /// Paint or clothes colour.
    pub albedo: [f32; 3],
    /// Texture seed.
    pub seed: u32,
    motion: Motion,
}

const PAINT: [[f32; 3]; 8] = [
    [0.70, 0.08, 0.08],
    [0.08, 0.15, 0.55],
    [0.85, 0.85, 0.85],
    [0.08, 0.08, 0.08],
    [0.45, 0.45, 0.48],
    [0.75, 0.60, 0.10],
    [0.15, 0.40, 0.20],
    [0.55, 0.55, 0.60],
];

impl Actor {
    /// A road user of `kind` standing still at `position` facing `yaw` (for constructed
    /// scenes; [`Traffic::spawn`] makes moving ones).
    pub fn standing(kind: ActorKind, position: V2, yaw: f32) -> Actor {
        Actor { kind, position, yaw, speed: 0.0, albedo: PAINT[0], seed: 1, motion: Motion::Static }
    }

    /// Its footprint.
    pub fn footprint(&self) -> Footprint {
        let (l, w, _) = self.kind.size();
        Footprint { center: self.position, yaw: self.yaw, half_length: l * 0.5, half_width: w * 0.5 }
    }

    /// Velocity vector.
    pub fn velocity(&self) -> V2 {
        V2::from_angle(self.yaw) * self.speed
    }

    /// The boxes the renderer draws for it.
    pub fn solids(&self, out: &mut Vec<Solid>) {
        let (l, w, h) = self.kind.size();
        let f = V2::from_angle(self.yaw);
        let fp = |c: V2, hl: f32, hw: f32| Footprint { center: c, yaw: self.yaw, half_length: hl, half_width: hw };
        let s = self.seed;
        match self.kind {
            ActorKind::Car | ActorKind::ParkedCar | ActorKind::Truck | ActorKind::Bus => {
                let lab = self.kind.label();
                let (body, cabin_len, cabin_shift) = match self.kind {
                    ActorKind::Truck | ActorKind::Bus => (h, 0.0, 0.0),
                    _ => (0.95, l * 0.55, -0.2),
                };
                out.push(Solid {
                    footprint: fp(self.position, l * 0.5, w * 0.5),
                    z0: 0.2,
                    height: body - 0.2,
                    label: lab,
                    albedo: self.albedo,
                    seed: s,
                });
                if cabin_len > 0.0 {
                    out.push(Solid {
                        footprint: fp(self.position + f * cabin_shift, cabin_len * 0.5, w * 0.45),
                        z0: body,
                        height: h - body,
                        label: lab,
                        albedo: [0.12, 0.14, 0.17],
                        seed: s ^ 1,
                    });
                }
            }
            ActorKind::Cyclist => {
                out.push(Solid {
                    footprint: fp(self.position, l * 0.5, 0.12),
                    z0: 0.0,
                    height: 1.0,
                    label: self.kind.label(),
                    albedo: [0.15, 0.15, 0.16],
                    seed: s,
                });
                out.push(Solid {
                    footprint: fp(self.position - f * 0.15, 0.25, 0.22),
                    z0: 0.85,
                    height: 0.9,
                    label: label::RIDER,
                    albedo: self.albedo,
                    seed: s ^ 1,
                });
            }
            ActorKind::Pedestrian => {
                out.push(Solid {
                    footprint: fp(self.position, 0.14, 0.16),
                    z0: 0.0,
                    height: 0.85,
                    label: label::PERSON,
                    albedo: [0.15, 0.15, 0.22],
                    seed: s,
                });
                out.push(Solid {
                    footprint: fp(self.position, 0.16, 0.22),
                    z0: 0.85,
                    height: 0.65,
                    label: label::PERSON,
                    albedo: self.albedo,
                    seed: s ^ 1,
                });
                out.push(Solid {
                    footprint: fp(self.position, 0.1, 0.1),
                    z0: 1.5,
                    height: h - 1.5,
                    label: label::PERSON,
                    albedo: [0.70, 0.52, 0.40],
                    seed: s ^ 2,
                });
            }
            ActorKind::Barrier => {
                out.push(Solid {
                    footprint: fp(self.position, l * 0.5, w * 0.5),
                    z0: 0.0,
                    height: h,
                    label: self.kind.label(),
                    albedo: [0.65, 0.64, 0.60],
                    seed: s,
                });
            }
        }
    }
}

/// Every road user of an episode.
#[derive(Clone, Debug, Default)]
pub struct Traffic {
    /// The actors.
    pub actors: Vec<Actor>,
}

/// Pose along a polyline: position and tangent at `(seg, t)`.
fn pose_on(path: &[V2], seg: usize, t: f32) -> (V2, V2) {
    let (a, b) = (path[seg], path[seg + 1]);
    (a + (b - a) * t, (b - a).normalized())
}

impl Traffic {
    /// Spawns `config`'s road users in `town`, keeping `clear` (the ego's spawn point) free
    /// within 12 m, from `rng`.
    pub fn spawn(town: &Town, config: &TrafficConfig, clear: V2, rng: &mut StdRng) -> Traffic {
        let mut actors: Vec<Actor> = vec![];
        let free =
            |p: V2, actors: &[Actor], gap: f32| p.dist(clear) > 12.0 && actors.iter().all(|a| a.position.dist(p) > gap);
        let lane_actor = |kind: ActorKind, lane: usize, s: f32, offset: f32, cruise: f32, rng: &mut StdRng| {
            let l = town.lanes()[lane];
            let path = vec![l.start, l.end];
            let len = l.length();
            let motion = if matches!(kind, ActorKind::ParkedCar | ActorKind::Barrier) {
                Motion::Static
            } else {
                Motion::Lane { path, seg: 0, t: s / len, lane, in_lane: true, offset, cruise }
            };
            Actor {
                kind,
                position: l.at(s) + l.dir.right() * offset,
                yaw: l.dir.angle(),
                speed: 0.0,
                albedo: PAINT[rng.random_range(0..PAINT.len())],
                seed: rng.random(),
                motion,
            }
        };
        let w = town.road_half_width();
        // Right of the lane centre, `gap` short of the road edge.
        let kerbside = |kind: ActorKind, gap: f32| w * 0.5 - kind.size().1 * 0.5 - gap;
        let mut tries = 0;
        let mut place = |actors: &mut Vec<Actor>,
                         n: usize,
                         make: &mut dyn FnMut(&mut StdRng) -> Actor,
                         gap: f32,
                         rng: &mut StdRng| {
            let mut placed = 0;
            while placed < n && tries < 20_000 {
                tries += 1;
                let a = make(rng);
                if free(a.position, actors, gap) {
                    actors.push(a);
                    placed += 1;
                }
            }
        };
        place(
            &mut actors,
            config.parked_cars,
            &mut |rng: &mut StdRng| {
                let (lane, s) = town.random_lane_position(rng, 12.0);
                lane_actor(ActorKind::ParkedCar, lane, s, kerbside(ActorKind::ParkedCar, 0.1), 0.0, rng)
            },
            10.0,
            rng,
        );
        place(
            &mut actors,
            config.barriers,
            &mut |rng: &mut StdRng| {
                let (lane, s) = town.random_lane_position(rng, 12.0);
                lane_actor(ActorKind::Barrier, lane, s, kerbside(ActorKind::Barrier, 0.2), 0.0, rng)
            },
            10.0,
            rng,
        );
        place(
            &mut actors,
            config.vehicles,
            &mut |rng: &mut StdRng| {
                let (lane, s) = town.random_lane_position(rng, 6.0);
                let kind = match rng.random_range(0..25) {
                    0..=19 => ActorKind::Car,
                    20..=22 => ActorKind::Truck,
                    _ => ActorKind::Bus,
                };
                let cruise = rng.random_range(4.5..6.5);
                lane_actor(kind, lane, s, 0.0, cruise, rng)
            },
            9.0,
            rng,
        );
        place(
            &mut actors,
            config.cyclists,
            &mut |rng: &mut StdRng| {
                let (lane, s) = town.random_lane_position(rng, 6.0);
                let cruise = rng.random_range(3.0..4.5);
                lane_actor(ActorKind::Cyclist, lane, s, w * 0.5 - 0.6, cruise, rng)
            },
            6.0,
            rng,
        );
        let (nx, ny) = (town.config().junctions_x, town.config().junctions_y);
        place(
            &mut actors,
            config.pedestrians,
            &mut |rng: &mut StdRng| {
                let block = (rng.random_range(0..nx - 1), rng.random_range(0..ny - 1));
                let corner = rng.random_range(0..4);
                let (from, to) = (block_corner(town, block, corner), block_corner(town, block, (corner + 1) % 4));
                let t = rng.random_range(0.0..1.0f32);
                Actor {
                    kind: ActorKind::Pedestrian,
                    position: from + (to - from) * t,
                    yaw: (to - from).angle(),
                    speed: 0.0,
                    albedo: PAINT[rng.random_range(0..PAINT.len())],
                    seed: rng.random(),
                    motion: Motion::Walk {
                        from,
                        to,
                        t,
                        block,
                        corner: (corner + 1) % 4,
                        crossing: false,
                        pace: rng.random_range(1.1..1.6),
                    },
                }
            },
            1.0,
            rng,
        );
        Traffic { actors }
    }

    /// Advances every actor by `dt`; vehicles stop for whatever is in front of them,
    /// `ego` (footprint and velocity) included.
    pub fn step(&mut self, town: &Town, ego: &Footprint, dt: f32, rng: &mut StdRng) {
        let n = self.actors.len();
        let headings: Vec<V2> = self.actors.iter().map(|a| V2::from_angle(a.yaw)).collect();
        // Who blocks whom, from the positions at the start of the step.
        let mut blocked = vec![None::<usize>; n];
        let mut ego_ahead = vec![false; n];
        for i in 0..n {
            let a = &self.actors[i];
            if !matches!(a.motion, Motion::Lane { .. }) {
                continue;
            }
            let (l, w, _) = a.kind.size();
            let f = headings[i];
            let reach = l * 0.5 + 2.5 + a.speed * 1.2;
            let in_corridor = |p: V2, radius: f32| {
                let d = p - a.position;
                let ahead = d.dot(f);
                ahead > 0.0 && ahead < reach + radius && d.dot(f.right()).abs() < w * 0.5 + radius.min(1.2) + 0.3
            };
            ego_ahead[i] = ego.corners().iter().any(|&c| in_corridor(c, 0.0)) || in_corridor(ego.center, 1.0);
            let far = reach + 6.0;
            for (j, (b, heading)) in self.actors.iter().zip(&headings).enumerate() {
                let d = b.position - a.position;
                if i == j || d.x.abs() > far || d.y.abs() > far {
                    continue;
                }
                // Oncoming traffic in its own lane is not in the way.
                if matches!(b.motion, Motion::Lane { .. }) && heading.dot(f) < -0.5 {
                    continue;
                }
                let (bl, bw, _) = b.kind.size();
                if in_corridor(b.position, 0.5 * bl.max(bw)) {
                    blocked[i] = Some(j);
                    break;
                }
            }
        }
        for i in 0..n {
            let stop = ego_ahead[i] || blocked[i].is_some_and(|j| blocked[j] != Some(i) || j < i);
            let actor = &mut self.actors[i];
            match &mut actor.motion {
                Motion::Static => {}
                Motion::Lane { path, seg, t, lane, in_lane, offset, cruise } => {
                    actor.speed =
                        if stop { (actor.speed - 6.0 * dt).max(0.0) } else { (actor.speed + 2.0 * dt).min(*cruise) };
                    let mut dist = actor.speed * dt;
                    loop {
                        let seg_len = path[*seg].dist(path[*seg + 1]).max(1e-3);
                        let left = (1.0 - *t) * seg_len;
                        if dist <= left {
                            *t += dist / seg_len;
                            break;
                        }
                        dist -= left;
                        if *seg + 2 < path.len() {
                            *seg += 1;
                            *t = 0.0;
                            continue;
                        }
                        // End of the path: into a junction, or out of one onto the next lane.
                        if *in_lane {
                            let out = town.outgoing(town.lanes()[*lane].to);
                            let here = town.lanes()[*lane].from;
                            let choices: Vec<usize> =
                                out.iter().copied().filter(|&o| town.lanes()[o].to != here).collect();
                            let next =
                                if choices.is_empty() { out[0] } else { choices[rng.random_range(0..choices.len())] };
                            *path = town.connector(*lane, next, 8);
                            *lane = next;
                            *in_lane = false;
                        } else {
                            // The connector ends on the lane (after the turn's lead).
                            let l = town.lanes()[*lane];
                            let from = *path.last().unwrap_or(&l.start);
                            *path = vec![from, l.end];
                            *in_lane = true;
                        }
                        *seg = 0;
                        *t = 0.0;
                    }
                    let (p, tangent) = pose_on(path, *seg, *t);
                    actor.position = p + tangent.right() * *offset;
                    actor.yaw = tangent.angle();
                }
                Motion::Walk { from, to, t, block, corner, crossing, pace } => {
                    actor.speed = *pace;
                    let len = from.dist(*to).max(1e-3);
                    *t += actor.speed * dt / len;
                    if *t >= 1.0 {
                        // At a corner: walk on round the block, or cross to the next block.
                        let (nx, ny) = (town.config().junctions_x, town.config().junctions_y);
                        let across =
                            if *crossing { None } else { crossing_target(*block, *corner, nx - 1, ny - 1, rng) };
                        let start = *to;
                        match across {
                            Some((b, c)) => {
                                *block = b;
                                *corner = c;
                                *to = block_corner(town, b, c);
                                *crossing = true;
                            }
                            None => {
                                *corner = (*corner + 1) % 4;
                                *to = block_corner(town, *block, *corner);
                                *crossing = false;
                            }
                        }
                        *from = start;
                        *t = 0.0;
                    }
                    actor.position = *from + (*to - *from) * *t;
                    actor.yaw = (*to - *from).angle();
                }
            }
        }
    }
}

/// Corner `k` (0 SW, 1 SE, 2 NE, 3 NW) of the walking ring round block `(bx, by)` (the block
/// between junction columns `bx, bx+1` and rows `by, by+1`), in the middle of the sidewalk.
fn block_corner(town: &Town, (bx, by): (usize, usize), k: usize) -> V2 {
    let s = town.config().block;
    let inset = town.road_half_width() + town.config().sidewalk * 0.5;
    let (x0, x1) = ((bx as f32 + 0.5) * s + inset, (bx as f32 + 1.5) * s - inset);
    let (y0, y1) = ((by as f32 + 0.5) * s + inset, (by as f32 + 1.5) * s - inset);
    match k {
        0 => V2::new(x0, y0),
        1 => V2::new(x1, y0),
        2 => V2::new(x1, y1),
        _ => V2::new(x0, y1),
    }
}

/// With probability ½, the block and corner across the road from corner `k` of `block`
/// (along the side the pedestrian was not walking on), if that block exists.
fn crossing_target(
    block: (usize, usize),
    k: usize,
    bx: usize,
    by: usize,
    rng: &mut StdRng,
) -> Option<((usize, usize), usize)> {
    if !rng.random_bool(0.5) {
        return None;
    }
    let (x, y) = (block.0 as isize, block.1 as isize);
    // Crossing perpendicular to the next stretch of the ring: across x for corners 1 and 3,
    // across y for 0 and 2 (alternating keeps both kinds of crossing).
    let (target, corner) = match k {
        0 => ((x, y - 1), 3),
        1 => ((x + 1, y), 0),
        2 => ((x, y + 1), 1),
        _ => ((x - 1, y), 2),
    };
    if target.0 < 0 || target.1 < 0 || target.0 >= bx as isize || target.1 >= by as isize {
        return None;
    }
    Some(((target.0 as usize, target.1 as usize), corner))
}
