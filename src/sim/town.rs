//! Procedural towns: a road grid with two-lane roads, junctions, crossings and sidewalks;
//! lots of buildings, parks and walled yards; street furniture (poles, trees, traffic signs
//! and lights). Everything is drawn from one seed, so a town is reproducible and the
//! "training town" and the "new towns" of Tables IV–VI are simply different seeds.
//!
//! The ground is a raster (cells of [`Town::CELL`] metres) that stores, per cell, the surface
//! (road / sidewalk / terrain), the travel direction of the lane (right-hand traffic) and the
//! paint (centre line, zebra crossing); it serves the renderer, the off-lane / off-road
//! measurements and the map. Everything that stands on the ground is a [`Prop`]: a box with a
//! footprint, a base height, a height and a Cityscapes train id.

use super::camera::Solid;
use super::geometry::{Footprint, V2};
use crate::{Error, Result};
use rand::rngs::StdRng;
use rand::Rng;

/// The town the paper trains in (Tables IV–VI, "training town").
pub const TRAINING_TOWN: u64 = 1;
/// Towns never used for training: the "new town" conditions of Tables IV–VI.
pub const NEW_TOWNS: [u64; 3] = [2, 3, 4];

/// Cityscapes train ids used by the simulator (the labels of its frames).
pub mod label {
    /// road
    pub const ROAD: u8 = 0;
    /// sidewalk
    pub const SIDEWALK: u8 = 1;
    /// building
    pub const BUILDING: u8 = 2;
    /// wall
    pub const WALL: u8 = 3;
    /// fence
    pub const FENCE: u8 = 4;
    /// pole
    pub const POLE: u8 = 5;
    /// traffic light
    pub const TRAFFIC_LIGHT: u8 = 6;
    /// traffic sign
    pub const TRAFFIC_SIGN: u8 = 7;
    /// vegetation
    pub const VEGETATION: u8 = 8;
    /// terrain
    pub const TERRAIN: u8 = 9;
    /// sky
    pub const SKY: u8 = 10;
    /// person
    pub const PERSON: u8 = 11;
    /// rider
    pub const RIDER: u8 = 12;
    /// car
    pub const CAR: u8 = 13;
    /// truck
    pub const TRUCK: u8 = 14;
    /// bus
    pub const BUS: u8 = 15;
    /// bicycle
    pub const BICYCLE: u8 = 18;
}

/// Size and layout parameters of a town.
#[derive(Clone, Debug, PartialEq)]
pub struct TownConfig {
    /// The seed: same seed, same town.
    pub seed: u64,
    /// Junctions along x.
    pub junctions_x: usize,
    /// Junctions along y.
    pub junctions_y: usize,
    /// Distance between neighbouring junctions, metres.
    pub block: f32,
    /// Width of one lane (each road has one lane per direction), metres.
    pub lane_width: f32,
    /// Width of the sidewalks, metres.
    pub sidewalk: f32,
    /// Fraction of the grid's road segments removed (keeping every junction at two roads or
    /// more and the network connected), for T-junctions and irregular blocks.
    pub removed_roads: f32,
}

impl TownConfig {
    /// A 5 × 5-junction town (275 m square) with seed `seed`.
    pub fn new(seed: u64) -> Self {
        TownConfig {
            seed,
            junctions_x: 5,
            junctions_y: 5,
            block: 55.0,
            lane_width: 3.5,
            sidewalk: 3.0,
            removed_roads: 0.2,
        }
    }

    /// Checks the parameters, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.junctions_x < 2 || self.junctions_y < 2 || self.junctions_x * self.junctions_y > 400 {
            return Err(Error::invalid(
                "town junctions",
                format!("{}x{}", self.junctions_x, self.junctions_y),
                "need at least 2 x 2 and at most 400 junctions",
            ));
        }
        if !(self.lane_width.is_finite() && (2.5..=5.0).contains(&self.lane_width)) {
            return Err(Error::invalid("lane_width", self.lane_width, "must be in [2.5, 5] m"));
        }
        if !(self.sidewalk.is_finite() && (1.5..=6.0).contains(&self.sidewalk)) {
            return Err(Error::invalid("sidewalk", self.sidewalk, "must be in [1.5, 6] m"));
        }
        let min_block = 2.0 * (self.lane_width + self.sidewalk) + 30.0;
        if !(self.block.is_finite() && self.block >= min_block && self.block <= 200.0) {
            return Err(Error::invalid(
                "block",
                self.block,
                format!("must be in [{min_block}, 200] m for these lane and sidewalk widths"),
            ));
        }
        if !(0.0..=0.5).contains(&self.removed_roads) {
            return Err(Error::invalid("removed_roads", self.removed_roads, "must be in [0, 0.5]"));
        }
        Ok(())
    }
}

/// What the ground is made of in one raster cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Grass and dirt (Cityscapes *terrain*).
    Terrain,
    /// Pavement for pedestrians.
    Sidewalk,
    /// Asphalt.
    Road,
}

