//! ENet (Paszke, Chaurasia, Kim, Culurciello, "ENet: A Deep Neural Network Architecture for
//! Real-Time Semantic Segmentation", arXiv:1606.02147, 2016).
//!
//! Initial block (3×3 convolution with stride 2 beside a 2×2 max-pool, concatenated), then
//! bottlenecks: 1×1 projection → main convolution (regular, dilated, asymmetric 5×1 + 1×5, or
//! 2×2 stride-2 for downsampling, 2×2 stride-2 transposed for upsampling) → 1×1 expansion,
//! each with batch-norm and PReLU, spatial dropout, and a residual branch (identity; max-pool
//! with indices and zero channel padding when downsampling; 1×1 convolution and max-unpooling
//! with those indices when upsampling). The stages follow Table 1 of the paper; the final
//! "fullconv" is a 2×2 stride-2 transposed convolution to the classes. 0.36 M parameters for
//! 11 classes.
//!
//! Named outputs: the **latent** map is the output of stage 3 (128 channels at 1/8 of the
//! input), the agent's state in Section III.C; the **penultimate** map is the output of
//! bottleneck 5.1 (16 channels at 1/2), the last layer before the classifier.

use super::layers::{batch_norm, channel_mask, dropout2d, Act, BatchNorm, Conv, ConvSpec, ConvTranspose};
use super::{Segmenter, SegmenterConfig, SegmenterOutput};
use crate::kernels::bottleneck::{self, Bottleneck};
use crate::kernels::numeric::cpu_f32;
use crate::kernels::pooling::{max_pool2d_with_indices, max_unpool2d};
use crate::kernels::prelu::residual_prelu;
use crate::Result;
use candle_core::{Module, ModuleT, Tensor};
use candle_nn::VarBuilder;
use std::sync::{Arc, Mutex};

/// The initial block: 3×3/2 convolution (16 − 3 filters) beside a 2×2 max-pool of the image.
#[derive(Clone, Debug)]
struct Initial {
    conv: Conv,
    bn: BatchNorm,
    act: Act,
}

impl Initial {
    fn new(c_out: usize, vb: VarBuilder) -> Result<Self> {
        let conv = Conv::new(3, c_out - 3, ConvSpec::same(3, 1).with_stride(2), vb.pp("conv"))?;
        Ok(Initial { conv, bn: batch_norm(c_out, vb.pp("bn"))?, act: Act::prelu(c_out, vb.pp("prelu"))? })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let main = self.conv.forward(x)?;
        let pool = x.max_pool2d(2)?;
        let y = Tensor::cat(&[main, pool], 1)?;
        self.act.after(&self.bn, &y, train)
    }
}

/// The kind of the middle convolution of a regular bottleneck.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Regular,
    Dilated(usize),
    Asymmetric(usize),
}

/// conv → bn → optional PReLU.
#[derive(Clone, Debug)]
struct Unit {
    conv: Conv,
    bn: BatchNorm,
    act: Act,
}

impl Unit {
    /// `names` = the conv, batch-norm and PReLU prefixes; an empty PReLU name means no activation.
    fn new(c_in: usize, c_out: usize, spec: ConvSpec, vb: &VarBuilder, names: [&str; 3]) -> Result<Self> {
        let [conv, bn, prelu] = names;
        Ok(Unit {
            conv: Conv::new(c_in, c_out, spec, vb.pp(conv))?,
            bn: batch_norm(c_out, vb.pp(bn))?,
            act: if prelu.is_empty() { Act::Identity } else { Act::prelu(c_out, vb.pp(prelu))? },
        })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        self.act.after(&self.bn, &self.conv.forward(x)?, train)
    }

    /// This unit as a part of a fused bottleneck (`None` for a biased convolution or a ReLU).
    fn part(&self) -> Option<Part<'_>> {
        let ((ph, pw), stride, dilation, bias) = self.conv.geometry();
        let (c_out, c_in, kh, kw) = self.conv.weight().dims4().ok()?;
        let prelu = match &self.act {
            Act::PRelu(p) => Some(p.weight()),
            Act::Identity => None,
            Act::Relu => return None,
        };
        let unit = bottleneck::Unit {
            c_in,
            c_out,
            kh,
            kw,
            ph,
            pw,
            stride,
            dilation,
            transposed: false,
            prelu: prelu.is_some(),
        };
        (!bias).then_some(Part {
            unit,
            weight: self.conv.weight(),
            bn: &self.bn,
            prelu,
            layer: Layer::Conv(&self.conv),
        })
    }
}

