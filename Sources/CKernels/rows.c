// Row and element kernels, written so the compiler vectorises them, in clones for AVX-512, AVX2 and baseline
// x86-64 chosen at load time (ifunc). Reductions may be reassociated (as vector code must); each row is still
// reduced in one fixed order, so results do not depend on the thread count.
#include "ckernels.h"
#include "internal.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#if defined(__x86_64__) && defined(__linux__)
#define CK_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define CK_CLONES
#endif

/// e^x to about 1 ulp for x in [-87, 88] (Cephes' polynomial), branch-free so that loops over it vectorise.
static inline float ck_exp(float input) {
    // NaN stays NaN (through the select at the end) without reaching the integer conversion.
    float x = input == input ? input : 0.0f;
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t e = (int32_t)n + 127;
    uint32_t bits = (uint32_t)e << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return input == input ? p * scale : input;
}

/// erf(x) to 1.5e-7 absolute (Abramowitz and Stegun 7.1.26), branch-free.
static inline float ck_erf(float x) {
    float a = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.3275911f * a);
    float p = 1.061405429f;
    p = p * t - 1.453152027f;
    p = p * t + 1.421413741f;
    p = p * t - 0.284496736f;
    p = p * t + 0.254829592f;
    float y = 1.0f - p * t * ck_exp(-a * a);
    return x < 0 ? -y : y;
}

CK_CLONES void ck_layer_norm(const float *x, float *out, int width, const float *weight, const float *bias,
                             float epsilon, int row_begin, int row_end) {
#pragma clang fp reassociate(on)
    for (int row = row_begin; row < row_end; row++) {
        const float *in = x + (ptrdiff_t)row * width;
        float *o = out + (ptrdiff_t)row * width;
        float sum = 0;
        for (int i = 0; i < width; i++) sum += in[i];
        float mean = sum / (float)width;
        float variance = 0;
        for (int i = 0; i < width; i++) {
            float d = in[i] - mean;
            variance += d * d;
        }
        variance /= (float)width;
        float inverse = 1.0f / sqrtf(variance + epsilon);
        for (int i = 0; i < width; i++) o[i] = (in[i] - mean) * inverse * weight[i] + bias[i];
    }
}

CK_CLONES void ck_rms_norm(const float *x, float *out, int width, const float *weight, float epsilon, int row_begin,
                           int row_end) {
#pragma clang fp reassociate(on)
    for (int row = row_begin; row < row_end; row++) {
        const float *in = x + (ptrdiff_t)row * width;
        float *o = out + (ptrdiff_t)row * width;
        float sum = 0;
        for (int i = 0; i < width; i++) sum += in[i] * in[i];
        float inverse = 1.0f / sqrtf(sum / (float)width + epsilon);
        for (int i = 0; i < width; i++) o[i] = weight[i] * (in[i] * inverse);
    }
}

CK_CLONES void ck_add_bias(float *x, int width, const float *bias, int row_begin, int row_end) {
    for (int row = row_begin; row < row_end; row++) {
        float *o = x + (ptrdiff_t)row * width;
        for (int i = 0; i < width; i++) o[i] += bias[i];
    }
}

CK_CLONES void ck_gelu(float *x, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) x[i] = 0.5f * x[i] * (1.0f + ck_erf(x[i] * 0.70710678118654752f));
}

void ck_gelu_exact(float *x, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

CK_CLONES void ck_silu_mul(float *gate, const float *up, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) gate[i] = gate[i] / (1.0f + ck_exp(-gate[i])) * up[i];
}

CK_CLONES void ck_add(float *x, const float *y, size_t begin, size_t end) {
    for (size_t i = begin; i < end; i++) x[i] += y[i];
}

/// max over s < limit of row[s] * scale where valid[s] (every s without `valid`); -inf when none. NaNs are passed
/// over.
static float row_maximum_portable(const float *row, int limit, float scale, const uint8_t *valid) {
    float maximum = -INFINITY;
    for (int s = 0; s < limit; s++) {
        float v = valid && !valid[s] ? -INFINITY : row[s] * scale;
        maximum = v > maximum ? v : maximum;
    }
    return maximum;
}

