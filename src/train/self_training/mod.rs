//! Self-training toward an unlabelled target domain with soft pseudo-labels and the Sinkhorn
//! Wasserstein loss (Section IV.C, Table III): class-balanced self-training (CBST, Zou et al.
//! ECCV 2018) and its confidence-regularised version with soft labels (CRST-LRENT, Zou et al.
//! ICCV 2019), whose soft pseudo-labels the paper fits with [`crate::loss::wasserstein_soft`]
//! instead of soft cross-entropy.
//!
//! | step | item | file |
//! |---|---|---|
//! | labels of the source mapped into the target's classes | [`crate::data::LabelMapping`] | `data/relabel.rs` |
//! | class-balanced thresholds λ_k, portion `p` by round | [`ClassThresholds`], [`PortionSchedule`] | `thresholds.rs` |
//! | hard (CBST) and soft (LRENT) pseudo-labels, their statistics | [`hard_labels`], [`soft_labels`], [`PseudoLabelStats`] | `pseudo_labels.rs` |
//! | the experiment as a TOML file: source-only run, target, rounds, methods | [`SelfTrainConfig`], [`MethodSpec`] | `config.rs` |
//! | rounds of pseudo-labelling then training on source + target, resumable | [`self_train`] | `run.rs` |
//!
//! A round `r`: the teacher (the weights at the end of round `r − 1`; round 1: the source-only
//! model) predicts every target training image; each class `k` gets the threshold λ_k that
//! keeps its most confident portion `p_r` of the pixels predicted as `k`; the pseudo-labels
//! follow from `p_k / λ_k`; then `epochs_per_round` passes over the target split, each target
//! batch beside a source batch, minimise `L_source + target_weight · L_target`, and the model
//! is evaluated on the target's labelled split.
//!
//! The simulator ([`crate::data::Synthetic`], Cityscapes' 19 classes) stands in for GTA5 as the
//! source here; `examples/configs/selftrain-gta5-cityscapes.toml` runs the paper's own pair for
//! a user who has both datasets. Notebook 06 walks through one experiment.

mod config;
mod pseudo_labels;
mod run;
mod thresholds;

pub use config::{MethodSpec, SelfTrainConfig, TargetLoss};
pub use pseudo_labels::{hard_labels, soft_labels, PseudoLabelStats, PseudoLabeling, StatsAccumulator};
pub use run::{method_dir, self_train, MethodHistory, RoundRecord, SelfTrainEpoch, SelfTrainEvent, SelfTraining};
pub use thresholds::{ClassThresholds, ConfidenceSamples, PortionSchedule};
