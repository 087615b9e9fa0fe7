//! The paper's actor-critic network (Section III.C): a convolutional branch for the stacked
//! latent maps, a fully connected branch for the measurements, a joint trunk and two heads.
//!
//! ```text
//! latent [B, C, h, w] → conv 3×3×32 → conv 3×3×16 → flatten → FC 1024 → FC 512 ─┐
//! measurements [B, M] → FC 64 → FC 64 ──────────────────────────────────────────┴→ concat 576
//!   → FC 256 → FC 128 ─┬→ FC 64 → FC 16 → FC P   policy head (P = ActionSpace::head_size)
//!                      └→ FC 64 → FC 16 → FC 1   value V(s)
//! ```
//!
//! The paper gives the layer widths only; the rest is this crate's choice: ReLU after every
//! hidden layer, unpadded stride-1 convolutions (so `h, w ≥ 5`), PyTorch's default
//! initialisation `U(±1/√fan_in)` drawn from a seeded generator ([`ActorCritic::seeded`]) and
//! the policy head's last layer scaled by 0.01 (CleanRL's practice: a near-uniform first
//! policy). With ENet at the agent's 96 × 192 camera the latent is `[128, 12, 24]` per frame,
//! so `C = 256`, the flattened conv output `16·8·20 = 2560` and the network has 3.43 M
//! parameters.

use super::policy::{ActionSpace, Policy};
use crate::models::layers::{Conv, ConvSpec};
use crate::sim::Measurements;
use crate::{Error, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::Rng;

/// The network's input sizes and action space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActorCriticConfig {
    /// Channels of the state's latent maps (two frames stacked: twice the segmenter's).
    pub latent_channels: usize,
    /// Height of the latent maps (≥ 5).
    pub latent_height: usize,
    /// Width of the latent maps (≥ 5).
    pub latent_width: usize,
    /// Length of the measurement vector.
    pub measurements: usize,
    /// What the policy head parametrises.
    pub action_space: ActionSpace,
}

impl ActorCriticConfig {
    /// The state of a segmenter whose latent map is `[channels, height, width]` per frame:
    /// two frames (`2·channels`), [`Measurements::LEN`] measurements, the Beta policy.
    pub fn for_latent(channels: usize, height: usize, width: usize) -> Self {
        ActorCriticConfig {
            latent_channels: 2 * channels,
            latent_height: height,
            latent_width: width,
            measurements: Measurements::LEN,
            action_space: ActionSpace::Beta,
        }
    }

    /// The same with `n` measurements ([`Measurements::LEN_WITH_ROUTE`] for a state with the
    /// route ahead, [`crate::rl::StateEncoder::measurements_len`]).
    pub fn with_measurements(self, n: usize) -> Self {
        ActorCriticConfig { measurements: n, ..self }
    }

    /// The same with another action space.
    pub fn with_action_space(self, action_space: ActionSpace) -> Self {
        ActorCriticConfig { action_space, ..self }
    }

    /// Checks the sizes; the error names the bad one.
    pub fn validate(&self) -> Result<()> {
        if self.latent_channels == 0 {
            return Err(Error::invalid("latent_channels", 0, "must be >= 1"));
        }
        if self.latent_height < 5 || self.latent_width < 5 {
            return Err(Error::invalid(
                "latent size",
                format!("{}x{}", self.latent_height, self.latent_width),
                "must be at least 5x5 for two unpadded 3x3 convolutions",
            ));
        }
        if self.measurements == 0 {
            return Err(Error::invalid("measurements", 0, "must be >= 1"));
        }
        Ok(())
    }

    /// Length of the flattened convolutional features: `16·(h − 4)·(w − 4)`.
    pub fn conv_features(&self) -> usize {
        16 * (self.latent_height - 4) * (self.latent_width - 4)
    }
}

/// What the network computes for a batch of states.
#[derive(Clone, Debug)]
pub struct ActorCriticOutput {
    /// The policy head's outputs `[B, P]` (see [`ActionSpace::policy`]).
    pub head: Tensor,
    /// The state values `V(s)`, `[B]`.
    pub value: Tensor,
}

