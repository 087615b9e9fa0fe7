//! The agent's state (Section III.C): the frozen segmenter's latent maps of the two most
//! recent front-camera frames, stacked on channels, and the measurement vector.
//!
//! ```text
//! latent_t = [ latent(frame_t) ; latent(frame_{t−1}) ]   [N, 2C, h, w]   (zeros for frame_{t−1} at an episode's first frame)
//! measurements_t = Measurements::vector()                [N, M]
//! ```
//!
//! The latents of all `N` actors come from one batched forward pass of the segmenter in
//! evaluation mode; the segmenter is frozen (its output carries no autograd graph; build it
//! with [`frozen_segmenter`] so that none is even recorded).
//!
//! The *privileged* state of Tables IV–VI's "ground-truth labels" row replaces the latent by
//! the simulator's own label map, one-hot and average-pooled to the latent's resolution
//! ([`StateEncoder::label_maps`]): `[N, 2K, H/s, W/s]` for `K` classes and stride `s`, each
//! entry the fraction of the cell's pixels of that class. An agent on it drives with perfect
//! perception — the upper bound of what a segmenter's latent can give it.

use crate::data::Normalize;
use crate::models::{ModelKind, Segmenter, SegmenterConfig};
use crate::sim::{Measurements, Observation};
use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use std::collections::HashMap;
use std::sync::Arc;

/// A batch of agent states.
///
/// # Shapes
/// `latent`: `[N, 2C, h, w]` (current frame's latent in channels `0..C`, the previous frame's
/// in `C..2C`); `measurements`: `[N, M]`; `f32`, no autograd graph.
#[derive(Clone, Debug)]
pub struct State {
    /// The stacked latent maps.
    pub latent: Tensor,
    /// The measurement vectors.
    pub measurements: Tensor,
}

