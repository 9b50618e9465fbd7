// Weight matrices into bf16 panels (once, at load) and activation rows into bf16 (once per product).
#include "ckernels.h"
#include "internal.h"

#include <math.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

size_t ck_packed_count(int n, int k) {
    size_t panels = ((size_t)n + CK_PANEL - 1) / CK_PANEL;
    size_t pairs = ((size_t)k + 1) / 2;
    return panels * pairs * CK_PANEL * 2;
}

static inline uint16_t load_bf16(const void *src, int type, ptrdiff_t index) {
    switch (type) {
    case CK_F32: return ck_bf16_bits(((const float *)src)[index]);
    case CK_BF16: return ((const uint16_t *)src)[index];
    default: return ck_bf16_bits(ck_f16_value(((const uint16_t *)src)[index]));
    }
}

#if defined(__x86_64__)
/// 16 values (f32 or bf16, `count` of them, the rest zero) as bf16, rounded as ck_bf16_bits does.
CK_TARGET_AVX512 static inline __m256i load_bf16x16(const void *src, int type, __mmask16 valid) {
    if (type == CK_BF16) return _mm256_maskz_loadu_epi16(valid, src);
    __m512i bits = _mm512_maskz_loadu_epi32(valid, src);
    __m512i rounded = _mm512_add_epi32(
        bits, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(bits, 16),
                                                                            _mm512_set1_epi32(1))));
    __m512i quiet = _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    __m512i halves = _mm512_mask_mov_epi32(_mm512_srli_epi32(rounded, 16), nan, quiet);
    return _mm512_cvtepi32_epi16(halves);
}

/// Rows of W contiguous along k (column_stride 1): each row's pairs go to its slot of every pair of the panel.
CK_TARGET_AVX512 static void pack_rows_avx512(const void *src, int type, ptrdiff_t row_stride, int n, int k,
                                            uint16_t *dst, int panel_begin, int panel_end) {
    size_t pairs = ((size_t)k + 1) / 2, panel_size = pairs * CK_PANEL * 2;
    size_t element = type == CK_F32 ? 4 : 2;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        uint32_t *out = (uint32_t *)(dst + (size_t)panel * panel_size);
        for (int j = 0; j < CK_PANEL; j++) {
            int row = panel * CK_PANEL + j;
            const char *in = (const char *)src + (size_t)row * row_stride * element;
            for (int c = 0; c < 2 * (int)pairs; c += 32) {
                int left = row < n ? k - c : 0;
                __m256i lo = load_bf16x16(in + c * element, type, ck_first_lanes(left));
                __m256i hi = load_bf16x16(in + (c + 16) * element, type, ck_first_lanes(left - 16));
                uint32_t both[16];
                _mm512_storeu_si512(both, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
                int count = ((int)pairs - c / 2) < 16 ? (int)pairs - c / 2 : 16;
                for (int p = 0; p < count; p++) out[(size_t)(c / 2 + p) * CK_PANEL + j] = both[p];
            }
        }
    }
}

/// W's rows adjacent in memory (row_stride 1, as Vᵀ from a row-major V): each pair of k is two runs of 32 values,
/// interleaved into the panel's 64.
CK_TARGET_AVX512 static void pack_columns_avx512(const void *src, int type, ptrdiff_t column_stride, int n, int k,
                                               uint16_t *dst, int panel_begin, int panel_end) {
    size_t pairs = ((size_t)k + 1) / 2, panel_size = pairs * CK_PANEL * 2;
    size_t element = type == CK_F32 ? 4 : 2;
    const __m512i first = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8, 39, 7, 38,
                                           6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i second = _mm512_add_epi16(first, _mm512_set1_epi16(16));
    for (int panel = panel_begin; panel < panel_end; panel++) {
        uint16_t *out = dst + (size_t)panel * panel_size;
        int columns = n - panel * CK_PANEL;
        __mmask16 m0 = ck_first_lanes(columns), m1 = ck_first_lanes(columns - 16);
        for (size_t p = 0; p < pairs; p++) {
            __m512i rows[2];
            for (int half = 0; half < 2; half++) {
                int c = 2 * (int)p + half;
                const char *in = (const char *)src + ((size_t)c * column_stride + (size_t)panel * CK_PANEL) * element;
                __mmask16 a = c < k ? m0 : 0, b = c < k ? m1 : 0;
                rows[half] = _mm512_inserti64x4(_mm512_castsi256_si512(load_bf16x16(in, type, a)),
                                                load_bf16x16(in + 16 * element, type, b), 1);
            }
            _mm512_storeu_si512(out + p * 64, _mm512_permutex2var_epi16(rows[0], first, rows[1]));
            _mm512_storeu_si512(out + p * 64 + 32, _mm512_permutex2var_epi16(rows[0], second, rows[1]));
        }
    }
}
#endif

