//! The route planner: the shortest lane route from the start to the goal (Dijkstra over
//! lanes, no U-turns), the distance left along it, and the high-level command of the paper's
//! measurement vector (follow lane / turn left / turn right / go straight, as in CARLA).

use super::geometry::V2;
use super::town::Town;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The high-level command given to the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Command {
    /// Keep the lane.
    FollowLane,
    /// Turn left at the next junction.
    Left,
    /// Turn right at the next junction.
    Right,
    /// Go straight through the next junction.
    Straight,
}

impl Command {
    /// Every command, in the order of [`Command::one_hot`].
    pub const ALL: [Command; 4] = [Command::FollowLane, Command::Left, Command::Right, Command::Straight];

    /// The command as a one-hot vector (follow, left, right, straight).
    pub fn one_hot(self) -> [f32; 4] {
        let mut v = [0.0; 4];
        v[Command::ALL.iter().position(|c| *c == self).unwrap_or(0)] = 1.0;
        v
    }

    /// The turn from a lane heading `a` into a lane heading `b`.
    pub fn turn(a: V2, b: V2) -> Command {
        let c = a.cross(b);
        if c > 0.5 {
            Command::Left
        } else if c < -0.5 {
            Command::Right
        } else {
            Command::Straight
        }
    }
}

/// How far before a junction its command is announced, metres.
pub const COMMAND_LEAD: f32 = 15.0;

/// A planned route: a polyline along lane centres and through junctions.
#[derive(Clone, Debug)]
pub struct Route {
    points: Vec<V2>,
    cum: Vec<f32>,
    /// `(start, end, command)` arc-length ranges of the junction crossings.
    turns: Vec<(f32, f32, Command)>,
    progress: f32,
    seg: usize,
}

#[derive(PartialEq)]
struct Entry(f32, usize);
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        o.0.total_cmp(&self.0)
    }
}

impl Route {
    /// The shortest route from `s0` metres along lane `from` to `s1` metres along lane `to`,
    /// or `None` when there is none.
    pub fn plan(town: &Town, from: usize, s0: f32, to: usize, s1: f32) -> Option<Route> {
        let lanes = town.lanes();
        let mut lane_seq = vec![from];
        if !(from == to && s1 >= s0) {
            let n = lanes.len();
            let mut dist = vec![f32::INFINITY; n];
            let mut prev = vec![usize::MAX; n];
            let mut heap = BinaryHeap::new();
            dist[from] = 0.0;
            heap.push(Entry(0.0, from));
            while let Some(Entry(d, l)) = heap.pop() {
                if d > dist[l] {
                    continue;
                }
                if l == to && l != from {
                    break;
                }
                let here = lanes[l].from;
                for &o in town.outgoing(lanes[l].to) {
                    if lanes[o].to == here && town.outgoing(lanes[l].to).len() > 1 {
                        continue;
                    }
                    let nd = d + lanes[o].length() + 10.0;
                    if nd < dist[o] {
                        dist[o] = nd;
                        prev[o] = l;
                        heap.push(Entry(nd, o));
                    }
                }
            }
            if prev[to] == usize::MAX {
                return None;
            }
            let mut seq = vec![to];
            let mut l = to;
            while prev[l] != from {
                l = prev[l];
                if l == usize::MAX || seq.len() > n {
                    return None;
                }
                seq.push(l);
            }
            seq.push(from);
            seq.reverse();
            lane_seq = seq;
        }
        let mut points = vec![lanes[from].at(s0)];
        let mut turns = vec![];
        let mut cum = vec![0.0];
        let push = |points: &mut Vec<V2>, cum: &mut Vec<f32>, p: V2| {
            let last = *points.last().unwrap_or(&p);
            let d = last.dist(p);
            if d > 1e-4 {
                cum.push(cum.last().copied().unwrap_or(0.0) + d);
                points.push(p);
            }
        };
        for (k, &l) in lane_seq.iter().enumerate() {
            if k + 1 == lane_seq.len() {
                push(&mut points, &mut cum, lanes[l].at(s1));
                break;
            }
            let next = lane_seq[k + 1];
            let connector = town.connector(l, next, 10);
            push(&mut points, &mut cum, connector[0]);
            let start = *cum.last().unwrap_or(&0.0);
            for &p in &connector[1..] {
                push(&mut points, &mut cum, p);
            }
            turns.push((start, *cum.last().unwrap_or(&0.0), Command::turn(lanes[l].dir, lanes[next].dir)));
        }
        if points.len() < 2 {
            let p = points[0];
            push(&mut points, &mut cum, p + lanes[to].dir * 0.01);
        }
        Some(Route { points, cum, turns, progress: 0.0, seg: 0 })
    }

