//! DAgger's aggregated data set (Ross, Gordon & Bagnell 2011, "A Reduction of Imitation
//! Learning and Structured Prediction to No-Regret Online Learning", Algorithm 3.1): every
//! state the actors visit while imitating, labelled with the expert's action, is kept, and
//! each behaviour-cloning step trains on a minibatch drawn uniformly from all of them.
//!
//! Without it (`agent.dagger_states = 0`) an imitation update takes `imitation_epochs` steps
//! on the rollout it just collected — `T·N` strongly correlated states (10 actors, 20
//! consecutive steps) — and never sees them again: online gradient descent that forgets the
//! rare states (braking for a car ahead) between two rollouts that hold them. With it the
//! policy is fitted to the aggregate of all DAgger iterations, as the algorithm prescribes.
//!
//! At most `capacity` states are kept; beyond that reservoir sampling (Vitter 1985,
//! Algorithm R) keeps a uniform sample of every state offered, so that the early iterations
//! (driven by the expert) and the late ones (driven by the policy) weigh alike.
//!
//! The latents are kept in half precision (`f16`): exact for the privileged label maps (each
//! entry a multiple of 1/64, the share of a pooled cell's pixels), about three significant
//! digits for a segmenter's (standardised) latent; measurements, actions and targets in `f32`.
//! Memory: `capacity × (2·2C·h·w + 4·(M + action width + 1))` bytes — about 22 kB a state for the
//! privileged state (`2·19` maps of 12×24), 150 kB for ENet's latent (`2·128` channels).

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use half::f16;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;

/// Expert-labelled states, at most `capacity` of them, kept by reservoir sampling.
#[derive(Clone, Debug)]
pub struct Aggregate {
    capacity: usize,
    /// Per-state latent shape `[2C, h, w]`, fixed by the first [`Aggregate::extend`].
    latent_shape: Vec<usize>,
    measurement_len: usize,
    /// 1 for a discrete action space (the index, stored as `f32`), 3 for Beta raw actions.
    action_width: usize,
    discrete: bool,
    latents: Vec<f16>,
    measurements: Vec<f32>,
    actions: Vec<f32>,
    targets: Vec<f32>,
    seen: u64,
}

/// A minibatch of [`Aggregate`] states, as the network and the cloning loss take them.
#[derive(Clone, Debug)]
pub struct DaggerBatch {
    /// `[B, 2C, h, w]` `f32` (the kept `f16` values).
    pub latents: Tensor,
    /// `[B, M]` `f32`.
    pub measurements: Tensor,
    /// The expert's raw actions: `[B]` `u32` (discrete spaces) or `[B, 3]` `f32` (Beta).
    pub actions: Tensor,
    /// The critic's targets when the states were collected (n-step returns, reward-scaled),
    /// `[B]` `f32`.
    pub targets: Tensor,
}

impl Aggregate {
    /// An empty aggregate that keeps at most `capacity` states.
    ///
    /// # Errors
    /// `capacity == 0`.
    pub fn new(capacity: usize) -> Result<Self> {
        if capacity == 0 {
            return Err(Error::invalid("agent.dagger_states", 0, "must be >= 1 to keep an aggregate"));
        }
        Ok(Aggregate {
            capacity,
            latent_shape: vec![],
            measurement_len: 0,
            action_width: 0,
            discrete: false,
            latents: vec![],
            measurements: vec![],
            actions: vec![],
            targets: vec![],
            seen: 0,
        })
    }

