//! The front camera: a software rasteriser with a depth buffer that renders, in one pass, an
//! RGB image (textured, lit, fogged, with sensor noise), a label map in Cityscapes train ids
//! and a depth map.
//!
//! Boxes ([`Solid`]) are drawn face by face: back faces culled, polygons clipped at the near
//! plane, filled by scanline with the exact perspective depth `1/z = A u + B v + C` of the
//! face's plane, and the nearest face per pixel kept. A second pass shades every pixel:
//! faces from their id, the ground from its analytic intersection (depth is a function of the
//! row only), the sky where nothing was hit. Textures are integer hashes of world positions,
//! so a surface looks the same from every viewpoint and the images cost nothing to store.

use super::geometry::{hash3, noise3, Footprint, V2};
use super::town::{label, Paint, Surface, Town};
use super::weather::{Lighting, Weather};
use crate::{Error, Result};
use image::{GrayImage, RgbImage};

/// A box to draw: a footprint extruded from `z0` to `z0 + height`.
#[derive(Clone, Copy, Debug)]
pub struct Solid {
    /// Where it stands.
    pub footprint: Footprint,
    /// Bottom above the ground.
    pub z0: f32,
    /// Height.
    pub height: f32,
    /// Cityscapes train id.
    pub label: u8,
    /// Base colour, linear RGB.
    pub albedo: [f32; 3],
    /// Texture seed.
    pub seed: u32,
}

/// Resolution and mounting of the camera.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    /// Image width, pixels.
    pub width: u32,
    /// Image height, pixels.
    pub height: u32,
    /// Horizontal field of view, degrees.
    pub fov_degrees: f32,
    /// Height above the ground, metres.
    pub mount_height: f32,
    /// Distance ahead of the car's centre, metres.
    pub mount_forward: f32,
    /// Pitch, degrees (negative looks down).
    pub pitch_degrees: f32,
    /// Nothing farther than this is drawn except the ground; depth is clipped here.
    pub far: f32,
}

impl CameraConfig {
    /// 96 × 192, the agent's camera.
    pub fn agent() -> Self {
        CameraConfig {
            width: 192,
            height: 96,
            fov_degrees: 90.0,
            mount_height: 1.5,
            mount_forward: 1.6,
            pitch_degrees: -5.0,
            far: 150.0,
        }
    }

    /// 360 × 480, CamVid's resolution, for datasets.
    pub fn dataset() -> Self {
        CameraConfig { width: 480, height: 360, ..Self::agent() }
    }

    /// The same camera at `width × height`.
    pub fn with_size(mut self, width: u32, height: u32) -> Self {
        self.width = width;
        self.height = height;
        self
    }

    /// Checks the numbers, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        if !(8..=4096).contains(&self.width) || !(8..=4096).contains(&self.height) {
            return Err(Error::invalid(
                "camera size",
                format!("{}x{}", self.width, self.height),
                "width and height must be in [8, 4096]",
            ));
        }
        if !(self.fov_degrees.is_finite() && self.fov_degrees > 10.0 && self.fov_degrees < 170.0) {
            return Err(Error::invalid("fov_degrees", self.fov_degrees, "must be in (10, 170)"));
        }
        if !(self.mount_height.is_finite() && self.mount_height > 0.2 && self.mount_height < 10.0) {
            return Err(Error::invalid("mount_height", self.mount_height, "must be in (0.2, 10) m"));
        }
        if !(self.pitch_degrees.is_finite() && self.pitch_degrees.abs() < 60.0) {
            return Err(Error::invalid("pitch_degrees", self.pitch_degrees, "must be in (-60, 60)"));
        }
        if !(self.far.is_finite() && self.far > 5.0 && self.mount_forward.is_finite()) {
            return Err(Error::invalid("far", self.far, "must be > 5 m (and mount_forward finite)"));
        }
        Ok(())
    }

    /// Focal length in pixels.
    pub fn focal(&self) -> f32 {
        self.width as f32 * 0.5 / (self.fov_degrees.to_radians() * 0.5).tan()
    }
}