void ck_pack_bf16(const void *src, int src_type, ptrdiff_t row_stride, ptrdiff_t column_stride, int n, int k,
                  uint16_t *dst, int panel_begin, int panel_end) {
#if defined(__x86_64__)
    if (ck_kernels() >= CK_KERNELS_AVX512 && (src_type == CK_F32 || src_type == CK_BF16)) {
        if (column_stride == 1) {
            pack_rows_avx512(src, src_type, row_stride, n, k, dst, panel_begin, panel_end);
            return;
        }
        if (row_stride == 1) {
            pack_columns_avx512(src, src_type, column_stride, n, k, dst, panel_begin, panel_end);
            return;
        }
    }
#endif
    size_t pairs = ((size_t)k + 1) / 2;
    size_t panel_size = pairs * CK_PANEL * 2;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        uint16_t *out = dst + (size_t)panel * panel_size;
        for (int j = 0; j < CK_PANEL; j++) {
            int row = panel * CK_PANEL + j;
            if (row >= n) {
                for (size_t p = 0; p < pairs; p++) out[p * CK_PANEL * 2 + j * 2] = out[p * CK_PANEL * 2 + j * 2 + 1] = 0;
                continue;
            }
            ptrdiff_t base = (ptrdiff_t)row * row_stride;
            if (src_type == CK_BF16 && column_stride == 1) {
                const uint16_t *in = (const uint16_t *)src + base;
                for (int c = 0; c + 1 < k; c += 2) {
                    uint16_t *o = out + (size_t)(c / 2) * CK_PANEL * 2 + j * 2;
                    o[0] = in[c];
                    o[1] = in[c + 1];
                }
            } else {
                for (int c = 0; c + 1 < k; c += 2) {
                    uint16_t *o = out + (size_t)(c / 2) * CK_PANEL * 2 + j * 2;
                    o[0] = load_bf16(src, src_type, base + (ptrdiff_t)c * column_stride);
                    o[1] = load_bf16(src, src_type, base + (ptrdiff_t)(c + 1) * column_stride);
                }
            }
            if (k & 1) {
                uint16_t *o = out + (size_t)(k / 2) * CK_PANEL * 2 + j * 2;
                o[0] = load_bf16(src, src_type, base + (ptrdiff_t)(k - 1) * column_stride);
                o[1] = 0;
            }
        }
    }
}

#if defined(__x86_64__)
CK_TARGET_BF16 static void rows_to_bf16_avx512(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo,
                                               int row_begin, int row_end) {
    for (int r = row_begin; r < row_end; r++) {
        const float *in = x + (ptrdiff_t)r * ldx;
        uint16_t *o = out + (ptrdiff_t)r * ldo;
        int c = 0;
        for (; c + 32 <= k; c += 32) {
            __m512 lo = _mm512_loadu_ps(in + c), hi = _mm512_loadu_ps(in + c + 16);
            _mm512_storeu_si512(o + c, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
        for (; c < k; c++) o[c] = ck_bf16_bits(in[c]);
        if (k & 1) o[k] = 0;
    }
}

/// The same without AVX-512 BF16: rounded in integer lanes as the packing does, bit for bit ck_bf16_bits.
CK_TARGET_AVX512 static void rows_to_bf16_avx512f(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo,
                                                  int row_begin, int row_end) {
    for (int r = row_begin; r < row_end; r++) {
        const float *in = x + (ptrdiff_t)r * ldx;
        uint16_t *o = out + (ptrdiff_t)r * ldo;
        for (int c = 0; c < k; c += 16) {
            __mmask16 lanes = ck_first_lanes(k - c);
            _mm256_mask_storeu_epi16(o + c, lanes, load_bf16x16(in + c, CK_F32, lanes));
        }
        if (k & 1) o[k] = 0;
    }
}

/// The same on AVX2: 8 values at a time, rounded in integer lanes bit for bit as ck_bf16_bits.
CK_TARGET_AVX2 static void rows_to_bf16_avx2(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo,
                                             int row_begin, int row_end) {
    const __m256i one = _mm256_set1_epi32(1), half = _mm256_set1_epi32(0x7fff), quiet_bit = _mm256_set1_epi32(0x40);
    const __m256i magnitude = _mm256_set1_epi32(0x7fffffff), infinity = _mm256_set1_epi32(0x7f800000);
    for (int r = row_begin; r < row_end; r++) {
        const float *in = x + (ptrdiff_t)r * ldx;
        uint16_t *o = out + (ptrdiff_t)r * ldo;
        int c = 0;
        for (; c + 8 <= k; c += 8) {
            __m256i bits = _mm256_loadu_si256((const __m256i *)(in + c));
            __m256i odd = _mm256_and_si256(_mm256_srli_epi32(bits, 16), one);
            __m256i rounded = _mm256_add_epi32(bits, _mm256_add_epi32(half, odd));
            __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), quiet_bit);
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, magnitude), infinity);
            __m256i halves = _mm256_blendv_epi8(_mm256_srli_epi32(rounded, 16), quiet, nan);
            __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
            _mm_storeu_si128((__m128i *)(o + c), _mm256_castsi256_si128(packed));
        }
        for (; c < k; c++) o[c] = ck_bf16_bits(in[c]);
        if (k & 1) o[k] = 0;
    }
}

#endif