    /// The most states it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// States kept, `min(seen, capacity)`.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether no state was offered yet.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// States offered so far ([`Aggregate::extend`]), kept or not.
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Offers `B` labelled states: latents `[B, 2C, h, w]`, measurements `[B, M]`, the
    /// expert's raw actions (`[B]` `u32` or `[B, 3]`) and the critic's targets (`B` values).
    /// Each is kept while there is room, then replaces a uniformly drawn kept state with
    /// probability `capacity / seen` (Algorithm R), drawing from `rng`.
    ///
    /// # Errors
    /// Row counts that differ, or a latent, measurement or action shape other than the
    /// first call's, named.
    pub fn extend(
        &mut self,
        latents: &Tensor,
        measurements: &Tensor,
        actions: &Tensor,
        targets: &[f64],
        rng: &mut impl Rng,
    ) -> Result<()> {
        let b = targets.len();
        let (lat_shape, meas_len) = match (latents.dims(), measurements.dims()) {
            ([n, rest @ ..], [m, k]) if *n == b && *m == b && rest.len() == 3 => (rest.to_vec(), *k),
            _ => {
                return Err(Error::shape(
                    "DAgger states",
                    format!("latents [{b}, 2C, h, w] and measurements [{b}, M]"),
                    format!("{:?} and {:?}", latents.dims(), measurements.dims()),
                ))
            }
        };
        let (discrete, width) = match actions.dims() {
            [n] if *n == b => (true, 1),
            [n, 3] if *n == b => (false, 3),
            other => {
                return Err(Error::shape("DAgger expert actions", format!("[{b}] or [{b}, 3]"), format!("{other:?}")))
            }
        };
        if self.seen == 0 {
            (self.latent_shape, self.measurement_len, self.action_width, self.discrete) =
                (lat_shape, meas_len, width, discrete);
        } else if (lat_shape.as_slice(), meas_len, width)
            != (self.latent_shape.as_slice(), self.measurement_len, self.action_width)
        {
            return Err(Error::shape(
                "DAgger states",
                format!(
                    "latent {:?}, {} measurements, action width {} as before",
                    self.latent_shape, self.measurement_len, self.action_width
                ),
                format!("latent {lat_shape:?}, {meas_len} measurements, action width {width}"),
            ));
        }
        let lat = latents.to_dtype(DType::F16)?.flatten_all()?.to_vec1::<f16>()?;
        let meas = measurements.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let act = actions.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let (ll, ml, aw) = (self.latent_len(), self.measurement_len, self.action_width);
        for i in 0..b {
            let slot = if self.len() < self.capacity {
                self.latents.extend_from_slice(&lat[i * ll..(i + 1) * ll]);
                self.measurements.extend_from_slice(&meas[i * ml..(i + 1) * ml]);
                self.actions.extend_from_slice(&act[i * aw..(i + 1) * aw]);
                self.targets.push(targets[i] as f32);
                None
            } else {
                let j = rng.random_range(0..=self.seen);
                (j < self.capacity as u64).then_some(j as usize)
            };
            if let Some(j) = slot {
                self.latents[j * ll..(j + 1) * ll].copy_from_slice(&lat[i * ll..(i + 1) * ll]);
                self.measurements[j * ml..(j + 1) * ml].copy_from_slice(&meas[i * ml..(i + 1) * ml]);
                self.actions[j * aw..(j + 1) * aw].copy_from_slice(&act[i * aw..(i + 1) * aw]);
                self.targets[j] = targets[i] as f32;
            }
            self.seen += 1;
        }
        Ok(())
    }

    fn latent_len(&self) -> usize {
        self.latent_shape.iter().product()
    }

    /// `min(batch, len)` kept states drawn uniformly without replacement, on `device`.
    ///
    /// # Errors
    /// An empty aggregate.
    pub fn sample(&self, batch: usize, rng: &mut impl Rng, device: &Device) -> Result<DaggerBatch> {
        if self.is_empty() {
            return Err(Error::invalid("DAgger aggregate", "empty", "offer states (extend) before sampling"));
        }
        let rows: Vec<usize> = rand::seq::index::sample(rng, self.len(), batch.min(self.len())).into_vec();
        self.rows(&rows, device)
    }

    /// The kept states `rows` (indices `< len`), in that order.
    fn rows(&self, rows: &[usize], device: &Device) -> Result<DaggerBatch> {
        let (ll, ml, aw) = (self.latent_len(), self.measurement_len, self.action_width);
        let gather = |data: &[f32], w: usize| {
            rows.iter().flat_map(|&r| data[r * w..(r + 1) * w].iter().copied()).collect::<Vec<_>>()
        };
        let latents: Vec<f32> =
            rows.iter().flat_map(|&r| self.latents[r * ll..(r + 1) * ll].iter().map(|x| x.to_f32())).collect();
        let b = rows.len();
        let mut lat_dims = vec![b];
        lat_dims.extend(&self.latent_shape);
        let actions = self.actions_tensor(&gather(&self.actions, aw), device)?;
        Ok(DaggerBatch {
            latents: Tensor::from_vec(latents, lat_dims, device)?,
            measurements: Tensor::from_vec(gather(&self.measurements, ml), (b, ml), device)?,
            actions,
            targets: Tensor::from_vec(rows.iter().map(|&r| self.targets[r]).collect::<Vec<_>>(), b, device)?,
        })
    }

    /// Rows of stored actions (`action_width` values each) as the policy takes them: `[B]`
    /// `u32` indices for a discrete space, `[B, 3]` `f32` for Beta.
    fn actions_tensor(&self, rows: &[f32], device: &Device) -> Result<Tensor> {
        let b = rows.len() / self.action_width.max(1);
        Ok(match self.discrete {
            true => Tensor::from_slice(rows, b, device)?.to_dtype(DType::U32)?,
            false => Tensor::from_slice(rows, (b, self.action_width), device)?,
        })
    }

    /// Every kept state, in storage order (for tests and inspection).
    pub fn all(&self, device: &Device) -> Result<DaggerBatch> {
        self.rows(&(0..self.len()).collect::<Vec<_>>(), device)
    }