/// One rendered frame.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The camera image.
    pub rgb: RgbImage,
    /// Cityscapes train ids, one per pixel.
    pub labels: GrayImage,
    /// Planar depth (distance along the optical axis), metres, clipped at the camera's `far`;
    /// row-major.
    pub depth: Vec<f32>,
}

impl Frame {
    /// An empty frame of `width × height`.
    pub fn new(width: u32, height: u32) -> Frame {
        Frame {
            rgb: RgbImage::new(width, height),
            labels: GrayImage::new(width, height),
            depth: vec![0.0; (width * height) as usize],
        }
    }

    /// The labels in the Cityscapes palette.
    pub fn label_image(&self) -> RgbImage {
        crate::plot::colorize(&self.labels, &crate::classes::CITYSCAPES)
    }

    /// The depth as an image (near = bright), on a log scale up to `far`.
    pub fn depth_image(&self, far: f32) -> RgbImage {
        let (w, h) = self.rgb.dimensions();
        let scale = 1.0 / (1.0 + far).ln();
        RgbImage::from_fn(w, h, |x, y| {
            let d = self.depth[(y * w + x) as usize];
            let v = (255.0 * (1.0 - (1.0 + d).ln() * scale)).clamp(0.0, 255.0) as u8;
            image::Rgb([v, v, v])
        })
    }
}

/// Where the camera is: position (x, y, z) and heading.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraPose {
    /// Position on the ground plane.
    pub position: V2,
    /// Height above the ground.
    pub height: f32,
    /// Heading, radians.
    pub yaw: f32,
    /// Pitch, radians (negative looks down).
    pub pitch: f32,
}

