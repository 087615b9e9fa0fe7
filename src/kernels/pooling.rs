//! Max-pooling with indices and max-unpooling — the operations behind SegNet's and ENet's
//! decoders, which candle does not have — as custom ops with CPU and CUDA kernels and
//! gradients.
//!
//! Indices are flat positions inside each `H × W` plane (as in PyTorch's
//! `max_pool2d(..., return_indices=True)`), stored as `u32`. Three kernels do all the work:
//! *argmax-pool* (the indices), *gather* (pooled values from indices; its gradient is a
//! scatter) and *scatter* (unpooling; its gradient is a gather).

use crate::kernels::numeric::{contiguous_part, SyncPtr};
use crate::{Error, Result};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

/// `(values, indices)` of a max-pooling with square `kernel` and `stride` (no padding; the
/// output is `floor((H − kernel) / stride) + 1` high, likewise wide).
///
/// # Shapes
/// - `x`: `[B, C, H, W]` `f32` or `f64`
/// - values `[B, C, h, w]` (same dtype), indices `[B, C, h, w]` `u32`
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// let x = Tensor::new(&[[[[1f32, 5., 2., 0.], [3., 4., 8., 1.]]]], &Device::Cpu)?;
/// let (v, i) = rwt::models::ops::max_pool2d_with_indices(&x, 2, 2)?;
/// assert_eq!(v.flatten_all()?.to_vec1::<f32>()?, [5., 8.]);
/// assert_eq!(i.flatten_all()?.to_vec1::<u32>()?, [1, 6]);
/// # Ok::<(), rwt::Error>(())
/// ```
pub fn max_pool2d_with_indices(x: &Tensor, kernel: usize, stride: usize) -> Result<(Tensor, Tensor)> {
    let (_, _, h, w) =
        x.dims4().map_err(|_| Error::shape("max-pool input", "[B, C, H, W]", format!("{:?}", x.dims())))?;
    if kernel == 0 || stride == 0 || h < kernel || w < kernel {
        return Err(Error::invalid(
            "max-pool kernel",
            kernel,
            format!("needs 0 < kernel <= input size {h}x{w} and stride > 0"),
        ));
    }
    check_float(x, "max-pool input")?;
    let x = x.contiguous()?;
    let indices = x.apply_op1_no_bwd(&ArgmaxPool { kernel, stride })?;
    let values = x.apply_op2(&indices, Gather { plane: h * w })?;
    Ok((values, indices))
}

/// Max-unpooling: a zero `[B, C, out_h, out_w]` tensor with `values` written at `indices`
/// (the pooling's indices); its gradient gathers at the same indices.
pub fn max_unpool2d(values: &Tensor, indices: &Tensor, out_h: usize, out_w: usize) -> Result<Tensor> {
    if values.dims() != indices.dims() || values.rank() != 4 {
        return Err(Error::shape(
            "unpool indices vs values",
            format!("{:?} (4-d)", values.dims()),
            format!("{:?}", indices.dims()),
        ));
    }
    if indices.dtype() != DType::U32 {
        return Err(Error::DType { what: "unpool indices", expected: "u32", got: indices.dtype() });
    }
    check_float(values, "unpool values")?;
    Ok(values.contiguous()?.apply_op2(&indices.contiguous()?, Scatter { h: out_h, w: out_w })?)
}

fn check_float(x: &Tensor, what: &'static str) -> Result<()> {
    match x.dtype() {
        DType::F32 | DType::F64 => Ok(()),
        d => Err(Error::DType { what, expected: "f32 or f64", got: d }),
    }
}

/// Indices of the maxima of each pooling window.
struct ArgmaxPool {
    kernel: usize,
    stride: usize,
}

impl ArgmaxPool {
    fn out_dims(&self, h: usize, w: usize) -> (usize, usize) {
        ((h - self.kernel) / self.stride + 1, (w - self.kernel) / self.stride + 1)
    }