    /// The aggregate as named tensors, for a checkpoint (`latents` in `f16` as kept,
    /// `measurements`, `actions` — `u32` when discrete —, `targets`, and `seen` as `[lo, hi]`
    /// `u32` halves).
    ///
    /// # Errors
    /// An empty aggregate (nothing to save).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        if self.is_empty() {
            return Err(Error::invalid("DAgger aggregate", "empty", "nothing to save"));
        }
        // Straight from the kept data (no f32 copy of the latents: they are the bulk).
        let (dev, n) = (Device::Cpu, self.len());
        let mut lat_dims = vec![n];
        lat_dims.extend(&self.latent_shape);
        let actions = self.actions_tensor(&self.actions, &dev)?;
        Ok(HashMap::from([
            ("latents".to_string(), Tensor::from_slice(&self.latents, lat_dims, &dev)?),
            ("measurements".to_string(), Tensor::from_slice(&self.measurements, (n, self.measurement_len), &dev)?),
            ("actions".to_string(), actions),
            ("targets".to_string(), Tensor::from_slice(&self.targets, n, &dev)?),
            ("seen".to_string(), Tensor::new(&[self.seen as u32, (self.seen >> 32) as u32], &dev)?),
        ]))
    }

    /// Rebuilds an aggregate of `capacity` from [`Aggregate::tensors`].
    ///
    /// # Errors
    /// A missing tensor, inconsistent shapes, or more states than `capacity`, named.
    pub fn from_tensors(capacity: usize, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let get =
            |name: &str| tensors.get(name).ok_or_else(|| Error::invalid("DAgger checkpoint", name, "tensor missing"));
        let seen = get("seen")?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let seen = match seen.as_slice() {
            &[lo, hi] => lo as u64 | (hi as u64) << 32,
            other => return Err(Error::shape("DAgger checkpoint seen", "[2]", format!("{}", other.len()))),
        };
        let targets = get("targets")?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        if targets.len() > capacity || targets.len() as u64 > seen {
            return Err(Error::invalid(
                "DAgger checkpoint",
                format!("{} states of {seen} seen", targets.len()),
                format!("holds more than agent.dagger_states = {capacity} or than it saw"),
            ));
        }
        let mut a = Aggregate::new(capacity)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let targets64: Vec<f64> = targets.iter().map(|&t| t as f64).collect();
        a.extend(get("latents")?, get("measurements")?, get("actions")?, &targets64, &mut rng)?;
        a.seen = seen;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(first: usize, b: usize, discrete: bool) -> (Tensor, Tensor, Tensor, Vec<f64>) {
        let dev = Device::Cpu;
        // Every entry of state i carries i, so a kept state is recognised by its values.
        let ids: Vec<f32> = (first..first + b).map(|i| i as f32).collect();
        let lat = Tensor::from_vec(ids.iter().flat_map(|&i| [i; 2 * 3 * 4]).collect(), (b, 2, 3, 4), &dev).unwrap();
        let meas = Tensor::from_vec(ids.iter().flat_map(|&i| [i, -i]).collect(), (b, 2), &dev).unwrap();
        let act = if discrete {
            Tensor::from_vec((first..first + b).map(|i| i as u32).collect(), b, &dev).unwrap()
        } else {
            Tensor::from_vec(ids.iter().flat_map(|&i| [i, i, i]).collect(), (b, 3), &dev).unwrap()
        };
        (lat, meas, act, ids.iter().map(|&i| i as f64 * 0.5).collect())
    }

    /// Every field of kept state `i` still carries `i` (rows never mix), for both layouts.
    fn check_consistent(a: &Aggregate) -> Vec<u32> {
        let all = a.all(&Device::Cpu).unwrap();
        let ids = all.actions.to_dtype(DType::F32).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let width = ids.len() / a.len();
        let lat = all.latents.flatten(1, 3).unwrap().to_vec2::<f32>().unwrap();
        let meas = all.measurements.to_vec2::<f32>().unwrap();
        let targets = all.targets.to_vec1::<f32>().unwrap();
        (0..a.len())
            .map(|r| {
                let i = ids[r * width];
                assert!(lat[r].iter().all(|&x| x == i) && meas[r] == vec![i, -i] && targets[r] == i * 0.5);
                i as u32
            })
            .collect()
    }

    #[test]
    fn keeps_everything_within_capacity_then_a_uniform_reservoir() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut a = Aggregate::new(10).unwrap();
        let (l, m, x, t) = states(0, 6, true);
        a.extend(&l, &m, &x, &t, &mut rng).unwrap();
        assert_eq!((a.len(), a.seen()), (6, 6));
        assert_eq!(check_consistent(&a), (0..6).collect::<Vec<_>>());
        let (l, m, x, t) = states(6, 34, true);
        a.extend(&l, &m, &x, &t, &mut rng).unwrap();
        assert_eq!((a.len(), a.seen()), (10, 40));
        let kept = check_consistent(&a);
        let mut unique = kept.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10, "a state is kept once: {kept:?}");

        // Algorithm R keeps each of the n states offered with probability k/n (closed form):
        // over 4,000 reservoirs of k = 10 from n = 40, each state's count is Binomial(4000, ¼),
        // sd ≈ 27; 5 sd either side of 1,000.
        let mut counts = [0usize; 40];
        for trial in 0..4000u64 {
            let mut rng = rand::rngs::StdRng::seed_from_u64(1000 + trial);
            let mut a = Aggregate::new(10).unwrap();
            for first in (0..40).step_by(8) {
                let (l, m, x, t) = states(first, 8, false);
                a.extend(&l, &m, &x, &t, &mut rng).unwrap();
            }
            for i in check_consistent(&a) {
                counts[i as usize] += 1;
            }
        }
        for (i, c) in counts.iter().enumerate() {
            assert!((865..=1135).contains(c), "state {i} kept {c} times of 4000, expected about 1000");
        }
    }

    #[test]
    fn samples_without_replacement_and_round_trips_a_checkpoint() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut a = Aggregate::new(12).unwrap();
        let (l, m, x, t) = states(0, 20, false);
        a.extend(&l, &m, &x, &t, &mut rng).unwrap();
        let batch = a.sample(5, &mut rng, &Device::Cpu).unwrap();
        assert_eq!(batch.latents.dims(), &[5, 2, 3, 4]);
        assert_eq!(batch.actions.dims(), &[5, 3]);
        let mut ids = batch.measurements.to_vec2::<f32>().unwrap().iter().map(|r| r[0] as u32).collect::<Vec<_>>();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5);
        assert_eq!(a.sample(100, &mut rng, &Device::Cpu).unwrap().targets.dims(), &[12]);

        let back = Aggregate::from_tensors(12, &a.tensors().unwrap()).unwrap();
        assert_eq!((back.len(), back.seen()), (12, 20));
        assert_eq!(check_consistent(&back), check_consistent(&a));
        assert!(Aggregate::from_tensors(11, &a.tensors().unwrap()).unwrap_err().to_string().contains("dagger_states"));
        let mut missing = a.tensors().unwrap();
        missing.remove("targets");
        assert!(Aggregate::from_tensors(12, &missing).unwrap_err().to_string().contains("targets"));
    }

    /// Latents are kept in `f16`: the label maps' multiples of 1/64 come back exactly, 0.1
    /// as its nearest half, 0.0999755859375 (closed form: 1638 / 2¹⁴); measurements in `f32`.
    #[test]
    fn latents_are_kept_in_half_precision() {
        let dev = Device::Cpu;
        let shares: Vec<f32> = (0..=64).map(|k| k as f32 / 64.0).chain([0.1, 0.1]).collect();
        let lat = Tensor::from_vec(shares.clone(), (1, 1, 1, 67), &dev).unwrap();
        let meas = Tensor::new(&[[0.1f32]], &dev).unwrap();
        let mut a = Aggregate::new(1).unwrap();
        let act = Tensor::new(&[3u32], &dev).unwrap();
        a.extend(&lat, &meas, &act, &[0.1], &mut rand::rngs::StdRng::seed_from_u64(0)).unwrap();
        let all = a.all(&dev).unwrap();
        let back = all.latents.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&back[..65], &shares[..65]);
        assert_eq!(&back[65..], &[0.099_975_586, 0.099_975_586]);
        assert_eq!(all.measurements.to_vec2::<f32>().unwrap(), vec![vec![0.1f32]]);
        assert_eq!(all.actions.to_vec1::<u32>().unwrap(), vec![3]);
    }

    #[test]
    fn bad_shapes_are_named() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        assert!(Aggregate::new(0).unwrap_err().to_string().contains("dagger_states"));
        let mut a = Aggregate::new(4).unwrap();
        assert!(a.sample(2, &mut rng, &Device::Cpu).unwrap_err().to_string().contains("empty"));
        let (l, m, x, t) = states(0, 3, true);
        let err = a.extend(&l, &m, &x, &t[..2], &mut rng).unwrap_err().to_string();
        assert!(err.contains("DAgger states"), "{err}");
        a.extend(&l, &m, &x, &t, &mut rng).unwrap();
        let (_, m2, x2, t2) = states(0, 3, false);
        let err = a.extend(&l, &m2, &x2, &t2, &mut rng).unwrap_err().to_string();
        assert!(err.contains("action width 1 as before"), "{err}");
    }
}