#if defined(__x86_64__)
// A running maximum is a serial chain the compiler keeps scalar; 16 lanes of it are not.
CK_TARGET_AVX512 static float row_maximum_avx512(const float *row, int limit, float scale, const uint8_t *valid) {
    __m512 maximum = _mm512_set1_ps(-INFINITY), factor = _mm512_set1_ps(scale);
    for (int s = 0; s < limit; s += 16) {
        __mmask16 lanes = limit - s >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (limit - s)) - 1);
        if (valid) lanes &= _mm_mask_test_epi8_mask(lanes, _mm_maskz_loadu_epi8(lanes, valid + s),
                                                    _mm_set1_epi8(-1));
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, row + s), factor);
        // vmaxps gives its second operand when either is NaN: a NaN score leaves the maximum as it was.
        maximum = _mm512_mask_max_ps(maximum, lanes, v, maximum);
    }
    return _mm512_reduce_max_ps(maximum);
}

CK_TARGET_AVX2 static float row_maximum_avx2(const float *row, int limit, float scale, const uint8_t *valid) {
    const __m256 lowest = _mm256_set1_ps(-INFINITY), factor = _mm256_set1_ps(scale);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 maximum = lowest;
    for (int s = 0; s < limit; s += 8) {
        __m256i inside = _mm256_cmpgt_epi32(_mm256_set1_epi32(limit - s), lane);
        if (valid) {
            int64_t flags = 0;
            memcpy(&flags, valid + s, limit - s >= 8 ? 8 : (size_t)(limit - s));
            __m256i wide = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(flags));
            inside = _mm256_andnot_si256(_mm256_cmpeq_epi32(wide, _mm256_setzero_si256()), inside);
        }
        __m256 v = _mm256_mul_ps(_mm256_maskload_ps(row + s, inside), factor);
        v = _mm256_blendv_ps(lowest, v, _mm256_castsi256_ps(inside));
        // vmaxps gives its second operand when either is NaN: a NaN score leaves the maximum as it was.
        maximum = _mm256_max_ps(v, maximum);
    }
    __m128 m = _mm_max_ps(_mm256_extractf128_ps(maximum, 1), _mm256_castps256_ps128(maximum));
    m = _mm_max_ps(_mm_movehl_ps(m, m), m);
    m = _mm_max_ss(_mm_movehdup_ps(m), m);
    return _mm_cvtss_f32(m);
}
#endif

static float row_maximum(const float *row, int limit, float scale, const uint8_t *valid) {
#if defined(__x86_64__)
    int set = ck_kernels();
    if (set >= CK_KERNELS_AVX512) return row_maximum_avx512(row, limit, scale, valid);
    if (set != CK_KERNELS_PORTABLE) return row_maximum_avx2(row, limit, scale, valid);
#endif
    return row_maximum_portable(row, limit, scale, valid);
}

CK_CLONES void ck_softmax(float *row, int count, float scale, int limit, const uint8_t *valid) {
#pragma clang fp reassociate(on)
    if (limit > count) limit = count;
    if (limit < 0) limit = 0;
    float maximum = row_maximum(row, limit, scale, valid);
    if (maximum == -INFINITY) {
        for (int s = 0; s < count; s++) row[s] = 0;
        return;
    }
    float sum = 0;
    if (valid) {
        for (int s = 0; s < limit; s++) {
            float e = valid[s] ? ck_exp(row[s] * scale - maximum) : 0.0f;
            row[s] = e;
            sum += e;
        }
    } else {
        for (int s = 0; s < limit; s++) {
            float e = ck_exp(row[s] * scale - maximum);
            row[s] = e;
            sum += e;
        }
    }
    float inverse = 1.0f / sum;
    for (int s = 0; s < limit; s++) row[s] *= inverse;
    for (int s = limit; s < count; s++) row[s] = 0;
}

// Keys (and values) ahead of the one in use that the direct attention loop asks the caches for. One head's key is a
// few cache lines, the next key a whole cache row (every head) further on, a stride the hardware prefetchers do not
// follow across pages. 4 ahead took a decoding step's attention (3 layers, 32 heads, about 330 keys) from 1.85 to
// 1.3 ms.
#define CK_KEYS_AHEAD 4

static inline void prefetch_row(const void *base, ptrdiff_t row, ptrdiff_t stride_bytes, size_t bytes) {
    const char *start = (const char *)base + row * stride_bytes;
    for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(start + offset, 0, 3);
}