impl State {
    /// Number of states in the batch.
    pub fn len(&self) -> usize {
        self.latent.dims().first().copied().unwrap_or(0)
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a state's maps are computed from.
#[derive(Clone)]
enum Perception {
    /// The frozen segmenter's latent of the normalised camera image.
    Latent { segmenter: Arc<dyn Segmenter>, normalize: Normalize },
    /// The simulator's label map, one-hot, average-pooled by `stride` (privileged).
    LabelMaps { classes: usize, stride: usize },
}

/// Turns observations into [`State`]s, remembering every actor's previous latent.
#[derive(Clone)]
pub struct StateEncoder {
    perception: Perception,
    device: Device,
    previous: Option<Tensor>,
    route: bool,
    free_ahead: bool,
    standardize: Option<Standardize>,
}

/// A fixed per-channel affine map of the latent, `(x − mean_c) / sd_c` (shapes `[1, C, 1, 1]`).
#[derive(Clone, Debug)]
struct Standardize {
    mean: Tensor,
    sd: Tensor,
}

impl StateEncoder {
    /// An encoder running `segmenter` on `device`, normalising images as the segmenters'
    /// loaders do ([`Normalize::default`]).
    pub fn new(segmenter: Arc<dyn Segmenter>, device: &Device) -> Self {
        StateEncoder {
            perception: Perception::Latent { segmenter, normalize: Normalize::default() },
            device: device.clone(),
            previous: None,
            route: false,
            free_ahead: false,
            standardize: None,
        }
    }

    /// The privileged encoder: the simulator's label maps of `classes` classes (Cityscapes'
    /// 19 for [`crate::sim`]), one-hot and average-pooled by `stride` (8, ENet's latent
    /// stride, for the same `[h, w]` as the latent). Errors: zero classes or stride.
    pub fn label_maps(classes: usize, stride: usize, device: &Device) -> Result<Self> {
        if classes == 0 || stride == 0 {
            return Err(Error::invalid(
                "label-map state",
                format!("{classes} classes, stride {stride}"),
                "both must be >= 1",
            ));
        }
        Ok(StateEncoder {
            perception: Perception::LabelMaps { classes, stride },
            device: device.clone(),
            previous: None,
            route: false,
            free_ahead: false,
            standardize: None,
        })
    }

    /// The same with another image normalisation (no effect on label maps).
    pub fn with_normalize(mut self, normalize: Normalize) -> Self {
        if let Perception::Latent { normalize: n, .. } = &mut self.perception {
            *n = normalize;
        }
        self
    }

    /// The same, standardising every latent channel `c` to `(x − mean_c) / sd_c` with the
    /// mean and standard deviation of the segmenter's latents of `observations` (every
    /// position of every frame; `sd_c` floored at [`StateEncoder::MIN_SD`], so a constant
    /// channel becomes 0). Like the images' [`Normalize`], a fixed preprocessing of the input,
    /// not a layer: the agent's network stays the paper's.
    ///
    /// Why: ENet's latent is far from zero-mean (over Autopilot-driven frames of the training
    /// town, mean 3.5, rms 5.4, up to 47). Fed raw, a fresh network's first-convolution
    /// channels range from positive on 1 % of positions to 100 % (standardised: 40–60 %), and
    /// after training on it only 2 and 4 of the 32 were still live in two seeds of
    /// `drive-enet-dagger-seeing`, none in the third, whose policy then ignored the camera
    /// (RESULTS.md, issue 14; [`crate::rl::ActorCritic::latent_activity`]).
    ///
    /// A no-op for the label-map state (already in `[0, 1]`). Errors: no observations.
    pub fn with_standardize_from(mut self, observations: &[&Observation]) -> Result<Self> {
        if observations.is_empty() {
            return Err(Error::invalid("latent standardisation frames", 0, "need at least one observation"));
        }
        if matches!(self.perception, Perception::LabelMaps { .. }) {
            return Ok(self);
        }
        self.standardize = None;
        let mut sum: Option<(Tensor, Tensor)> = None;
        let mut n = 0usize;
        // In batches of 16 frames: one segmenter pass each, and f64 sums.
        for chunk in observations.chunks(16) {
            let x = self.maps(chunk)?.to_dtype(DType::F64)?;
            let (b, _, h, w) = x.dims4()?;
            n += b * h * w;
            let (s1, s2) = (x.sum_keepdim((0, 2, 3))?, x.sqr()?.sum_keepdim((0, 2, 3))?);
            sum = Some(match sum {
                None => (s1, s2),
                Some((a1, a2)) => ((a1 + s1)?, (a2 + s2)?),
            });
        }
        let (s1, s2) = sum.expect("at least one chunk");
        let mean = (s1 / n as f64)?;
        let var = ((s2 / n as f64)? - mean.sqr()?)?.relu()?;
        let sd = var.sqrt()?.clamp(Self::MIN_SD, f64::INFINITY)?;
        self.standardize = Some(Standardize { mean: mean.to_dtype(DType::F32)?, sd: sd.to_dtype(DType::F32)? });
        Ok(self)
    }

    /// The floor of [`StateEncoder::with_standardize_from`]'s per-channel standard deviation.
    pub const MIN_SD: f64 = 1e-2;

    /// The per-channel `(mean, sd)` of [`StateEncoder::with_standardize_from`], each of
    /// length `C`; `None` when the latent is fed as it is.
    pub fn standardization(&self) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        match &self.standardize {
            None => Ok(None),
            Some(st) => Ok(Some((st.mean.flatten_all()?.to_vec1()?, st.sd.flatten_all()?.to_vec1()?))),
        }
    }

    /// The segmenter; `None` for the privileged label-map state.
    pub fn segmenter(&self) -> Option<&Arc<dyn Segmenter>> {
        match &self.perception {
            Perception::Latent { segmenter, .. } => Some(segmenter),
            Perception::LabelMaps { .. } => None,
        }
    }

    /// The per-frame latent shape `(C, h, w)` for camera images of `height × width` (one
    /// forward pass of a black frame; for label maps `(K, ⌊height/s⌋, ⌊width/s⌋)`).
    pub fn latent_shape(&self, height: usize, width: usize) -> Result<(usize, usize, usize)> {
        match &self.perception {
            Perception::Latent { segmenter, .. } => {
                let x = Tensor::zeros((1, 3, height, width), DType::F32, &self.device)?;
                let (_, c, h, w) = segmenter.latent(&x)?.dims4()?;
                Ok((c, h, w))
            }
            Perception::LabelMaps { classes, stride } => Ok((*classes, height / stride, width / stride)),
        }
    }

    /// The per-frame maps of `observations`, `[N, C, h, w]`, no graph.
    fn maps(&self, observations: &[&Observation]) -> Result<Tensor> {
        match &self.perception {
            Perception::Latent { segmenter, normalize } => {
                let images = frames_tensor(observations, normalize, &self.device)?;
                let latent = segmenter.latent(&images)?.detach();
                match &self.standardize {
                    None => Ok(latent),
                    Some(st) => Ok(latent.broadcast_sub(&st.mean)?.broadcast_div(&st.sd)?),
                }
            }
            Perception::LabelMaps { classes, stride } => {
                label_maps_tensor(observations, *classes, *stride, &self.device)
            }
        }
    }

    /// The same, with [`Measurements::route_ahead`] appended to the measurements
    /// ([`Measurements::vector_with_route`]) when `route`.
    pub fn with_route(mut self, route: bool) -> Self {
        self.route = route;
        self
    }

    /// The same, with [`Measurements::free_ahead`] appended to the measurements (after the
    /// route, [`Measurements::vector_with`]) when `free_ahead`: the privileged free distances
    /// ahead, a probe of whether an agent learns to brake when it is handed what the
    /// Autopilot brakes for.
    pub fn with_free_ahead(mut self, free_ahead: bool) -> Self {
        self.free_ahead = free_ahead;
        self
    }

    /// Length of the states' measurement vectors, [`Measurements::len_with`]: 7, plus 4 with
    /// the route, plus 2 with the free distances ahead.
    pub fn measurements_len(&self) -> usize {
        Measurements::len_with(self.route, self.free_ahead)
    }

    /// Forgets the previous frames (the next [`StateEncoder::encode`] must mark every actor
    /// as starting an episode).
    pub fn reset(&mut self) {
        self.previous = None;
    }

    /// The states of `observations` (one per actor, same camera size); `episode_start[i]`
    /// says that observation `i` is the first frame of an episode (after a reset, or the
    /// restarted episode a finished one hands back), so its previous-frame channels are zero.
    /// Errors: a flag count that differs from the observations', a first call (or a call
    /// after [`StateEncoder::reset`]) in which some actor does not start an episode, or an
    /// actor count that changed.
    pub fn encode(&mut self, observations: &[&Observation], episode_start: &[bool]) -> Result<State> {
        let n = observations.len();
        if episode_start.len() != n {
            return Err(Error::shape("episode_start flags", n.to_string(), episode_start.len().to_string()));
        }
        let latent = self.maps(observations)?;
        let previous = match &self.previous {
            Some(p) if p.dims() == latent.dims() => {
                let keep: Vec<f32> = episode_start.iter().map(|&s| if s { 0.0 } else { 1.0 }).collect();
                p.broadcast_mul(&Tensor::from_vec(keep, (n, 1, 1, 1), &self.device)?)?
            }
            Some(p) => {
                return Err(Error::shape(
                    "latent batch",
                    format!("{:?} (as at the previous step)", p.dims()),
                    format!("{:?}", latent.dims()),
                ))
            }
            None => {
                if let Some(i) = episode_start.iter().position(|s| !s) {
                    return Err(Error::invalid(
                        "episode_start",
                        i,
                        "the encoder has no previous frame: every actor must start an episode",
                    ));
                }
                latent.zeros_like()?
            }
        };
        let stacked = Tensor::cat(&[&latent, &previous], 1)?;
        self.previous = Some(latent);
        let (route, free) = (self.route, self.free_ahead);
        let data: Vec<f32> = observations.iter().flat_map(|o| o.measurements.vector_with(route, free)).collect();
        let measurements = Tensor::from_vec(data, (n, Measurements::len_with(route, free)), &self.device)?;
        Ok(State { latent: stacked, measurements })
    }
}

/// The camera images of `observations` as one normalised batch `[N, 3, H, W]` (`f32`).
pub fn frames_tensor(observations: &[&Observation], normalize: &Normalize, device: &Device) -> Result<Tensor> {
    let Some(first) = observations.first() else {
        return Err(Error::shape("observations", "at least one", "0"));
    };
    let (w, h) = first.frame.rgb.dimensions();
    let plane = 3 * (w * h) as usize;
    let mut data = vec![0f32; observations.len() * plane];
    for (i, (o, out)) in observations.iter().zip(data.chunks_mut(plane)).enumerate() {
        if o.frame.rgb.dimensions() != (w, h) {
            return Err(Error::shape(
                format!("camera image of actor {i}"),
                format!("{w}x{h} (as actor 0's)"),
                format!("{:?}", o.frame.rgb.dimensions()),
            ));
        }
        normalize.write_chw(&o.frame.rgb, out);
    }
    Ok(Tensor::from_vec(data, (observations.len(), 3, h as usize, w as usize), device)?)
}

/// The label maps of `observations` one-hot over `classes` and average-pooled by `stride`:
/// `[N, classes, ⌊H/s⌋, ⌊W/s⌋]`, entry `(k, i, j)` the fraction of cell `(i, j)`'s `s × s`
/// pixels labelled `k` (labels `≥ classes`, e.g. 255 = ignore, count for no class). Errors:
/// no observations, frames of different sizes, or frames smaller than one cell.
pub fn label_maps_tensor(
    observations: &[&Observation],
    classes: usize,
    stride: usize,
    device: &Device,
) -> Result<Tensor> {
    let Some(first) = observations.first() else {
        return Err(Error::shape("observations", "at least one", "0"));
    };
    let (w, h) = first.frame.labels.dimensions();
    let (gh, gw) = (h as usize / stride, w as usize / stride);
    if gh == 0 || gw == 0 {
        return Err(Error::shape("label map", format!("at least {stride}x{stride} (one cell)"), format!("{w}x{h}")));
    }
    let plane = classes * gh * gw;
    let mut data = vec![0f32; observations.len() * plane];
    let share = 1.0 / (stride * stride) as f32;
    for (n, (o, out)) in observations.iter().zip(data.chunks_mut(plane)).enumerate() {
        if o.frame.labels.dimensions() != (w, h) {
            return Err(Error::shape(
                format!("label map of actor {n}"),
                format!("{w}x{h} (as actor 0's)"),
                format!("{:?}", o.frame.labels.dimensions()),
            ));
        }
        for i in 0..gh * stride {
            for j in 0..gw * stride {
                let k = o.frame.labels.get_pixel(j as u32, i as u32).0[0] as usize;
                if k < classes {
                    out[(k * gh + i / stride) * gw + j / stride] += share;
                }
            }
        }
    }
    Ok(Tensor::from_vec(data, (observations.len(), classes, gh, gw), device)?)
}

/// The measurement vectors of `observations`, `[N, Measurements::LEN]` (`f32`).
pub fn measurements_tensor(observations: &[&Observation], device: &Device) -> Result<Tensor> {
    let data: Vec<f32> = observations.iter().flat_map(|o| o.measurements.vector()).collect();
    Ok(Tensor::from_vec(data, (observations.len(), Measurements::LEN), device)?)
}

/// A copy of a trained segmenter whose parameters are plain tensors, not variables, so its
/// forward passes record no autograd graph: the frozen segmenter of the state. The tensors
/// share storage with `varmap`'s variables.
pub fn frozen_segmenter(
    kind: ModelKind,
    config: &SegmenterConfig,
    varmap: &VarMap,
    device: &Device,
) -> Result<Arc<dyn Segmenter>> {
    let data = varmap.data().lock().map_err(|_| Error::invalid("varmap", "lock", "poisoned"))?;
    let tensors: HashMap<String, Tensor> = data.iter().map(|(k, v)| (k.clone(), v.as_tensor().detach())).collect();
    drop(data);
    let net = kind.build(config, VarBuilder::from_tensors(tensors, DType::F32, device))?;
    Ok(Arc::from(net))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::SegmenterOutput;
    use crate::sim::{Command, Frame};

    /// A stand-in segmenter whose latent is the input average-pooled by 4 (3 channels).
    struct Pooling;

    impl Segmenter for Pooling {
        fn name(&self) -> &'static str {
            "pooling"
        }
        fn num_classes(&self) -> usize {
            1
        }
        fn stride(&self) -> usize {
            4
        }
        fn forward_padded(&self, x: &Tensor, _train: bool) -> Result<SegmenterOutput> {
            let latent = x.avg_pool2d(4)?;
            Ok(SegmenterOutput { logits: x.narrow(1, 0, 1)?, latent: latent.clone(), penultimate: latent })
        }
    }

