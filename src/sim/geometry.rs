//! Small 2-D geometry for the simulator: points on the ground plane, oriented rectangles
//! (footprints) and their overlap test, and the integer hash behind every texture.

/// A point or vector on the ground plane, metres; `x` east, `y` north.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct V2 {
    /// East.
    pub x: f32,
    /// North.
    pub y: f32,
}

impl V2 {
    /// `(x, y)`.
    pub const fn new(x: f32, y: f32) -> Self {
        V2 { x, y }
    }

    /// The unit vector at angle `yaw` (radians, counter-clockwise from east).
    pub fn from_angle(yaw: f32) -> Self {
        V2::new(yaw.cos(), yaw.sin())
    }

    /// Dot product.
    pub fn dot(self, o: V2) -> f32 {
        self.x * o.x + self.y * o.y
    }

    /// z-component of the cross product (positive when `o` is counter-clockwise of `self`).
    pub fn cross(self, o: V2) -> f32 {
        self.x * o.y - self.y * o.x
    }

    /// Euclidean length.
    pub fn norm(self) -> f32 {
        self.dot(self).sqrt()
    }

    /// The vector scaled to length 1 (zero stays zero).
    pub fn normalized(self) -> V2 {
        let n = self.norm();
        if n > 0.0 {
            self * (1.0 / n)
        } else {
            self
        }
    }

    /// The vector turned 90° clockwise: the right-hand side of a heading.
    pub fn right(self) -> V2 {
        V2::new(self.y, -self.x)
    }

    /// Angle of the vector (radians, counter-clockwise from east).
    pub fn angle(self) -> f32 {
        self.y.atan2(self.x)
    }

    /// Distance to `o`.
    pub fn dist(self, o: V2) -> f32 {
        (self - o).norm()
    }
}

impl std::ops::Add for V2 {
    type Output = V2;
    fn add(self, o: V2) -> V2 {
        V2::new(self.x + o.x, self.y + o.y)
    }
}

impl std::ops::Sub for V2 {
    type Output = V2;
    fn sub(self, o: V2) -> V2 {
        V2::new(self.x - o.x, self.y - o.y)
    }
}

impl std::ops::Mul<f32> for V2 {
    type Output = V2;
    fn mul(self, s: f32) -> V2 {
        V2::new(self.x * s, self.y * s)
    }
}

impl std::ops::Neg for V2 {
    type Output = V2;
    fn neg(self) -> V2 {
        V2::new(-self.x, -self.y)
    }
}

/// An oriented rectangle on the ground: a footprint.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footprint {
    /// Centre.
    pub center: V2,
    /// Heading of the long (`half_length`) axis, radians.
    pub yaw: f32,
    /// Half the extent along the heading.
    pub half_length: f32,
    /// Half the extent across the heading.
    pub half_width: f32,
}

impl Footprint {
    /// The four corners, counter-clockwise from front-right.
    pub fn corners(&self) -> [V2; 4] {
        let f = V2::from_angle(self.yaw);
        let r = f.right();
        let (a, b) = (f * self.half_length, r * self.half_width);
        let c = self.center;
        [c + a + b, c + a - b, c - a - b, c - a + b]
    }

    /// Whether two footprints overlap (separating-axis test).
    pub fn overlaps(&self, other: &Footprint) -> bool {
        let reach = self.half_length.hypot(self.half_width) + other.half_length.hypot(other.half_width);
        if self.center.dist(other.center) > reach {
            return false;
        }
        let (ca, cb) = (self.corners(), other.corners());
        for fp in [self, other] {
            let f = V2::from_angle(fp.yaw);
            for axis in [f, f.right()] {
                let (mut a0, mut a1) = (f32::MAX, f32::MIN);
                for p in &ca {
                    let t = p.dot(axis);
                    a0 = a0.min(t);
                    a1 = a1.max(t);
                }
                let (mut b0, mut b1) = (f32::MAX, f32::MIN);
                for p in &cb {
                    let t = p.dot(axis);
                    b0 = b0.min(t);
                    b1 = b1.max(t);
                }
                if a1 < b0 || b1 < a0 {
                    return false;
                }
            }
        }
        true
    }

    /// Whether point `p` lies inside.
    pub fn contains(&self, p: V2) -> bool {
        let f = V2::from_angle(self.yaw);
        let d = p - self.center;
        d.dot(f).abs() <= self.half_length && d.dot(f.right()).abs() <= self.half_width
    }

    /// `nx × ny` points spread evenly over the rectangle (cell centres), for area fractions.
    pub fn sample_points(&self, nx: usize, ny: usize) -> impl Iterator<Item = V2> + '_ {
        let f = V2::from_angle(self.yaw);
        let r = f.right();
        (0..nx).flat_map(move |i| {
            (0..ny).map(move |j| {
                let a = ((i as f32 + 0.5) / nx as f32 * 2.0 - 1.0) * self.half_length;
                let b = ((j as f32 + 0.5) / ny as f32 * 2.0 - 1.0) * self.half_width;
                self.center + f * a + r * b
            })
        })
    }
}

/// A 32-bit integer hash (a variant of the "lowbias32" finaliser), the source of every
/// texture and sensor-noise value: deterministic and position-anchored.
#[inline]
pub fn hash3(a: i32, b: i32, c: u32) -> u32 {
    let mut h =
        (a as u32).wrapping_mul(0x9E37_79B1) ^ (b as u32).wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2_AE3D);
    h ^= h >> 16;
    h = h.wrapping_mul(0x7FEB_352D);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846C_A68B);
    h ^ (h >> 16)
}

/// [`hash3`] mapped to `[-1, 1)`.
#[inline]
pub fn noise3(a: i32, b: i32, c: u32) -> f32 {
    (hash3(a, b, c) >> 8) as f32 * (2.0 / 16_777_216.0) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_of_rotated_rectangles() {
        let a = Footprint { center: V2::new(0.0, 0.0), yaw: 0.0, half_length: 2.0, half_width: 1.0 };
        // A square rotated 45° whose corner reaches x = 2 + 0.5 - eps.
        let d = 0.5 * std::f32::consts::SQRT_2;
        let near = Footprint {
            center: V2::new(2.0 + d - 0.05, 0.0),
            yaw: std::f32::consts::FRAC_PI_4,
            half_length: 0.5,
            half_width: 0.5,
        };
        let far = Footprint { center: V2::new(2.0 + d + 0.05, 0.0), ..near };
        assert!(a.overlaps(&near) && near.overlaps(&a));
        assert!(!a.overlaps(&far) && !far.overlaps(&a));
        assert!(a.contains(V2::new(1.9, 0.9)) && !a.contains(V2::new(2.1, 0.0)));
        assert_eq!(a.sample_points(4, 2).count(), 8);
    }
}
