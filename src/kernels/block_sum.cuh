// The block reduction of the crate's reduction kernels (batch_norm.cu, prelu.cu), prepended to
// their sources before NVRTC compiles them (no include paths there).
#ifndef RWT_BLOCK_SUM
#define RWT_BLOCK_SUM

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024), valid in thread 0.
// Every thread of the block must call it. `shared` holds 32 doubles; it may be reused after
// the call.
__device__ double rwt_block_sum(double v, double* shared) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    unsigned int lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    unsigned int warps = blockDim.x >> 5;
    v = (threadIdx.x < warps) ? shared[threadIdx.x] : 0.0;
    if (warp == 0)
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    __syncthreads();
    return v;
}

// a * x + o rounded twice, never contracted to one fused multiply-add (NVRTC contracts by
// default): the CPU rounds twice, and a PReLU's branch on the sign of a value must agree
// with it.
__device__ float rwt_mul_add(float x, float a, float o) { return __fadd_rn(__fmul_rn(x, a), o); }
__device__ double rwt_mul_add(double x, double a, double o) { return __dadd_rn(__dmul_rn(x, a), o); }

#endif
