// The CUDA C of every kernel the CUDA backend launches, compiled by NVRTC for the GPU found (see `KernelCompiler`).
// Activations are f32; bf16 values travel as their 16 bits (round to nearest even, as the CPU backend rounds).

public enum CUDAKernelSource {
    /// Every kernel the backend launches.
    public static let names = [
        "to_bf16", "add_bias", "layer_norm", "rms_norm", "gelu", "silu_mul", "add", "rotary", "attention_f32kv",
        "attention_bf16kv", "to_f32", "copy_runs_f32", "copy_runs_f32_bf16", "copy_runs_u16", "average_pool",
        "softmax_rows_f32", "softmax_rows_bf16", "patch_rows",
    ]

    /// Threads per block of the row kernels and attention; the reductions below assume a multiple of 32, at most 1024.
    static let blockThreads = 256

    public static let text = #"""
        typedef unsigned short bf16_t;
        typedef long long i64;
        #define NEG_INF (-__int_as_float(0x7f800000))

        __device__ __forceinline__ float bf16_to_float(bf16_t v) { return __uint_as_float(((unsigned)v) << 16); }
        __device__ __forceinline__ bf16_t float_to_bf16(float f) {
            unsigned u = __float_as_uint(f);
            if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40);  // NaN stays NaN
            return (bf16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
        }
        __device__ __forceinline__ float load(const float *p, i64 i) { return p[i]; }
        __device__ __forceinline__ float load(const bf16_t *p, i64 i) { return bf16_to_float(p[i]); }
        __device__ __forceinline__ void store(float *p, float v) { *p = v; }
        __device__ __forceinline__ void store(bf16_t *p, float v) { *p = float_to_bf16(v); }
        __device__ __forceinline__ void store(bf16_t *p, bf16_t v) { *p = v; }

        // Sum (or max) over the block; every thread gets the result. `shared` holds 32 floats.
        __device__ float block_sum(float v, float *shared) {
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
            __syncthreads();
            if (lane == 0) shared[warp] = v;
            __syncthreads();
            v = lane < warps ? shared[lane] : 0.0f;
            for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
            return v;
        }
        __device__ float block_max(float v, float *shared) {
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
            int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
            __syncthreads();
            if (lane == 0) shared[warp] = v;
            __syncthreads();
            v = lane < warps ? shared[lane] : NEG_INF;
            for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
            return v;
        }

        extern "C" __global__ void to_bf16(const float *x, bf16_t *y, i64 n) {
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                y[i] = float_to_bf16(x[i]);
        }

        extern "C" __global__ void to_f32(const bf16_t *x, float *y, i64 n) {
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                y[i] = bf16_to_float(x[i]);
        }

