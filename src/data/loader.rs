//! Batches of tensors from a [`Dataset`]: samples are decoded and augmented in parallel
//! (rayon) on a background thread that keeps `prefetch` batches ready, so the trainer never
//! waits for the disk on a small machine. Deterministic: the order of an epoch and every
//! sample's augmentation depend only on `(seed, epoch, index)`, not on thread timing.

use super::{Augment, Dataset, Normalize};
use crate::{Error, Result};
use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// Options of a [`Loader`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoaderConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle the order every epoch.
    pub shuffle: bool,
    /// Seed of the order and of the augmentations.
    pub seed: u64,
    /// Augmentation applied to every sample.
    pub augment: Augment,
    /// Normalisation of the images.
    pub normalize: Normalize,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    /// Batches prepared ahead of the consumer.
    pub prefetch: usize,
    /// Use only the first `limit` samples (quick runs).
    pub limit: Option<usize>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        LoaderConfig {
            batch_size: 4,
            shuffle: true,
            seed: 0,
            augment: Augment::none(),
            normalize: Normalize::default(),
            drop_last: false,
            prefetch: 2,
            limit: None,
        }
    }
}

/// One batch: normalised images, labels and sample names.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, 3, H, W]` `f32`, normalised.
    pub images: Tensor,
    /// `[B, H, W]` `u32` train ids (void = the class set's ignore label).
    pub labels: Tensor,
    /// Names of the samples.
    pub names: Vec<String>,
    /// Dataset indices of the samples.
    pub indices: Vec<usize>,
}

/// A batch still in host memory.
struct HostBatch {
    images: Vec<f32>,
    labels: Vec<u32>,
    dims: (usize, usize, usize),
    names: Vec<String>,
    indices: Vec<usize>,
}

/// Produces batches of a dataset on a device.
///
/// ```no_run
/// use std::sync::Arc;
/// use rwt::data::{Augment, CamVid, Loader, LoaderConfig, Split};
/// let train = Arc::new(CamVid::locate(Split::Train)?);
/// let cfg = LoaderConfig { batch_size: 4, augment: Augment { crop: Some((256, 256)), hflip: true, ..Default::default() }, ..Default::default() };
/// let loader = Loader::new(train, cfg, rwt::candle_core::Device::Cpu)?;
/// for batch in loader.epoch(0) {
///     let batch = batch?;
///     assert_eq!(batch.images.dims(), &[4, 3, 256, 256]);
///     break;
/// }
/// # Ok::<(), rwt::Error>(())
/// ```
#[derive(Clone)]
pub struct Loader {
    dataset: Arc<dyn Dataset>,
    cfg: LoaderConfig,
    device: Device,
}

impl Loader {
    /// A loader; checks the configuration.
    pub fn new(dataset: Arc<dyn Dataset>, cfg: LoaderConfig, device: Device) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        cfg.augment.validate()?;
        if dataset.is_empty() {
            return Err(Error::invalid("dataset", dataset.describe(), "is empty"));
        }
        Ok(Loader { dataset, cfg, device })
    }

    /// The dataset.
    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.cfg
    }

    /// Samples used per epoch.
    pub fn len(&self) -> usize {
        self.cfg.limit.map_or(self.dataset.len(), |l| l.min(self.dataset.len()))
    }

    /// Whether an epoch has no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches per epoch.
    pub fn batches_per_epoch(&self) -> usize {
        let n = self.len();
        if self.cfg.drop_last {
            n / self.cfg.batch_size
        } else {
            n.div_ceil(self.cfg.batch_size)
        }
    }

    /// The sample order of an epoch.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.len()).collect();
        if self.cfg.shuffle {
            idx.shuffle(&mut rand::rngs::StdRng::seed_from_u64(mix(self.cfg.seed, epoch as u64, u64::MAX)));
        }
        idx
    }

    /// The batches of one epoch, prepared on a background thread.
    pub fn epoch(&self, epoch: usize) -> Epoch {
        let order = self.order(epoch);
        let bs = self.cfg.batch_size;
        let mut chunks: Vec<Vec<usize>> = order.chunks(bs).map(<[usize]>::to_vec).collect();
        if self.cfg.drop_last && chunks.last().is_some_and(|c| c.len() < bs) {
            chunks.pop();
        }
        let (tx, rx) = sync_channel(self.cfg.prefetch.max(1));
        let dataset = self.dataset.clone();
        let cfg = self.cfg;
        let epoch_u = epoch as u64;
        std::thread::spawn(move || {
            for chunk in chunks {
                let batch = host_batch(dataset.as_ref(), &cfg, epoch_u, &chunk);
                let stop = batch.is_err();
                if tx.send(batch).is_err() || stop {
                    return;
                }
            }
        });
        Epoch { rx, device: self.device.clone() }
    }
}

/// Decodes and augments the samples of one batch in parallel.
fn host_batch(dataset: &dyn Dataset, cfg: &LoaderConfig, epoch: u64, indices: &[usize]) -> Result<HostBatch> {
    let void = dataset.classes().ignore_index.min(255) as u8;
    let samples: Vec<super::Sample> = indices
        .par_iter()
        .map(|&i| {
            let s = dataset.get(i)?;
            let mut rng = rand::rngs::StdRng::seed_from_u64(mix(cfg.seed, epoch, i as u64));
            Ok(cfg.augment.apply(&s, &mut rng, void))
        })
        .collect::<Result<_>>()?;
    let (w, h) = samples[0].image.dimensions();
    if let Some(s) = samples.iter().find(|s| s.image.dimensions() != (w, h)) {
        return Err(Error::shape(
            format!("sample {} in a batch of {}", s.name, dataset.describe()),
            format!(
                "{w}x{h} like {} (set LoaderConfig.augment.crop or resize so that samples share a size)",
                samples[0].name
            ),
            format!("{}x{}", s.image.width(), s.image.height()),
        ));
    }
    let (h, w) = (h as usize, w as usize);
    let mut images = vec![0f32; samples.len() * 3 * h * w];
    images.par_chunks_mut(3 * h * w).zip(&samples).for_each(|(out, s)| cfg.normalize.write_chw(&s.image, out));
    let labels: Vec<u32> = samples.iter().flat_map(|s| s.label.as_raw().iter().map(|&v| v as u32)).collect();
    Ok(HostBatch {
        images,
        labels,
        dims: (samples.len(), h, w),
        names: samples.iter().map(|s| s.name.clone()).collect(),
        indices: indices.to_vec(),
    })
}

/// A seed for `(seed, epoch, index)` (splitmix64 finaliser).
fn mix(seed: u64, epoch: u64, index: u64) -> u64 {
    let mut z = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The batches of one epoch, in order.
pub struct Epoch {
    rx: Receiver<Result<HostBatch>>,
    device: Device,
}

impl Iterator for Epoch {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let host = self.rx.recv().ok()?;
        Some(host.and_then(|b| {
            let (n, h, w) = b.dims;
            Ok(Batch {
                images: Tensor::from_vec(b.images, (n, 3, h, w), &self.device)?,
                labels: Tensor::from_vec(b.labels, (n, h, w), &self.device)?,
                names: b.names,
                indices: b.indices,
            })
        }))
    }
}
