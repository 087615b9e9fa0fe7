// Batch-norm (+ PReLU) on the GPU, the CUDA side of src/kernels/batch_norm_device.rs, whose
// CPU loops compute the same quantities in the same formulas (and are tested against the layer
// composed from candle ops). Compiled at run time by NVRTC.
//
// x and g are [B, C, plane]. p is the layer's table [rows, C]: gamma, beta, (alpha,) mean,
// biased variance; `rows` is 4 without a PReLU and 5 with one. Channel c's values are split
// into gridDim.y slices (blockIdx.y); each block writes its slice's sums in double to
// `partial`, and a one-thread-per-channel kernel adds the slices in a fixed order, so the
// results do not depend on scheduling.

#define RWT_BN_EPS 1e-5

// rwt_block_sum; NVRTC gets block_sum.cuh prepended to this file (batch_norm_cuda.rs), nvcc
// (make check-cuda) reads it here.
#ifndef RWT_BLOCK_SUM
#include "block_sum.cuh"
#endif

// Per channel: a = gamma / sqrt(var + eps), o = beta - mean * a (in double, then T, as on the
// CPU); inv = 1 / sqrt(var + eps).
template <typename T>
__device__ void rwt_bn_coefficients(const T* p, unsigned int c, unsigned int nc, unsigned int rows, T* a, T* o,
                                    double* inv, double* mean) {
    double m = (double)p[(rows - 2) * nc + c];
    double v = (double)p[(rows - 1) * nc + c];
    double i = 1.0 / sqrt(v + RWT_BN_EPS);
    double k = (double)p[c] * i;
    *a = (T)k;
    *o = (T)((double)p[nc + c] - m * k);
    *inv = i;
    *mean = m;
}

// Pass 1 of the batch statistics: partial[c * S + s] = sum of slice s of channel c.
template <typename T>
__device__ void rwt_bn_sum(const T* x, double* partial, unsigned int b, unsigned int nc, unsigned long long plane) {
    __shared__ double shared[32];
    unsigned int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    double acc = 0.0;
    for (unsigned int n = 0; n < b; ++n) {
        const T* xp = x + ((unsigned long long)n * nc + c) * plane;
        for (unsigned long long q = (unsigned long long)s * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)S * blockDim.x)
            acc += (double)xp[q];
    }
    acc = rwt_block_sum(acc, shared);
    if (threadIdx.x == 0) partial[c * S + s] = acc;
}

// Pass 2: partial_sq[c * S + s] = sum over slice s of (x - mean)^2, the mean from pass 1's
// slices (added in order by thread 0). The variance has no cancellation, as on the CPU.
template <typename T>
__device__ void rwt_bn_sum_sq(const T* x, const double* partial, double* partial_sq, unsigned int b,
                              unsigned int nc, unsigned long long plane) {
    __shared__ double shared[32];
    __shared__ double mean;
    unsigned int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (unsigned int k = 0; k < S; ++k) t += partial[c * S + k];
        mean = t / ((double)b * (double)plane);
    }
    __syncthreads();
    double mu = mean, acc = 0.0;
    for (unsigned int n = 0; n < b; ++n) {
        const T* xp = x + ((unsigned long long)n * nc + c) * plane;
        for (unsigned long long q = (unsigned long long)s * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)S * blockDim.x) {
            double d = (double)xp[q] - mu;
            acc += d * d;
        }
    }
    acc = rwt_block_sum(acc, shared);
    if (threadIdx.x == 0) partial_sq[c * S + s] = acc;
}

// out[c] = mean, out[nc + c] = biased variance; one thread per channel.
template <typename T>
__device__ void rwt_bn_moments(const double* partial, const double* partial_sq, T* out, unsigned int nc,
                               unsigned int S, double m) {
    unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= nc) return;
    double t = 0.0, t2 = 0.0;
    for (unsigned int k = 0; k < S; ++k) {
        t += partial[c * S + k];
        t2 += partial_sq[c * S + k];
    }
    out[c] = (T)(t / m);
    out[nc + c] = (T)(t2 / m);
}