/// The convolution of a [`Part`], for the multiply-add trace.
enum Layer<'a> {
    Conv(&'a Conv),
    Transposed(&'a ConvTranspose),
}

/// One unit of a fused bottleneck: its shape and its layers' parameters.
struct Part<'a> {
    unit: bottleneck::Unit,
    weight: &'a Tensor,
    bn: &'a BatchNorm,
    prelu: Option<&'a Tensor>,
    layer: Layer<'a>,
}

/// `PReLU(main + dropout2d(branch(x)))` as one op (`kernels::bottleneck`), where `parts` are
/// the branch's units and `main` the shortcut (`None`: `x` itself); `None` where that op does
/// not serve (not `f32` on the CPU), and the caller composes the layers instead.
fn fused(
    parts: &[Part],
    x: &Tensor,
    main: Option<&Tensor>,
    out: &Act,
    p: f64,
    train: bool,
) -> candle_core::Result<Option<Tensor>> {
    let Act::PRelu(exit) = out else { return Ok(None) };
    let mut tensors = vec![x, main.unwrap_or(x), exit.weight()];
    tensors.extend(parts.iter().map(|p| p.weight));
    if !cpu_f32(&tensors) {
        return Ok(None);
    }
    let mut flat = Vec::with_capacity(4 * parts.len() + 1);
    for part in parts {
        let (gamma, beta) = part.bn.affine();
        flat.extend([part.weight.flatten_all()?, gamma.clone(), beta.clone()]);
        flat.extend(part.prelu.cloned());
    }
    flat.push(exit.weight().clone());
    let params = Tensor::cat(&flat, 0)?;
    let running = if train {
        None
    } else {
        let stats = |bn: &BatchNorm| -> candle_core::Result<_> {
            Ok((bn.running_mean().to_vec1::<f32>()?, bn.running_var().to_vec1::<f32>()?))
        };
        Some(parts.iter().map(|p| stats(p.bn)).collect::<candle_core::Result<Vec<_>>>()?)
    };
    let (b, c, _, _) = main.unwrap_or(x).dims4()?;
    let units: Vec<_> = parts.iter().map(|p| p.unit).collect();
    let sizes = bottleneck::sizes(&units, x.dim(2)?, x.dim(3)?);
    let state = Arc::new(Mutex::new(bottleneck::State::default()));
    let op = Bottleneck { units, running, mask: channel_mask(b, c, p, train), state: state.clone() };
    let x = x.contiguous()?;
    let y = match main {
        Some(m) => x.apply_op3(&m.contiguous()?, &params, op)?,
        None => x.apply_op2(&params, bottleneck::Identity(op))?,
    };
    for (k, part) in parts.iter().enumerate() {
        match part.layer {
            Layer::Conv(conv) => conv.trace(b, sizes[k + 1].0, sizes[k + 1].1),
            Layer::Transposed(deconv) => deconv.trace(b, sizes[k].0, sizes[k].1),
        }
    }
    if train {
        let st = state.lock().map_err(|_| candle_core::Error::Msg("rwt bottleneck: state poisoned".into()))?;
        for (k, (part, (mean, var))) in parts.iter().zip(&st.batch_moments).enumerate() {
            let f = |v: &Vec<f64>| v.iter().map(|&v| v as f32).collect::<Vec<_>>();
            part.bn.update_running(&f(mean), &f(var), b * sizes[k + 1].0 * sizes[k + 1].1)?;
        }
    }
    Ok(Some(y))
}

/// A bottleneck's exit: `act(main + dropout2d(branch))`, one fused op for a PReLU.
fn exit(act: &Act, main: &Tensor, branch: &Tensor, p: f64, train: bool) -> candle_core::Result<Tensor> {
    let (b, c, _, _) = branch.dims4()?;
    match act {
        Act::PRelu(pr) => residual_prelu(main, branch, channel_mask(b, c, p, train), pr),
        _ => act.apply(&(main + dropout2d(branch, p, train)?)?),
    }
}

