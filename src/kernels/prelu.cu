// PReLU on the GPU, the CUDA side of src/kernels/prelu_device.rs, whose CPU loops compute the
// same quantities in the same formulas. x and g are [B, C, plane], a the slopes [C]. Compiled
// at run time by NVRTC, after block_sum.cuh.

#ifndef RWT_BLOCK_SUM
#include "block_sum.cuh"
#endif

// y = x > 0 ? x : a * x. Planes (b, c) run along blockIdx.y (striding by gridDim.y),
// positions in a plane along blockIdx.x.
template <typename T>
__device__ void rwt_prelu_apply(const T* x, const T* a, T* y, unsigned int planes, unsigned int nc,
                                unsigned long long plane) {
    for (unsigned int pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        T s = a[pl % nc];
        unsigned long long base = (unsigned long long)pl * plane;
        for (unsigned long long q = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)gridDim.x * blockDim.x) {
            T v = x[base + q];
            y[base + q] = v > (T)0 ? v : s * v;
        }
    }
}

// Per slice s of channel c (blockIdx.x = c, blockIdx.y = s): the sum of g * x where x <= 0,
// at partial[c * S + s].
template <typename T>
__device__ void rwt_prelu_grad_sums(const T* x, const T* g, double* partial, unsigned int b, unsigned int nc,
                                    unsigned long long plane) {
    __shared__ double shared[32];
    unsigned int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    double acc = 0.0;
    for (unsigned int n = 0; n < b; ++n) {
        unsigned long long base = ((unsigned long long)n * nc + c) * plane;
        for (unsigned long long q = (unsigned long long)s * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)S * blockDim.x) {
            T v = x[base + q];
            if (!(v > (T)0)) acc += (double)(g[base + q] * v);
        }
    }
    acc = rwt_block_sum(acc, shared);
    if (threadIdx.x == 0) partial[(unsigned long long)c * S + s] = acc;
}

// One thread per channel: out[n + c] = the slope's gradient, the slices added in order.
template <typename T>
__device__ void rwt_prelu_grad_slopes(const double* partial, T* out, unsigned long long n, unsigned int nc,
                                      unsigned int S) {
    unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= nc) return;
    double t = 0.0;
    for (unsigned int k = 0; k < S; ++k) t += partial[(unsigned long long)c * S + k];
    out[n + c] = (T)t;
}

// dx = x > 0 ? g : a * g, into out[0..n].
template <typename T>
__device__ void rwt_prelu_grad_x(const T* x, const T* g, const T* a, T* out, unsigned int planes, unsigned int nc,
                                 unsigned long long plane) {
    for (unsigned int pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        T s = a[pl % nc];
        unsigned long long base = (unsigned long long)pl * plane;
        for (unsigned long long q = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)gridDim.x * blockDim.x) {
            T gv = g[base + q];
            out[base + q] = x[base + q] > (T)0 ? gv : s * gv;
        }
    }
}

#define RWT_PRELU_KERNELS(T, SUFFIX)                                                                        \
    extern "C" __global__ void rwt_prelu_apply_##SUFFIX(const T* x, const T* a, T* y, unsigned int planes,   \
                                                        unsigned int nc, unsigned long long plane) {         \
        rwt_prelu_apply<T>(x, a, y, planes, nc, plane);                                                     \
    }                                                                                                       \
    extern "C" __global__ void rwt_prelu_grad_sums_##SUFFIX(const T* x, const T* g, double* partial,         \
                                                            unsigned int b, unsigned int nc,                \
                                                            unsigned long long plane) {                     \
        rwt_prelu_grad_sums<T>(x, g, partial, b, nc, plane);                                                \
    }                                                                                                       \
    extern "C" __global__ void rwt_prelu_grad_slopes_##SUFFIX(const double* partial, T* out,                 \
                                                              unsigned long long n, unsigned int nc,        \
                                                              unsigned int S) {                             \
        rwt_prelu_grad_slopes<T>(partial, out, n, nc, S);                                                   \
    }                                                                                                       \
    extern "C" __global__ void rwt_prelu_grad_x_##SUFFIX(const T* x, const T* g, const T* a, T* out,         \
                                                         unsigned int planes, unsigned int nc,              \
                                                         unsigned long long plane) {                        \
        rwt_prelu_grad_x<T>(x, g, a, out, planes, nc, plane);                                               \
    }

RWT_PRELU_KERNELS(float, f32)
RWT_PRELU_KERNELS(double, f64)