    fn observation(grey: u8, speed: f32) -> Observation {
        let mut frame = Frame::new(16, 8);
        frame.rgb.pixels_mut().for_each(|p| p.0 = [grey, grey, grey]);
        let measurements = Measurements {
            speed,
            distance_to_goal: 100.0,
            collision_damage: 0.0,
            command: Command::Left,
            route_ahead: [8.0, 1.0, 19.0, 4.0],
            free_ahead: [12.0, 20.0],
        };
        Observation { frame, measurements }
    }

    /// Channels `0..3` hold the current frame's latent, `3..6` the previous frame's, zero at
    /// an episode's first frame: a uniform grey `g` normalises to `(g/255 − mean_c)/std_c`.
    #[test]
    fn stacks_the_two_most_recent_frames() {
        let dev = Device::Cpu;
        let mut enc = StateEncoder::new(Arc::new(Pooling), &dev);
        assert_eq!(enc.latent_shape(8, 16).unwrap(), (3, 2, 4));
        let norm = Normalize::default();
        let level = |g: u8, c: usize| (g as f32 / 255.0 - norm.mean[c]) / norm.std[c];
        let (a, b) = (observation(10, 1.0), observation(200, 2.0));
        let s0 = enc.encode(&[&a, &b], &[true, true]).unwrap();
        assert_eq!(s0.latent.dims(), [2, 6, 2, 4]);
        assert!(!s0.latent.track_op());
        let v = s0.latent.mean((2, 3)).unwrap().to_vec2::<f32>().unwrap();
        for c in 0..3 {
            assert!((v[0][c] - level(10, c)).abs() < 1e-5 && (v[1][c] - level(200, c)).abs() < 1e-5, "{v:?}");
            assert!(v[0][3 + c] == 0.0 && v[1][3 + c] == 0.0);
        }
        // Actor 0 continues (previous = grey 10), actor 1 starts a new episode (zeros).
        let (c, d) = (observation(60, 3.0), observation(90, 0.0));
        let s1 = enc.encode(&[&c, &d], &[false, true]).unwrap();
        let v = s1.latent.mean((2, 3)).unwrap().to_vec2::<f32>().unwrap();
        for ch in 0..3 {
            assert!((v[0][ch] - level(60, ch)).abs() < 1e-5 && (v[0][3 + ch] - level(10, ch)).abs() < 1e-5);
            assert!((v[1][ch] - level(90, ch)).abs() < 1e-5 && v[1][3 + ch] == 0.0);
        }
        let m = s1.measurements.to_vec2::<f32>().unwrap();
        assert_eq!(m[0], c.measurements.vector().to_vec());
        assert_eq!(s1.len(), 2);
        // With the route and the free distances: 7 + 4 + 2 entries, the last two the
        // observation's free distances (12 m along the route, clear along the heading) / 20 m.
        let mut enc = StateEncoder::new(Arc::new(Pooling), &dev).with_route(true).with_free_ahead(true);
        assert_eq!(enc.measurements_len(), 13);
        let m = enc.encode(&[&c], &[true]).unwrap().measurements.to_vec2::<f32>().unwrap();
        assert_eq!(m[0][..11], c.measurements.vector_with_route());
        assert_eq!(m[0][11..], [0.6, 1.0]);
    }