CK_CLONES void ck_attention_head(const float *q, ptrdiff_t ldq, int queries, const void *k, const void *v,
                                 int kv_type, ptrdiff_t ldkv, int keys, int head_size, float scale, int limit,
                                 const uint8_t *valid, float *out, ptrdiff_t ldo, float *scratch) {
#pragma clang fp reassociate(on)
    for (int t = 0; t < queries; t++) {
        const float *qt = q + (ptrdiff_t)t * ldq;
        int visible = limit + t < keys ? limit + t : keys;
        ptrdiff_t element = kv_type == CK_BF16 ? 2 : 4;
        size_t row_bytes = (size_t)(head_size * element);
        for (int s = 0; s < visible; s++) {
            float dot = 0;
            if (s + CK_KEYS_AHEAD < visible) prefetch_row(k, s + CK_KEYS_AHEAD, ldkv * element, row_bytes);
            if (kv_type == CK_BF16) {
                const uint16_t *ks = (const uint16_t *)k + (ptrdiff_t)s * ldkv;
                for (int i = 0; i < head_size; i++) dot += qt[i] * ck_bf16_value(ks[i]);
            } else {
                const float *ks = (const float *)k + (ptrdiff_t)s * ldkv;
                for (int i = 0; i < head_size; i++) dot += qt[i] * ks[i];
            }
            scratch[s] = dot;
        }
        ck_softmax(scratch, visible, scale, visible, valid);
        float *o = out + (ptrdiff_t)t * ldo;
        for (int i = 0; i < head_size; i++) o[i] = 0;
        for (int s = 0; s < visible; s++) {
            if (s + CK_KEYS_AHEAD < visible) prefetch_row(v, s + CK_KEYS_AHEAD, ldkv * element, row_bytes);
            float p = scratch[s];
            if (p == 0) continue;
            if (kv_type == CK_BF16) {
                const uint16_t *vs = (const uint16_t *)v + (ptrdiff_t)s * ldkv;
                for (int i = 0; i < head_size; i++) o[i] += p * ck_bf16_value(vs[i]);
            } else {
                const float *vs = (const float *)v + (ptrdiff_t)s * ldkv;
                for (int i = 0; i < head_size; i++) o[i] += p * vs[i];
            }
        }
    }
}

void ck_rotary(float *x, int heads, int head_size, const int32_t *positions, const float *inverse_frequencies,
               int row_begin, int row_end) {
    int half = head_size / 2;
    float cosines[512], sines[512];
    for (int row = row_begin; row < row_end; row++) {
        for (int i = 0; i < half && i < 512; i++) {
            float angle = (float)positions[row] * inverse_frequencies[i];
            cosines[i] = cosf(angle);
            sines[i] = sinf(angle);
        }
        for (int head = 0; head < heads; head++) {
            float *base = x + ((ptrdiff_t)row * heads + head) * head_size;
            for (int i = 0; i < half; i++) {
                float a = base[i], b = base[half + i];
                float ac = a * cosines[i], bs = b * sines[i], bc = b * cosines[i], as = a * sines[i];
                base[i] = ac - bs;
                base[half + i] = bc + as;
            }
        }
    }
}

CK_CLONES void ck_widen(const void *src, int src_type, float *dst, size_t begin, size_t end) {
    if (src_type == CK_F32) {
        memcpy(dst + begin, (const float *)src + begin, (end - begin) * sizeof(float));
    } else if (src_type == CK_BF16) {
        const uint16_t *in = (const uint16_t *)src;
        for (size_t i = begin; i < end; i++) {
            uint32_t bits = (uint32_t)in[i] << 16;
            memcpy(dst + i, &bits, 4);
        }
    } else {
        const _Float16 *in = (const _Float16 *)src;
        for (size_t i = begin; i < end; i++) dst[i] = (float)in[i];
    }
}

CK_CLONES void ck_gemv_f32(int m, int k, const float *x, const void *w, int w_type, float *y, int n, int row_begin,
                           int row_end) {
#pragma clang fp reassociate(on)
    float widened[1024];
    for (int j = row_begin; j < row_end; j++) {
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int start = 0; start < k; start += 1024) {
            int count = k - start < 1024 ? k - start : 1024;
            ck_widen((const char *)w + ((size_t)j * k + start) * (w_type == CK_F32 ? 4 : 2), w_type, widened - 0, 0,
                     (size_t)count);
            for (int i = 0; i < m && i < 8; i++) {
                const float *row = x + (size_t)i * k + start;
                float sum = 0;
                for (int c = 0; c < count; c++) sum += row[c] * widened[c];
                acc[i] += sum;
            }
        }
        for (int i = 0; i < m && i < 8; i++) y[(size_t)i * n + j] = acc[i];
    }
}
