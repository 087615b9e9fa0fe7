// Per-pixel log-domain Sinkhorn for the soft-target Wasserstein loss, the CUDA side of
// src/kernels/sinkhorn_loss.rs and src/ot/sinkhorn.rs. One thread per pixel; the potentials live in
// per-thread arrays (N <= RWT_MAX_N). Same updates, epsilon schedule, over-relaxation with
// fall-back, stopping rule and outputs as the CPU solver:
//   out[b, 0, j]     = value (sharp <P, M> or entropic <a, f> + <b, g>)
//   out[b, 1 + k, j] = s_k (f_k - <s, f>)   (gradient per unit of upstream gradient)
// Compiled at run time by NVRTC (no headers).

#define RWT_MAX_N 64

template <typename T> __device__ __forceinline__ T sk_exp(T x);
template <> __device__ __forceinline__ float sk_exp<float>(float x) { return __expf(x); }
template <> __device__ __forceinline__ double sk_exp<double>(double x) { return exp(x); }
template <typename T> __device__ __forceinline__ T sk_log(T x);
template <> __device__ __forceinline__ float sk_log<float>(float x) { return logf(x); }
template <> __device__ __forceinline__ double sk_log<double>(double x) { return log(x); }
template <typename T> __device__ __forceinline__ T sk_neg_inf();
template <> __device__ __forceinline__ float sk_neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double sk_neg_inf<double>() { return __longlong_as_double(0xfff0000000000000ULL); }

// -eps * LSE_k( logw[k] + (pot[k] - cost_row[k]) / eps )
template <typename T>
__device__ __forceinline__ T sk_softmin(const T* logw, const T* pot, const T* cost_row, unsigned int n, T eps, T inv) {
    T mx = sk_neg_inf<T>();
    for (unsigned int k = 0; k < n; ++k) {
        T x = logw[k] + (pot[k] - cost_row[k]) * inv;
        mx = x > mx ? x : mx;
    }
    T sum = 0;
    for (unsigned int k = 0; k < n; ++k) {
        T x = logw[k] + (pot[k] - cost_row[k]) * inv;
        sum += sk_exp<T>(x - mx);
    }
    return -eps * (mx + sk_log<T>(sum));
}