/// Paint on the road.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    /// None.
    None,
    /// The dashed centre line between the two lanes.
    CentreLine,
    /// A stripe of a zebra crossing.
    Crosswalk,
}

/// One raster cell: surface, lane direction and paint, packed in a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ground(u8);

impl Ground {
    const fn pack(surface: Surface, lane: u8, paint: Paint) -> Ground {
        let s = match surface {
            Surface::Terrain => 0,
            Surface::Sidewalk => 1,
            Surface::Road => 2,
        };
        let p = match paint {
            Paint::None => 0,
            Paint::CentreLine => 1,
            Paint::Crosswalk => 2,
        };
        Ground(s | (lane << 2) | (p << 5))
    }

    /// The surface.
    pub fn surface(self) -> Surface {
        match self.0 & 3 {
            1 => Surface::Sidewalk,
            2 => Surface::Road,
            _ => Surface::Terrain,
        }
    }

    /// The paint.
    pub fn paint(self) -> Paint {
        match (self.0 >> 5) & 3 {
            1 => Paint::CentreLine,
            2 => Paint::Crosswalk,
            _ => Paint::None,
        }
    }

    /// Travel direction of the lane this cell belongs to; `None` off the road and inside
    /// junctions (where every direction is allowed).
    pub fn lane_direction(self) -> Option<V2> {
        match (self.0 >> 2) & 7 {
            1 => Some(V2::new(1.0, 0.0)),
            2 => Some(V2::new(0.0, 1.0)),
            3 => Some(V2::new(-1.0, 0.0)),
            4 => Some(V2::new(0.0, -1.0)),
            _ => None,
        }
    }

    /// The Cityscapes train id of the ground (road markings are road, as in Cityscapes).
    pub fn label(self) -> u8 {
        match self.surface() {
            Surface::Road => label::ROAD,
            Surface::Sidewalk => label::SIDEWALK,
            Surface::Terrain => label::TERRAIN,
        }
    }
}

/// What a prop is, for collisions (how hard it is) and for the map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PropKind {
    /// A building block.
    Building,
    /// A masonry wall around a yard.
    Wall,
    /// A light fence around a park.
    Fence,
    /// A street lamp pole (or the pole of a sign or light).
    Pole,
    /// The housing of a traffic light.
    TrafficLight,
    /// The plate of a traffic sign.
    TrafficSign,
    /// A tree trunk.
    Trunk,
    /// A tree's canopy (above the car: never hit).
    Canopy,
}

/// A box standing in the town.
#[derive(Clone, Copy, Debug)]
pub struct Prop {
    /// Where it stands.
    pub footprint: Footprint,
    /// Height of its bottom above the ground (0 for most, > 0 for canopies, lights, plates).
    pub z0: f32,
    /// Its height.
    pub height: f32,
    /// Cityscapes train id.
    pub label: u8,
    /// What it is.
    pub kind: PropKind,
    /// Base colour, linear RGB in [0, 1].
    pub albedo: [f32; 3],
    /// Texture seed.
    pub seed: u32,
}

impl Prop {
    /// The box the renderer draws.
    pub fn solid(&self) -> Solid {
        Solid {
            footprint: self.footprint,
            z0: self.z0,
            height: self.height,
            label: self.label,
            albedo: self.albedo,
            seed: self.seed,
        }
    }
}

/// A junction of the road grid.
#[derive(Clone, Copy, Debug)]
pub struct Junction {
    /// Centre.
    pub center: V2,
    /// Grid coordinates.
    pub grid: (usize, usize),
}

/// One lane of a road segment between two junctions, in its direction of travel.
#[derive(Clone, Copy, Debug)]
pub struct Lane {
    /// Junction it leaves.
    pub from: usize,
    /// Junction it enters.
    pub to: usize,
    /// Centre of the lane where it leaves `from`'s junction box.
    pub start: V2,
    /// Centre of the lane where it enters `to`'s junction box.
    pub end: V2,
    /// Unit travel direction.
    pub dir: V2,
}

impl Lane {
    /// Length from `start` to `end`.
    pub fn length(&self) -> f32 {
        self.start.dist(self.end)
    }

    /// The point `s` metres after `start`.
    pub fn at(&self, s: f32) -> V2 {
        self.start + self.dir * s
    }
}

/// What a prop is and how it looks (label, kind, colour, texture seed).
#[derive(Clone, Copy, Debug)]
struct Look {
    label: u8,
    kind: PropKind,
    albedo: [f32; 3],
    seed: u32,
}

/// What fills a lot between roads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LotKind {
    /// Buildings.
    Buildings,
    /// A park with trees behind a fence.
    Park,
    /// A yard behind a wall, with a building.
    Walled,
}

/// A procedurally generated town.
#[derive(Clone, Debug)]
pub struct Town {
    config: TownConfig,
    size: V2,
    cols: usize,
    rows: usize,
    ground: Vec<Ground>,
    junctions: Vec<Junction>,
    /// Road segments as pairs of junction indices.
    roads: Vec<(usize, usize)>,
    lanes: Vec<Lane>,
    outgoing: Vec<Vec<usize>>,
    props: Vec<Prop>,
    lots: Vec<(V2, V2, LotKind)>,
    index_cols: usize,
    index_rows: usize,
    index: Vec<Vec<u32>>,
}

