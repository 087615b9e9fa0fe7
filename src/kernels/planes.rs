//! Element-wise kernels over one channel plane for the fused bottleneck
//! (`bottleneck.rs`): batch-norm's affine map with a PReLU, plane moments, the exit's
//! forward and backward, and batch-norm's gradient sums and gradient.
//!
//! Reductions run in 8 independent lanes (summed in f32 over runs of 256 values, then in
//! f64), so that the compiler vectorises them; every kernel is compiled twice, for the
//! baseline target and for AVX2 + FMA, and [`has_avx2_fma`] picks one at run time. A PReLU
//! slope of 1 is no activation.

use crate::kernels::numeric::has_avx2_fma;

pub(crate) use crate::kernels::numeric::Out;

const LANES: usize = 8;
const RUN: usize = 256;

/// `Σ f(x₁[i], …, x_N[i])` over the common length of the slices `xs`, `K` quantities at once,
/// in [`LANES`] lanes: each run of [`RUN`] values summed in f32, the runs in f64.
#[allow(clippy::needless_range_loop)]
#[inline(always)]
fn lane_sums<const N: usize, const K: usize>(xs: [&[f32]; N], f: impl Fn([f32; N]) -> [f32; K]) -> [f64; K] {
    let n = xs.iter().map(|x| x.len()).min().unwrap_or(0);
    let mut total = [0f64; K];
    let mut start = 0;
    while start < n {
        let end = (start + RUN).min(n);
        let mut acc = [[0f32; LANES]; K];
        let full = start + (end - start) / LANES * LANES;
        for i in (start..full).step_by(LANES) {
            let block: [&[f32; LANES]; N] =
                std::array::from_fn(|j| xs[j][i..i + LANES].try_into().expect("a full block"));
            for l in 0..LANES {
                let v = f(std::array::from_fn(|j| block[j][l]));
                for k in 0..K {
                    acc[k][l] += v[k];
                }
            }
        }
        for i in full..end {
            let v = f(std::array::from_fn(|j| xs[j][i]));
            for k in 0..K {
                acc[k][0] += v[k];
            }
        }
        for k in 0..K {
            total[k] += acc[k].iter().sum::<f32>() as f64;
        }
        start = end;
    }
    total
}

/// `v > 0 ? v : s·v`.
#[inline(always)]
fn prelu(v: f32, s: f32) -> f32 {
    if v > 0.0 {
        v
    } else {
        s * v
    }
}

mod plain {
    use super::*;

    #[inline(always)]
    pub fn sum(v: &[f32]) -> f64 {
        lane_sums([v], |[x]| [x])[0]
    }

    #[inline(always)]
    pub fn moments(v: &[f32]) -> (f64, f64) {
        let n = v.len().max(1) as f64;
        let mean = lane_sums([v], |[x]| [x])[0] / n;
        let m = mean as f32;
        (mean, lane_sums([v], |[x]| [(x - m) * (x - m)])[0])
    }