/// A regular (possibly dilated or asymmetric) bottleneck with an identity shortcut.
#[derive(Clone, Debug)]
struct Regular {
    units: Vec<Unit>,
    out: Act,
    dropout: f64,
}

impl Regular {
    fn new(c: usize, kind: Kind, dropout: f64, vb: VarBuilder) -> Result<Self> {
        let i = (c / 4).max(1);
        let mut units = vec![Unit::new(c, i, ConvSpec::pointwise(), &vb, ["conv1", "bn1", "act1"])?];
        match kind {
            Kind::Regular => units.push(Unit::new(i, i, ConvSpec::same(3, 1), &vb, ["conv2", "bn2", "act2"])?),
            Kind::Dilated(d) => units.push(Unit::new(i, i, ConvSpec::same(3, d), &vb, ["conv2", "bn2", "act2"])?),
            Kind::Asymmetric(k) => {
                let p = k / 2;
                let a = ConvSpec { kernel: (k, 1), pad: (p, 0), stride: 1, dilation: 1, bias: false };
                let b = ConvSpec { kernel: (1, k), pad: (0, p), stride: 1, dilation: 1, bias: false };
                units.push(Unit::new(i, i, a, &vb, ["conv2", "bn2", "act2"])?);
                units.push(Unit::new(i, i, b, &vb, ["conv2b", "bn2b", "act2b"])?);
            }
        }
        units.push(Unit::new(i, c, ConvSpec::pointwise(), &vb, ["conv3", "bn3", ""])?);
        Ok(Regular { units, out: Act::prelu(c, vb.pp("act_out"))?, dropout })
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        if let Some(parts) = self.units.iter().map(Unit::part).collect::<Option<Vec<_>>>() {
            if let Some(y) = fused(&parts, x, None, &self.out, self.dropout, train)? {
                return Ok(y);
            }
        }
        let mut y = x.clone();
        for u in &self.units {
            y = u.forward_t(&y, train)?;
        }
        exit(&self.out, x, &y, self.dropout, train)
    }
}

/// Downsampling bottleneck: 2×2/2 projection; shortcut = max-pool with indices, channels
/// padded with zeros.
#[derive(Clone, Debug)]
struct Down {
    units: [Unit; 3],
    out: Act,
    c_in: usize,
    c_out: usize,
    dropout: f64,
}

impl Down {
    fn new(c_in: usize, c_out: usize, dropout: f64, vb: VarBuilder) -> Result<Self> {
        let i = (c_in / 4).max(1);
        let proj = ConvSpec { kernel: (2, 2), pad: (0, 0), stride: 2, dilation: 1, bias: false };
        Ok(Down {
            units: [
                Unit::new(c_in, i, proj, &vb, ["conv1", "bn1", "act1"])?,
                Unit::new(i, i, ConvSpec::same(3, 1), &vb, ["conv2", "bn2", "act2"])?,
                Unit::new(i, c_out, ConvSpec::pointwise(), &vb, ["conv3", "bn3", ""])?,
            ],
            out: Act::prelu(c_out, vb.pp("act_out"))?,
            c_in,
            c_out,
            dropout,
        })
    }

    /// Output and the pooling indices (for the matching upsampling bottleneck).
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<(Tensor, Tensor)> {
        let (main, idx) = max_pool2d_with_indices(x, 2, 2).map_err(candle_core::Error::wrap)?;
        let main = main.pad_with_zeros(1, 0, self.c_out - self.c_in)?;
        if let Some(parts) = self.units.iter().map(Unit::part).collect::<Option<Vec<_>>>() {
            if let Some(y) = fused(&parts, x, Some(&main), &self.out, self.dropout, train)? {
                return Ok((y, idx));
            }
        }
        let mut y = x.clone();
        for u in &self.units {
            y = u.forward_t(&y, train)?;
        }
        Ok((exit(&self.out, &main, &y, self.dropout, train)?, idx))
    }
}

