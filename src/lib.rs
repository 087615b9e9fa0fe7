//! # rwt — Reinforced Wasserstein Training for severity-aware semantic segmentation
//!
//! A Rust implementation of Liu, Zhang, Liu, Bai, Li and You, *Reinforced Wasserstein
//! Training for Severity-Aware Semantic Segmentation in Autonomous Driving*, on
//! [candle](https://github.com/huggingface/candle), made to be used from evcxr notebooks.
//!
//! Cross-entropy only looks at the probability of the true class, so predicting a car as a
//! bus costs as much as predicting it as road. The paper trains with a pixel-wise Wasserstein
//! distance between the softmax `s` and the target `t` whose ground matrix `D[truth][pred]`
//! is the severity of each mistake.
//!
//! ## Conventions
//! - `N` classes; `s` = softmax of one pixel; `t` = target histogram.
//! - **`D[truth][pred]`**: row = true class, column = predicted class (like a confusion
//!   matrix), zero diagonal, non-negative, asymmetric in general. The paper's transport plan
//!   moves mass from predicted class `i` to true class `j` at price `d_{i,j} = D[j][i]`; the
//!   translation happens once, in [`ot::cost_matrix`].
//! - `f` is applied entry-wise: [`GroundMatrix::transform`].
//! - The void label (CamVid 11, Cityscapes 255) contributes to no loss and no metric.
//!
//! ## The paper, section by section
//!
//! | paper | module | notebook |
//! |---|---|---|
//! | Fig. 1, Eq. 1–2, Theorem 1 | [`loss::wasserstein`], [`ot::emd`] | `01-ground-matrices-and-exact-loss` |
//! | Fig. 2, IAL as a special case | [`ground`] ([`GroundMatrix::severity`], [`GroundMatrix::importance_aware`]), [`loss::importance_aware_cross_entropy`] | 01 |
//! | III.B, f(d), Eq. 3–5 | [`transform`], [`loss::l1`] | 01 |
//! | IV.B–C, soft targets, Sinkhorn (Fig. 3 right) | [`ot::sinkhorn`], [`loss::wasserstein_soft`] | `04-sinkhorn-for-soft-targets` |
//! | IV.C, Table III: self-training (CBST, CRST-LRENT) with soft pseudo-labels fitted by soft CE or the Sinkhorn `W`; source → target label spaces; `rwt self-train` | [`train::self_training`] ([`train::self_train`], [`train::SelfTrainConfig`]), [`loss::cross_entropy_soft`], [`data::LabelMapping`] | `06-self-training` |
//! | III.C, Fig. 4: driving simulator — towns, traffic, semantic front camera, reward with ISO 26262 severity, `reset` / `step`, vectorised environments | [`sim`] | `07-driving-simulator` |
//! | III.C, Fig. 4 left: the driving agent — state = latent maps of the two most recent frames + measurements, the actor-critic network, Beta policy (or CARLA's 9 discrete A3C actions), A2C with n-step returns or V-trace, RMSprop; training runs with exact resume; `rwt drive train` | [`rl`] ([`rl::StateEncoder`], [`rl::ActorCritic`], [`rl::A2c`], [`rl::vtrace`], [`rl::train()`], [`optim::RmsProp`]) | `09-driving-agent` |
//! | IV.D, Tables IV–VI: infractions, km between infractions, Drive %, success rate; the seeded benchmark in the training town, a new town and new weather with random, Autopilot and agent drivers; `rwt drive eval` | [`sim::DrivingMetrics`], [`rl::Benchmark`], [`rl::evaluate`] | 07, 09 |
//! | the simulator as a dataset (synthetic source domain) | [`data::Synthetic`] | 07 |
//! | III.C steps 1–2, Fig. 4, Fig. 6: the reinforced ground matrix — rounds of segmenter fine-tuning under `D` and agent training on its latent, then `D ← (f(d) + α·D_prev)/(1 + α)` from the L1 distances of class centroids of the normalised penultimate responses; Fig. 6; perception in the loop (Table V); `rwt reinforce` | [`mod@rl::reinforce`] ([`rl::reinforce()`], [`rl::ReinforceConfig`], [`rl::reinforce::ground_step`], [`rl::reinforce::fig6`]), [`ground::learned`] | `10-reinforced-ground-matrix` |
//! | class sets, importance groups | [`classes`] | 01 |
//! | data: CamVid, Cityscapes, GTA5, augmentation, loader, hub cache | [`data`] | `02-data` |
//! | segmenters (ENet, SegNet, FCN-8s, DeepLab-v2), latent and penultimate maps, pretrained encoders | [`models`] | `03-segmenters` |
//! | metrics: confusion matrix, IoU, group mIoU, severity cost | [`metrics`], [`train::EvalReport`] | `05-training-on-camvid` |
//! | training protocol: SGD with momentum, Adam, poly / linear decay | [`optim`] | 05 |
//! | Table II: train with CE, fine-tune with IAL / W (d, d², Huber), evaluate; run configs, run folders, resuming; the `rwt` CLI | [`train`] ([`train::run`], [`train::RunConfig`], [`train::Objective`]) | 05 |
//! | Fig. 5 confusion statistics, Fig. 7 overlays, training curves, results tables | [`train::confusion_spread`], [`plot::comparison`], [`train::curves`], [`train::results_table`] | 05 |
//! | quick ablations of ground matrices and `f(d)` | [`train::ablate`] | `08-ablations` |
//! | plots | [`plot`] | all |
//! | the fused CPU/CUDA kernels behind the losses and the segmenters (what each replaces, the test that checks it) | [`kernels`] | `03-segmenters` (speed) |
//!
//! ## A first example
//!
//! ```
//! use rwt::prelude::*;
//!
//! let d = GroundMatrix::severity(&CAMVID).transform(Transform::Huber { tau: 0.5 })?;
//! let dev = Device::Cpu;
//! let logits = Tensor::randn(0f32, 1.0, (2, 11, 4, 6), &dev)?;
//! let labels = Tensor::zeros((2, 4, 6), DType::U32, &dev)?;
//! let w = loss::wasserstein(&logits, &labels, &d, LossConfig::ignoring(11))?;
//! println!("W = {}", w.to_scalar::<f32>()?);
//! # Ok::<(), rwt::Error>(())
//! ```
#![warn(missing_docs)]

pub mod classes;
pub mod data;
pub mod device;
mod error;
pub mod ground;
pub mod io;
pub mod kernels;
pub mod loss;
pub mod metrics;
pub mod models;
pub mod optim;
pub mod ot;
pub mod plot;
pub mod random;
pub mod rl;
pub mod sim;
pub mod train;
pub mod transform;

pub use candle_core;
pub use candle_nn;
pub use image;
pub use ndarray;
pub use rand;

/// The crate's version, for notebooks and run records.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use classes::{ClassSet, ImportanceGroup, CAMVID, CITYSCAPES};
pub use error::{Error, Result};
pub use ground::{GroundMatrix, ImportanceWeights};
pub use transform::Transform;

/// Everything a notebook cell usually needs, in one `use rwt::prelude::*;`.
pub mod prelude {
    pub use crate::classes::{ClassSet, ImportanceGroup, CAMVID, CITYSCAPES};
    pub use crate::ground::{GroundMatrix, ImportanceWeights};
    pub use crate::loss::{self, LossConfig, Reduction};
    pub use crate::ot;
    pub use crate::plot::{self, Heatmap, LineChart};
    pub use crate::transform::Transform;
    pub use crate::{Error, Result};
    pub use candle_core::{DType, Device, Module, Tensor, Var, D};
}
