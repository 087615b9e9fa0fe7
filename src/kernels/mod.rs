//! The hand-written kernels: every fused CPU op and every CUDA kernel of the crate, in one
//! place, so that [`crate::models`] reads as architectures and [`crate::loss`] as the paper's
//! losses. The models and losses call these ops; users rarely need them directly.
//!
//! Each fused op replaces a chain of candle ops (each a fresh full-size tensor forward and
//! backward) by one graph node with an analytic gradient, and is checked against the same
//! computation composed from candle ops (or against finite differences):
//!
//! | op | file | what it computes | replaces | checked by |
//! |---|---|---|---|---|
//! | pixel loss | `pixel_loss.rs` (+ `_cuda.rs`, `.cu`) | per pixel: softmax, `w[y]·CE + Σ s_p C[y][p]` (CE, IAL, exact one-hot `W` of Eq. 2, `CE + λW`), its gradient `w[y](s − e_y) + s ⊙ (C[y] − L_W)`; on CUDA the forward kernel also counts the valid labels and finds the first out-of-range one | softmax, gather, matmul with the cost rows, reduction; a label check of ten device ops | `tests/theorem1.rs::fused_and_composed_agree_in_f32`, `tests/gradients.rs` (central differences in f64) |
//! | soft-target `W` | `sinkhorn_loss.rs` (+ `_cuda.rs`, `.cu`) | one log-domain Sinkhorn solve per pixel, the gradient from the dual potential | a batched Sinkhorn built from tensor ops | `tests/soft_loss.rs` (host solver, finite differences) |
//! | convolution | `conv.rs` | im2col + GEMM forward and backward, transposed convolution whose kernel tiles its output, bias; on CUDA a 1×1 convolution as one batched matrix product | candle's direct CPU convolution backward; on CUDA candle's im2col copies and direct transposed-convolution kernel | `conv::tests::conv_matches_candle`, `conv_transpose_matches_candle`, `add_bias_matches_candle`, `pointwise_matches_candle_conv` |
//! | batch-norm (+ PReLU / ReLU) | `batch_norm.rs` | the whole layer, training and evaluation, running statistics as PyTorch | a dozen element-wise ops | `batch_norm::tests::fused_matches_composed_values_gradients_and_running_stats`, `fused_prelu_matches_composed`, `running_statistics_follow_pytorch` |
//! | batch-norm (+ PReLU / ReLU) on the GPU | `batch_norm_device.rs` (+ `_cuda.rs`, `.cu`) | the same layer as three ops with the statistics in a device tensor: batch moments, the layer, its gradient (CPU loops of the same formulas for the tests) | a dozen element-wise ops | `batch_norm::tests::device_path_matches_composed` (CPU, f64 and f32), `tests/cuda.rs` (GPU vs CPU) |
//! | PReLU, residual PReLU | `prelu.rs` | `max(x, 0) + a·min(x, 0)`; `PReLU(main + branch)` | where, mul, add | `prelu::tests::fused_matches_composed`, `residual_matches_composed` |
//! | PReLU on the GPU | `prelu_device.rs` (+ `_cuda.rs`, `.cu`) | the layer and its gradient, for `PRelu` and ENet's bottleneck exits (after the residual sum) | relu, minimum, mul, add | `prelu::tests::device_path_matches_composed` (CPU, f64 and f32), `tests/cuda.rs` (GPU vs CPU) |
//! | ENet bottleneck | `bottleneck.rs` | `PReLU(main + m ⊙ branch(x))`, the branch's conv → batch-norm → PReLU units in blocks of rows that stay in L2 | ten graph nodes per bottleneck | `bottleneck::tests::fused_bottleneck_matches_candle`; `tests/models.rs::enet_matches_the_pytorch_reference` |
//! | plane loops | `planes.rs` | batch-norm's affine map with PReLU, moments, gradient sums, in 8 lanes with AVX2 + FMA where present | scalar loops | `planes::tests::sums_match_f64` |
//! | max-pool with indices, max-unpool | [`pooling`] (+ `_cuda.rs`, `.cu`) | argmax-pool, gather, scatter (CPU and CUDA), their gradients | (candle has none) | `pooling::tests::gradients_match_finite_differences`, `pooling_2x2_matches_the_general_kernel` |
//!
//! Helpers: `numeric.rs` (a float trait, branch-free `exp` / `ln` that vectorise, AVX2
//! detection, the ops' view of candle's CPU storage) and, with the `cuda` feature, `cuda.rs`
//! (NVRTC compilation of the `.cu` sources once per process, contiguous device views).
//!
//! The fused CPU paths run for contiguous `f32` (and `f64` for the losses) on the CPU; on CUDA
//! the losses, pooling, batch-norm and PReLU take the crate's CUDA kernels (`f32`, `f64`;
//! `block_sum.cuh` is the reduction the per-channel kernels share); everything else takes
//! candle's kernels, with the same results.

