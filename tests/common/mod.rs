//! Helpers shared by the integration tests: a seeded generator and small builders.
#![allow(dead_code)]

use rwt::candle_core::{Device, Tensor, Var};
use rwt::GroundMatrix;

/// A tiny seeded generator (splitmix64) so tests are reproducible without extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A random asymmetric ground matrix with zero diagonal and off-diagonal entries in [lo, hi).
pub fn random_ground(rng: &mut Rng, n: usize, lo: f64, hi: f64) -> GroundMatrix {
    let rows: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| if i == j { 0.0 } else { rng.range(lo, hi) }).collect()).collect();
    GroundMatrix::from_rows((0..n).map(|k| format!("c{k}")), rows).unwrap()
}

/// Random f64 logits `[b, n, h, w]` with standard deviation `scale`.
pub fn logits_f64(rng: &mut Rng, dims: (usize, usize, usize, usize), scale: f64) -> Tensor {
    let len = dims.0 * dims.1 * dims.2 * dims.3;
    let v: Vec<f64> = (0..len).map(|_| scale * rng.normal()).collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Random labels `[b, h, w]` in `0..n`, with about `ignored` of them set to `ignore`.
pub fn labels_u32(rng: &mut Rng, dims: (usize, usize, usize), n: usize, ignore: Option<u32>, ignored: f64) -> Tensor {
    let len = dims.0 * dims.1 * dims.2;
    let v: Vec<u32> = (0..len)
        .map(|_| match ignore {
            Some(i) if rng.uniform() < ignored => i,
            _ => rng.below(n) as u32,
        })
        .collect();
    Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
}

/// Softmax over the class axis of one pixel of `[B, N, H, W]` logits, in f64.
pub fn softmax_at(z: &[f64], n: usize, s: usize, b: usize, j: usize) -> Vec<f64> {
    let vals: Vec<f64> = (0..n).map(|k| z[(b * n + k) * s + j]).collect();
    let m = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = vals.iter().map(|v| (v - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|v| v / sum).collect()
}

/// The gradient of the scalar `f` at `x` by autograd, and by central differences with step
/// `h` (entry by entry), both in f64: `(analytic, finite_differences)`.
pub fn gradient_and_finite_differences(f: impl Fn(&Tensor) -> Tensor, x: &Tensor, h: f64) -> (Vec<f64>, Vec<f64>) {
    let var = Var::from_tensor(x).unwrap();
    let grads = f(var.as_tensor()).backward().unwrap();
    let g = grads
        .get(var.as_tensor())
        .expect("the input receives a gradient")
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let z = x.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let at = |k: usize, d: f64| {
        let mut v = z.clone();
        v[k] += d;
        f(&Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap()
    };
    let fd = (0..z.len()).map(|k| (at(k, h) - at(k, -h)) / (2.0 * h)).collect();
    (g, fd)
}
