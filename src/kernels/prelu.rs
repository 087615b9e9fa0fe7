//! PReLU (He et al. 2015), ENet's activation: `y = x` for `x > 0`, `a_c·x` otherwise, one
//! learned slope per channel (PyTorch's parameter name `weight`).
//!
//! On the CPU with `f32` it is one custom op with the gradient `∂x = g·(x > 0 ? 1 : a_c)`,
//! `∂a_c = Σ_{x ≤ 0} g·x`; on CUDA (`f32`, `f64`) the two ops of `prelu_device.rs`; elsewhere
//! it is composed from candle ops (all tested equal).

use crate::kernels::numeric::{cpu_f32, cuda_float, f32_part, with_host};
use crate::Result;
use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
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

    /// A PReLU with the given slopes `[C]`.
    pub fn from_weight(weight: Tensor) -> Self {
        PRelu { weight }
    }

    /// The slopes `[C]`.
    pub fn weight(&self) -> &Tensor {
        &self.weight
    }

    /// The composed form (any device and dtype).
    pub fn forward_composed(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut shape = vec![1; x.rank()];
        shape[1] = self.weight.elem_count();
        let a = self.weight.to_dtype(x.dtype())?.reshape(shape)?;
        x.relu()? + x.minimum(0.0)?.broadcast_mul(&a)?
    }
}

impl PRelu {
    /// The layer through the ops of `prelu_device.rs`: the path on CUDA, which also runs on the
    /// CPU (for the tests).
    pub(crate) fn forward_device(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.contiguous()?.apply_op2(&self.weight.contiguous()?, crate::kernels::prelu_device::Apply)
    }
}

impl candle_core::Module for PRelu {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if x.rank() < 2 || x.dim(1)? != self.weight.elem_count() {
            candle_core::bail!("rwt PReLU: input {:?} does not have {} channels", x.dims(), self.weight.elem_count());
        }
        if cpu_f32(&[x, &self.weight]) {
            x.contiguous()?.apply_op2(&self.weight, FusedPRelu)
        } else if cuda_float(&[x, &self.weight]) {
            self.forward_device(x)
        } else {
            self.forward_composed(x)
        }
    }
}

/// ENet's bottleneck exit `PReLU(main + m ⊙ branch)`, with `m` the per-`(batch, channel)`
/// spatial-dropout scales (`None`: no dropout): one op on the CPU with `f32` (gradients
/// `∂main = g'`, `∂branch = m·g'`, `g' = g·(s > 0 ? 1 : a_c)`, `∂a_c = Σ_{s ≤ 0} g·s`); the
/// sum composed and the PReLU's ops on CUDA; composed elsewhere.
pub fn residual_prelu(
    main: &Tensor,
    branch: &Tensor,
    mask: Option<Vec<f32>>,
    prelu: &PRelu,
) -> candle_core::Result<Tensor> {
    let (b, c, _, _) = main.dims4()?;
    if main.dims() != branch.dims() || c != prelu.weight.elem_count() {
        candle_core::bail!(
            "rwt residual PReLU: main {:?}, branch {:?}, {} slopes",
            main.dims(),
            branch.dims(),
            prelu.weight.elem_count()
        );
    }
    if mask.as_ref().is_some_and(|m| m.len() != b * c) {
        candle_core::bail!("rwt residual PReLU: the dropout mask needs {} scales", b * c);
    }
    if cpu_f32(&[main, branch, &prelu.weight]) {
        return main.contiguous()?.apply_op3(&branch.contiguous()?, &prelu.weight, Residual { mask });
    }
    let branch = match mask {
        Some(m) => {
            branch.broadcast_mul(&Tensor::from_vec(m, (b, c, 1, 1), branch.device())?.to_dtype(branch.dtype())?)?
        }
        None => branch.clone(),
    };
    candle_core::Module::forward(prelu, &(main + branch)?)
}

/// The fused residual op; inputs `main`, `branch`, slopes.
struct Residual {
    mask: Option<Vec<f32>>,
}