/// The actor-critic network (see the module docs for the layers).
#[derive(Clone, Debug)]
pub struct ActorCritic {
    config: ActorCriticConfig,
    conv: [Conv; 2],
    latent_fc: [Linear; 2],
    measurement_fc: [Linear; 2],
    joint_fc: [Linear; 2],
    policy_head: [Linear; 3],
    value_head: [Linear; 3],
}

fn relu_chain(x: Tensor, layers: &[Linear]) -> Result<Tensor> {
    layers.iter().try_fold(x, |x, l| Ok(l.forward(&x)?.relu()?))
}

impl ActorCritic {
    /// Builds the layers under `vb` (names: `latent.conv1`, `latent.conv2`, `latent.fc1`,
    /// `latent.fc2`, `measurements.fc1`, `measurements.fc2`, `joint.fc1`, `joint.fc2`,
    /// `policy.fc1`, `policy.fc2`, `policy.out`, `value.fc1`, `value.fc2`, `value.out`).
    pub fn new(config: &ActorCriticConfig, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        // The crate's im2col + GEMM convolution (kernels::conv): candle's direct CPU
        // convolution backward would take most of an update.
        let spec = ConvSpec { kernel: (3, 3), pad: (0, 0), stride: 1, dilation: 1, bias: true };
        let lin = |i, o, name: &str, vb: &VarBuilder| candle_nn::linear(i, o, vb.pp(name));
        let (vl, vm, vj, vp, vv) =
            (vb.pp("latent"), vb.pp("measurements"), vb.pp("joint"), vb.pp("policy"), vb.pp("value"));
        Ok(ActorCritic {
            config: *config,
            conv: [
                Conv::new(config.latent_channels, 32, spec, vl.pp("conv1"))?,
                Conv::new(32, 16, spec, vl.pp("conv2"))?,
            ],
            latent_fc: [lin(config.conv_features(), 1024, "fc1", &vl)?, lin(1024, 512, "fc2", &vl)?],
            measurement_fc: [lin(config.measurements, 64, "fc1", &vm)?, lin(64, 64, "fc2", &vm)?],
            joint_fc: [lin(512 + 64, 256, "fc1", &vj)?, lin(256, 128, "fc2", &vj)?],
            policy_head: [
                lin(128, 64, "fc1", &vp)?,
                lin(64, 16, "fc2", &vp)?,
                lin(16, config.action_space.head_size(), "out", &vp)?,
            ],
            value_head: [lin(128, 64, "fc1", &vv)?, lin(64, 16, "fc2", &vv)?, lin(16, 1, "out", &vv)?],
        })
    }

    /// A fresh `VarMap` (f32, on `device`) and the network in it, initialised from `seed`
    /// (see the module docs): the same seed gives the same network.
    pub fn seeded(config: &ActorCriticConfig, device: &Device, seed: u64) -> Result<(VarMap, Self)> {
        let varmap = VarMap::new();
        let net = ActorCritic::new(config, VarBuilder::from_varmap(&varmap, DType::F32, device))?;
        init_weights(&varmap, seed)?;
        Ok((varmap, net))
    }

    /// The configuration.
    pub fn config(&self) -> &ActorCriticConfig {
        &self.config
    }

    /// The batch size `B` of a latent `[B, C, h, w]` of the configured `C, h, w`; any other
    /// shape is an error naming the input and both shapes.
    fn latent_batch(&self, latent: &Tensor) -> Result<usize> {
        let c = &self.config;
        let want = [c.latent_channels, c.latent_height, c.latent_width];
        match latent.dims() {
            [b, rest @ ..] if rest == want => Ok(*b),
            got => Err(Error::shape(
                "actor-critic latent input",
                format!("[B, {}, {}, {}]", want[0], want[1], want[2]),
                format!("{got:?}"),
            )),
        }
    }