template <typename T>
__device__ void rwt_sinkhorn_pixel(const T* z, const T* t, const T* m, const T* mt, const T* schedule,
                                   unsigned int stages, unsigned int stage_iterations, T tolerance,
                                   unsigned int max_iterations, T omega0, int sharp, T* out,
                                   unsigned int* iterations_out, T* error_out, unsigned int n,
                                   unsigned long long s, unsigned long long pixels) {
    unsigned long long p = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    unsigned long long b = p / s, j = p % s;
    const T* zp = z + b * n * s + j;
    const T* tp = t + b * n * s + j;
    T* op = out + b * (n + 1) * s + j;
    T loga[RWT_MAX_N], logb[RWT_MAX_N], f[RWT_MAX_N], g[RWT_MAX_N];
    T mass = 0;
    for (unsigned int k = 0; k < n; ++k) mass += tp[k * s];
    if (!(mass > 0)) {
        for (unsigned int k = 0; k <= n; ++k) op[k * s] = 0;
        iterations_out[p] = 0;
        error_out[p] = 0;
        return;
    }
    T mx = zp[0];
    for (unsigned int k = 1; k < n; ++k) mx = zp[k * s] > mx ? zp[k * s] : mx;
    T sum = 0;
    for (unsigned int k = 0; k < n; ++k) sum += sk_exp<T>(zp[k * s] - mx);
    if (!(mx - mx == (T)0) || !(sum - sum == (T)0)) {
        // A NaN or +inf logit (or all -inf): no histogram to transport. NaN marks the pixel
        // for the caller's check instead of iterating to the cap on NaN.
        op[0] = sk_log<T>((T)-1);
        for (unsigned int k = 1; k <= n; ++k) op[k * s] = 0;
        iterations_out[p] = 0;
        error_out[p] = 0;
        return;
    }
    T log_sum = sk_log<T>(sum);
    for (unsigned int k = 0; k < n; ++k) {
        // (z - max) - log(sum): the difference first, so the O(1) log term is not rounded
        // away against max at |z| >> 1.
        loga[k] = (zp[k * s] - mx) - log_sum;
        T tk = tp[k * s];
        logb[k] = tk > 0 ? sk_log<T>(tk) : sk_neg_inf<T>();
        f[k] = 0;
        g[k] = 0;
    }
    unsigned int stage = 0, in_stage = 0, it = 0;
    T eps = schedule[0], omega = omega0, best = (T)1e30, err = (T)1e30;
    unsigned int window = 0;
    T window_error = (T)1e30;
    while (it < max_iterations) {
        T inv = (T)1 / eps;
        for (unsigned int q = 0; q < n; ++q) {
            T gn = sk_softmin<T>(loga, f, mt + q * n, n, eps, inv);
            g[q] = g[q] + omega * (gn - g[q]);
        }
        T e = 0;
        for (unsigned int q = 0; q < n; ++q) {
            T fn = sk_softmin<T>(logb, g, m + q * n, n, eps, inv);
            T r = sk_exp<T>((f[q] - fn) * inv) - (T)1;
            e += sk_exp<T>(loga[q]) * (r < 0 ? -r : r);
            f[q] = f[q] + omega * (fn - f[q]);
        }
        ++it;
        ++in_stage;
        if (stage + 1 == stages) {
            err = e;
            if (e < tolerance) break;
            if (omega > (T)1) {
                // Over-relaxation went astray (error growing, or not halving in 50
                // iterations): start this pixel again with plain Sinkhorn.
                bool finite = e == e && e < (T)1e30;
                best = e < best ? e : best;
                ++window;
                if (window == 1) window_error = e;
                bool crawling = window >= 50 && e > (T)0.5 * window_error;
                if (window >= 50) window = 0;
                if (e > 2 * best || !finite || crawling) {
                    omega = 1;
                    stage = 0;
                    in_stage = 0;
                    eps = schedule[0];
                    for (unsigned int k = 0; k < n; ++k) {
                        f[k] = 0;
                        g[k] = 0;
                    }
                }
            }
        } else if (in_stage >= stage_iterations) {
            ++stage;
            in_stage = 0;
            eps = schedule[stage];
        }
    }
    T inv = (T)1 / eps;
    T value = 0;
    if (sharp) {
        for (unsigned int q = 0; q < n; ++q)
            for (unsigned int k = 0; k < n; ++k) {
                T x = loga[q] + logb[k] + (f[q] + g[k] - m[q * n + k]) * inv;
                if (logb[k] != sk_neg_inf<T>()) value += sk_exp<T>(x) * m[q * n + k];
            }
    } else {
        for (unsigned int q = 0; q < n; ++q) {
            value += sk_exp<T>(loga[q]) * f[q];
            if (logb[q] != sk_neg_inf<T>()) value += sk_exp<T>(logb[q]) * g[q];
        }
    }
    op[0] = value;
    T mean = 0;
    for (unsigned int q = 0; q < n; ++q) mean += sk_exp<T>(loga[q]) * f[q];
    for (unsigned int q = 0; q < n; ++q) op[(q + 1) * s] = sk_exp<T>(loga[q]) * (f[q] - mean);
    iterations_out[p] = it;
    error_out[p] = err;
}

#define RWT_SINKHORN(T, SUFFIX)                                                                           \
    extern "C" __global__ void rwt_sinkhorn_##SUFFIX(                                                    \
        const T* z, const T* t, const T* m, const T* mt, const T* schedule, unsigned int stages,          \
        unsigned int stage_iterations, T tolerance, unsigned int max_iterations, T omega0, int sharp,     \
        T* out, unsigned int* iterations_out, T* error_out, unsigned int n, unsigned long long s,          \
        unsigned long long pixels) {                                                                      \
        rwt_sinkhorn_pixel<T>(z, t, m, mt, schedule, stages, stage_iterations, tolerance, max_iterations, \
                              omega0, sharp, out, iterations_out, error_out, n, s, pixels);               \
    }

RWT_SINKHORN(float, f32)
RWT_SINKHORN(double, f64)