// y = z or, with a PReLU, z > 0 ? z : alpha * z, where z = a * x + o. Planes (b, c) run along
// blockIdx.y (striding by gridDim.y), positions in a plane along blockIdx.x.
template <typename T>
__device__ void rwt_bn_apply(const T* x, const T* p, T* y, unsigned int planes, unsigned int nc,
                             unsigned long long plane, unsigned int rows) {
    for (unsigned int pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        unsigned int c = pl % nc;
        T a, o;
        double inv, mean;
        rwt_bn_coefficients(p, c, nc, rows, &a, &o, &inv, &mean);
        bool prelu = rows == 5;
        T slope = prelu ? p[2 * nc + c] : (T)1;
        const T* xp = x + (unsigned long long)pl * plane;
        T* yp = y + (unsigned long long)pl * plane;
        for (unsigned long long q = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)gridDim.x * blockDim.x) {
            T z = rwt_mul_add(xp[q], a, o);
            yp[q] = (prelu && !(z > (T)0)) ? slope * z : z;
        }
    }
}

// The gradient reaching z (through the PReLU when there is one) and the PReLU slope's share.
template <typename T>
__device__ void rwt_bn_through(T g, T z, bool prelu, T slope, T* gz, T* ga) {
    if (prelu && !(z > (T)0)) {
        *gz = slope * g;
        *ga = g * z;
    } else {
        *gz = g;
        *ga = (T)0;
    }
}

// Backward pass 1: per slice, the sums of gz, gz * (x - mean) and g * z (z <= 0), at
// partial[(c * S + s) * 3 + k].
template <typename T>
__device__ void rwt_bn_grad_sums(const T* x, const T* g, const T* p, double* partial, unsigned int b,
                                 unsigned int nc, unsigned long long plane, unsigned int rows) {
    __shared__ double shared[32];
    unsigned int c = blockIdx.x, s = blockIdx.y, S = gridDim.y;
    T a, o;
    double inv, mean;
    rwt_bn_coefficients(p, c, nc, rows, &a, &o, &inv, &mean);
    bool prelu = rows == 5;
    T slope = prelu ? p[2 * nc + c] : (T)1;
    double sg = 0.0, sgx = 0.0, sa = 0.0;
    for (unsigned int n = 0; n < b; ++n) {
        unsigned long long base = ((unsigned long long)n * nc + c) * plane;
        for (unsigned long long q = (unsigned long long)s * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)S * blockDim.x) {
            T xx = x[base + q];
            T gz, ga;
            rwt_bn_through(g[base + q], rwt_mul_add(xx, a, o), prelu, slope, &gz, &ga);
            sg += (double)gz;
            sgx += (double)gz * ((double)xx - mean);
            sa += (double)ga;
        }
    }
    sg = rwt_block_sum(sg, shared);
    sgx = rwt_block_sum(sgx, shared);
    sa = rwt_block_sum(sa, shared);
    if (threadIdx.x == 0) {
        double* d = partial + ((unsigned long long)c * S + s) * 3;
        d[0] = sg;
        d[1] = sgx;
        d[2] = sa;
    }
}

// Backward pass 2, one thread per channel: sums[c * 3 + k] = (dbeta, dgamma, dalpha) with
// dgamma = sum gz * xhat, and the parameter rows of the output, out = dx (n values) followed by
// the table's gradient [rows, C]: dgamma, dbeta, (dalpha,) and zeros for the statistics.
template <typename T>
__device__ void rwt_bn_grad_params(const T* p, const double* partial, double* sums, T* out, unsigned long long n,
                                   unsigned int nc, unsigned int S, unsigned int rows) {
    unsigned int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= nc) return;
    T a, o;
    double inv, mean;
    rwt_bn_coefficients(p, c, nc, rows, &a, &o, &inv, &mean);
    double sg = 0.0, sgx = 0.0, sa = 0.0;
    for (unsigned int k = 0; k < S; ++k) {
        const double* d = partial + ((unsigned long long)c * S + k) * 3;
        sg += d[0];
        sgx += d[1];
        sa += d[2];
    }
    double dgamma = sgx * inv;
    sums[c * 3 + 0] = sg;
    sums[c * 3 + 1] = dgamma;
    sums[c * 3 + 2] = sa;
    T* dp = out + n;
    dp[c] = (T)dgamma;
    dp[nc + c] = (T)sg;
    unsigned int r = 2;
    if (rows == 5) dp[(r++) * nc + c] = (T)sa;
    dp[(r++) * nc + c] = (T)0;
    dp[r * nc + c] = (T)0;
}