/// Upsampling bottleneck: 2×2/2 transposed convolution; shortcut = 1×1 convolution then
/// max-unpooling with the indices of the matching downsampling bottleneck.
#[derive(Clone, Debug)]
struct Up {
    main_conv: Conv,
    main_bn: BatchNorm,
    conv1: Unit,
    deconv: ConvTranspose,
    bn2: BatchNorm,
    act2: Act,
    conv3: Unit,
    out: Act,
    dropout: f64,
}

impl Up {
    fn new(c_in: usize, c_out: usize, dropout: f64, vb: VarBuilder) -> Result<Self> {
        let i = (c_in / 4).max(1);
        Ok(Up {
            main_conv: Conv::new(c_in, c_out, ConvSpec::pointwise(), vb.pp("main_conv"))?,
            main_bn: batch_norm(c_out, vb.pp("main_bn"))?,
            conv1: Unit::new(c_in, i, ConvSpec::pointwise(), &vb, ["conv1", "bn1", "act1"])?,
            deconv: ConvTranspose::new(i, i, 2, 2, 0, false, vb.pp("deconv2"))?,
            bn2: batch_norm(i, vb.pp("bn2"))?,
            act2: Act::prelu(i, vb.pp("act2"))?,
            conv3: Unit::new(i, c_out, ConvSpec::pointwise(), &vb, ["conv3", "bn3", ""])?,
            out: Act::prelu(c_out, vb.pp("act_out"))?,
            dropout,
        })
    }

    fn forward_t(&self, x: &Tensor, idx: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = idx.dims4()?;
        let main = self.main_bn.forward_t(&self.main_conv.forward(x)?, train)?;
        let main = max_unpool2d(&main, idx, 2 * h, 2 * w).map_err(candle_core::Error::wrap)?;
        if let Some(parts) = self.parts() {
            if let Some(y) = fused(&parts, x, Some(&main), &self.out, self.dropout, train)? {
                return Ok(y);
            }
        }
        let y = self.conv1.forward_t(x, train)?;
        let y = self.act2.after(&self.bn2, &self.deconv.forward(&y)?, train)?;
        let y = self.conv3.forward_t(&y, train)?;
        exit(&self.out, &main, &y, self.dropout, train)
    }
}

impl Up {
    /// The branch as parts of a fused bottleneck (the transposed convolution's kernel must
    /// equal its stride, without padding).
    fn parts(&self) -> Option<Vec<Part<'_>>> {
        let (weight, stride, padding) = self.deconv.plain()?;
        let (c_in, c_out, kh, kw) = weight.dims4().ok()?;
        let Act::PRelu(a) = &self.act2 else { return None };
        if (kh, kw) != (stride, stride) || padding != 0 {
            return None;
        }
        let unit =
            bottleneck::Unit { c_in, c_out, kh, kw, ph: 0, pw: 0, stride, dilation: 1, transposed: true, prelu: true };
        let deconv =
            Part { unit, weight, bn: &self.bn2, prelu: Some(a.weight()), layer: Layer::Transposed(&self.deconv) };
        Some(vec![self.conv1.part()?, deconv, self.conv3.part()?])
    }
}

/// ENet (see the [module docs](crate::models)).
///
/// ```
/// use rwt::candle_core::{DType, Device, Tensor};
/// use rwt::candle_nn::{VarBuilder, VarMap};
/// use rwt::models::{Enet, Segmenter, SegmenterConfig};
/// let vm = VarMap::new();
/// let net = Enet::new(&SegmenterConfig::new(11), VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))?;
/// let out = net.forward_all(&Tensor::zeros((1, 3, 45, 61), DType::F32, &Device::Cpu)?, false)?;
/// assert_eq!(out.logits.dims(), &[1, 11, 45, 61]);
/// assert_eq!(out.latent.dim(1)?, 128);
/// # Ok::<(), rwt::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Enet {
    initial: Initial,
    b1_0: Down,
    stage1: Vec<Regular>,
    b2_0: Down,
    stage2: Vec<Regular>,
    stage3: Vec<Regular>,
    b4_0: Up,
    stage4: Vec<Regular>,
    b5_0: Up,
    stage5: Vec<Regular>,
    fullconv: ConvTranspose,
    num_classes: usize,
}

