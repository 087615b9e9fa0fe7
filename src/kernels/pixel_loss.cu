// Fused per-pixel softmax losses on the GPU, the CUDA side of src/kernels/pixel_loss.rs:
//   L   = w[y] (logsumexp(z) - z_y) + sum_p s_p C[y][p]
//   dL/dz_k = dOut * ( w[y] (s_k - [k = y]) + s_k (C[y][k] - L_W) )
// One thread per pixel; logits are [B, N, S] contiguous, so consecutive threads read
// consecutive addresses of each class plane. Compiled at run time by NVRTC (no headers).

template <typename T> __device__ __forceinline__ T rwt_exp(T x);
template <> __device__ __forceinline__ float rwt_exp<float>(float x) { return __expf(x); }
template <> __device__ __forceinline__ double rwt_exp<double>(double x) { return exp(x); }
template <typename T> __device__ __forceinline__ T rwt_log(T x);
template <> __device__ __forceinline__ float rwt_log<float>(float x) { return logf(x); }
template <> __device__ __forceinline__ double rwt_log<double>(double x) { return log(x); }

// max, sum of exp(z - max) and, with a cost, acc = sum_k exp(z_k - max) C[y][k].
template <typename T>
__device__ __forceinline__ void rwt_stats(const T* zp, unsigned long long s, unsigned int n,
                                          const T* cost, unsigned int y, int has_cost,
                                          T* m_out, T* sum_out, T* acc_out) {
    T m = zp[0];
    for (unsigned int k = 1; k < n; ++k) {
        T v = zp[k * s];
        m = v > m ? v : m;
    }
    T sum = 0, acc = 0;
    for (unsigned int k = 0; k < n; ++k) {
        T e = rwt_exp<T>(zp[k * s] - m);
        sum += e;
        if (has_cost) acc += e * cost[y * n + k];
    }
    *m_out = m;
    *sum_out = sum;
    *acc_out = acc;
}

// The forward kernel also validates the labels as it reads them: stats[0] counts the labels
// that are a class (warp ballot, then one shared and one global atomic per block), stats[1]
// takes the smallest flat index of a label that is neither a class nor the ignore label
// (initialised to ULLONG_MAX by the caller). No thread returns early: every one reaches the
// block's barrier.
template <typename T>
__device__ void rwt_pixel_fwd(const T* z, const unsigned int* labels, const T* ce_w, const T* cost, T* out,
                              unsigned long long* stats, unsigned int n, unsigned long long s,
                              unsigned long long pixels, unsigned int ignore, int has_ignore, int has_ce,
                              int has_cost) {
    __shared__ unsigned int block_valid;
    if (threadIdx.x == 0) block_valid = 0;
    __syncthreads();
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    int valid = 0;
    if (i < pixels) {
        unsigned long long b = i / s, j = i % s;
        const T* zp = z + b * n * s + j;
        unsigned int y = labels[i];
        if (has_ignore && y == ignore) {
            out[i] = 0;
        } else if (y >= n) {
            out[i] = 0;
            atomicMin(&stats[1], i);
        } else {
            valid = 1;
            T m, sum, acc;
            rwt_stats<T>(zp, s, n, cost, y, has_cost, &m, &sum, &acc);
            T loss = 0;
            // (m - z_y) + log(sum), not (m + log(sum)) - z_y: at |z| >> 1 the O(1) log term
            // would be rounded away against m (an f32 ulp at 1e8 is 8).
            if (has_ce) loss += ce_w[y] * ((m - zp[y * s]) + rwt_log<T>(sum));
            if (has_cost) loss += acc / sum;
            out[i] = loss;
        }
    }
    unsigned int ballot = __ballot_sync(0xffffffffu, valid);
    if ((threadIdx.x & 31) == 0 && ballot) atomicAdd(&block_valid, (unsigned int)__popc(ballot));
    __syncthreads();
    if (threadIdx.x == 0 && block_valid) atomicAdd(&stats[0], (unsigned long long)block_valid);
}

template <typename T>
__device__ void rwt_pixel_bwd(const T* z, const unsigned int* labels, const T* go, const T* ce_w, const T* cost,
                              T* grad, unsigned int n, unsigned long long s, unsigned long long pixels,
                              unsigned int ignore, int has_ignore, int has_ce, int has_cost) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= pixels) return;
    unsigned long long b = i / s, j = i % s;
    const T* zp = z + b * n * s + j;
    T* gp = grad + b * n * s + j;
    unsigned int y = labels[i];
    if ((has_ignore && y == ignore) || y >= n) {
        for (unsigned int k = 0; k < n; ++k) gp[k * s] = 0;
        return;
    }
    T m, sum, acc;
    rwt_stats<T>(zp, s, n, cost, y, has_cost, &m, &sum, &acc);
    T inv = T(1) / sum;
    T g = go[i];
    T lw = acc * inv;
    T cew = has_ce ? g * ce_w[y] : T(0);
    for (unsigned int k = 0; k < n; ++k) {
        T sk = rwt_exp<T>(zp[k * s] - m) * inv;
        T v = 0;
        if (has_cost) v += g * sk * (cost[y * n + k] - lw);
        if (has_ce) v += cew * (sk - (k == y ? T(1) : T(0)));
        gp[k * s] = v;
    }
}

#define RWT_KERNELS(T, SUFFIX)                                                                          \
    extern "C" __global__ void rwt_pixel_fwd_##SUFFIX(                                                  \
        const T* z, const unsigned int* labels, const T* ce_w, const T* cost, T* out,                   \
        unsigned long long* stats, unsigned int n, unsigned long long s, unsigned long long pixels,      \
        unsigned int ignore, int has_ignore, int has_ce, int has_cost) {                                \
        rwt_pixel_fwd<T>(z, labels, ce_w, cost, out, stats, n, s, pixels, ignore, has_ignore, has_ce,   \
                         has_cost);                                                                     \
    }                                                                                                   \
    extern "C" __global__ void rwt_pixel_bwd_##SUFFIX(                                                  \
        const T* z, const unsigned int* labels, const T* go, const T* ce_w, const T* cost, T* grad,     \
        unsigned int n, unsigned long long s, unsigned long long pixels, unsigned int ignore,            \
        int has_ignore, int has_ce, int has_cost) {                                                     \
        rwt_pixel_bwd<T>(z, labels, go, ce_w, cost, grad, n, s, pixels, ignore, has_ignore, has_ce,     \
                         has_cost);                                                                     \
    }

RWT_KERNELS(float, f32)
RWT_KERNELS(double, f64)