const PALETTE_BUILDING: [[f32; 3]; 6] = [
    [0.62, 0.55, 0.45],
    [0.55, 0.30, 0.25],
    [0.50, 0.50, 0.52],
    [0.75, 0.72, 0.66],
    [0.40, 0.38, 0.36],
    [0.66, 0.60, 0.50],
];

impl Town {
    /// Size of a ground raster cell, metres.
    pub const CELL: f32 = 0.25;
    /// Size of a cell of the prop index, metres.
    pub const INDEX_CELL: f32 = 16.0;
    /// Radius of the rounded curb at the corners of junctions, metres.
    pub const CURB_RADIUS: f32 = 4.0;
    /// Turns through a junction start this far before the junction box and end this far
    /// after it, so that their radius suits a car, metres.
    pub const TURN_LEAD: f32 = 4.0;

    /// Generates the town of `config` (deterministic in `config.seed`).
    pub fn generate(config: &TownConfig) -> Result<Town> {
        config.validate()?;
        let mut rng = crate::random::seeded(config.seed ^ 0x7077_4E00);
        let (nx, ny, s) = (config.junctions_x, config.junctions_y, config.block);
        let size = V2::new(nx as f32 * s, ny as f32 * s);
        let junctions: Vec<Junction> = (0..ny)
            .flat_map(|j| (0..nx).map(move |i| (i, j)))
            .map(|(i, j)| Junction { center: V2::new((i as f32 + 0.5) * s, (j as f32 + 0.5) * s), grid: (i, j) })
            .collect();
        let id = |i: usize, j: usize| j * nx + i;
        let mut roads = vec![];
        for j in 0..ny {
            for i in 0..nx {
                if i + 1 < nx {
                    roads.push((id(i, j), id(i + 1, j)));
                }
                if j + 1 < ny {
                    roads.push((id(i, j), id(i, j + 1)));
                }
            }
        }
        // Remove a fraction of the segments, keeping degree >= 2 and connectivity.
        let target = (roads.len() as f32 * config.removed_roads).round() as usize;
        let mut removed = 0;
        let mut attempts = 0;
        while removed < target && attempts < roads.len() * 4 {
            attempts += 1;
            let k = rng.random_range(0..roads.len());
            let (a, b) = roads[k];
            let degree = |n: usize, roads: &[(usize, usize)]| roads.iter().filter(|&&(p, q)| p == n || q == n).count();
            if degree(a, &roads) <= 2 || degree(b, &roads) <= 2 {
                continue;
            }
            let mut trial = roads.clone();
            trial.swap_remove(k);
            if connected(junctions.len(), &trial) {
                roads = trial;
                removed += 1;
            }
        }
        roads.sort_unstable();

        let cols = (size.x / Self::CELL).ceil() as usize;
        let rows = (size.y / Self::CELL).ceil() as usize;
        let index_cols = (size.x / Self::INDEX_CELL).ceil() as usize;
        let index_rows = (size.y / Self::INDEX_CELL).ceil() as usize;
        let mut town = Town {
            config: config.clone(),
            size,
            cols,
            rows,
            ground: vec![Ground::pack(Surface::Terrain, 0, Paint::None); cols * rows],
            junctions,
            roads,
            lanes: vec![],
            outgoing: vec![],
            props: vec![],
            lots: vec![],
            index_cols,
            index_rows,
            index: vec![vec![]; index_cols * index_rows],
        };
        town.paint_ground();
        town.build_lanes();
        town.build_lots(&mut rng);
        town.build_street_furniture(&mut rng);
        for k in 0..town.props.len() {
            town.index_prop(k);
        }
        Ok(town)
    }

    /// The configuration it was generated from.
    pub fn config(&self) -> &TownConfig {
        &self.config
    }

    /// Extent of the town, metres (from the origin).
    pub fn size(&self) -> V2 {
        self.size
    }

    /// The junctions.
    pub fn junctions(&self) -> &[Junction] {
        &self.junctions
    }

    /// The road segments, as pairs of junction indices.
    pub fn roads(&self) -> &[(usize, usize)] {
        &self.roads
    }

    /// Every lane (two per road segment).
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Lanes leaving junction `j`.
    pub fn outgoing(&self, j: usize) -> &[usize] {
        &self.outgoing[j]
    }

    /// Every prop.
    pub fn props(&self) -> &[Prop] {
        &self.props
    }

    /// The lots between roads and what fills them (min corner, max corner, kind).
    pub fn lots(&self) -> &[(V2, V2, LotKind)] {
        &self.lots
    }

    /// Half the width of a road (= one lane width) and the half-size of a junction box.
    pub fn road_half_width(&self) -> f32 {
        self.config.lane_width
    }