/// Runs `f` with the models' layers composed from candle ops (the path of dtypes that no kernel
/// serves), instead of the fused CPU kernels and, on CUDA, the batch-norm and PReLU kernels
/// and 1×1 convolutions as matrix products, on the calling
/// thread; the kernels serve again afterwards, also when `f` panics. For comparisons: the CUDA
/// tests measure the GPU's f32 rounding against the CPU's f32 evaluations of the composed
/// layers, and the CUDA benchmark times the GPU's layers both ways.
///
/// ```
/// use rwt::candle_core::{Device, Tensor};
/// let x = Tensor::ones((1, 3, 8, 8), rwt::candle_core::DType::F32, &Device::Cpu)?;
/// let y = rwt::kernels::with_composed_layers(|| x.relu())?;
/// assert_eq!(y.dims(), x.dims());
/// # Ok::<(), rwt::candle_core::Error>(())
/// ```
pub fn with_composed_layers<R>(f: impl FnOnce() -> R) -> R {
    with_thread_flag(&numeric::FUSED_CPU, false, f)
}

/// Runs `f` with the thread-local `flag` set to `value`, restored afterwards (also on a panic).
fn with_thread_flag<R>(
    flag: &'static std::thread::LocalKey<std::cell::Cell<bool>>,
    value: bool,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore(&'static std::thread::LocalKey<std::cell::Cell<bool>>, bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            self.0.with(|on| on.set(self.1));
        }
    }
    let _restore = Restore(flag, flag.with(|on| on.replace(value)));
    f()
}

/// Runs `f` like [`with_composed_layers`], with each convolution's value computed in f64 and
/// rounded to f32 (its gradients still in f32): a second f32 evaluation of the same network
/// that differs from the first only in rounding. For comparisons: a deep network's f32
/// gradients at initialisation move by up to 1e-2 of their scale between such evaluations
/// (a pre-activation within rounding of a ReLU's kink, or of a max-pool's tie, flips its
/// unit's gradient), so the CUDA tests measure the GPU's f32 gradients against the spread of
/// the CPU's f32 evaluations, not against one of them.
///
/// ```
/// use rwt::candle_core::{DType, Device, Tensor};
/// use rwt::models::{weights, ModelKind, SegmenterConfig};
/// let (_, net) = weights::build_seeded(ModelKind::Enet, &SegmenterConfig::new(3), &Device::Cpu, 0)?;
/// let x = Tensor::ones((1, 3, 32, 32), DType::F32, &Device::Cpu)?;
/// let y = rwt::kernels::with_f64_convolution_values(|| net.forward_all(&x, false))?;
/// assert_eq!(y.logits.dims(), &[1, 3, 32, 32]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn with_f64_convolution_values<R>(f: impl FnOnce() -> R) -> R {
    with_thread_flag(&numeric::F64_CONV_VALUES, true, || with_composed_layers(f))
}

pub(crate) mod batch_norm;
#[cfg(feature = "cuda")]
mod batch_norm_cuda;
pub(crate) mod batch_norm_device;
pub(crate) mod bottleneck;
pub(crate) mod conv;
#[cfg(feature = "cuda")]
pub(crate) mod cuda;
pub(crate) mod numeric;
pub(crate) mod pixel_loss;
#[cfg(feature = "cuda")]
mod pixel_loss_cuda;
pub(crate) mod planes;
pub mod pooling;
#[cfg(feature = "cuda")]
mod pooling_cuda;
pub(crate) mod prelu;
#[cfg(feature = "cuda")]
mod prelu_cuda;
pub(crate) mod prelu_device;
pub(crate) mod sinkhorn_loss;
#[cfg(feature = "cuda")]
mod sinkhorn_loss_cuda;