impl candle_core::CustomOp3 for Residual {
    fn name(&self) -> &'static str {
        "rwt-residual-prelu"
    }

    fn cpu_fwd(
        &self,
        ms: &CpuStorage,
        ml: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
        a: &CpuStorage,
        al: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (m, br, a) =
            (f32_part(ms, ml, "PReLU input")?, f32_part(bs, bl, "PReLU input")?, f32_part(a, al, "PReLU slopes")?);
        let dims = ml.shape().dims();
        let (nc, p) = (dims[1], plane(dims));
        let mut y = vec![0f32; m.len()];
        y.par_chunks_mut(p).enumerate().for_each(|(i, yo)| {
            let (s, k) = (a[i % nc], self.mask.as_ref().map_or(1.0, |mk| mk[i]));
            let r = i * p..(i + 1) * p;
            for ((o, &u), &v) in yo.iter_mut().zip(&m[r.clone()]).zip(&br[r]) {
                let z = u + k * v;
                *o = if z > 0.0 { z } else { s * z };
            }
        });
        Ok((CpuStorage::F32(y), ml.shape().clone()))
    }

    fn bwd(
        &self,
        main: &Tensor,
        branch: &Tensor,
        a: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dims = main.dims().to_vec();
        let (nc, p) = (dims[1], plane(&dims));
        with_host(&[main, branch, grad], |v| {
            let (mv, bv, gv) = (v[0], v[1], v[2]);
            let av = a.to_vec1::<f32>()?;
            let mut dm = vec![0f32; mv.len()];
            let mut db = vec![0f32; mv.len()];
            let per_plane: Vec<f64> = dm
                .par_chunks_mut(p)
                .zip(db.par_chunks_mut(p))
                .enumerate()
                .map(|(i, (dmo, dbo))| {
                    let (s, k) = (av[i % nc], self.mask.as_ref().map_or(1.0, |mk| mk[i]));
                    let r = i * p..(i + 1) * p;
                    let mut da = 0f32;
                    for ((((om, ob), &g), &u), &v) in
                        dmo.iter_mut().zip(dbo.iter_mut()).zip(&gv[r.clone()]).zip(&mv[r.clone()]).zip(&bv[r])
                    {
                        let z = u + k * v;
                        let gz = if z > 0.0 {
                            g
                        } else {
                            da += g * z;
                            s * g
                        };
                        *om = gz;
                        *ob = k * gz;
                    }
                    da as f64
                })
                .collect();
            let mut da = vec![0f64; nc];
            for (i, v) in per_plane.into_iter().enumerate() {
                da[i % nc] += v;
            }
            let dev = main.device();
            let da = Tensor::from_vec(da.into_iter().map(|v| v as f32).collect::<Vec<_>>(), nc, dev)?;
            Ok((
                Some(Tensor::from_vec(dm, dims.as_slice(), dev)?),
                Some(Tensor::from_vec(db, dims.as_slice(), dev)?),
                Some(da),
            ))
        })
    }
}