    /// Policy head and value of a batch of states.
    ///
    /// # Shapes
    /// `latent`: `[B, C, h, w]` as configured; `measurements`: `[B, M]`. Either wrong is an
    /// error naming the input and both shapes.
    pub fn forward(&self, latent: &Tensor, measurements: &Tensor) -> Result<ActorCriticOutput> {
        let c = &self.config;
        let b = self.latent_batch(latent)?;
        if measurements.dims() != [b, c.measurements] {
            return Err(Error::shape(
                "actor-critic measurement input",
                format!("[{b}, {}] (the latent's batch, the measurement length)", c.measurements),
                format!("{:?}", measurements.dims()),
            ));
        }
        let x = self.latent_activations(latent)?.pop().expect("four layers");
        let m = relu_chain(measurements.clone(), &self.measurement_fc)?;
        let joint = relu_chain(Tensor::cat(&[x, m], 1)?, &self.joint_fc)?;
        let head = self.policy_head[2].forward(&relu_chain(joint.clone(), &self.policy_head[..2])?)?;
        let value = self.value_head[2].forward(&relu_chain(joint, &self.value_head[..2])?)?.squeeze(1)?;
        Ok(ActorCriticOutput { head, value })
    }

    /// The activations (after ReLU) of the latent branch's four layers — conv 1 `[B, 32, h−2,
    /// w−2]`, conv 2 `[B, 16, h−4, w−4]`, FC 1 `[B, 1024]`, FC 2 `[B, 512]` — for a latent
    /// `[B, C, h, w]` (the first part of [`ActorCritic::forward`]). A layer none of whose
    /// units is ever positive passes no gradient back: the branch is dead and the policy no
    /// longer depends on the camera ([`ActorCritic::latent_activity`]).
    ///
    /// Errors: a latent of the wrong shape (as [`ActorCritic::forward`]).
    pub fn latent_activations(&self, latent: &Tensor) -> Result<Vec<Tensor>> {
        self.latent_batch(latent)?;
        let mut out = Vec::with_capacity(4);
        let mut x = latent.clone();
        for l in &self.conv {
            x = l.forward(&x)?.relu()?;
            out.push(x.clone());
        }
        x = x.flatten_from(1)?;
        for l in &self.latent_fc {
            x = l.forward(&x)?.relu()?;
            out.push(x.clone());
        }
        Ok(out)
    }

    /// For each layer of the latent branch (conv 1, conv 2, FC 1, FC 2), the fraction of its
    /// units (channels for the convolutions, neurons for the FC layers) that are positive for
    /// at least one position and state of the batch `latent` `[B, C, h, w]`. A layer at 0
    /// has died: no gradient reaches the layers before it and the policy ignores the latent
    /// (RESULTS.md, issue 14: one training seed of `drive-enet-dagger-seeing`).
    ///
    /// Errors: a latent of the wrong shape (as [`ActorCritic::forward`]).
    pub fn latent_activity(&self, latent: &Tensor) -> Result<[f64; 4]> {
        let mut activity = [0f64; 4];
        for (a, x) in activity.iter_mut().zip(self.latent_activations(latent)?) {
            // Units on dimension 1; the largest activation over every other dimension.
            let x = x.transpose(0, 1)?.flatten_from(1)?.max(1)?;
            let alive = x.gt(0f32)?.to_dtype(DType::F32)?.mean_all()?.to_scalar::<f32>()?;
            *a = alive as f64;
        }
        Ok(activity)
    }

    /// The policy of a forward pass's head.
    pub fn policy(&self, out: &ActorCriticOutput) -> Result<Policy> {
        self.config.action_space.policy(&out.head)
    }
}