void ck_rows_to_bf16(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo, int row_begin,
                     int row_end) {
#if defined(__x86_64__)
    int set = ck_kernels();
    if (set >= CK_KERNELS_AVX512_BF16) {
        rows_to_bf16_avx512(x, ldx, k, out, ldo, row_begin, row_end);
        return;
    }
    if (set == CK_KERNELS_AVX512) {
        rows_to_bf16_avx512f(x, ldx, k, out, ldo, row_begin, row_end);
        return;
    }
    if (set != CK_KERNELS_PORTABLE) {
        rows_to_bf16_avx2(x, ldx, k, out, ldo, row_begin, row_end);
        return;
    }
#endif
    for (int r = row_begin; r < row_end; r++) {
        const float *in = x + (ptrdiff_t)r * ldx;
        uint16_t *o = out + (ptrdiff_t)r * ldo;
        for (int c = 0; c < k; c++) o[c] = ck_bf16_bits(in[c]);
        if (k & 1) o[k] = 0;
    }
}

size_t ck_packed_int8_count(int n, int k) {
    size_t panels = ((size_t)n + CK_PANEL - 1) / CK_PANEL;
    size_t quads = ((size_t)k + 3) / 4;
    return panels * quads * CK_PANEL * 4;
}

size_t ck_packed_int8_scales(int n, int k) {
    size_t panels = ((size_t)n + CK_PANEL - 1) / CK_PANEL;
    size_t groups = ((size_t)k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    return panels * groups * CK_PANEL;
}

static inline float load_f32(const void *src, int type, ptrdiff_t index) {
    switch (type) {
    case CK_F32: return ((const float *)src)[index];
    case CK_BF16: return ck_bf16_value(((const uint16_t *)src)[index]);
    default: return ck_f16_value(((const uint16_t *)src)[index]);
    }
}

void ck_pack_int8(const void *src, int src_type, ptrdiff_t row_stride, ptrdiff_t column_stride, int n, int k,
                  int8_t *dst, float *scales, int32_t *sums, int panel_begin, int panel_end) {
    size_t quads = ((size_t)k + 3) / 4;
    size_t panel_size = quads * CK_PANEL * 4;
    int groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int8_t *out = dst + (size_t)panel * panel_size;
        for (int j = 0; j < CK_PANEL; j++) {
            int row = panel * CK_PANEL + j;
            ptrdiff_t base = (ptrdiff_t)row * row_stride;
            for (int g = 0; g < groups; g++) {
                int start = g * CK_INT8_GROUP;
                int end = start + CK_INT8_GROUP < (int)(4 * quads) ? start + CK_INT8_GROUP : (int)(4 * quads);
                float largest = 0;
                for (int c = start; c < end && c < k && row < n; c++) {
                    float v = fabsf(load_f32(src, src_type, base + (ptrdiff_t)c * column_stride));
                    largest = (v > largest || v != v) ? v : largest;  // a NaN sticks
                }
                float scale = largest / 127.0f, inverse = scale > 0 ? 1.0f / scale : 0.0f;
                if (!isfinite(largest)) scale = NAN;
                int32_t sum = 0;
                for (int c = start; c < end; c++) {
                    float v = (row < n && c < k) ? load_f32(src, src_type, base + (ptrdiff_t)c * column_stride) : 0;
                    float q = nearbyintf(v * inverse);
                    q = q > 127 ? 127 : (q < -127 ? -127 : q);
                    if (q != q) q = 0;  // NaN or infinite weights: the group's scale carries the NaN instead
                    out[(size_t)(c / 4) * CK_PANEL * 4 + j * 4 + (c & 3)] = (int8_t)q;
                    sum += (int32_t)q;
                }
                size_t at = ((size_t)panel * groups + g) * CK_PANEL + j;
                scales[at] = scale;
                sums[at] = sum;
            }
        }
    }
}

void ck_rows_to_q8(const float *x, ptrdiff_t ldx, int k, uint8_t *out, ptrdiff_t ldo, float *scales, int row_begin,
                   int row_end) {
    int groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    int padded = (k + 3) / 4 * 4;
    for (int r = row_begin; r < row_end; r++) {
        const float *in = x + (ptrdiff_t)r * ldx;
        uint8_t *o = out + (ptrdiff_t)r * ldo;
        for (int g = 0; g < groups; g++) {
            int start = g * CK_INT8_GROUP, end = start + CK_INT8_GROUP < k ? start + CK_INT8_GROUP : k;
            float largest = 0;
            for (int c = start; c < end; c++) largest = fabsf(in[c]) > largest ? fabsf(in[c]) : largest;
            float scale = largest / 127.0f, inverse = scale > 0 ? 1.0f / scale : 0.0f;
            int finite = 1;
            for (int c = start; c < end; c++) finite &= isfinite(in[c]) != 0;
            scales[(ptrdiff_t)r * groups + g] = finite ? scale : NAN;  // a NaN or infinity reaches the output
            for (int c = start; c < end; c++) {
                float q = nearbyintf(in[c] * inverse);
                q = q > 127 ? 127 : (q < -127 ? -127 : q);
                if (q != q) q = 0;
                o[c] = (uint8_t)((int)q + 128);
            }
        }
        for (int c = k; c < padded; c++) o[c] = 128;
    }
}
