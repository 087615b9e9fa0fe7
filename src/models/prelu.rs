//! PReLU (He et al. 2015), ENet's activation: `y = x` for `x > 0`, `a_c·x` otherwise, one
//! learned slope per channel (PyTorch's parameter name `weight`).
//!
//! On the CPU with `f32` it is one custom op with the gradient `∂x = g·(x > 0 ? 1 : a_c)`,
//! `∂a_c = Σ_{x ≤ 0} g·x`; elsewhere it is composed from candle ops (tested equal).

use crate::Result;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Shape, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

/// A per-channel PReLU over `[B, C, H, W]` (or `[B, C]`), slopes initialised to 0.25.
#[derive(Clone, Debug)]
pub struct PRelu {
    weight: Tensor,
}

impl PRelu {
    /// `c` slopes named `weight` under `vb`.
    pub fn new(c: usize, vb: VarBuilder) -> Result<Self> {
        Ok(PRelu { weight: vb.get_with_hints(c, "weight", candle_nn::init::Init::Const(0.25))? })
    }

    /// The composed form (any device and dtype).
    pub fn forward_composed(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut shape = vec![1; x.rank()];
        shape[1] = self.weight.elem_count();
        let a = self.weight.to_dtype(x.dtype())?.reshape(shape)?;
        x.relu()? + x.minimum(0.0)?.broadcast_mul(&a)?
    }
}

impl candle_core::Module for PRelu {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.rank() < 2 || x.dim(1)? != self.weight.elem_count() {
            candle_core::bail!("rwt PReLU: input {:?} does not have {} channels", x.dims(), self.weight.elem_count());
        }
        if matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && self.weight.dtype() == DType::F32 {
            x.contiguous()?.apply_op2(&self.weight, FusedPRelu)
        } else {
            self.forward_composed(x)
        }
    }
}

struct FusedPRelu;

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&s.as_slice::<f32>()?[a..b]),
        None => candle_core::bail!("rwt PReLU needs contiguous inputs"),
    }
}

/// Elements per `(batch, channel)` plane of `dims`.
fn plane(dims: &[usize]) -> usize {
    dims[2..].iter().product::<usize>().max(1)
}

impl CustomOp2 for FusedPRelu {
    fn name(&self) -> &'static str {
        "rwt-prelu"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        a: &CpuStorage,
        al: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, a) = (slice(xs, xl)?, slice(a, al)?);
        let dims = xl.shape().dims();
        let (nc, p) = (dims[1], plane(dims));
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(p).zip(x.par_chunks(p)).enumerate().for_each(|(i, (yo, xi))| {
            let s = a[i % nc];
            for (o, &v) in yo.iter_mut().zip(xi) {
                *o = if v > 0.0 { v } else { s * v };
            }
        });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        a: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let dims = x.dims().to_vec();
        let (nc, p) = (dims[1], plane(&dims));
        let (x, grad) = (x.contiguous()?, grad.contiguous()?);
        let ((xs, xl), (gs, gl)) = (x.storage_and_layout(), grad.storage_and_layout());
        let (xv, gv) = (super::conv::host(&xs, xl)?, super::conv::host(&gs, gl)?);
        let av = a.to_vec1::<f32>()?;
        let mut dx = vec![0f32; xv.len()];
        let per_plane: Vec<f64> = dx
            .par_chunks_mut(p)
            .enumerate()
            .map(|(i, d)| {
                let s = av[i % nc];
                let r = i * p..(i + 1) * p;
                let mut da = 0f32;
                for ((o, &g), &v) in d.iter_mut().zip(&gv[r.clone()]).zip(&xv[r]) {
                    if v > 0.0 {
                        *o = g;
                    } else {
                        *o = s * g;
                        da += g * v;
                    }
                }
                da as f64
            })
            .collect();
        let mut da = vec![0f64; nc];
        for (i, v) in per_plane.into_iter().enumerate() {
            da[i % nc] += v;
        }
        let dev = x.device();
        let dx = Tensor::from_vec(dx, dims.as_slice(), dev)?;
        let da = Tensor::from_vec(da.into_iter().map(|v| v as f32).collect::<Vec<_>>(), nc, dev)?;
        Ok((Some(dx), Some(da)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Module, Var};

    /// The fused op against the composed form, candle's autograd as the reference.
    #[test]
    fn fused_matches_composed() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(5);
        let x = Var::from_tensor(&crate::random::normal(&mut rng, (2, 4, 5, 3), 1.0, &dev).unwrap()).unwrap();
        let g = crate::random::normal(&mut rng, (2, 4, 5, 3), 1.0, &dev).unwrap();
        let a = Var::from_tensor(&Tensor::new(&[0.25f32, -0.5, 0.0, 1.5], &dev).unwrap()).unwrap();
        let p = PRelu { weight: a.as_tensor().clone() };
        let run = |y: Tensor| {
            let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            [v(&y), v(gs.get(x.as_tensor()).unwrap()), v(gs.get(a.as_tensor()).unwrap())]
        };
        let fused = run(p.forward(x.as_tensor()).unwrap());
        let composed = run(p.forward_composed(x.as_tensor()).unwrap());
        for (k, (f, c)) in fused.iter().zip(&composed).enumerate() {
            let d = f.iter().zip(c).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
            assert!(d < 1e-5, "quantity {k}: {d}");
        }
    }
}