    /// Standardised, a channel of uniform grey frames `g ∈ {10, 200, 60}` becomes
    /// `(level(g) − m) / s` with `m`, `s` the population mean and standard deviation of the
    /// three levels (closed form; every position of a frame has the same level); a channel
    /// constant over the frames becomes 0 (the sd floor); the label-map state is left alone;
    /// no frames is an error.
    #[test]
    fn standardizes_each_latent_channel() {
        let dev = Device::Cpu;
        let norm = Normalize::default();
        let level = |g: u8, c: usize| ((g as f32 / 255.0 - norm.mean[c]) / norm.std[c]) as f64;
        let frames = [observation(10, 1.0), observation(200, 1.0), observation(60, 1.0)];
        let refs: Vec<&Observation> = frames.iter().collect();
        let mut enc = StateEncoder::new(Arc::new(Pooling), &dev).with_standardize_from(&refs).unwrap();
        let (mean, sd) = enc.standardization().unwrap().unwrap();
        let s = enc.encode(&refs, &[true; 3]).unwrap();
        let v = s.latent.mean((2, 3)).unwrap().to_vec2::<f32>().unwrap();
        for c in 0..3 {
            let levels: Vec<f64> = [10, 200, 60].iter().map(|&g| level(g, c)).collect();
            let m = levels.iter().sum::<f64>() / 3.0;
            let sdev = (levels.iter().map(|l| (l - m).powi(2)).sum::<f64>() / 3.0).sqrt();
            assert!((mean[c] as f64 - m).abs() < 1e-5 && (sd[c] as f64 - sdev).abs() < 1e-5, "{mean:?} {sd:?}");
            for (k, l) in levels.iter().enumerate() {
                assert!((v[k][c] as f64 - (l - m) / sdev).abs() < 1e-4, "frame {k} channel {c}: {}", v[k][c]);
            }
        }
        // The same grey twice: sd 0, floored; the channel is 0 after standardising.
        let same = [&frames[0], &frames[0]];
        let mut enc = StateEncoder::new(Arc::new(Pooling), &dev).with_standardize_from(&same).unwrap();
        assert!(enc
            .standardization()
            .unwrap()
            .unwrap()
            .1
            .iter()
            .all(|&s| s as f64 == StateEncoder::MIN_SD as f32 as f64));
        let z = enc.encode(&[&frames[0]], &[true]).unwrap().latent.abs().unwrap().max_all().unwrap();
        assert!(z.to_scalar::<f32>().unwrap() < 1e-4);
        let labels = StateEncoder::label_maps(19, 4, &dev).unwrap().with_standardize_from(&refs).unwrap();
        assert!(labels.standardization().unwrap().is_none());
        let Err(e) = StateEncoder::new(Arc::new(Pooling), &dev).with_standardize_from(&[]) else {
            panic!("no frames must be an error")
        };
        assert!(e.to_string().contains("standardisation frames"), "{e}");
    }