    fn run<T: PartialOrd + Copy + Send + Sync>(&self, x: &[T], (b, c, h, w): (usize, usize, usize, usize)) -> Vec<u32> {
        let (oh, ow) = self.out_dims(h, w);
        let mut out = vec![0u32; b * c * oh * ow];
        out.par_chunks_mut(oh * ow).enumerate().for_each(|(plane, o)| {
            let xp = &x[plane * h * w..(plane + 1) * h * w];
            if (self.kernel, self.stride) == (2, 2) {
                Self::plane_2x2(xp, w, ow, o)
            } else {
                self.plane(xp, w, ow, o)
            }
        });
        out
    }

    /// The indices of one plane `xp` (`w` wide) into `o` (`ow` wide).
    fn plane<T: PartialOrd + Copy>(&self, xp: &[T], w: usize, ow: usize, o: &mut [u32]) {
        for (oy, orow) in o.chunks_exact_mut(ow).enumerate() {
            for (ox, d) in orow.iter_mut().enumerate() {
                let (y0, x0) = (oy * self.stride, ox * self.stride);
                let mut best = y0 * w + x0;
                for dy in 0..self.kernel {
                    for dx in 0..self.kernel {
                        let i = (y0 + dy) * w + x0 + dx;
                        // NaN never wins, so a NaN window points at its first element.
                        if xp[i] > xp[best] {
                            best = i;
                        }
                    }
                }
                *d = best as u32;
            }
        }
    }

    /// [`ArgmaxPool::plane`] for ENet's and SegNet's 2×2 windows with stride 2: two input
    /// rows per output row, the same comparisons in the same order, no index arithmetic per
    /// comparison.
    fn plane_2x2<T: PartialOrd + Copy>(xp: &[T], w: usize, ow: usize, o: &mut [u32]) {
        for (oy, orow) in o.chunks_exact_mut(ow).enumerate() {
            let (r0, r1) = (&xp[2 * oy * w..][..2 * ow], &xp[(2 * oy + 1) * w..][..2 * ow]);
            for (ox, ((d, a), b)) in orow.iter_mut().zip(r0.chunks_exact(2)).zip(r1.chunks_exact(2)).enumerate() {
                let (mut best, mut v) = (0, a[0]);
                for (k, &u) in [a[1], b[0], b[1]].iter().enumerate() {
                    if u > v {
                        (best, v) = (k + 1, u);
                    }
                }
                *d = ((2 * oy + best / 2) * w + 2 * ox + best % 2) as u32;
            }
        }
    }
}

impl CustomOp1 for ArgmaxPool {
    fn name(&self) -> &'static str {
        "rwt-argmax-pool2d"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let (oh, ow) = self.out_dims(h, w);
        let idx = match s {
            CpuStorage::F32(v) => self.run(contiguous_part(v, l, "pooling input")?, (b, c, h, w)),
            CpuStorage::F64(v) => self.run(contiguous_part(v, l, "pooling input")?, (b, c, h, w)),
            _ => candle_core::bail!("rwt argmax-pool: f32 or f64 input"),
        };
        Ok((CpuStorage::U32(idx), Shape::from((b, c, oh, ow))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s: &candle_core::CudaStorage,
        l: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, h, w) = l.shape().dims4()?;
        let (oh, ow) = self.out_dims(h, w);
        let out = super::pooling_cuda::argmax_pool(s, l, (b, c, h, w), self.kernel, self.stride)?;
        Ok((out, Shape::from((b, c, oh, ow))))
    }
}

/// Values at indices: `out[p, k] = x[p, idx[p, k]]` for each plane `p`.
struct Gather {
    plane: usize,
}