struct FusedPRelu;

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
        let (x, a) = (f32_part(xs, xl, "PReLU input")?, f32_part(a, al, "PReLU slopes")?);
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
        with_host(&[x, grad], |v| {
            let (xv, gv) = (v[0], v[1]);
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
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
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

    /// The device path (`prelu_device.rs`, run here by its CPU loops, which compute what the
    /// CUDA kernels compute) against the composed form: output and the gradients of the input
    /// and the slopes, for `[B, C, H, W]` and `[B, C]`, in f64 (to rounding) and f32. (At an
    /// input of exactly 0 the gradient is a convention: the fused ops take the slope's side,
    /// candle's composed `relu(x) + a·min(x, 0)` both sides, `1 + a`.)
    #[test]
    fn device_path_matches_composed() {
        let dev = Device::Cpu;
        for (dtype, tol) in [(candle_core::DType::F64, 1e-12), (candle_core::DType::F32, 1e-6)] {
            for shape in [vec![2, 4, 5, 3], vec![3, 4]] {
                let mut rng = crate::random::seeded(7);
                let x = crate::random::normal(&mut rng, shape.as_slice(), 1.0, &dev).unwrap();
                let x = Var::from_tensor(&x.to_dtype(dtype).unwrap()).unwrap();
                let g = crate::random::normal(&mut rng, shape.as_slice(), 1.0, &dev).unwrap().to_dtype(dtype).unwrap();
                let a =
                    Var::from_tensor(&Tensor::new(&[0.25f64, -0.5, 0.0, 1.5], &dev).unwrap().to_dtype(dtype).unwrap())
                        .unwrap();
                let p = PRelu { weight: a.as_tensor().clone() };
                let run = |y: Tensor| {
                    let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
                    let v = |t: &Tensor| {
                        t.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap().to_vec1::<f64>().unwrap()
                    };
                    [v(&y), v(gs.get(x.as_tensor()).unwrap()), v(gs.get(a.as_tensor()).unwrap())]
                };
                let ours = run(p.forward_device(x.as_tensor()).unwrap());
                let composed = run(p.forward_composed(x.as_tensor()).unwrap());
                for (k, (f, c)) in ours.iter().zip(&composed).enumerate() {
                    let scale = c.iter().fold(1f64, |m, v| m.max(v.abs()));
                    let d = f.iter().zip(c).map(|(p, q)| (p - q).abs()).fold(0f64, f64::max);
                    assert!(d <= tol * scale, "{dtype:?} {shape:?} quantity {k}: {d:e}");
                }
            }
        }
    }

    /// The device path names the bad input: slopes of another length, mixed dtypes, an empty
    /// batch.
    #[test]
    fn device_op_rejects_bad_input() {
        use crate::kernels::prelu_device::Apply;
        let dev = Device::Cpu;
        let x = Tensor::ones((2, 4, 3, 3), candle_core::DType::F32, &dev).unwrap();
        let err = x.apply_op2(&Tensor::ones(3, candle_core::DType::F32, &dev).unwrap(), Apply).unwrap_err();
        assert!(err.to_string().contains("[4], got [3]"), "{err}");
        let err = x.apply_op2(&Tensor::ones(4, candle_core::DType::F64, &dev).unwrap(), Apply).unwrap_err();
        assert!(err.to_string().contains("all f32 or all f64"), "{err}");
        let empty = Tensor::ones((0, 4, 3, 3), candle_core::DType::F32, &dev).unwrap();
        let err = empty.apply_op2(&Tensor::ones(4, candle_core::DType::F32, &dev).unwrap(), Apply).unwrap_err();
        assert!(err.to_string().contains("non-empty"), "{err}");
    }

    /// The fused bottleneck exit against `PReLU(main + mask ⊙ branch)` from candle ops.
    #[test]
    fn residual_matches_composed() {
        let dev = Device::Cpu;
        let mut rng = crate::random::seeded(6);
        let m = Var::from_tensor(&crate::random::normal(&mut rng, (2, 3, 4, 5), 1.0, &dev).unwrap()).unwrap();
        let b = Var::from_tensor(&crate::random::normal(&mut rng, (2, 3, 4, 5), 1.0, &dev).unwrap()).unwrap();
        let g = crate::random::normal(&mut rng, (2, 3, 4, 5), 1.0, &dev).unwrap();
        let a = Var::from_tensor(&Tensor::new(&[0.25f32, -0.5, 0.0], &dev).unwrap()).unwrap();
        let p = PRelu { weight: a.as_tensor().clone() };
        let run = |y: Tensor| {
            let gs = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            let v = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            [
                v(&y),
                v(gs.get(m.as_tensor()).unwrap()),
                v(gs.get(b.as_tensor()).unwrap()),
                v(gs.get(a.as_tensor()).unwrap()),
            ]
        };
        for mask in [None, Some(vec![2.0f32, 0.0, 2.0, 2.0, 0.0, 2.0])] {
            let fused = run(residual_prelu(m.as_tensor(), b.as_tensor(), mask.clone(), &p).unwrap());
            let scaled = match &mask {
                Some(k) => {
                    b.as_tensor().broadcast_mul(&Tensor::from_vec(k.clone(), (2, 3, 1, 1), &dev).unwrap()).unwrap()
                }
                None => b.as_tensor().clone(),
            };
            let composed = run(p.forward_composed(&(m.as_tensor() + scaled).unwrap()).unwrap());
            for (k, (f, c)) in fused.iter().zip(&composed).enumerate() {
                let d = f.iter().zip(c).map(|(p, q)| (p - q).abs()).fold(0f32, f32::max);
                assert!(d < 1e-5, "mask {:?} quantity {k}: {d}", mask.is_some());
            }
        }
    }
}