    /// A 16 × 8 label map with its left half road (0) and right half car (13), one pixel of
    /// ignore (255): pooled by 4, the cells are pure road / pure car, except the one holding
    /// the ignored pixel, whose car share is 15/16; the previous-frame half is zero.
    #[test]
    fn privileged_label_maps() {
        let dev = Device::Cpu;
        let mut o = observation(0, 1.0);
        for (x, _, p) in o.frame.labels.enumerate_pixels_mut() {
            p.0[0] = if x < 8 { 0 } else { 13 };
        }
        o.frame.labels.put_pixel(15, 7, image::Luma([255]));
        let mut enc = StateEncoder::label_maps(19, 4, &dev).unwrap();
        assert!(enc.segmenter().is_none());
        assert_eq!(enc.latent_shape(8, 16).unwrap(), (19, 2, 4));
        let s = enc.encode(&[&o], &[true]).unwrap();
        assert_eq!(s.latent.dims(), [1, 38, 2, 4]);
        let m = s.latent.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        assert_eq!(m[0], vec![vec![1.0, 1.0, 0.0, 0.0]; 2]);
        assert_eq!(m[13][0], vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(m[13][1], vec![0.0, 0.0, 1.0, 15.0 / 16.0]);
        assert!(m[19..].iter().flatten().flatten().all(|&x| x == 0.0));
        assert!(StateEncoder::label_maps(0, 4, &dev).is_err());
        assert!(label_maps_tensor(&[&o], 19, 32, &dev).unwrap_err().to_string().contains("one cell"));
    }

    #[test]
    fn bad_batches_are_errors() {
        let dev = Device::Cpu;
        let mut enc = StateEncoder::new(Arc::new(Pooling), &dev);
        let a = observation(10, 1.0);
        assert!(enc.encode(&[&a], &[true, true]).is_err());
        assert!(enc.encode(&[&a], &[false]).unwrap_err().to_string().contains("no previous frame"));
        enc.encode(&[&a], &[true]).unwrap();
        assert!(enc.encode(&[&a, &a], &[false, false]).unwrap_err().to_string().contains("latent batch"));
        let mut small = observation(1, 0.0);
        small.frame = Frame::new(8, 8);
        assert!(frames_tensor(&[&a, &small], &Normalize::default(), &dev).unwrap_err().to_string().contains("actor 1"));
        assert!(frames_tensor(&[], &Normalize::default(), &dev).is_err());
    }

    /// A frozen ENet (narrow, for speed) at the agent's 96 × 192 camera: its latent is
    /// `[C, 12, 24]` (stride 8), equal to the trainable network's, and records no graph.
    #[test]
    fn frozen_enet_latent_has_no_graph() {
        let dev = Device::Cpu;
        let cfg = SegmenterConfig { num_classes: 19, width: 0.25, dropout: false };
        let (vm, net) = crate::models::weights::build(ModelKind::Enet, &cfg, &dev).unwrap();
        let frozen = frozen_segmenter(ModelKind::Enet, &cfg, &vm, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, 96, 192), &dev).unwrap();
        let trainable = net.forward_all(&x, false).unwrap().latent;
        let still = frozen.forward_all(&x, false).unwrap().latent;
        assert!(trainable.track_op() && !still.track_op());
        assert_eq!(still.dims()[2..], [12, 24]);
        let diff = (trainable - &still).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");
        // The encoder-only path gives the same latent, also at a size that needs padding.
        let encoder_only = frozen.latent(&x).unwrap();
        let d2 = (encoder_only - &still).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d2 < 1e-6, "{d2}");
        let odd = Tensor::randn(0f32, 1.0, (1, 3, 90, 190), &dev).unwrap();
        let (a, b) = (frozen.latent(&odd).unwrap(), frozen.forward_all(&odd, false).unwrap().latent);
        assert_eq!(a.dims(), b.dims());
        let d3 = (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d3 < 1e-6, "{d3}");
    }
}
