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

void ck_pack_bf16(const void *src, int src_type, ptrdiff_t row_stride, ptrdiff_t column_stride, int n, int k,
                  uint16_t *dst, int panel_begin, int panel_end) {
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

#endif

void ck_rows_to_bf16(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo, int row_begin,
                     int row_end) {
#if defined(__x86_64__)
    if (ck_fast_kernels()) {
        rows_to_bf16_avx512(x, ldx, k, out, ldo, row_begin, row_end);
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
