//! Numerical building blocks of the CPU kernels: a float trait, exponential and logarithm
//! that vectorise (no branches, no table look-ups), run-time detection of AVX2 + FMA, a
//! pointer that parallel tasks writing disjoint indices can share, and the custom ops' view of
//! candle's CPU storages.

use candle_core::{CpuStorage, DType, Layout, Storage, Tensor};

/// True where the crate's fused CPU kernels serve: every tensor `f32` and on the CPU (other
/// devices and dtypes use the layers composed from candle ops), except inside
/// [`crate::kernels::with_composed_layers`] on the calling thread.
pub(crate) fn cpu_f32(ts: &[&Tensor]) -> bool {
    FUSED_CPU.with(|on| on.get()) && ts.iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32)
}

/// Whether the crate's CUDA layer paths (the batch-norm and PReLU kernels, 1×1 convolutions as
/// matrix products) serve these tensors: all on a CUDA device, all `f32` or all `f64`, outside
/// [`crate::kernels::with_composed_layers`].
pub(crate) fn cuda_float(ts: &[&Tensor]) -> bool {
    let dtype = ts.first().map(|t| t.dtype());
    FUSED_CPU.with(|on| on.get())
        && matches!(dtype, Some(DType::F32 | DType::F64))
        && ts.iter().all(|t| t.device().is_cuda() && Some(t.dtype()) == dtype)
}

thread_local! {
    /// Whether the fused CPU kernels and the CUDA layer paths serve on this thread (see
    /// [`cpu_f32`], [`cuda_float`]).
    pub(crate) static FUSED_CPU: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
    /// Whether composed convolutions compute their value in f64 (see
    /// [`crate::kernels::with_f64_convolution_values`]).
    pub(crate) static F64_CONV_VALUES: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The values of a storage that a contiguous layout covers; `what` names the input in the
/// error for any other layout.
pub(crate) fn contiguous_part<'a, T>(v: &'a [T], l: &Layout, what: &str) -> candle_core::Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => candle_core::bail!("rwt: {what} must be contiguous"),
    }
}

/// `(B, C, plane)` of a contiguous, non-empty layout `[B, C, …]` (`plane` the product of the
/// dims after the channels, 1 for `[B, C]`): the view of the per-channel kernels (batch-norm,
/// PReLU); an error naming the `op` and its input `what` otherwise.
pub(crate) fn channel_planes(l: &Layout, op: &str, what: &str) -> candle_core::Result<(usize, usize, usize)> {
    match l.dims() {
        [b, c, rest @ ..] if l.is_contiguous() && l.shape().elem_count() > 0 => Ok((*b, *c, rest.iter().product())),
        d => candle_core::bail!("rwt {op}: {what} must be contiguous, non-empty [B, C, ...], got {d:?}"),
    }
}