    #[inline(always)]
    pub fn affine_act(src: &[f32], dst: &mut [Out], a: f32, o: f32, s: f32) {
        for (d, &z) in dst.iter_mut().zip(src) {
            *d = Out::new(prelu(a * z + o, s));
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn exit_fwd(z: &[f32], m: &[f32], dst: &mut [Out], a: f32, o: f32, k: f32, s: f32) {
        for ((d, &z), &m) in dst.iter_mut().zip(z).zip(m) {
            *d = Out::new(prelu(m + k * (a * z + o), s));
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn exit_bwd(
        g: &[f32],
        z: &[f32],
        m: &[f32],
        dm: &mut [Out],
        dy: &mut [Out],
        a: f32,
        o: f32,
        k: f32,
        s: f32,
    ) -> f64 {
        for ((((dm, dy), &g), &z), &m) in dm.iter_mut().zip(dy.iter_mut()).zip(g).zip(z).zip(m) {
            let v = m + k * (a * z + o);
            let gs = if v > 0.0 { g } else { s * g };
            *dm = Out::new(gs);
            *dy = Out::new(k * gs);
        }
        lane_sums([g, z, m], |[g, z, m]| {
            let v = m + k * (a * z + o);
            [if v > 0.0 { 0.0 } else { g * v }]
        })[0]
    }

    #[inline(always)]
    pub fn bn_sums(g: &[f32], z: &[f32], a: f32, o: f32, mu: f32, s: f32) -> [f64; 3] {
        let mut t = [0f64; 3];
        for (gr, zr) in g.chunks(RUN).zip(z.chunks(RUN)) {
            let (mut s0, mut s1, mut s2) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
            let (gc, zc) = (gr.chunks_exact(LANES), zr.chunks_exact(LANES));
            let (gt, zt) = (gc.remainder(), zc.remainder());
            for (gb, zb) in gc.zip(zc) {
                for l in 0..LANES {
                    let v = a * zb[l] + o;
                    let pos = v > 0.0;
                    let ga = gb[l] * if pos { 1.0 } else { s };
                    s0[l] += ga;
                    s1[l] += ga * (zb[l] - mu);
                    s2[l] += gb[l] * v * if pos { 0.0 } else { 1.0 };
                }
            }
            for (&gv, &zv) in gt.iter().zip(zt) {
                let v = a * zv + o;
                let ga = if v > 0.0 { gv } else { s * gv };
                s0[0] += ga;
                s1[0] += ga * (zv - mu);
                s2[0] += if v > 0.0 { 0.0 } else { gv * v };
            }
            t[0] += s0.iter().sum::<f32>() as f64;
            t[1] += s1.iter().sum::<f32>() as f64;
            t[2] += s2.iter().sum::<f32>() as f64;
        }
        t
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub fn bn_grad(g: &[f32], z: &[f32], dz: &mut [f32], a: f32, o: f32, mu: f32, s: f32, off: f32, slope: f32) {
        for ((d, &g), &z) in dz.iter_mut().zip(g).zip(z) {
            let ga = if a * z + o > 0.0 { g } else { s * g };
            *d = a * ga - off - slope * (z - mu);
        }
    }
}

/// Defines each kernel as a dispatcher between `plain` and an AVX2 + FMA build of it.
macro_rules! dispatched {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        #[cfg(target_arch = "x86_64")]
        mod avx2 {
            use super::Out;
            $(
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                pub(super) unsafe fn $name($($arg: $ty),*) $(-> $ret)? {
                    super::plain::$name($($arg),*)
                }
            )*
        }
        $(
            $(#[$doc])*
            #[allow(clippy::too_many_arguments)]
            pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
                #[cfg(target_arch = "x86_64")]
                if has_avx2_fma() {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    return unsafe { avx2::$name($($arg),*) };
                }
                plain::$name($($arg),*)
            }
        )*
    };
}

dispatched! {
    /// `Σ v` over a plane.
    fn sum(v: &[f32]) -> f64;
    /// `(mean, Σ(v − mean)²)` of a plane.
    fn moments(v: &[f32]) -> (f64, f64);
    /// `dst = PReLU_s(a·src + o)`: batch-norm's affine map and the activation.
    fn affine_act(src: &[f32], dst: &mut [Out], a: f32, o: f32, s: f32);
    /// The exit `dst = PReLU_s(m + k·(a·z + o))`.
    fn exit_fwd(z: &[f32], m: &[f32], dst: &mut [Out], a: f32, o: f32, k: f32, s: f32);
    /// The exit's backward: `dm = g·PReLU'_s(v)`, `dy = k·dm`; returns `Σ_{v ≤ 0} g·v`.
    fn exit_bwd(g: &[f32], z: &[f32], m: &[f32], dm: &mut [Out], dy: &mut [Out], a: f32, o: f32, k: f32, s: f32) -> f64;
    /// Batch-norm's input gradient `dz = a·g_a − off − slope·(z − μ)`.
    fn bn_grad(g: &[f32], z: &[f32], dz: &mut [f32], a: f32, o: f32, mu: f32, s: f32, off: f32, slope: f32);
}

/// Batch-norm's sums over a plane: `[Σ g_a, Σ g_a·(z − μ), Σ_{v ≤ 0} g·v]` with `v = a·z + o`
/// and `g_a = g·PReLU'_s(v)` — written with AVX2 intrinsics where the CPU has them (the
/// compiler does not vectorise the masked sums well).
pub(crate) fn bn_sums(g: &[f32], z: &[f32], a: f32, o: f32, mu: f32, s: f32) -> [f64; 3] {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { bn_sums_avx2(g, z, a, o, mu, s) };
    }
    plain::bn_sums(g, z, a, o, mu, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn bn_sums_avx2(g: &[f32], z: &[f32], a: f32, o: f32, mu: f32, s: f32) -> [f64; 3] {
    use std::arch::x86_64::*;
    let n = g.len().min(z.len());
    let (va, vo, vmu, vs, zero, one) = (
        _mm256_set1_ps(a),
        _mm256_set1_ps(o),
        _mm256_set1_ps(mu),
        _mm256_set1_ps(s),
        _mm256_setzero_ps(),
        _mm256_set1_ps(1.0),
    );
    let hsum = |v: __m256| {
        let mut l = [0f32; LANES];
        // SAFETY: `l` holds 8 floats.
        unsafe { _mm256_storeu_ps(l.as_mut_ptr(), v) };
        l.iter().sum::<f32>() as f64
    };
    let mut t = [0f64; 3];
    let mut i = 0;
    while i < n {
        let end = (i + RUN).min(n);
        let (mut s0, mut s1, mut s2) = (zero, zero, zero);
        while i + LANES <= end {
            // SAFETY: i + 8 ≤ n ≤ both lengths.
            let (gv, zv) = unsafe { (_mm256_loadu_ps(g.as_ptr().add(i)), _mm256_loadu_ps(z.as_ptr().add(i))) };
            let v = _mm256_fmadd_ps(va, zv, vo);
            let pos = _mm256_cmp_ps::<_CMP_GT_OQ>(v, zero);
            let ga = _mm256_mul_ps(gv, _mm256_blendv_ps(vs, one, pos));
            s0 = _mm256_add_ps(s0, ga);
            s1 = _mm256_fmadd_ps(ga, _mm256_sub_ps(zv, vmu), s1);
            s2 = _mm256_add_ps(s2, _mm256_andnot_ps(pos, _mm256_mul_ps(gv, v)));
            i += LANES;
        }
        let tail = plain::bn_sums(&g[i..end], &z[i..end], a, o, mu, s);
        t[0] += hsum(s0) + tail[0];
        t[1] += hsum(s1) + tail[1];
        t[2] += hsum(s2) + tail[2];
        i = end;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lane sums against plain f64 sums, lengths around the lane and run sizes.
    #[test]
    fn sums_match_f64() {
        for n in [0, 1, 7, 8, 9, 255, 256, 257, 1000] {
            let v: Vec<f32> = (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
            let mean = v.iter().map(|&x| x as f64).sum::<f64>() / (n.max(1) as f64);
            let m2: f64 = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum();
            let (a, b) = moments(&v);
            assert!((a - mean).abs() < 1e-5 * mean.abs().max(1.0), "n = {n}: mean {a} vs {mean}");
            assert!((b - m2).abs() < 1e-5 * m2.max(1.0), "n = {n}: m2 {b} vs {m2}");
            let g: Vec<f32> = (0..n).map(|i| ((i * 13 % 29) as f32 - 14.0) / 5.0).collect();
            let [s0, s1, s2] = bn_sums(&g, &v, 0.5, 0.25, 0.1, 0.2);
            let (mut e0, mut e1, mut e2) = (0f64, 0f64, 0f64);
            for (&gg, &z) in g.iter().zip(&v) {
                let vv = 0.5 * z as f64 + 0.25;
                let ga = if vv > 0.0 { gg as f64 } else { 0.2 * gg as f64 };
                e0 += ga;
                e1 += ga * (z as f64 - 0.1);
                if vv <= 0.0 {
                    e2 += gg as f64 * vv;
                }
            }
            for (x, e) in [(s0, e0), (s1, e1), (s2, e2)] {
                assert!((x - e).abs() < 1e-4 * e.abs().max(1.0), "n = {n}: {x} vs {e}");
            }
        }
    }
}