/// Redraws every variable of `varmap` in name order from a generator seeded with `seed`:
/// weights and biases from `U(±1/√fan_in)` (PyTorch's default for linear and convolutional
/// layers), `fan_in` from the weight's shape; the policy head's output layer then scaled by
/// 0.01.
pub fn init_weights(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = crate::random::seeded(seed);
    for name in names {
        let var = &data[name];
        let weight_name = name.strip_suffix(".bias").map_or(name.clone(), |p| format!("{p}.weight"));
        let fan_in = match data.get(&weight_name).map(|w| w.dims().to_vec()) {
            Some(d) if d.len() >= 2 => d[1..].iter().product::<usize>(),
            _ => return Err(Error::invalid("actor-critic variable", name, "has no weight to take its fan-in from")),
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        let scale = if name.starts_with("policy.out") { 0.01 } else { 1.0 };
        let values: Vec<f32> =
            (0..var.elem_count()).map(|_| (rng.random_range(-bound..bound) * scale) as f32).collect();
        var.set(&Tensor::from_vec(values, var.shape(), var.device())?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// The Beta parameters `(α, β)` of steer, throttle and brake that [`drive_forward_prior`]
/// starts the policy at by default: steer symmetric (mean 0; `α = β` is replaced by the
/// `steer` argument of [`drive_forward_prior`]), throttle mean 3/4.25 ≈ 0.71, brake mean
/// 1.25/7.25 ≈ 0.17.
pub const FORWARD_PRIOR: [(f64, f64); 3] = [(1.5, 1.5), (3.0, 1.25), (1.25, 6.0)];

/// Sets the Beta policy head's output bias so that the first policy drives forward
/// ([`FORWARD_PRIOR`]; the output weights stay small, so every state starts near it).
///
/// Why: with throttle and brake both near-uniform (means ½), the expected deceleration
/// (½ · 8 m/s²) exceeds the acceleration (½ · 3.5 m/s²) and the car never leaves the spot, so
/// a reward for progress is never seen. At the prior the expected acceleration is
/// 0.71 · 3.5 − 0.17 · 8 ≈ +1.1 m/s². CARLA-Roach starts its Beta policy the same way (its
/// throttle/brake dimension initialised to accelerate). A no-op for the discrete action
/// space.
///
/// `steer` is the steer Beta's `α = β` (its concentration): on `[−1, 1]` its standard
/// deviation is `1 / sqrt(2·steer + 1)` — 0.5 at [`FORWARD_PRIOR`]'s 1.5, 0.22 at 10. Every
/// sampled step turns the wheel by that much, so a wide prior weaves the car off the lane
/// within seconds before any reward for keeping it is seen.
///
/// Errors: a network without a `policy.out.bias` of 6 entries; `steer` not finite or ≤ 1
/// (the Beta must stay unimodal).
pub fn drive_forward_prior(varmap: &VarMap, action_space: ActionSpace, steer: f64) -> Result<()> {
    if action_space != ActionSpace::Beta {
        return Ok(());
    }
    if !(steer.is_finite() && steer > 1.0) {
        return Err(Error::invalid("agent.steer_prior", steer, "the steer Beta's α = β must be finite and > 1"));
    }
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let bias = data
        .get("policy.out.bias")
        .filter(|b| b.elem_count() == 6)
        .ok_or_else(|| Error::invalid("actor-critic", "policy.out.bias", "missing or not of 6 entries (Beta head)"))?;
    // softplus(l) + 1 = p  ⇔  l = ln(e^(p − 1) − 1).
    let logit = |p: f64| ((p - 1.0).exp() - 1.0).ln() as f32;
    let mut values = [0f32; 6];
    for (k, &(a, b)) in FORWARD_PRIOR.iter().enumerate() {
        let (a, b) = if k == 0 { (steer, steer) } else { (a, b) };
        values[k] = logit(a);
        values[3 + k] = logit(b);
    }
    bias.set(&Tensor::from_vec(values.to_vec(), 6, bias.device())?.to_dtype(bias.dtype())?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At the prior, for any state (small output weights), the Beta parameters are within 2 %
    /// of [`FORWARD_PRIOR`] and the means are α / (α + β).
    #[test]
    fn the_forward_prior_starts_the_car_moving() {
        let dev = Device::Cpu;
        let (vm, net) = ActorCritic::seeded(&small(), &dev, 3).unwrap();
        drive_forward_prior(&vm, ActionSpace::Beta, FORWARD_PRIOR[0].0).unwrap();
        let out = net
            .forward(
                &Tensor::randn(0f32, 1.0, (4, 8, 6, 7), &dev).unwrap(),
                &Tensor::ones((4, 7), DType::F32, &dev).unwrap(),
            )
            .unwrap();
        let Policy::Beta(beta) = net.policy(&out).unwrap() else { panic!("Beta head") };
        let (a, b) = (beta.alpha().to_vec2::<f32>().unwrap(), beta.beta().to_vec2::<f32>().unwrap());
        for row in 0..4 {
            for (k, &(pa, pb)) in FORWARD_PRIOR.iter().enumerate() {
                assert!((a[row][k] as f64 / pa - 1.0).abs() < 0.02 && (b[row][k] as f64 / pb - 1.0).abs() < 0.02);
            }
        }
        let mean = beta.mean().unwrap().to_vec2::<f32>().unwrap();
        assert!((mean[0][1] - 3.0 / 4.25).abs() < 0.01 && (mean[0][2] - 1.25 / 7.25).abs() < 0.01, "{mean:?}");
        // A narrower steer prior: α = β = 10 (sd 1/sqrt(21) ≈ 0.22 on [−1, 1]); ≤ 1 is refused.
        drive_forward_prior(&vm, ActionSpace::Beta, 10.0).unwrap();
        let out = net
            .forward(
                &Tensor::randn(0f32, 1.0, (2, 8, 6, 7), &dev).unwrap(),
                &Tensor::ones((2, 7), DType::F32, &dev).unwrap(),
            )
            .unwrap();
        let Policy::Beta(beta) = net.policy(&out).unwrap() else { panic!("Beta head") };
        let (a, b) = (beta.alpha().to_vec2::<f32>().unwrap(), beta.beta().to_vec2::<f32>().unwrap());
        assert!((a[0][0] / 10.0 - 1.0).abs() < 0.02 && (b[0][0] / 10.0 - 1.0).abs() < 0.02, "{a:?} {b:?}");
        assert!((a[0][1] as f64 / FORWARD_PRIOR[1].0 - 1.0).abs() < 0.02, "throttle unchanged");
        for bad in [1.0, 0.5, f64::NAN] {
            let e = drive_forward_prior(&vm, ActionSpace::Beta, bad).unwrap_err().to_string();
            assert!(e.contains("steer_prior"), "{e}");
        }
        // The discrete head is left alone.
        let (vm2, _) = ActorCritic::seeded(&small().with_action_space(ActionSpace::Discrete), &dev, 3).unwrap();
        drive_forward_prior(&vm2, ActionSpace::Discrete, FORWARD_PRIOR[0].0).unwrap();
    }

    fn small() -> ActorCriticConfig {
        ActorCriticConfig::for_latent(4, 6, 7)
    }

    /// The layer shapes of the paper and their parameter count: for ENet's `[128, 12, 24]`
    /// latent, conv `256·32·9 + 32` + `32·16·9 + 16`, FC `2560·1024 + 1024`, `1024·512 + 512`,
    /// `7·64 + 64`, `64·64 + 64`, `576·256 + 256`, `256·128 + 128`, heads `128·64 + 64`,
    /// `64·16 + 16`, `16·6 + 6` and `16·1 + 1` (+ the value's `128·64 + 64`, `64·16 + 16`).
    #[test]
    fn paper_shapes_and_parameter_count() {
        let cfg = ActorCriticConfig::for_latent(128, 12, 24);
        let (vm, _) = ActorCritic::seeded(&cfg, &Device::Cpu, 0).unwrap();
        let count: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        let want = (256 * 32 * 9 + 32)
            + (32 * 16 * 9 + 16)
            + (2560 * 1024 + 1024)
            + (1024 * 512 + 512)
            + (7 * 64 + 64)
            + (64 * 64 + 64)
            + (576 * 256 + 256)
            + (256 * 128 + 128)
            + 2 * (128 * 64 + 64 + 64 * 16 + 16)
            + (16 * 6 + 6)
            + (16 + 1);
        assert_eq!(count, want);
        assert_eq!(cfg.conv_features(), 2560);
    }

    #[test]
    fn forward_shapes_and_seeding() {
        let dev = Device::Cpu;
        for space in ActionSpace::ALL {
            let cfg = small().with_action_space(space);
            let (vm, net) = ActorCritic::seeded(&cfg, &dev, 7).unwrap();
            let latent = Tensor::randn(0f32, 1.0, (3, 8, 6, 7), &dev).unwrap();
            let meas = Tensor::randn(0f32, 1.0, (3, 7), &dev).unwrap();
            let out = net.forward(&latent, &meas).unwrap();
            assert_eq!(out.head.dims(), [3, space.head_size()]);
            assert_eq!(out.value.dims(), [3]);
            net.policy(&out).unwrap();
            // Same seed, same weights; another seed, other weights.
            let (vm2, net2) = ActorCritic::seeded(&cfg, &dev, 7).unwrap();
            let v1 = out.value.to_vec1::<f32>().unwrap();
            assert_eq!(v1, net2.forward(&latent, &meas).unwrap().value.to_vec1::<f32>().unwrap());
            init_weights(&vm2, 8).unwrap();
            assert_ne!(v1, net2.forward(&latent, &meas).unwrap().value.to_vec1::<f32>().unwrap());
            // The policy head starts near zero (scaled by 0.01).
            let head_max = out.head.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(head_max < 0.05, "{head_max}");
            drop(vm);
        }
    }

    /// A fresh network on a zero-mean random latent has live units in every layer of its
    /// latent branch; a first convolution whose biases are all −10⁴ (far below any
    /// `w·x` of this input) is dead — activity exactly 0 — and so is every layer after it
    /// whose bias is ≤ 0 for every unit; biases of +10⁴ make every unit live.
    #[test]
    fn latent_activity_finds_a_dead_branch() {
        let dev = Device::Cpu;
        let (vm, net) = ActorCritic::seeded(&small(), &dev, 5).unwrap();
        let latent = Tensor::randn(0f32, 1.0, (6, 8, 6, 7), &dev).unwrap();
        let live = net.latent_activity(&latent).unwrap();
        assert!(live.iter().all(|&a| a > 0.0 && a <= 1.0), "{live:?}");
        let set = |name: &str, value: f32| {
            let data = vm.data().lock().unwrap();
            let b = &data[name];
            b.set(&(b.ones_like().unwrap() * value as f64).unwrap()).unwrap();
        };
        set("latent.conv1.bias", -1e4);
        set("latent.conv2.bias", 0.0);
        let dead = net.latent_activity(&latent).unwrap();
        assert_eq!(dead[..2], [0.0, 0.0], "{dead:?}");
        set("latent.conv1.bias", 1e4);
        assert_eq!(net.latent_activity(&latent).unwrap()[0], 1.0);
        let e = net.latent_activity(&latent.narrow(1, 0, 4).unwrap()).unwrap_err();
        assert!(e.to_string().contains("latent input"), "{e}");
    }

    #[test]
    fn wrong_shapes_are_errors_naming_the_input() {
        let dev = Device::Cpu;
        let (_, net) = ActorCritic::seeded(&small(), &dev, 0).unwrap();
        let good_l = Tensor::zeros((2, 8, 6, 7), DType::F32, &dev).unwrap();
        let good_m = Tensor::zeros((2, 7), DType::F32, &dev).unwrap();
        let e = net.forward(&Tensor::zeros((2, 4, 6, 7), DType::F32, &dev).unwrap(), &good_m).unwrap_err();
        assert!(e.to_string().contains("latent input") && e.to_string().contains("[B, 8, 6, 7]"), "{e}");
        let e = net.forward(&good_l, &Tensor::zeros((3, 7), DType::F32, &dev).unwrap()).unwrap_err();
        assert!(e.to_string().contains("measurement input"), "{e}");
        let e = net.forward(&good_l.flatten_from(1).unwrap(), &good_m).unwrap_err();
        assert!(e.to_string().contains("latent input"), "{e}");
        assert!(ActorCriticConfig::for_latent(4, 4, 7).validate().is_err());
    }
}