    /// The ground at `p` (terrain outside the town).
    #[inline]
    pub fn ground_at(&self, p: V2) -> Ground {
        let (c, r) = ((p.x * (1.0 / Self::CELL)) as isize, (p.y * (1.0 / Self::CELL)) as isize);
        if p.x < 0.0 || p.y < 0.0 || c as usize >= self.cols || r as usize >= self.rows {
            return Ground::pack(Surface::Terrain, 0, Paint::None);
        }
        self.ground[r as usize * self.cols + c as usize]
    }

    /// Indices of the props whose footprint may reach within `radius` of `p` (a prop may
    /// appear more than once).
    pub fn props_near(&self, p: V2, radius: f32) -> impl Iterator<Item = usize> + '_ {
        let (c0, c1) = self.index_span(p.x - radius, p.x + radius, self.index_cols);
        let (r0, r1) = self.index_span(p.y - radius, p.y + radius, self.index_rows);
        (r0..r1).flat_map(move |r| {
            (c0..c1).flat_map(move |c| self.index[r * self.index_cols + c].iter().map(|&k| k as usize))
        })
    }

    /// The prop-index cell range covering `[lo, hi]` metres along one axis.
    fn index_span(&self, lo: f32, hi: f32, n: usize) -> (usize, usize) {
        let a = (lo / Self::INDEX_CELL).floor().max(0.0) as usize;
        let b = ((hi / Self::INDEX_CELL).floor() + 1.0).max(0.0) as usize;
        (a.min(n), b.min(n))
    }

    /// The prop index for the renderer's culling: columns, rows, and the props of each cell
    /// (row-major, cells of [`Town::INDEX_CELL`] metres).
    pub(crate) fn index_cells(&self) -> (usize, usize, &[Vec<u32>]) {
        (self.index_cols, self.index_rows, &self.index)
    }

    fn index_prop(&mut self, k: usize) {
        let fp = self.props[k].footprint;
        let r = fp.half_length.hypot(fp.half_width);
        let (c0, c1) = self.index_span(fp.center.x - r, fp.center.x + r, self.index_cols);
        let (r0, r1) = self.index_span(fp.center.y - r, fp.center.y + r, self.index_rows);
        for row in r0..r1 {
            for col in c0..c1 {
                self.index[row * self.index_cols + col].push(k as u32);
            }
        }
    }

    fn fill(&mut self, lo: V2, hi: V2, mut cell: impl FnMut(V2) -> Option<Ground>) {
        let c0 = (lo.x / Self::CELL).floor().max(0.0) as usize;
        let r0 = (lo.y / Self::CELL).floor().max(0.0) as usize;
        let c1 = ((hi.x / Self::CELL).ceil().max(0.0) as usize).min(self.cols);
        let r1 = ((hi.y / Self::CELL).ceil().max(0.0) as usize).min(self.rows);
        for r in r0..r1 {
            for c in c0..c1 {
                let p = V2::new((c as f32 + 0.5) * Self::CELL, (r as f32 + 0.5) * Self::CELL);
                if p.x >= lo.x && p.x < hi.x && p.y >= lo.y && p.y < hi.y {
                    if let Some(g) = cell(p) {
                        self.ground[r * self.cols + c] = g;
                    }
                }
            }
        }
    }

    fn paint_ground(&mut self) {
        let w = self.config.lane_width;
        let sw = self.config.sidewalk;
        let side = Ground::pack(Surface::Sidewalk, 0, Paint::None);
        let roads = self.roads.clone();
        // Sidewalks along every road and around every junction that has one.
        for &(a, b) in &roads {
            let (lo, hi) = corners_of(self.junctions[a].center, self.junctions[b].center);
            self.fill(lo - V2::new(w + sw, w + sw), hi + V2::new(w + sw, w + sw), |_| Some(side));
        }
        for &(a, b) in &roads {
            let (pa, pb) = (self.junctions[a].center, self.junctions[b].center);
            let horizontal = (pb.y - pa.y).abs() < 1e-3;
            let (lo, hi) = corners_of(pa, pb);
            self.fill(lo - V2::new(w, w), hi + V2::new(w, w), |p| {
                let near_a = (p.x - pa.x).abs() <= w && (p.y - pa.y).abs() <= w;
                let near_b = (p.x - pb.x).abs() <= w && (p.y - pb.y).abs() <= w;
                if near_a || near_b {
                    return Some(Ground::pack(Surface::Road, 0, Paint::None));
                }
                // Lane direction, right-hand traffic; lateral offset from the centre line.
                let (lane, lateral, along, d_a, d_b) = if horizontal {
                    let lane = if p.y < pa.y { 1 } else { 3 };
                    (lane, p.y - pa.y, p.x, (p.x - pa.x).abs(), (p.x - pb.x).abs())
                } else {
                    let lane = if p.x > pa.x { 2 } else { 4 };
                    (lane, p.x - pa.x, p.y, (p.y - pa.y).abs(), (p.y - pb.y).abs())
                };
                let from_junction = d_a.min(d_b);
                let paint = if from_junction > w + 1.0
                    && from_junction < w + 4.0
                    && (lateral.abs() < w - 0.3)
                    && ((lateral + w) / 0.5) as i32 % 2 == 0
                {
                    Paint::Crosswalk
                } else if from_junction > w + 5.0
                    && (-0.13..0.0).contains(&lateral)
                    && (along / 3.0).floor() as i32 % 2 == 0
                {
                    Paint::CentreLine
                } else {
                    Paint::None
                };
                Some(Ground::pack(Surface::Road, lane, paint))
            });
        }
        // Rounded curbs where two roads meet at a corner: the corner square outside the curb
        // circle becomes junction road.
        let rc = Self::CURB_RADIUS;
        for j in 0..self.junctions.len() {
            let c = self.junctions[j].center;
            let arm = |dx: f32, dy: f32| {
                roads.iter().any(|&(a, b)| {
                    let other = if a == j {
                        b
                    } else if b == j {
                        a
                    } else {
                        return false;
                    };
                    let d = (self.junctions[other].center - c).normalized();
                    d.x * dx + d.y * dy > 0.5
                })
            };
            let corners: Vec<(f32, f32)> = [(1.0f32, 1.0f32), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)]
                .into_iter()
                .filter(|&(sx, sy)| arm(sx, 0.0) && arm(0.0, sy))
                .collect();
            for (sx, sy) in corners {
                let centre = c + V2::new(sx * (w + rc), sy * (w + rc));
                let (lo, hi) = corners_of(c + V2::new(sx * w, sy * w), centre);
                self.fill(lo, hi, |p| (p.dist(centre) > rc).then_some(Ground::pack(Surface::Road, 0, Paint::None)));
            }
        }
    }

    fn build_lanes(&mut self) {
        let w = self.config.lane_width;
        self.outgoing = vec![vec![]; self.junctions.len()];
        for &(a, b) in &self.roads {
            for (from, to) in [(a, b), (b, a)] {
                let (pf, pt) = (self.junctions[from].center, self.junctions[to].center);
                let dir = (pt - pf).normalized();
                let off = dir.right() * (w * 0.5);
                self.outgoing[from].push(self.lanes.len());
                self.lanes.push(Lane { from, to, start: pf + dir * w + off, end: pt - dir * w + off, dir });
            }
        }
    }

    fn push_box(&mut self, footprint: Footprint, z0: f32, height: f32, look: Look) {
        self.props.push(Prop {
            footprint,
            z0,
            height,
            label: look.label,
            kind: look.kind,
            albedo: look.albedo,
            seed: look.seed,
        });
    }

    /// A wall or fence from `a` to `b`.
    fn push_barrier(&mut self, a: V2, b: V2, thickness: f32, height: f32, look: Look) {
        let d = b - a;
        let len = d.norm();
        if len < 0.5 {
            return;
        }
        self.push_box(
            Footprint { center: (a + b) * 0.5, yaw: d.angle(), half_length: len * 0.5, half_width: thickness * 0.5 },
            0.0,
            height,
            look,
        );
    }

    fn build_lots(&mut self, rng: &mut StdRng) {
        let (nx, ny) = (self.config.junctions_x, self.config.junctions_y);
        let edge = self.config.lane_width + self.config.sidewalk;
        let s = self.config.block;
        let bound = |k: usize, n: usize, total: f32| -> (f32, f32) {
            let lo = if k == 0 { 0.0 } else { (k as f32 - 0.5) * s + edge };
            let hi = if k == n { total } else { (k as f32 + 0.5) * s - edge };
            (lo, hi)
        };
        for b in 0..=ny {
            for a in 0..=nx {
                let (x0, x1) = bound(a, nx, self.size.x);
                let (y0, y1) = bound(b, ny, self.size.y);
                let (lo, hi) = (V2::new(x0, y0), V2::new(x1, y1));
                let outer = a == 0 || b == 0 || a == nx || b == ny;
                let kind = if outer {
                    LotKind::Buildings
                } else {
                    match rng.random_range(0..20) {
                        0..=10 => LotKind::Buildings,
                        11..=15 => LotKind::Park,
                        _ => LotKind::Walled,
                    }
                };
                self.lots.push((lo, hi, kind));
                match kind {
                    LotKind::Buildings => self.buildings(lo, hi, if outer { (14.0, 36.0) } else { (6.0, 28.0) }, rng),
                    LotKind::Park => {
                        let fence = Look {
                            label: label::FENCE,
                            kind: PropKind::Fence,
                            albedo: [0.42, 0.36, 0.28],
                            seed: rng.random(),
                        };
                        let (l, h) = self.enclose(lo, hi, fence);
                        let n = rng.random_range(4..12);
                        for _ in 0..n {
                            let p =
                                V2::new(rng.random_range(l.x + 3.0..h.x - 3.0), rng.random_range(l.y + 3.0..h.y - 3.0));
                            self.tree(p, rng);
                        }
                    }
                    LotKind::Walled => {
                        let wall = Look {
                            label: label::WALL,
                            kind: PropKind::Wall,
                            albedo: [0.58, 0.54, 0.48],
                            seed: rng.random(),
                        };
                        self.enclose(lo, hi, wall);
                        let m = V2::new(6.0, 6.0);
                        self.buildings(lo + m, hi - m, (5.0, 14.0), rng);
                    }
                }
            }
        }
    }

    /// A fence (1.3 m, with a 3 m gate on the south side) or a wall (2.4 m) round the lot
    /// `lo..hi`, 0.35 m inside its edges; returns the enclosed rectangle.
    fn enclose(&mut self, lo: V2, hi: V2, look: Look) -> (V2, V2) {
        let inset = V2::new(0.35, 0.35);
        let (l, h) = (lo + inset, hi - inset);
        let fence = look.kind == PropKind::Fence;
        let (t, height) = if fence { (0.08, 1.3) } else { (0.3, 2.4) };
        if fence {
            let g = (l.x + h.x) * 0.5;
            self.push_barrier(V2::new(l.x, l.y), V2::new(g - 1.5, l.y), t, height, look);
            self.push_barrier(V2::new(g + 1.5, l.y), V2::new(h.x, l.y), t, height, look);
        } else {
            self.push_barrier(V2::new(l.x, l.y), V2::new(h.x, l.y), t, height, look);
        }
        self.push_barrier(V2::new(l.x, h.y), V2::new(h.x, h.y), t, height, look);
        self.push_barrier(V2::new(l.x, l.y + t), V2::new(l.x, h.y - t), t, height, look);
        self.push_barrier(V2::new(h.x, l.y + t), V2::new(h.x, h.y - t), t, height, look);
        (l, h)
    }

    fn buildings(&mut self, lo: V2, hi: V2, heights: (f32, f32), rng: &mut StdRng) {
        let setback = rng.random_range(0.3..2.0f32);
        let (lo, hi) = (lo + V2::new(setback, setback), hi - V2::new(setback, setback));
        let (w, h) = (hi.x - lo.x, hi.y - lo.y);
        if w < 3.0 || h < 3.0 {
            return;
        }
        let kx = rng.random_range(1..=((w / 10.0) as usize).clamp(1, 3));
        let ky = rng.random_range(1..=((h / 10.0) as usize).clamp(1, 3));
        let gap = 1.5;
        let (cw, ch) = ((w - gap * (kx - 1) as f32) / kx as f32, (h - gap * (ky - 1) as f32) / ky as f32);
        for j in 0..ky {
            for i in 0..kx {
                let x0 = lo.x + i as f32 * (cw + gap);
                let y0 = lo.y + j as f32 * (ch + gap);
                // Inner buildings may shrink; the ones on the lot's edge keep the street line.
                let shrink_x = if i == 0 || i == kx - 1 { 0.0 } else { rng.random_range(0.0..cw * 0.2) };
                let shrink_y = if j == 0 || j == ky - 1 { 0.0 } else { rng.random_range(0.0..ch * 0.2) };
                let center = V2::new(x0 + cw * 0.5, y0 + ch * 0.5);
                let height = rng.random_range(heights.0..heights.1);
                let base = PALETTE_BUILDING[rng.random_range(0..PALETTE_BUILDING.len())];
                let jitter = rng.random_range(0.85..1.15f32);
                let albedo = base.map(|c| (c * jitter).min(1.0));
                self.push_box(
                    Footprint { center, yaw: 0.0, half_length: cw * 0.5 - shrink_x, half_width: ch * 0.5 - shrink_y },
                    0.0,
                    height,
                    Look { label: label::BUILDING, kind: PropKind::Building, albedo, seed: rng.random() },
                );
            }
        }
    }

    fn tree(&mut self, p: V2, rng: &mut StdRng) {
        let seed = rng.random();
        let trunk = rng.random_range(2.0..3.2f32);
        let crown = rng.random_range(1.2..2.4f32);
        let green = [rng.random_range(0.12..0.22f32), rng.random_range(0.30..0.45f32), rng.random_range(0.08..0.16f32)];
        self.push_box(
            Footprint { center: p, yaw: 0.0, half_length: 0.2, half_width: 0.2 },
            0.0,
            trunk,
            Look { label: label::VEGETATION, kind: PropKind::Trunk, albedo: [0.30, 0.22, 0.15], seed },
        );
        let yaw = rng.random_range(0.0..1.5f32);
        self.push_box(
            Footprint { center: p, yaw, half_length: crown, half_width: crown },
            trunk,
            crown * 1.8,
            Look { label: label::VEGETATION, kind: PropKind::Canopy, albedo: green, seed },
        );
    }

    fn build_street_furniture(&mut self, rng: &mut StdRng) {
        let w = self.config.lane_width;
        let sw = self.config.sidewalk;
        let metal = [0.33, 0.33, 0.35];
        let roads = self.roads.clone();
        for &(a, b) in &roads {
            let (pa, pb) = (self.junctions[a].center, self.junctions[b].center);
            let dir = (pb - pa).normalized();
            let len = pa.dist(pb);
            let trees = rng.random_bool(0.45);
            for side in [-1.0f32, 1.0] {
                let normal = dir.right() * side;
                // Lamp poles at the curb.
                let mut s = w + sw + rng.random_range(2.0..8.0);
                while s < len - (w + sw + 2.0) {
                    self.push_box(
                        Footprint {
                            center: pa + dir * s + normal * (w + 0.4),
                            yaw: 0.0,
                            half_length: 0.12,
                            half_width: 0.12,
                        },
                        0.0,
                        7.0,
                        Look { label: label::POLE, kind: PropKind::Pole, albedo: metal, seed: rng.random() },
                    );
                    s += rng.random_range(18.0..28.0);
                }
                if trees {
                    let mut s = w + sw + rng.random_range(4.0..9.0);
                    while s < len - (w + sw + 4.0) {
                        self.tree(pa + dir * s + normal * (w + sw - 0.7), rng);
                        s += rng.random_range(9.0..15.0);
                    }
                }
            }
            // A sign on the right of each lane, before the junction it enters.
            for (from, to, d) in [(pa, pb, dir), (pb, pa, -dir)] {
                let _ = from;
                if rng.random_bool(0.6) {
                    let at = to - d * (w + sw + 6.0) + d.right() * (w + 0.5);
                    self.push_box(
                        Footprint { center: at, yaw: 0.0, half_length: 0.06, half_width: 0.06 },
                        0.0,
                        2.9,
                        Look { label: label::POLE, kind: PropKind::Pole, albedo: metal, seed: rng.random() },
                    );
                    let colour = if rng.random_bool(0.5) { [0.75, 0.12, 0.10] } else { [0.12, 0.25, 0.65] };
                    self.push_box(
                        Footprint {
                            center: at,
                            yaw: d.angle() + std::f32::consts::FRAC_PI_2,
                            half_length: 0.4,
                            half_width: 0.03,
                        },
                        2.1,
                        0.8,
                        Look {
                            label: label::TRAFFIC_SIGN,
                            kind: PropKind::TrafficSign,
                            albedo: colour,
                            seed: rng.random(),
                        },
                    );
                }
            }
        }
        // Traffic lights at the corners of junctions with three or more roads.
        for j in 0..self.junctions.len() {
            let degree = roads.iter().filter(|&&(p, q)| p == j || q == j).count();
            if degree < 3 {
                continue;
            }
            let c = self.junctions[j].center;
            for (sx, sy) in [(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)] {
                // At the end of the rounded curb, beside the crossing.
                let at = c + V2::new(sx * (w + 0.5), sy * (w + Self::CURB_RADIUS));
                self.push_box(
                    Footprint { center: at, yaw: 0.0, half_length: 0.1, half_width: 0.1 },
                    0.0,
                    4.4,
                    Look { label: label::POLE, kind: PropKind::Pole, albedo: metal, seed: rng.random() },
                );
                self.push_box(
                    Footprint { center: at, yaw: 0.0, half_length: 0.18, half_width: 0.18 },
                    3.4,
                    0.95,
                    Look {
                        label: label::TRAFFIC_LIGHT,
                        kind: PropKind::TrafficLight,
                        albedo: [0.10, 0.10, 0.08],
                        seed: rng.random(),
                    },
                );
            }
        }
    }

    /// The path through junction `lane_in.to` from `lane_in` to `lane_out`: a straight line
    /// from the end of one to the start of the other, or for turns a quadratic Bézier curve,
    /// from [`Town::TURN_LEAD`] metres before the end of `lane_in` to as far after the start
    /// of `lane_out` for right turns (left turns are wide enough without); `points` samples
    /// including both ends.
    pub fn connector(&self, lane_in: usize, lane_out: usize, points: usize) -> Vec<V2> {
        let (a, b) = (self.lanes[lane_in], self.lanes[lane_out]);
        let turn = a.dir.cross(b.dir);
        let lead = if turn < -0.5 { Self::TURN_LEAD } else { 0.0 };
        let (p0, p2) = (a.end - a.dir * lead, b.start + b.dir * lead);
        let control = if turn.abs() < 0.5 {
            if a.dir.dot(b.dir) > 0.0 {
                (p0 + p2) * 0.5
            } else {
                (p0 + p2) * 0.5 + a.dir * (self.config.lane_width * 1.5)
            }
        } else {
            p0 + a.dir * (p2 - p0).dot(a.dir)
        };
        let n = points.max(2);
        (0..n)
            .map(|k| {
                let t = k as f32 / (n - 1) as f32;
                p0 * ((1.0 - t) * (1.0 - t)) + control * (2.0 * t * (1.0 - t)) + p2 * (t * t)
            })
            .collect()
    }

    /// The lane under `p` whose direction is closest to `heading`, and how far along it `p`
    /// is: `(lane, s)`; `None` off the lanes (and inside junction boxes).
    pub fn lane_at(&self, p: V2, heading: V2) -> Option<(usize, f32)> {
        let half = self.config.lane_width * 0.5;
        self.lanes
            .iter()
            .enumerate()
            .filter_map(|(k, l)| {
                let d = p - l.start;
                let s = d.dot(l.dir);
                (s >= 0.0 && s <= l.length() && d.dot(l.dir.right()).abs() <= half).then_some((
                    k,
                    s,
                    l.dir.dot(heading),
                ))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .map(|(k, s, _)| (k, s))
    }

    /// A uniformly drawn point on a lane at least `margin` metres from both of its ends:
    /// `(lane, s)`. Lanes too short for the margin are skipped; if none is found, the middle of
    /// a random lane.
    pub fn random_lane_position(&self, rng: &mut StdRng, margin: f32) -> (usize, f32) {
        for _ in 0..1000 {
            let lane = rng.random_range(0..self.lanes.len());
            let len = self.lanes[lane].length();
            if len > 2.0 * margin + 1.0 {
                return (lane, rng.random_range(margin..len - margin));
            }
        }
        let lane = rng.random_range(0..self.lanes.len());
        (lane, self.lanes[lane].length() * 0.5)
    }

    /// A top view of the town (`pixels_per_metre`), in the class palette with the ground's
    /// paint; the base of [`super::DrivingEnv::map_image`].
    pub fn map_image(&self, pixels_per_metre: f32) -> image::RgbImage {
        let k = pixels_per_metre.clamp(0.5, 8.0);
        let (w, h) = ((self.size.x * k) as u32, (self.size.y * k) as u32);
        let palette = crate::classes::CITYSCAPES.palette;
        let mut img = image::RgbImage::from_fn(w, h, |x, y| {
            let p = V2::new((x as f32 + 0.5) / k, self.size.y - (y as f32 + 0.5) / k);
            let g = self.ground_at(p);
            match g.paint() {
                Paint::None => image::Rgb(palette[g.label() as usize]),
                _ => image::Rgb([235, 235, 235]),
            }
        });
        let mut order: Vec<usize> = (0..self.props.len()).collect();
        order.sort_by(|&a, &b| {
            (self.props[a].z0 + self.props[a].height).total_cmp(&(self.props[b].z0 + self.props[b].height))
        });
        for i in order {
            let p = &self.props[i];
            fill_footprint(&mut img, &p.footprint, palette[p.label as usize], k, self.size.y);
        }
        img
    }
}

/// Fills a footprint on a top-view image (`k` pixels per metre, world height `world_h`).
pub(crate) fn fill_footprint(img: &mut image::RgbImage, fp: &Footprint, colour: [u8; 3], k: f32, world_h: f32) {
    let r = fp.half_length.hypot(fp.half_width);
    let (w, h) = (img.width() as i64, img.height() as i64);
    let x0 = (((fp.center.x - r) * k).floor() as i64).max(0);
    let x1 = (((fp.center.x + r) * k).ceil() as i64).min(w - 1);
    let y0 = (((world_h - fp.center.y - r) * k).floor() as i64).max(0);
    let y1 = (((world_h - fp.center.y + r) * k).ceil() as i64).min(h - 1);
    let grown = Footprint { half_length: fp.half_length.max(0.5 / k), half_width: fp.half_width.max(0.5 / k), ..*fp };
    for y in y0..=y1 {
        for x in x0..=x1 {
            let p = V2::new((x as f32 + 0.5) / k, world_h - (y as f32 + 0.5) / k);
            if grown.contains(p) {
                img.put_pixel(x as u32, y as u32, image::Rgb(colour));
            }
        }
    }
}

/// The min and max corners of the rectangle spanned by `a` and `b`.
fn corners_of(a: V2, b: V2) -> (V2, V2) {
    (V2::new(a.x.min(b.x), a.y.min(b.y)), V2::new(a.x.max(b.x), a.y.max(b.y)))
}

fn connected(n: usize, roads: &[(usize, usize)]) -> bool {
    let mut seen = vec![false; n];
    let mut stack = vec![0];
    seen[0] = true;
    while let Some(a) = stack.pop() {
        for &(p, q) in roads {
            let other = if p == a {
                q
            } else if q == a {
                p
            } else {
                continue;
            };
            if !seen[other] {
                seen[other] = true;
                stack.push(other);
            }
        }
    }
    seen.into_iter().all(|s| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_town_and_lanes_follow_right_hand_traffic() {
        let a = Town::generate(&TownConfig::new(TRAINING_TOWN)).unwrap();
        let b = Town::generate(&TownConfig::new(TRAINING_TOWN)).unwrap();
        let c = Town::generate(&TownConfig::new(NEW_TOWNS[0])).unwrap();
        assert_eq!(a.roads(), b.roads());
        assert_eq!(a.props().len(), b.props().len());
        assert!(a.roads() != c.roads() || a.props().len() != c.props().len());
        assert!(connected(a.junctions().len(), a.roads()));
        for lane in a.lanes() {
            let mid = lane.at(lane.length() * 0.5);
            let g = a.ground_at(mid);
            assert_eq!(g.surface(), Surface::Road);
            let d = g.lane_direction().expect("lane centre has a direction");
            assert!(d.dot(lane.dir) > 0.99, "lane {lane:?} ground direction {d:?}");
        }
    }
}