fn gather_run<T: Copy + Send + Sync>(x: &[T], idx: &[u32], plane_in: usize, plane_out: usize) -> Vec<T> {
    let planes = idx.len() / plane_out.max(1);
    let mut out = Vec::with_capacity(idx.len());
    for p in 0..planes {
        let xp = &x[p * plane_in..(p + 1) * plane_in];
        out.extend(idx[p * plane_out..(p + 1) * plane_out].iter().map(|&i| xp[i as usize]));
    }
    out
}

impl CustomOp2 for Gather {
    fn name(&self) -> &'static str {
        "rwt-gather-plane"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::U32(idx) = s2 else { candle_core::bail!("rwt gather: u32 indices") };
        let idx = contiguous_part(idx, l2, "pooling indices")?;
        let (_, _, oh, ow) = l2.shape().dims4()?;
        check_indices(idx, self.plane)?;
        let out = match s1 {
            CpuStorage::F32(v) => {
                CpuStorage::F32(gather_run(contiguous_part(v, l1, "pooling values")?, idx, self.plane, oh * ow))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(gather_run(contiguous_part(v, l1, "pooling values")?, idx, self.plane, oh * ow))
            }
            _ => candle_core::bail!("rwt gather: f32 or f64 values"),
        };
        Ok((out, l2.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let out = super::pooling_cuda::gather(s1, l1, s2, l2, self.plane)?;
        Ok((out, l2.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        idx: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (_, _, h, w) = x.dims4()?;
        let g = grad.contiguous()?.apply_op2(idx, Scatter { h, w })?;
        Ok((Some(g), None))
    }
}

/// Unpooling: `out[p, idx[p, k]] += v[p, k]` into zeros of `h × w` per plane.
struct Scatter {
    h: usize,
    w: usize,
}

fn scatter_run<T: Copy + Send + Sync + Default + std::ops::AddAssign>(
    v: &[T],
    idx: &[u32],
    plane_in: usize,
    plane_out: usize,
) -> Vec<T> {
    let planes = idx.len() / plane_in.max(1);
    let mut out = vec![T::default(); planes * plane_out];
    let outp = SyncPtr(out.as_mut_ptr());
    (0..planes).into_par_iter().for_each(|p| {
        // SAFETY: plane p of the output is written by this task only.
        let o = unsafe { std::slice::from_raw_parts_mut(outp.get().add(p * plane_out), plane_out) };
        for (&i, &x) in idx[p * plane_in..(p + 1) * plane_in].iter().zip(&v[p * plane_in..(p + 1) * plane_in]) {
            o[i as usize] += x;
        }
    });
    out
}

impl CustomOp2 for Scatter {
    fn name(&self) -> &'static str {
        "rwt-scatter-plane"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::U32(idx) = s2 else { candle_core::bail!("rwt unpool: u32 indices") };
        let idx = contiguous_part(idx, l2, "pooling indices")?;
        let (b, c, h, w) = l1.shape().dims4()?;
        check_indices(idx, self.h * self.w)?;
        let out = match s1 {
            CpuStorage::F32(v) => {
                CpuStorage::F32(scatter_run(contiguous_part(v, l1, "pooling values")?, idx, h * w, self.h * self.w))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(scatter_run(contiguous_part(v, l1, "pooling values")?, idx, h * w, self.h * self.w))
            }
            _ => candle_core::bail!("rwt unpool: f32 or f64 values"),
        };
        Ok((out, Shape::from((b, c, self.h, self.w))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> candle_core::Result<(candle_core::CudaStorage, Shape)> {
        let (b, c, _, _) = l1.shape().dims4()?;
        let out = super::pooling_cuda::scatter(s1, l1, s2, l2, self.h * self.w)?;
        Ok((out, Shape::from((b, c, self.h, self.w))))
    }

    fn bwd(
        &self,
        _v: &Tensor,
        idx: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad.contiguous()?.apply_op2(idx, Gather { plane: self.h * self.w })?;
        Ok((Some(g), None))
    }
}

fn check_indices(idx: &[u32], plane: usize) -> candle_core::Result<()> {
    if let Some(&i) = idx.iter().find(|&&i| i as usize >= plane) {
        candle_core::bail!(
            "rwt pooling index {i} is outside a plane of {plane} elements (indices from another input size?)"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn lcg(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn pool_unpool_round_trip_and_shapes() {
        let x = Tensor::from_vec(lcg(2 * 3 * 6 * 8, 1), (2, 3, 6, 8), &Device::Cpu).unwrap();
        let (v, i) = max_pool2d_with_indices(&x, 2, 2).unwrap();
        assert_eq!(v.dims(), &[2, 3, 3, 4]);
        let reference = x.max_pool2d(2).unwrap();
        assert_eq!(
            v.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            reference.flatten_all().unwrap().to_vec1::<f64>().unwrap()
        );
        let u = max_unpool2d(&v, &i, 6, 8).unwrap();
        // Unpooled maxima sit where they came from; everything else is zero.
        let (xv, uv) =
            (x.flatten_all().unwrap().to_vec1::<f64>().unwrap(), u.flatten_all().unwrap().to_vec1::<f64>().unwrap());
        let kept = uv.iter().filter(|&&a| a != 0.0).count();
        assert_eq!(kept, 2 * 3 * 12);
        for (a, b) in xv.iter().zip(&uv) {
            assert!(*b == 0.0 || a == b);
        }
        // Odd sizes floor, overlapping windows work.
        let (v, _) = max_pool2d_with_indices(&x, 3, 2).unwrap();
        assert_eq!(v.dims(), &[2, 3, 2, 3]);
        assert!(max_unpool2d(&v, &i, 6, 8).is_err(), "indices of another shape");
        let e = max_pool2d_with_indices(&x, 9, 2).unwrap_err().to_string();
        assert!(e.contains("kernel = 9"), "{e}");
    }

    /// The 2×2 kernel against the general one on odd sizes, ties and NaNs.
    #[test]
    fn pooling_2x2_matches_the_general_kernel() {
        let (h, w) = (7, 9);
        let mut x: Vec<f32> = lcg(h * w, 3).iter().map(|v| (v * 6.0).round() as f32).collect();
        for i in [0, 1, 10, 20, 21, 40] {
            x[i] = f32::NAN;
        }
        let op = ArgmaxPool { kernel: 2, stride: 2 };
        let (oh, ow) = op.out_dims(h, w);
        let (mut fast, mut general) = (vec![0; oh * ow], vec![0; oh * ow]);
        ArgmaxPool::plane_2x2(&x, w, ow, &mut fast);
        op.plane(&x, w, ow, &mut general);
        assert_eq!(fast, general);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let dims = (1, 2, 4, 6);
        let x0 = lcg(48, 7);
        let weights = Tensor::from_vec(lcg(12, 9), (1, 2, 2, 3), &Device::Cpu).unwrap();
        let f = |x: &Tensor| -> Tensor {
            let (v, i) = max_pool2d_with_indices(x, 2, 2).unwrap();
            let u = max_unpool2d(&(&v * &weights).unwrap(), &i, 4, 6).unwrap();
            (u.sqr().unwrap().sum_all().unwrap() + (v * &weights).unwrap().sum_all().unwrap()).unwrap()
        };
        let var = Var::from_tensor(&Tensor::from_vec(x0.clone(), dims, &Device::Cpu).unwrap()).unwrap();
        let g = f(var.as_tensor())
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let h = 1e-6;
        for k in 0..48 {
            let at = |d: f64| {
                let mut v = x0.clone();
                v[k] += d;
                f(&Tensor::from_vec(v, dims, &Device::Cpu).unwrap()).to_scalar::<f64>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            assert!((fd - g[k]).abs() < 1e-6, "d/dx[{k}]: {} vs {fd}", g[k]);
        }
        assert!(g.iter().filter(|v| **v != 0.0).count() == 12, "only the maxima receive gradient");
    }
}
