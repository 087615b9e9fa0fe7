//! Seeded randomness for reproducible notebooks, tests and experiments.
//!
//! candle's CPU generator cannot be seeded, so everything in this crate that draws random
//! numbers takes an explicit [`StdRng`]; these helpers build tensors from one.
//!
//! ```
//! use rwt::random;
//! let mut rng = random::seeded(7);
//! let z = random::normal(&mut rng, (2, 19, 4, 4), 1.0, &rwt::candle_core::Device::Cpu)?;
//! let y = random::labels(&mut rng, (2, 4, 4), 19, &rwt::candle_core::Device::Cpu)?;
//! assert_eq!(z.dims(), &[2, 19, 4, 4]);
//! assert!(y.max_all()?.to_scalar::<u32>()? < 19);
//! # Ok::<(), rwt::Error>(())
//! ```

use crate::Result;
use candle_core::{Device, Shape, Tensor};
pub use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use std::cell::RefCell;

thread_local! {
    /// The generator behind training-time randomness inside models (dropout masks), one per
    /// thread, so that two trainings in two threads do not draw from each other's sequence.
    static GLOBAL: RefCell<Option<StdRng>> = const { RefCell::new(None) };
}

/// Seeds this thread's generator used by dropout layers (the trainer does this from its seed
/// at every epoch).
pub fn seed_global(seed: u64) {
    GLOBAL.with(|g| *g.borrow_mut() = Some(seeded(seed)));
}

/// `n` draws of a Bernoulli(`p_keep`) from this thread's generator (seeded with 0 unless
/// [`seed_global`] was called).
pub fn bernoulli_mask(n: usize, p_keep: f64) -> Vec<bool> {
    GLOBAL.with(|g| {
        let mut g = g.borrow_mut();
        let rng = g.get_or_insert_with(|| seeded(0));
        (0..n).map(|_| rng.random_bool(p_keep.clamp(0.0, 1.0))).collect()
    })
}

/// A generator seeded with `seed`.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// An `f32` tensor of independent `N(0, std²)` entries.
pub fn normal(rng: &mut StdRng, shape: impl Into<Shape>, std: f64, device: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<f32> = (0..shape.elem_count())
        .map(|_| {
            let x: f64 = StandardNormal.sample(rng);
            (std * x) as f32
        })
        .collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}

/// A `u32` tensor of labels drawn uniformly from `0..num_classes`.
pub fn labels(rng: &mut StdRng, shape: impl Into<Shape>, num_classes: usize, device: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let v: Vec<u32> = (0..shape.elem_count()).map(|_| rng.random_range(0..num_classes.max(1) as u32)).collect();
    Ok(Tensor::from_vec(v, shape, device)?)
}