impl Enet {
    /// ENet for `cfg.num_classes` classes; `cfg.width` scales the 16/64/128 channels.
    pub fn new(cfg: &SegmenterConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate()?;
        let w = |c: usize| ((c as f64 * cfg.width).round() as usize).max(4);
        let (c0, c1, c2) = (w(16), w(64), w(128));
        let p1 = if cfg.dropout { 0.01 } else { 0.0 };
        let p2 = if cfg.dropout { 0.1 } else { 0.0 };
        let middle = |prefix: &str, vb: &VarBuilder| -> Result<Vec<Regular>> {
            let kinds = [
                Kind::Regular,
                Kind::Dilated(2),
                Kind::Asymmetric(5),
                Kind::Dilated(4),
                Kind::Regular,
                Kind::Dilated(8),
                Kind::Asymmetric(5),
                Kind::Dilated(16),
            ];
            kinds
                .iter()
                .enumerate()
                .map(|(k, &kind)| Regular::new(c2, kind, p2, vb.pp(format!("{prefix}_{}", k + 1))))
                .collect()
        };
        Ok(Enet {
            initial: Initial::new(c0, vb.pp("initial"))?,
            b1_0: Down::new(c0, c1, p1, vb.pp("b1_0"))?,
            stage1: (1..=4)
                .map(|k| Regular::new(c1, Kind::Regular, p1, vb.pp(format!("b1_{k}"))))
                .collect::<Result<_>>()?,
            b2_0: Down::new(c1, c2, p2, vb.pp("b2_0"))?,
            stage2: middle("b2", &vb)?,
            stage3: middle("b3", &vb)?,
            b4_0: Up::new(c2, c1, p2, vb.pp("b4_0"))?,
            stage4: (1..=2)
                .map(|k| Regular::new(c1, Kind::Regular, p2, vb.pp(format!("b4_{k}"))))
                .collect::<Result<_>>()?,
            b5_0: Up::new(c1, c0, p2, vb.pp("b5_0"))?,
            stage5: vec![Regular::new(c0, Kind::Regular, p2, vb.pp("b5_1"))?],
            fullconv: ConvTranspose::new(c0, cfg.num_classes, 2, 2, 0, true, vb.pp("fullconv"))?,
            num_classes: cfg.num_classes,
        })
    }
}

fn run(blocks: &[Regular], x: Tensor, train: bool) -> candle_core::Result<Tensor> {
    blocks.iter().try_fold(x, |x, b| b.forward_t(&x, train))
}

impl Segmenter for Enet {
    fn name(&self) -> &'static str {
        "enet"
    }

    fn num_classes(&self) -> usize {
        self.num_classes
    }

    fn stride(&self) -> usize {
        8
    }

    fn forward_padded(&self, x: &Tensor, train: bool) -> Result<SegmenterOutput> {
        let x = self.initial.forward_t(x, train)?;
        let (x, idx1) = self.b1_0.forward_t(&x, train)?;
        let x = run(&self.stage1, x, train)?;
        let (x, idx2) = self.b2_0.forward_t(&x, train)?;
        let x = run(&self.stage2, x, train)?;
        let latent = run(&self.stage3, x, train)?;
        let x = self.b4_0.forward_t(&latent, &idx2, train)?;
        let x = run(&self.stage4, x, train)?;
        let x = self.b5_0.forward_t(&x, &idx1, train)?;
        let penultimate = run(&self.stage5, x, train)?;
        let logits = self.fullconv.forward(&penultimate)?;
        Ok(SegmenterOutput { logits, latent, penultimate })
    }

    /// The encoder alone (initial block, stages 1–3): the decoder is not run.
    fn latent_padded(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.initial.forward_t(x, false)?;
        let (x, _) = self.b1_0.forward_t(&x, false)?;
        let x = run(&self.stage1, x, false)?;
        let (x, _) = self.b2_0.forward_t(&x, false)?;
        let x = run(&self.stage2, x, false)?;
        Ok(run(&self.stage3, x, false)?)
    }
}

impl ModuleT for Enet {
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        Segmenter::forward_t(self, x, train).map_err(candle_core::Error::wrap)
    }
}