        // Runs of `length` elements: run r (blockIdx.y) from runs[2r] in x to runs[2r + 1] in y, converted by `store`.
        template <typename S, typename D>
        __device__ void copy_runs(const S *x, D *y, const i64 *runs, i64 length) {
            const S *from = x + runs[2 * blockIdx.y];
            D *to = y + runs[2 * blockIdx.y + 1];
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < length; i += (i64)gridDim.x * blockDim.x)
                store(to + i, from[i]);
        }
        extern "C" __global__ void copy_runs_f32(const float *x, float *y, const i64 *runs, i64 length) {
            copy_runs(x, y, runs, length);
        }
        extern "C" __global__ void copy_runs_f32_bf16(const float *x, bf16_t *y, const i64 *runs, i64 length) {
            copy_runs(x, y, runs, length);
        }
        extern "C" __global__ void copy_runs_u16(const bf16_t *x, bf16_t *y, const i64 *runs, i64 length) {
            copy_runs(x, y, runs, length);
        }

        // The pool-adapter's block means: one block per (image, i, j) cell, the sum in the CPU's order.
        extern "C" __global__ void average_pool(const float *x, float *out, int grid, int pool, int width) {
            int cell = blockIdx.x, image = cell / (pool * pool), i = (cell / pool) % pool, j = cell % pool;
            int kernel = grid / pool;
            i64 tokens = 1 + (i64)grid * grid;
            float area = (float)(kernel * kernel);
            for (int c = threadIdx.x; c < width; c += blockDim.x) {
                float s = 0.0f;
                for (int dy = 0; dy < kernel; dy++)
                    for (int dx = 0; dx < kernel; dx++) {
                        i64 patch = (i64)(i * kernel + dy) * grid + (j * kernel + dx);
                        s += x[(image * tokens + 1 + patch) * width + c];
                    }
                out[(i64)cell * width + c] = s / area;
            }
        }

        // Softmax of score rows for the product path of attention: row (query t, head h) of `scores`
        // ([heads][queries][keys]) becomes probabilities, zero for keys past min(keys, limit + t) or flagged invalid;
        // a row with no visible key becomes zeros.
        template <typename P>
        __device__ void softmax_rows(const float *scores, P *probabilities, const unsigned char *valid, int queries,
                                     int keys, float scale, int limit) {
            __shared__ float shared[32];
            int t = blockIdx.x, head = blockIdx.y;
            i64 row = ((i64)head * queries + t) * keys;
            int visible = limit + t < keys ? limit + t : keys;
            if (visible < 0) visible = 0;
            float m = NEG_INF;
            for (int s = threadIdx.x; s < visible; s += blockDim.x)
                if (!valid || valid[s]) m = fmaxf(m, scores[row + s] * scale);
            m = block_max(m, shared);
            float sum = 0.0f;
            for (int s = threadIdx.x; s < visible; s += blockDim.x)
                if (!valid || valid[s]) sum += expf(scores[row + s] * scale - m);
            sum = block_sum(sum, shared);
            float inverse = m == NEG_INF ? 0.0f : 1.0f / sum;
            for (int s = threadIdx.x; s < keys; s += blockDim.x) {
                bool shown = s < visible && (!valid || valid[s]) && m != NEG_INF;
                store(probabilities + row + s, shown ? expf(scores[row + s] * scale - m) * inverse : 0.0f);
            }
        }
        extern "C" __global__ void softmax_rows_f32(const float *scores, float *probabilities,
                                                    const unsigned char *valid, int queries, int keys, float scale,
                                                    int limit) {
            softmax_rows<float>(scores, probabilities, valid, queries, keys, scale, limit);
        }
        extern "C" __global__ void softmax_rows_bf16(const float *scores, bf16_t *probabilities,
                                                     const unsigned char *valid, int queries, int keys, float scale,
                                                     int limit) {
            softmax_rows<bf16_t>(scores, probabilities, valid, queries, keys, scale, limit);
        }

        // Images [count][3][size][size] to patch rows: row (image, gy, gx), column (channel, y, x).
        extern "C" __global__ void patch_rows(const float *images, float *rows, i64 count, int size, int patch) {
            int grid = size / patch, row_width = 3 * patch * patch;
            i64 n = count * grid * grid * row_width;
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
                int column = (int)(i % row_width);
                i64 row = i / row_width;
                int gx = (int)(row % grid), gy = (int)((row / grid) % grid);
                i64 image = row / ((i64)grid * grid);
                int channel = column / (patch * patch), y = (column / patch) % patch, x = column % patch;
                rows[i] = images[((image * 3 + channel) * size + gy * patch + y) * size + gx * patch + x];
            }
        }

        extern "C" __global__ void add_bias(float *x, const float *bias, i64 rows, int width) {
            i64 n = rows * width;
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                x[i] += bias[i % width];
        }

        extern "C" __global__ void gelu(float *x, i64 n) {
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        }

        extern "C" __global__ void silu_mul(float *gate, const float *up, i64 n) {
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
        }

        extern "C" __global__ void add(float *x, const float *y, i64 n) {
            for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
                x[i] += y[i];
        }

        // One block per row: (x - mean) / sqrt(var + eps) * w + b, biased variance, two passes as the CPU does.
        extern "C" __global__ void layer_norm(const float *x, float *out, const float *w, const float *b, int width,
                                              float eps) {
            __shared__ float shared[32];
            const float *in = x + (i64)blockIdx.x * width;
            float *o = out + (i64)blockIdx.x * width;
            float s = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x) s += in[i];
            float mean = block_sum(s, shared) / (float)width;
            float v = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x) {
                float d = in[i] - mean;
                v += d * d;
            }
            float inverse = 1.0f / sqrtf(block_sum(v, shared) / (float)width + eps);
            for (int i = threadIdx.x; i < width; i += blockDim.x) o[i] = (in[i] - mean) * inverse * w[i] + b[i];
        }

        extern "C" __global__ void rms_norm(const float *x, float *out, const float *w, int width, float eps) {
            __shared__ float shared[32];
            const float *in = x + (i64)blockIdx.x * width;
            float *o = out + (i64)blockIdx.x * width;
            float s = 0.0f;
            for (int i = threadIdx.x; i < width; i += blockDim.x) s += in[i] * in[i];
            float inverse = 1.0f / sqrtf(block_sum(s, shared) / (float)width + eps);
            for (int i = threadIdx.x; i < width; i += blockDim.x) o[i] = w[i] * (in[i] * inverse);
        }

        // Rotate-half rotary embedding; one block per row (position), threads over heads x half.
        extern "C" __global__ void rotary(float *x, const int *positions, const float *inverse_frequencies, int heads,
                                          int head_size) {
            int half = head_size / 2;
            float position = (float)positions[blockIdx.x];
            float *row = x + (i64)blockIdx.x * heads * head_size;
            for (int j = threadIdx.x; j < heads * half; j += blockDim.x) {
                int head = j / half, i = j % half;
                float angle = position * inverse_frequencies[i];
                float c = cosf(angle), s = sinf(angle);
                float *base = row + head * head_size;
                float a = base[i], b = base[half + i];
                base[i] = a * c - b * s;
                base[half + i] = b * c + a * s;
            }
        }

        // Softmax attention, one block per (query row, head, item): scores for every visible key in shared memory,
        // one warp per key, then the weighted sum of values with threads over the head's dimensions. Key s is
        // visible to query t when s < min(keys, limit + t) and its valid flag (if any) is set; a query that sees no
        // key gets zeros, as on the CPU.
        template <typename T>
        __device__ void attention(const float *q, const T *k, const T *v, float *out, const unsigned char *valid,
                                  i64 valid_item_stride, int queries, int keys, int heads, int kv_heads, int head_size,
                                  float scale, int limit, i64 q_stride, i64 q_item_stride, i64 o_stride,
                                  i64 o_item_stride, i64 kv_stride, i64 kv_item_stride) {
            extern __shared__ float scores[];
            __shared__ float shared[32];
            __shared__ float query[512];
            int t = blockIdx.x, head = blockIdx.y, item = blockIdx.z;
            int kv_head = head / (heads / kv_heads);
            const float *qrow = q + item * q_item_stride + t * q_stride + (i64)head * head_size;
            const T *kbase = k + item * kv_item_stride + (i64)kv_head * head_size;
            const T *vbase = v + item * kv_item_stride + (i64)kv_head * head_size;
            const unsigned char *flags = valid ? valid + item * valid_item_stride : 0;
            float *orow = out + item * o_item_stride + t * o_stride + (i64)head * head_size;
            int visible = limit + t < keys ? limit + t : keys;
            if (visible < 0) visible = 0;
            for (int d = threadIdx.x; d < head_size; d += blockDim.x) query[d] = qrow[d];
            __syncthreads();
            int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
            for (int s = warp; s < visible; s += warps) {
                const T *krow = kbase + s * kv_stride;
                float dot = 0.0f;
                for (int d = lane; d < head_size; d += 32) dot += query[d] * load(krow, d);
                for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
                if (lane == 0) scores[s] = (flags && !flags[s]) ? NEG_INF : dot * scale;
            }
            __syncthreads();
            float m = NEG_INF;
            for (int s = threadIdx.x; s < visible; s += blockDim.x) m = fmaxf(m, scores[s]);
            m = block_max(m, shared);
            if (m == NEG_INF) {
                for (int d = threadIdx.x; d < head_size; d += blockDim.x) orow[d] = 0.0f;
                return;
            }
            float sum = 0.0f;
            for (int s = threadIdx.x; s < visible; s += blockDim.x) {
                float e = expf(scores[s] - m);
                scores[s] = e;
                sum += e;
            }
            float inverse = 1.0f / block_sum(sum, shared);
            __syncthreads();
            for (int d = threadIdx.x; d < head_size; d += blockDim.x) {
                float acc = 0.0f;
                for (int s = 0; s < visible; s++) acc += scores[s] * load(vbase + s * kv_stride, d);
                orow[d] = acc * inverse;
            }
        }

        extern "C" __global__ void attention_f32kv(const float *q, const float *k, const float *v, float *out,
                                                   const unsigned char *valid, i64 valid_item_stride, int queries,
                                                   int keys, int heads, int kv_heads, int head_size, float scale,
                                                   int limit, i64 q_stride, i64 q_item_stride, i64 o_stride,
                                                   i64 o_item_stride, i64 kv_stride, i64 kv_item_stride) {
            attention<float>(q, k, v, out, valid, valid_item_stride, queries, keys, heads, kv_heads, head_size, scale,
                             limit, q_stride, q_item_stride, o_stride, o_item_stride, kv_stride, kv_item_stride);
        }

        extern "C" __global__ void attention_bf16kv(const float *q, const bf16_t *k, const bf16_t *v, float *out,
                                                    const unsigned char *valid, i64 valid_item_stride, int queries,
                                                    int keys, int heads, int kv_heads, int head_size, float scale,
                                                    int limit, i64 q_stride, i64 q_item_stride, i64 o_stride,
                                                    i64 o_item_stride, i64 kv_stride, i64 kv_item_stride) {
            attention<bf16_t>(q, k, v, out, valid, valid_item_stride, queries, keys, heads, kv_heads, head_size,
                              scale, limit, q_stride, q_item_stride, o_stride, o_item_stride, kv_stride,
                              kv_item_stride);
        }
        """#
}
