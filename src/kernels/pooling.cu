// Pooling with indices and unpooling on the GPU, the CUDA side of src/kernels/pooling.rs.
// Indices are flat positions inside each H x W plane. Compiled at run time by NVRTC.

template <typename T>
__device__ void rwt_argmax_pool(const T* x, unsigned int* idx, unsigned long long planes, unsigned int h,
                                unsigned int w, unsigned int oh, unsigned int ow, unsigned int k, unsigned int s) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= planes * oh * ow) return;
    unsigned long long p = i / (oh * ow);
    unsigned int r = i % (oh * ow), oy = r / ow, ox = r % ow;
    const T* xp = x + p * h * w;
    unsigned int best = oy * s * w + ox * s;
    for (unsigned int dy = 0; dy < k; ++dy)
        for (unsigned int dx = 0; dx < k; ++dx) {
            unsigned int j = (oy * s + dy) * w + ox * s + dx;
            if (xp[j] > xp[best]) best = j;
        }
    idx[i] = best;
}

template <typename T>
__device__ void rwt_gather_plane(const T* x, const unsigned int* idx, T* out, unsigned long long n,
                                 unsigned int plane_in, unsigned int plane_out) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned long long p = i / plane_out;
    out[i] = x[p * plane_in + idx[i]];
}

template <typename T>
__device__ void rwt_scatter_plane(const T* v, const unsigned int* idx, T* out, unsigned long long n,
                                  unsigned int plane_in, unsigned int plane_out) {
    unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned long long p = i / plane_in;
    atomicAdd(out + p * plane_out + idx[i], v[i]);
}

#define RWT_POOL_KERNELS(T, SUFFIX)                                                                       \
    extern "C" __global__ void rwt_argmax_pool_##SUFFIX(const T* x, unsigned int* idx,                   \
                                                         unsigned long long planes, unsigned int h,      \
                                                         unsigned int w, unsigned int oh, unsigned int ow, \
                                                         unsigned int k, unsigned int s) {               \
        rwt_argmax_pool<T>(x, idx, planes, h, w, oh, ow, k, s);                                          \
    }                                                                                                     \
    extern "C" __global__ void rwt_gather_plane_##SUFFIX(const T* x, const unsigned int* idx, T* out,     \
                                                          unsigned long long n, unsigned int plane_in,    \
                                                          unsigned int plane_out) {                       \
        rwt_gather_plane<T>(x, idx, out, n, plane_in, plane_out);                                        \
    }                                                                                                     \
    extern "C" __global__ void rwt_scatter_plane_##SUFFIX(const T* v, const unsigned int* idx, T* out,    \
                                                           unsigned long long n, unsigned int plane_in,   \
                                                           unsigned int plane_out) {                      \
        rwt_scatter_plane<T>(v, idx, out, n, plane_in, plane_out);                                       \
    }

RWT_POOL_KERNELS(float, f32)
RWT_POOL_KERNELS(double, f64)