/// The values of CPU storages that are all `f32` or all `f64`, each the contiguous part its
/// layout covers (the per-channel ops' CPU loops take either).
pub(crate) enum Floats<'a> {
    F32(Vec<&'a [f32]>),
    F64(Vec<&'a [f64]>),
}

impl<'a> Floats<'a> {
    /// The inputs `(storage, layout, what)` of `op`, or an error naming the first that is not
    /// contiguous and `op` when their dtypes are not all `f32` or all `f64`.
    pub(crate) fn of(inputs: &[(&'a CpuStorage, &Layout, &str)], op: &str) -> candle_core::Result<Self> {
        fn all<'a, T>(
            inputs: &[(&'a CpuStorage, &Layout, &str)],
            values: fn(&'a CpuStorage) -> Option<&'a [T]>,
            op: &str,
        ) -> candle_core::Result<Vec<&'a [T]>> {
            inputs
                .iter()
                .map(|(s, l, what)| match values(s) {
                    Some(v) => contiguous_part(v, l, what),
                    None => candle_core::bail!("rwt {op}: the inputs must be all f32 or all f64"),
                })
                .collect()
        }
        match inputs.first().map(|i| i.0) {
            Some(CpuStorage::F64(_)) => {
                Ok(Floats::F64(all(inputs, |s| if let CpuStorage::F64(v) = s { Some(v) } else { None }, op)?))
            }
            _ => Ok(Floats::F32(all(inputs, |s| if let CpuStorage::F32(v) = s { Some(v) } else { None }, op)?)),
        }
    }
}

/// The `f32` values of a CPU storage that a contiguous layout covers.
pub(crate) fn f32_part<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    contiguous_part(s.as_slice::<f32>()?, l, what)
}

/// Runs `f` on the `f32` values of CPU tensors, borrowed from their storages (copied first
/// only where a tensor is not contiguous): the backward passes' view of their inputs.
pub(crate) fn with_host<R>(
    ts: &[&Tensor],
    f: impl FnOnce(&[&[f32]]) -> candle_core::Result<R>,
) -> candle_core::Result<R> {
    let owned = ts.iter().map(|t| t.contiguous()).collect::<candle_core::Result<Vec<_>>>()?;
    let guards: Vec<_> = owned.iter().map(|t| t.storage_and_layout()).collect();
    let slices = guards
        .iter()
        .map(|(s, l)| match &**s {
            Storage::Cpu(c) => f32_part(c, l, "tensor"),
            _ => candle_core::bail!("rwt CPU kernels: tensor is not on the CPU"),
        })
        .collect::<candle_core::Result<Vec<_>>>()?;
    f(&slices)
}

/// Float types of the kernels.
pub(crate) trait Real:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn from_f64(v: f64) -> Self;
    fn to_f64(self) -> f64;
    #[inline(always)]
    fn abs(self) -> Self {
        if self < Self::ZERO {
            Self::ZERO - self
        } else {
            self
        }
    }
    #[inline(always)]
    fn max(self, other: Self) -> Self {
        if other > self {
            other
        } else {
            self
        }
    }
    fn is_finite(self) -> bool;
}

impl Real for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    const NEG_INFINITY: f32 = f32::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> f32 {
        exp_f32(self)
    }
    #[inline(always)]
    fn ln(self) -> f32 {
        ln_f32(self)
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Real for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    const NEG_INFINITY: f64 = f64::NEG_INFINITY;
    #[inline(always)]
    fn exp(self) -> f64 {
        f64::exp(self)
    }
    fn ln(self) -> f64 {
        f64::ln(self)
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// `e^x` in single precision, branch-free so that loops over it vectorise: range reduction
/// `x = n ln 2 + r`, a degree-7 polynomial on `|r| ≤ ln 2 / 2` (the Cephes `expf` kernel) and
/// `2^n` built in the exponent bits. Inputs are clamped to `[−87.3, 88.7]`, so the result
/// never underflows to a denormal nor overflows; relative error below 2e-7.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LO: f32 = -87.33654;
    const HI: f32 = 88.72283;
    let x = if x < LO { LO } else { x };
    let x = if x > HI { HI } else { x };
    // Round x·log2(e) to the nearest integer with the 1.5·2^23 trick (no rounding instruction
    // needed, so it vectorises on plain SSE2).
    let n = (x * std::f32::consts::LOG2_E + 12_582_912.0) - 12_582_912.0;
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_2e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// A raw pointer that may cross threads; every task writes a disjoint set of indices.
#[derive(Clone, Copy)]
pub(crate) struct SyncPtr<T>(pub(crate) *mut T);
unsafe impl<T: Send> Send for SyncPtr<T> {}
unsafe impl<T: Send> Sync for SyncPtr<T> {}

impl<T> SyncPtr<T> {
    /// The pointer (a method, so closures capture the whole `SyncPtr`, not its field).
    pub(crate) fn get(self) -> *mut T {
        self.0
    }
}

/// Whether the CPU has AVX2 and FMA (checked once).
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *FAST.get_or_init(|| std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `ln x` in single precision, branch-free so that loops over it vectorise: `x = m · 2^e` with
/// `m ∈ [√½, √2)` read from the bits, then the Cephes `logf` polynomial in `m − 1`. Relative
/// error below 2e-7 for normal positive inputs; `0` gives a very negative number (about
/// `−88`, the log of the smallest normal float), not `−∞`, and negative inputs are not
/// supported (the kernels only take logs of sums of exponentials).
#[inline(always)]
pub(crate) fn ln_f32(x: f32) -> f32 {
    let x = if x < f32::MIN_POSITIVE { f32::MIN_POSITIVE } else { x };
    let bits = x.to_bits();
    let mut e = ((bits >> 23) as i32 - 127) as f32;
    // Mantissa in [1, 2).
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    // Move to [√½, √2) so that m − 1 is small.
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e = if big { e + 1.0 } else { e };
    let t = m - 1.0;
    let z = t * t;
    let mut y = 7.037_683_6e-2f32;
    y = y * t - 1.151_461_1e-1;
    y = y * t + 1.167_699_9e-1;
    y = y * t - 1.242_014_1e-1;
    y = y * t + 1.424_932_3e-1;
    y = y * t - 1.666_805_8e-1;
    y = y * t + 2.000_071_5e-1;
    y = y * t - 2.499_999_4e-1;
    y = y * t + 3.333_333e-1;
    y = y * t * z;
    y += -2.121_944_4e-4 * e;
    y += -0.5 * z;
    t + y + 0.693_359_4 * e
}

/// An output element: kernels that write every element of their output may take storage
/// not yet written.
pub(crate) type Out = std::mem::MaybeUninit<f32>;

/// A vector of `n` floats written by `fill`, without zeroing them first.
///
/// # Safety
/// `fill` must write every one of the `n` elements.
pub(crate) unsafe fn filled(n: usize, fill: impl FnOnce(&mut [Out])) -> Vec<f32> {
    let mut v = Vec::<f32>::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: `fill` initialised all `n` elements (the caller's contract).
    unsafe { v.set_len(n) };
    v
}

/// Zeros written into `s`, then `s` as floats.
pub(crate) fn zeroed(s: &mut [Out]) -> &mut [f32] {
    s.fill(Out::new(0.0));
    // SAFETY: every element was just written; `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { &mut *(s as *mut [Out] as *mut [f32]) }
}

/// Output storage that has been written, as floats.
///
/// # Safety
/// Every element of `s` must have been written.
pub(crate) unsafe fn written(s: &mut [Out]) -> &mut [f32] {
    // SAFETY: initialised (the caller's contract); `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { &mut *(s as *mut [Out] as *mut [f32]) }
}

/// Floats viewed as output storage.
///
/// # Safety
/// Only initialised values may be written through the view.
pub(crate) unsafe fn as_out(s: &mut [f32]) -> &mut [Out] {
    // SAFETY: same layout; the caller writes initialised values only.
    unsafe { &mut *(s as *mut [f32] as *mut [Out]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_ln_matches_std() {
        let mut worst = 0f64;
        let mut x = 1e-30f32;
        while x < 1e30 {
            let a = ln_f32(x) as f64;
            let b = (x as f64).ln();
            worst = worst.max((a - b).abs() / b.abs().max(1.0));
            x *= 1.0137;
        }
        assert!(worst < 3e-7, "worst error {worst}");
        assert_eq!(ln_f32(1.0), 0.0);
        assert!(ln_f32(0.0) < -87.0 && ln_f32(0.0).is_finite());
    }

    #[test]
    fn fast_exp_matches_std() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let a = exp_f32(x) as f64;
            let b = (x as f64).exp();
            worst = worst.max(((a - b) / b).abs());
            x += 0.0137;
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert!(exp_f32(-1e4) > 0.0 && exp_f32(-1e4) < 1e-37);
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