// Backward pass 3: dx = k * gz - k * dbeta / M - k * dgamma * inv / M * (x - mean) in training
// (batch statistics, M = B * plane), k * gz at evaluation, with k = gamma * inv.
template <typename T>
__device__ void rwt_bn_grad_x(const T* x, const T* g, const T* p, const double* sums, T* dx, unsigned int planes,
                              unsigned int nc, unsigned long long plane, unsigned int rows, int train, double m) {
    for (unsigned int pl = blockIdx.y; pl < planes; pl += gridDim.y) {
        unsigned int c = pl % nc;
        T a, o;
        double inv, mean;
        rwt_bn_coefficients(p, c, nc, rows, &a, &o, &inv, &mean);
        bool prelu = rows == 5;
        T slope = prelu ? p[2 * nc + c] : (T)1;
        double k = (double)p[c] * inv;
        T kk = (T)k;
        T off = train ? (T)(k * sums[c * 3] / m) : (T)0;
        T tilt = train ? (T)(k * sums[c * 3 + 1] * inv / m) : (T)0;
        T mu = (T)mean;
        unsigned long long base = (unsigned long long)pl * plane;
        for (unsigned long long q = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; q < plane;
             q += (unsigned long long)gridDim.x * blockDim.x) {
            T xx = x[base + q];
            T gz, ga;
            rwt_bn_through(g[base + q], rwt_mul_add(xx, a, o), prelu, slope, &gz, &ga);
            dx[base + q] = kk * gz - off - tilt * (xx - mu);
        }
    }
}

#define RWT_BN_KERNELS(T, SUFFIX)                                                                          \
    extern "C" __global__ void rwt_bn_sum_##SUFFIX(const T* x, double* partial, unsigned int b,             \
                                                   unsigned int nc, unsigned long long plane) {             \
        rwt_bn_sum<T>(x, partial, b, nc, plane);                                                           \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_sum_sq_##SUFFIX(const T* x, const double* partial, double* partial_sq, \
                                                      unsigned int b, unsigned int nc,                     \
                                                      unsigned long long plane) {                          \
        rwt_bn_sum_sq<T>(x, partial, partial_sq, b, nc, plane);                                            \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_moments_##SUFFIX(const double* partial, const double* partial_sq,    \
                                                       T* out, unsigned int nc, unsigned int S, double m) { \
        rwt_bn_moments<T>(partial, partial_sq, out, nc, S, m);                                             \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_apply_##SUFFIX(const T* x, const T* p, T* y, unsigned int planes,     \
                                                     unsigned int nc, unsigned long long plane,            \
                                                     unsigned int rows) {                                  \
        rwt_bn_apply<T>(x, p, y, planes, nc, plane, rows);                                                 \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_grad_sums_##SUFFIX(const T* x, const T* g, const T* p,                \
                                                         double* partial, unsigned int b, unsigned int nc,  \
                                                         unsigned long long plane, unsigned int rows) {     \
        rwt_bn_grad_sums<T>(x, g, p, partial, b, nc, plane, rows);                                         \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_grad_params_##SUFFIX(const T* p, const double* partial, double* sums, \
                                                           T* out, unsigned long long n, unsigned int nc,   \
                                                           unsigned int S, unsigned int rows) {             \
        rwt_bn_grad_params<T>(p, partial, sums, out, n, nc, S, rows);                                      \
    }                                                                                                      \
    extern "C" __global__ void rwt_bn_grad_x_##SUFFIX(const T* x, const T* g, const T* p, const double* sums, \
                                                      T* dx, unsigned int planes, unsigned int nc,          \
                                                      unsigned long long plane, unsigned int rows,          \
                                                      int train, double m) {                                \
        rwt_bn_grad_x<T>(x, g, p, sums, dx, planes, nc, plane, rows, train, m);                            \
    }

RWT_BN_KERNELS(float, f32)
RWT_BN_KERNELS(double, f64)