    /// The polyline.
    pub fn points(&self) -> &[V2] {
        &self.points
    }

    /// Total length, metres.
    pub fn length(&self) -> f32 {
        *self.cum.last().unwrap_or(&0.0)
    }

    /// The goal.
    pub fn goal(&self) -> V2 {
        *self.points.last().unwrap_or(&V2::default())
    }

    /// Arc length of the projection of the car onto the route (updated by [`Route::track`]).
    pub fn progress(&self) -> f32 {
        self.progress
    }

    /// Distance left along the route, metres.
    pub fn remaining(&self) -> f32 {
        (self.length() - self.progress).max(0.0)
    }

    /// Projects `p` onto the route near the last projection (a window of segments around it,
    /// so that a route crossing itself is followed in order) and returns the distance left.
    pub fn track(&mut self, p: V2) -> f32 {
        let lo = self.seg.saturating_sub(2);
        let hi = (self.seg + 24).min(self.points.len() - 1);
        self.project(p, lo, hi)
    }

    /// Projects `p` onto the nearest point of the whole route (after a jump of the car) and
    /// returns the distance left.
    pub fn relocate(&mut self, p: V2) -> f32 {
        self.project(p, 0, self.points.len() - 1)
    }

    /// Projects `p` onto segments `lo..hi`, keeping the nearest.
    fn project(&mut self, p: V2, lo: usize, hi: usize) -> f32 {
        let mut best = (f32::INFINITY, self.seg, self.progress);
        for k in lo..hi {
            let (a, b) = (self.points[k], self.points[k + 1]);
            let ab = b - a;
            let len2 = ab.dot(ab).max(1e-9);
            let t = ((p - a).dot(ab) / len2).clamp(0.0, 1.0);
            let d = (a + ab * t).dist(p);
            if d < best.0 {
                best = (d, k, self.cum[k] + t * len2.sqrt());
            }
        }
        self.seg = best.1;
        self.progress = best.2;
        self.remaining()
    }

    /// Lateral distance from `p` to the route near the current projection.
    pub fn distance_to(&self, p: V2) -> f32 {
        let q = self.point_at(self.progress);
        q.dist(p)
    }

    /// The point at arc length `s` (clamped to the route).
    pub fn point_at(&self, s: f32) -> V2 {
        let s = s.clamp(0.0, self.length());
        let k = self.cum.partition_point(|&c| c <= s).clamp(1, self.points.len() - 1) - 1;
        let seg = (self.cum[k + 1] - self.cum[k]).max(1e-9);
        let t = (s - self.cum[k]) / seg;
        self.points[k] + (self.points[k + 1] - self.points[k]) * t
    }

    /// The command at the current progress: a turn from [`COMMAND_LEAD`] metres before its
    /// junction until the junction is crossed, else follow the lane.
    pub fn command(&self) -> Command {
        let s = self.progress;
        self.turns.iter().find(|(a, b, _)| s >= a - COMMAND_LEAD && s <= *b).map_or(Command::FollowLane, |t| t.2)
    }

    /// The junction crossings: arc-length ranges and the turn.
    pub fn turns(&self) -> &[(f32, f32, Command)] {
        &self.turns
    }
}