impl CameraPose {
    /// The pose of `config`'s camera on a car at `position` heading `yaw`.
    pub fn mounted(config: &CameraConfig, position: V2, yaw: f32) -> Self {
        CameraPose {
            position: position + V2::from_angle(yaw) * config.mount_forward,
            height: config.mount_height,
            yaw,
            pitch: config.pitch_degrees.to_radians(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Surf {
    label: u8,
    albedo: [f32; 3],
    normal: [f32; 3],
    /// Ambient + direct light reaching the face (set when it is first drawn).
    light: [f32; 3],
    /// Horizontal unit vector along the face (texture u) for vertical faces.
    tangent: V2,
    seed: u32,
}

type V3 = [f32; 3];

/// A face projected to the screen: a convex polygon and the plane `1/z = a u + b v + c`.
#[derive(Clone, Copy, Debug)]
struct ScreenPolygon {
    xs: [f32; 8],
    ys: [f32; 8],
    n: usize,
    a: f32,
    b: f32,
    c: f32,
    row0: u32,
    row1: u32,
}

impl ScreenPolygon {
    /// Scan-converts row `row` into the row's inverse-depth and id buffers (`id` = this
    /// polygon's surface index + 1), keeping the nearest face.
    #[inline]
    fn fill_row(&self, row: usize, id: u32, zbuf: &mut [f32], ids: &mut [u32]) {
        let w = zbuf.len();
        let yc = row as f32 + 0.5;
        let (mut xl, mut xr) = (f32::MAX, f32::MIN);
        for i in 0..self.n {
            let j = if i + 1 == self.n { 0 } else { i + 1 };
            let (y0, y1) = (self.ys[i], self.ys[j]);
            if (y0 <= yc && yc < y1) || (y1 <= yc && yc < y0) {
                let x = self.xs[i] + (yc - y0) / (y1 - y0) * (self.xs[j] - self.xs[i]);
                xl = xl.min(x);
                xr = xr.max(x);
            }
        }
        if xl > xr {
            return;
        }
        let col0 = (xl - 0.5).ceil().max(0.0) as usize;
        let col1 = ((xr - 0.5).ceil().max(0.0) as usize).min(w);
        let mut inv = self.a * (col0 as f32 + 0.5) + self.b * yc + self.c;
        for col in col0..col1 {
            if inv > zbuf[col] {
                zbuf[col] = inv;
                ids[col] = id;
            }
            inv += self.a;
        }
    }
}

fn dot3(a: V3, b: V3) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// The renderer: buffers reused from frame to frame.
#[derive(Clone, Debug)]
pub struct Renderer {
    config: CameraConfig,
    /// Inverse depth `1/z` of the nearest face per pixel, 0 where none.
    zbuf: Vec<f32>,
    ids: Vec<u32>,
    surfaces: Vec<Surf>,
    polygons: Vec<ScreenPolygon>,
    seen: Vec<u32>,
    stamp: u32,
    gamma: Box<[u8; 1024]>,
    lighting: Lighting,
}

struct View {
    c: V3,
    f: V3,
    r: V3,
    u: V3,
    focal: f32,
    cx: f32,
    cy: f32,
    width: usize,
    height: usize,
    near: f32,
}

impl View {
    fn to_camera(&self, p: V3) -> V3 {
        let d = [p[0] - self.c[0], p[1] - self.c[1], p[2] - self.c[2]];
        [dot3(d, self.r), -dot3(d, self.u), dot3(d, self.f)]
    }
}

impl Renderer {
    /// A renderer for `config`'s camera.
    pub fn new(config: CameraConfig) -> Result<Renderer> {
        config.validate()?;
        let n = (config.width * config.height) as usize;
        // Linear [0, 1] in 1024 steps to 8-bit sRGB-like (gamma 2.2).
        let gamma = Box::new(std::array::from_fn(|i| (255.0 * (i as f32 / 1023.0).powf(1.0 / 2.2)).round() as u8));
        Ok(Renderer {
            config,
            zbuf: vec![0.0; n],
            ids: vec![0; n],
            surfaces: vec![],
            polygons: vec![],
            seen: vec![],
            stamp: 0,
            gamma,
            lighting: Weather::ClearNoon.lighting(),
        })
    }

    /// The camera.
    pub fn config(&self) -> &CameraConfig {
        &self.config
    }

    /// Renders `town` and `solids` (the road users) from `pose` under `weather` into `frame`;
    /// `noise_seed` varies the sensor noise from frame to frame.
    pub fn render(
        &mut self,
        town: &Town,
        solids: &[Solid],
        pose: &CameraPose,
        weather: Weather,
        noise_seed: u32,
        frame: &mut Frame,
    ) {
        let cfg = &self.config;
        let (w, h) = (cfg.width as usize, cfg.height as usize);
        if frame.rgb.dimensions() != (cfg.width, cfg.height) {
            *frame = Frame::new(cfg.width, cfg.height);
        }
        let (cy_, sy_) = (pose.yaw.cos(), pose.yaw.sin());
        let (cp, sp) = (pose.pitch.cos(), pose.pitch.sin());
        let view = View {
            c: [pose.position.x, pose.position.y, pose.height],
            f: [cp * cy_, cp * sy_, sp],
            r: [sy_, -cy_, 0.0],
            u: [-sp * cy_, -sp * sy_, cp],
            focal: cfg.focal(),
            cx: w as f32 * 0.5,
            cy: h as f32 * 0.5,
            width: w,
            height: h,
            near: 0.2,
        };
        let far = cfg.far;
        self.lighting = weather.lighting();
        self.surfaces.clear();
        self.polygons.clear();
        if self.seen.len() != town.props().len() {
            self.seen = vec![0; town.props().len()];
            self.stamp = 0;
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.seen.fill(0);
            self.stamp = 1;
        }
        // Props in index cells within reach and inside the horizontal field of view.
        let half_fov = (cfg.fov_degrees.to_radians() * 0.5).min(1.5);
        let fh = V2::new(cy_, sy_);
        let cam = pose.position;
        let (cols, rows, cells) = town.index_cells();
        let cell = Town::INDEX_CELL;
        let cell_r = cell * std::f32::consts::FRAC_1_SQRT_2;
        // Outward normals of the two side planes of the horizontal field of view: a disc of
        // radius r at offset d is (partly) inside when d·n ≤ r for both, d·f ≥ −r and
        // |d| ≤ far + r.
        let n_left = V2::new(-(pose.yaw + half_fov).sin(), (pose.yaw + half_fov).cos());
        let n_right = V2::new((pose.yaw - half_fov).sin(), -(pose.yaw - half_fov).cos());
        let in_view = |centre: V2, radius: f32| {
            let d = centre - cam;
            let reach = far + radius;
            d.dot(d) <= reach * reach && d.dot(fh) >= -radius && d.dot(n_left) <= radius && d.dot(n_right) <= radius
        };
        let (c0, c1) = (
            ((cam.x - far) / cell).floor().max(0.0) as usize,
            (((cam.x + far) / cell).floor() as isize + 1).clamp(0, cols as isize) as usize,
        );
        let (r0, r1) = (
            ((cam.y - far) / cell).floor().max(0.0) as usize,
            (((cam.y + far) / cell).floor() as isize + 1).clamp(0, rows as isize) as usize,
        );
        for r in r0..r1 {
            for c in c0..c1 {
                let centre = V2::new((c as f32 + 0.5) * cell, (r as f32 + 0.5) * cell);
                if !in_view(centre, cell_r) {
                    continue;
                }
                for &k in &cells[r * cols + c] {
                    let k = k as usize;
                    if self.seen[k] == self.stamp {
                        continue;
                    }
                    self.seen[k] = self.stamp;
                    let s = town.props()[k].solid();
                    let fp = s.footprint;
                    if in_view(fp.center, fp.half_length.hypot(fp.half_width)) {
                        self.draw_solid(&view, &s);
                    }
                }
            }
        }
        for s in solids {
            let fp = s.footprint;
            if in_view(fp.center, fp.half_length.hypot(fp.half_width)) {
                self.draw_solid(&view, s);
            }
        }
        self.shade(town, &view, noise_seed, frame);
    }

    fn draw_solid(&mut self, view: &View, s: &Solid) {
        let fp = s.footprint;
        let corners = fp.corners();
        let (z0, z1) = (s.z0, s.z0 + s.height);
        let world = |k: usize, top: bool| [corners[k].x, corners[k].y, if top { z1 } else { z0 }];
        let fwd = V2::from_angle(fp.yaw);
        let right = fwd.right();
        // Sides: (corner a, corner b, outward normal, tangent).
        let sides = [(0usize, 1usize, fwd), (1, 2, -right), (2, 3, -fwd), (3, 0, right)];
        let cam = [view.c[0], view.c[1], view.c[2]];
        let surf = |normal: [f32; 3], tangent: V2| Surf {
            label: s.label,
            albedo: s.albedo,
            normal,
            light: [0.0; 3],
            tangent,
            seed: s.seed,
        };
        for (a, b, n) in sides {
            let pa = corners[a];
            if (cam[0] - pa.x) * n.x + (cam[1] - pa.y) * n.y <= 0.0 {
                continue;
            }
            let poly = [world(a, false), world(b, false), world(b, true), world(a, true)];
            let tangent = (corners[b] - corners[a]).normalized();
            self.draw_face(view, &poly, surf([n.x, n.y, 0.0], tangent));
        }
        if cam[2] > z1 {
            let poly = [world(0, true), world(1, true), world(2, true), world(3, true)];
            self.draw_face(view, &poly, surf([0.0, 0.0, 1.0], fwd));
        } else if cam[2] < z0 {
            let poly = [world(0, false), world(3, false), world(2, false), world(1, false)];
            self.draw_face(view, &poly, surf([0.0, 0.0, -1.0], fwd));
        }
    }

    fn draw_face(&mut self, view: &View, quad: &[V3; 4], surf: Surf) {
        // Camera space, clipped at the near plane.
        let cam: [V3; 4] = quad.map(|p| view.to_camera(p));
        let mut poly: [V3; 8] = [[0.0; 3]; 8];
        let mut n = 0;
        for i in 0..4 {
            let (a, b) = (cam[i], cam[(i + 1) % 4]);
            let (ina, inb) = (a[2] >= view.near, b[2] >= view.near);
            if ina {
                poly[n] = a;
                n += 1;
            }
            if ina != inb {
                let t = (view.near - a[2]) / (b[2] - a[2]);
                poly[n] = [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, view.near];
                n += 1;
            }
        }
        if n < 3 {
            return;
        }
        // The face's plane in camera space: n·p = d; then 1/z = (n · (xn, yn, 1)) / d.
        let e1 = [cam[1][0] - cam[0][0], cam[1][1] - cam[0][1], cam[1][2] - cam[0][2]];
        let e2 = [cam[3][0] - cam[0][0], cam[3][1] - cam[0][1], cam[3][2] - cam[0][2]];
        let nc = [e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2], e1[0] * e2[1] - e1[1] * e2[0]];
        let d = dot3(nc, cam[0]);
        let scale = dot3(nc, nc).sqrt() * (dot3(cam[0], cam[0]).sqrt() + 1e-3);
        if d.abs() <= 1e-6 * scale {
            return;
        }
        let f = view.focal;
        let a = nc[0] / (f * d);
        let b = nc[1] / (f * d);
        let c = (nc[2] - nc[0] * view.cx / f - nc[1] * view.cy / f) / d;
        // Screen-space polygon.
        let mut xs = [0f32; 8];
        let mut ys = [0f32; 8];
        let (mut ymin, mut ymax) = (f32::MAX, f32::MIN);
        for i in 0..n {
            let p = poly[i];
            xs[i] = view.cx + f * p[0] / p[2];
            ys[i] = view.cy + f * p[1] / p[2];
            ymin = ymin.min(ys[i]);
            ymax = ymax.max(ys[i]);
        }
        let h = view.height;
        let row0 = (ymin - 0.5).ceil().max(0.0) as usize;
        let row1 = ((ymax - 0.5).floor() as isize).min(h as isize - 1);
        if row1 < row0 as isize {
            return;
        }
        let d = dot3(surf.normal, self.lighting.sun).max(0.0);
        let light = [0, 1, 2].map(|k| self.lighting.ambient[k] + self.lighting.sun_colour[k] * d);
        self.surfaces.push(Surf { light, ..surf });
        self.polygons.push(ScreenPolygon { xs, ys, n, a, b, c, row0: row0 as u32, row1: row1 as u32 });
    }

    fn shade(&mut self, town: &Town, view: &View, noise_seed: u32, frame: &mut Frame) {
        let light = self.lighting;
        use rayon::prelude::*;
        let w = view.width;
        let far = self.config.far;
        let inv_f = 1.0 / view.focal;
        let noise_amp = light.sensor_noise * 3f32.sqrt() / 255.0;
        let fog_k = 1.0 / light.visibility;
        let sky_fog = 1.0 - (-400.0 * fog_k).exp();
        // 1 − exp(−d / visibility) tabulated on [0, 8 visibility], linearly interpolated.
        const FOG_STEPS: usize = 256;
        let fog_max = 8.0 * light.visibility;
        let fog_lut: Vec<f32> =
            (0..=FOG_STEPS + 1).map(|k| 1.0 - (-(k as f32) * fog_max / FOG_STEPS as f32 * fog_k).exp()).collect();
        let fog_scale = FOG_STEPS as f32 / fog_max;
        let contrast = light.contrast;
        let gamma = &self.gamma;
        let up = dot3([0.0, 0.0, 1.0], light.sun).max(0.0);
        let ground_light = [0, 1, 2].map(|k| light.ambient[k] + light.sun_colour[k] * up);
        let polygons = &self.polygons;
        let surfaces = &self.surfaces;
        let shade_row =
            |row: usize, rgb: &mut [u8], labels: &mut [u8], depth: &mut [f32], zbuf: &mut [f32], ids: &mut [u32]| {
                // The depth buffer holds 1/z (0 = nothing drawn): no division per rasterised
                // pixel.
                zbuf.fill(0.0);
                ids.fill(0);
                for (k, p) in polygons.iter().enumerate() {
                    if row as u32 >= p.row0 && row as u32 <= p.row1 {
                        p.fill_row(row, k as u32 + 1, zbuf, ids);
                    }
                }
                let yn = (row as f32 + 0.5 - view.cy) * inv_f;
                // Ray with unit forward component: F + xn R − yn U.
                let base = [view.f[0] - yn * view.u[0], view.f[1] - yn * view.u[1], view.f[2] - yn * view.u[2]];
                let ground_t = if base[2] < -1e-6 { -view.c[2] / base[2] } else { f32::INFINITY };
                let fog_at = |dist: f32| {
                    let x = (dist * fog_scale).min(FOG_STEPS as f32);
                    let k = x as usize;
                    fog_lut[k] + (fog_lut[k + 1] - fog_lut[k]) * (x - k as f32)
                };
                let ground_fog = if ground_t.is_finite() { fog_at(ground_t) } else { 1.0 };
                // The sky's colour by elevation, taken at the row's centre.
                let e = (base[2] / dot3(base, base).sqrt()).clamp(0.0, 1.0).sqrt();
                let sky = [0, 1, 2].map(|k| {
                    let c = light.sky_horizon[k] + (light.sky_zenith[k] - light.sky_horizon[k]) * e;
                    c + (light.fog_colour[k] - c) * sky_fog
                });
                for col in 0..w {
                    let xn = (col as f32 + 0.5 - view.cx) * inv_f;
                    let ray = [base[0] + xn * view.r[0], base[1] + xn * view.r[1], base[2]];
                    let id = ids[col];
                    let z = if id != 0 { 1.0 / zbuf[col] } else { f32::INFINITY };
                    let (mut colour, lab, dist) = if id != 0 && z <= ground_t {
                        let s = &surfaces[(id - 1) as usize];
                        let p = [view.c[0] + ray[0] * z, view.c[1] + ray[1] * z, view.c[2] + ray[2] * z];
                        let fog = fog_at(z);
                        let c = shade_surface(s, p);
                        (c.map(|x| x * (1.0 - fog)), s.label, z)
                    } else if ground_t.is_finite() {
                        let t = ground_t;
                        let p = V2::new(view.c[0] + ray[0] * t, view.c[1] + ray[1] * t);
                        let (c, l) = shade_ground(town, p);
                        ([0, 1, 2].map(|k| c[k] * ground_light[k] * (1.0 - ground_fog)), l, t)
                    } else {
                        (sky, label::SKY, far)
                    };
                    if lab != label::SKY {
                        let fog = if id != 0 && z <= ground_t { fog_at(z) } else { ground_fog };
                        colour = [0, 1, 2].map(|k| colour[k] + light.fog_colour[k] * fog);
                    }
                    if light.rain > 0.0 {
                        let streak = hash3(
                            col as i32,
                            ((row as u32 + noise_seed.wrapping_mul(5)) / 7) as i32,
                            noise_seed ^ 0x5EED,
                        );
                        if (streak as f32) < light.rain * u32::MAX as f32 {
                            colour = colour.map(|c| c + 0.12);
                        }
                    }
                    let sensor = noise3(col as i32, row as i32, noise_seed) * noise_amp;
                    for k in 0..3 {
                        let v = (0.5 + (colour[k] - 0.5) * contrast + sensor).clamp(0.0, 1.0);
                        rgb[col * 3 + k] = gamma[(v * 1023.0) as u16 as usize & 1023];
                    }
                    labels[col] = lab;
                    depth[col] = dist.min(far);
                }
            };
        // Rows in parallel, in blocks of 8 — scan conversion of every face crossing the row,
        // then shading: worth it for one environment on several cores, and harmless inside a
        // vectorised step (rayon nests).
        let rgb: &mut [u8] = &mut frame.rgb;
        let labels: &mut [u8] = &mut frame.labels;
        rgb.par_chunks_mut(w * 3)
            .zip(labels.par_chunks_mut(w))
            .zip(frame.depth.par_chunks_mut(w))
            .zip(self.zbuf.par_chunks_mut(w))
            .zip(self.ids.par_chunks_mut(w))
            .enumerate()
            .with_min_len(16)
            .for_each(|(row, ((((rgb, labels), depth), zbuf), ids))| shade_row(row, rgb, labels, depth, zbuf, ids));
    }
}

/// `floor` as an integer without a libm call (the crate is built for baseline x86-64,
/// where `f32::floor` is a function call); exact for |x| < 2³¹.
#[inline(always)]
fn ifloor(x: f32) -> i32 {
    let i = x as i32;
    i - ((x < i as f32) as i32)
}

#[inline(always)]
fn fract(x: f32) -> f32 {
    x - ifloor(x) as f32
}

fn shade_surface(s: &Surf, p: [f32; 3]) -> [f32; 3] {
    let vertical = s.normal[2] == 0.0;
    let (u, v) = if vertical { (p[0] * s.tangent.x + p[1] * s.tangent.y, p[2]) } else { (p[0], p[1]) };
    let coarse = noise3(ifloor(u * 2.0), ifloor(v * 2.0), s.seed);
    let fine = noise3(ifloor(u * 14.0), ifloor(v * 14.0), s.seed ^ 0xABCD);
    let mut albedo = s.albedo;
    let mut amp = (0.10, 0.06);
    match s.label {
        label::BUILDING if vertical => {
            let (wu, wv) = (fract(u * (1.0 / 3.2)), fract(v * (1.0 / 3.4)));
            if v > 1.2 && (0.25..0.75).contains(&wu) && (0.3..0.8).contains(&wv) {
                let pane = noise3(ifloor(u * (1.0 / 3.2)), ifloor(v * (1.0 / 3.4)), s.seed ^ 7);
                albedo = [0.12 + 0.05 * pane, 0.15 + 0.05 * pane, 0.22 + 0.06 * pane];
                amp = (0.02, 0.02);
            }
        }
        label::FENCE if fract(u * (1.0 / 0.18)) < 0.35 => albedo = albedo.map(|c| c * 0.5),
        label::VEGETATION => amp = (0.25, 0.35),
        label::TRAFFIC_LIGHT if vertical => {
            let lamp = ifloor((v - 3.45) / 0.3);
            let on = (s.seed % 3) as i32;
            if (0..3).contains(&lamp)
                && fract((v - 3.45) / 0.3) > 0.2
                && fract(u / 0.36 + 0.5) > 0.25
                && fract(u / 0.36 + 0.5) < 0.75
            {
                let c = [[0.1, 0.9, 0.2], [0.95, 0.7, 0.1], [0.95, 0.1, 0.1]][lamp as usize];
                // An emissive lamp: not lit by the sun.
                return if lamp == on { c } else { c.map(|x| x * 0.15) };
            }
        }
        _ => {}
    }
    let m = 1.0 + amp.0 * coarse + amp.1 * fine;
    [0, 1, 2].map(|k| albedo[k] * m * s.light[k])
}

/// The ground's albedo and label at `p` (lit by the caller).
fn shade_ground(town: &Town, p: V2) -> ([f32; 3], u8) {
    let g = town.ground_at(p);
    let fine = noise3(ifloor(p.x * 10.0), ifloor(p.y * 10.0), 0x6E0);
    let albedo = match (g.surface(), g.paint()) {
        (Surface::Road, Paint::None) => {
            let patch = noise3(ifloor(p.x * 0.5), ifloor(p.y * 0.5), 0x0AD);
            let v = 0.20 * (1.0 + 0.10 * patch + 0.12 * fine);
            [v, v, v * 1.06]
        }
        (Surface::Road, _) => {
            let v = 0.80 * (1.0 + 0.05 * fine);
            [v, v, v * 0.95]
        }
        (Surface::Sidewalk, _) => {
            let seam = fract(p.x) < 0.05 || fract(p.y) < 0.05;
            let v = if seam { 0.32 } else { 0.50 * (1.0 + 0.08 * fine) };
            [v, v * 0.97, v * 0.92]
        }
        (Surface::Terrain, _) => {
            let mix = 0.5 + 0.5 * noise3(ifloor(p.x * 0.3), ifloor(p.y * 0.3), 0x7E7);
            let grass = [0.18, 0.32, 0.10];
            let dirt = [0.36, 0.30, 0.20];
            let m = 1.0 + 0.2 * fine;
            [0, 1, 2].map(|k| (grass[k] + (dirt[k] - grass[k]) * mix * 0.6) * m)
        }
    };
    (albedo, g.label())
}
