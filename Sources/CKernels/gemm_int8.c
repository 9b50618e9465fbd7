// c = a Wᵀ over int8 panels: integer dot products of int8 + 128 activations with int8 weights per group of 64
// inputs (vpdpbusd, 64 multiply-adds an instruction), the +128 taken back with the group's weight sum, then scaled
// by the activation's and the weight's scales into f32 sums. Decoding reads half the bytes of bf16.
//
// On AVX2 without VNNI, vpmaddubsw would saturate on int8 + 128 activations (255 x 127 x 2 > 32767), so the kernel
// multiplies |x| by the weight with x's sign (at most 2 x 127 x 127, exact) and widens the pairs with vpmaddwd;
// no +128 correction is needed there. With AVX-VNNI, vpdpbusd works on the stored form as on AVX-512.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_Q8_MR 4
#define CK_Q8_GROUPS 8     // groups per k block when many rows share the panels
#define CK_Q8_MC 192
#define CK_Q8_PANEL_GROUP 8
#define CK_QUADS_PER_GROUP (CK_INT8_GROUP / 4)

static inline int min_int(int a, int b) { return a < b ? a : b; }

#if defined(__x86_64__)
CK_TARGET_AVX512 static inline __attribute__((always_inline)) void
kernel_q8(const int rows, int group_begin, int group_end, int quads, const uint8_t *a, ptrdiff_t lda,
          const float *a_scales, int groups, const int8_t *b, const float *w_scales, const int32_t *w_sums, float *c,
          ptrdiff_t ldc, int load, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[CK_Q8_MR], acc1[CK_Q8_MR];
    for (int r = 0; r < rows; r++) {
        acc0[r] = load ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        acc1[r] = load ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (int g = group_begin; g < group_end; g++) {
        __m512i s0[CK_Q8_MR], s1[CK_Q8_MR];
        for (int r = 0; r < rows; r++) s0[r] = s1[r] = _mm512_setzero_si512();
        int q_end = min_int((g + 1) * CK_QUADS_PER_GROUP, quads);
        for (int q = g * CK_QUADS_PER_GROUP; q < q_end; q++) {
            _mm_prefetch((const char *)(b + q * 128) + 2048, _MM_HINT_T0);
            _mm_prefetch((const char *)(b + q * 128) + 2048 + 64, _MM_HINT_T0);
            __m512i b0 = _mm512_loadu_si512(b + q * 128), b1 = _mm512_loadu_si512(b + q * 128 + 64);
            for (int r = 0; r < rows; r++) {
                int32_t four;
                memcpy(&four, a + r * lda + 4 * q, 4);
                __m512i av = _mm512_set1_epi32(four);
                s0[r] = _mm512_dpbusd_epi32(s0[r], av, b0);
                s1[r] = _mm512_dpbusd_epi32(s1[r], av, b1);
            }
        }
        __m512i c0 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + g * CK_PANEL), 7);
        __m512i c1 = _mm512_slli_epi32(_mm512_loadu_si512(w_sums + g * CK_PANEL + 16), 7);
        __m512 w0 = _mm512_loadu_ps(w_scales + g * CK_PANEL), w1 = _mm512_loadu_ps(w_scales + g * CK_PANEL + 16);
        for (int r = 0; r < rows; r++) {
            __m512 sa = _mm512_set1_ps(a_scales[r * groups + g]);
            acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s0[r], c0)), _mm512_mul_ps(w0, sa), acc0[r]);
            acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(s1[r], c1)), _mm512_mul_ps(w1, sa), acc1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

#define CK_Q8_CASE(R)                                                                                            \
    case R:                                                                                                      \
        kernel_q8(R, group_begin, group_end, quads, a, lda, a_scales, groups, b, w_scales, w_sums, c, ldc, load, \
                  m0, m1);                                                                                       \
        break;

CK_TARGET_AVX512 static void tile_q8(int rows, int group_begin, int group_end, int quads, const uint8_t *a,
                                   ptrdiff_t lda, const float *a_scales, int groups, const int8_t *b,
                                   const float *w_scales, const int32_t *w_sums, float *c, ptrdiff_t ldc, int load,
                                   int columns) {
    __mmask16 m0 = ck_first_lanes(columns), m1 = ck_first_lanes(columns - 16);
    switch (rows) {
        CK_Q8_CASE(1) CK_Q8_CASE(2) CK_Q8_CASE(3) CK_Q8_CASE(4)
    default: break;
    }
}

CK_TARGET_AVX512 static void gemm_int8_avx512(int m, int n, int k, const uint8_t *a, ptrdiff_t lda,
                                            const float *a_scales, const int8_t *packed, const float *scales,
                                            const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate,
                                            int panel_begin, int panel_end) {
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    int group_block = m <= CK_Q8_MR ? groups : CK_Q8_GROUPS;
    int chunk_rows = m <= CK_Q8_MR ? m : CK_Q8_MC;
    for (int set = panel_begin; set < panel_end; set += CK_Q8_PANEL_GROUP) {
        int set_end = min_int(set + CK_Q8_PANEL_GROUP, panel_end);
        for (int chunk = 0; chunk < m; chunk += chunk_rows) {
            int chunk_end = min_int(chunk + chunk_rows, m);
            for (int gb = 0; gb < groups; gb += group_block) {
                int ge = min_int(gb + group_block, groups);
                int load = accumulate || gb > 0;
                for (int i = chunk; i < chunk_end; i += CK_Q8_MR) {
                    int rows = min_int(CK_Q8_MR, chunk_end - i);
                    for (int panel = set; panel < set_end; panel++) {
                        int column = panel * CK_PANEL;
                        tile_q8(rows, gb, ge, quads, a + i * lda, lda, a_scales + (size_t)i * groups, groups,
                                packed + panel * panel_size, scales + panel * panel_scales,
                                sums + panel * panel_scales, c + i * ldc + column, ldc, load,
                                min_int(CK_PANEL, n - column));
                    }
                }
            }
        }
    }
}

// MARK: AVX2, with or without AVX-VNNI

#define CK_Q8_A2_MR 4

/// For one tile of rows and the groups [group_begin, group_end): the activation bytes the AVX2 kernel broadcasts.
/// With VNNI the stored int8 + 128; without, the signed values and their magnitudes (row stride CK_Q8_A2_STRIDE).
#define CK_Q8_A2_STRIDE (CK_Q8_GROUPS * CK_INT8_GROUP)

// The micro-kernel, compiled once for AVX2 and once for AVX-VNNI (a kernel may only be inlined into code built for
// at least its instructions).
#define CK_Q8_A2_BODY kernel_q8_avx2_body
#define CK_Q8_A2_TARGET CK_TARGET_AVX2
#define CK_Q8_A2_VNNI 0
#include "q8_avx2_kernel.h"
#undef CK_Q8_A2_BODY
#undef CK_Q8_A2_TARGET
#undef CK_Q8_A2_VNNI
#define CK_Q8_A2_BODY kernel_q8_avx2_vnni_body
#define CK_Q8_A2_TARGET CK_TARGET_AVX2_VNNI
#define CK_Q8_A2_VNNI 1
#include "q8_avx2_kernel.h"

#define CK_Q8_A2_CASE(R, V, BODY)                                                                                \
    case R:                                                                                                      \
        BODY(R, V, group_begin, group_end, quads, x, magnitude, a_scales, groups, b, w_scales, w_sums, c, ldc,   \
             load, masks, columns >= 8 * V);                                                                     \
        break;

/// `columns` of c (at most 32: a whole panel for one row, else 16, half of one) for rows [0, rows).
#define CK_Q8_A2_TILE(NAME, TARGET, BODY)                                                                        \
    TARGET static void NAME(int rows, int group_begin, int group_end, int quads, const uint8_t *x,               \
                            const uint8_t *magnitude, const float *a_scales, int groups, const int8_t *b,        \
                            const float *w_scales, const int32_t *w_sums, float *c, ptrdiff_t ldc, int load,     \
                            int columns) {                                                                       \
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);                                          \
        __m256i masks[4];                                                                                        \
        for (int v = 0; v < 4; v++) masks[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - 8 * v), lane);     \
        if (columns > 16) {                                                                                      \
            BODY(1, 4, group_begin, group_end, quads, x, magnitude, a_scales, groups, b, w_scales, w_sums, c,    \
                 ldc, load, masks, columns == CK_PANEL);                                                         \
            return;                                                                                              \
        }                                                                                                        \
        switch (rows) {                                                                                          \
            CK_Q8_A2_CASE(1, 2, BODY) CK_Q8_A2_CASE(2, 2, BODY) CK_Q8_A2_CASE(3, 2, BODY)                        \
            CK_Q8_A2_CASE(4, 2, BODY)                                                                            \
        default: break;                                                                                          \
        }                                                                                                        \
    }

CK_Q8_A2_TILE(tile_q8_avx2, CK_TARGET_AVX2, kernel_q8_avx2_body)
CK_Q8_A2_TILE(tile_q8_avx2_vnni, CK_TARGET_AVX2_VNNI, kernel_q8_avx2_vnni_body)

/// The tile's activation bytes for the kernel: rows [0, rows) of a, groups [group_begin, group_end).
CK_TARGET_AVX2 static void q8_rows_avx2(int rows, int vnni, int group_begin, int group_end, int quads,
                                        const uint8_t *a, ptrdiff_t lda, uint8_t *x, uint8_t *magnitude) {
    int begin = 4 * group_begin * CK_QUADS_PER_GROUP;
    int end = min_int(4 * group_end * CK_QUADS_PER_GROUP, 4 * quads);
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int r = 0; r < rows; r++) {
        const uint8_t *in = a + r * lda + begin;
        uint8_t *out = x + r * CK_Q8_A2_STRIDE, *size = magnitude + r * CK_Q8_A2_STRIDE;
        int count = end - begin, i = 0;
        if (vnni) {
            memcpy(out, in, (size_t)count);
            continue;
        }
        for (; i + 32 <= count; i += 32) {
            __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(in + i)), bias);
            _mm256_storeu_si256((__m256i *)(out + i), v);
            _mm256_storeu_si256((__m256i *)(size + i), _mm256_abs_epi8(v));
        }
        for (; i < count; i++) {
            int value = (int)in[i] - 128;
            out[i] = (uint8_t)(int8_t)value;
            size[i] = (uint8_t)(value < 0 ? -value : value);
        }
    }
}

CK_TARGET_AVX2 static void gemm_int8_avx2(int vnni, int m, int n, int k, const uint8_t *a, ptrdiff_t lda,
                                          const float *a_scales, const int8_t *packed, const float *scales,
                                          const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate,
                                          int panel_begin, int panel_end) {
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    uint8_t x[CK_Q8_A2_MR * CK_Q8_A2_STRIDE] __attribute__((aligned(64)));
    uint8_t magnitude[CK_Q8_A2_MR * CK_Q8_A2_STRIDE] __attribute__((aligned(64)));
    // Few rows (decoding): one panel at a time, read front to back; many rows: groups of panels that stay in L2.
    int panel_group = m <= CK_Q8_A2_MR ? 1 : CK_Q8_PANEL_GROUP;
    for (int set = panel_begin; set < panel_end; set += panel_group) {
        int set_end = min_int(set + panel_group, panel_end);
        for (int chunk = 0; chunk < m; chunk += CK_Q8_MC) {
            int chunk_end = min_int(chunk + CK_Q8_MC, m);
            for (int gb = 0; gb < groups; gb += CK_Q8_GROUPS) {
                int ge = min_int(gb + CK_Q8_GROUPS, groups);
                int load = accumulate || gb > 0;
                for (int i = chunk; i < chunk_end; i += CK_Q8_A2_MR) {
                    int rows = min_int(CK_Q8_A2_MR, chunk_end - i);
                    q8_rows_avx2(rows, vnni, gb, ge, quads, a + i * lda, lda, x, magnitude);
                    for (int panel = set; panel < set_end; panel++) {
                        // One row takes a whole panel at a time (read front to back); more rows, half of one.
                        int width = rows == 1 ? CK_PANEL : 16;
                        for (int part = 0; part * width < CK_PANEL; part++) {
                            int column = panel * CK_PANEL + width * part;
                            if (column >= n) break;
                            const int8_t *b = packed + panel * panel_size + 4 * width * part;
                            const float *ws = scales + panel * panel_scales + width * part;
                            const int32_t *wsum = sums + panel * panel_scales + width * part;
                            if (vnni) {
                                tile_q8_avx2_vnni(rows, gb, ge, quads, x, magnitude, a_scales + (size_t)i * groups,
                                                  groups, b, ws, wsum, c + i * ldc + column, ldc, load,
                                                  min_int(width, n - column));
                            } else {
                                tile_q8_avx2(rows, gb, ge, quads, x, magnitude, a_scales + (size_t)i * groups,
                                             groups, b, ws, wsum, c + i * ldc + column, ldc, load,
                                             min_int(width, n - column));
                            }
                        }
                    }
                }
            }
        }
    }
}

#endif

static void gemm_int8_portable(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales,
                               const int8_t *packed, const float *scales, const int32_t *sums, float *c,
                               ptrdiff_t ldc, int accumulate, int panel_begin, int panel_end) {
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int column = panel * CK_PANEL, columns = min_int(CK_PANEL, n - column);
        const int8_t *b = packed + panel * panel_size;
        for (int i = 0; i < m; i++) {
            float acc[CK_PANEL];
            for (int j = 0; j < CK_PANEL; j++) acc[j] = accumulate && j < columns ? c[i * ldc + column + j] : 0;
            for (int g = 0; g < groups; g++) {
                int32_t dot[CK_PANEL];
                for (int j = 0; j < CK_PANEL; j++) dot[j] = 0;
                int q_end = min_int((g + 1) * CK_QUADS_PER_GROUP, quads);
                for (int q = g * CK_QUADS_PER_GROUP; q < q_end; q++) {
                    const uint8_t *x = a + i * lda + 4 * q;
                    for (int j = 0; j < CK_PANEL; j++) {
                        const int8_t *w = b + q * 128 + j * 4;
                        dot[j] += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
                    }
                }
                float sa = a_scales[(size_t)i * groups + g];
                const float *ws = scales + panel * panel_scales + g * CK_PANEL;
                const int32_t *wsum = sums + panel * panel_scales + g * CK_PANEL;
                for (int j = 0; j < CK_PANEL; j++) acc[j] += (float)(dot[j] - 128 * wsum[j]) * (ws[j] * sa);
            }
            for (int j = 0; j < columns; j++) c[i * ldc + column + j] = acc[j];
        }
    }
}

void ck_gemm_int8(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales, const int8_t *packed,
                  const float *scales, const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate, int panel_begin,
                  int panel_end) {
#if defined(__x86_64__)
    int set = ck_kernels();
    if (set == CK_KERNELS_AVX2 || set == CK_KERNELS_AVX2_VNNI) {
        gemm_int8_avx2(set == CK_KERNELS_AVX2_VNNI, m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc,
                       accumulate, panel_begin, panel_end);
        return;
    }
    if (set == CK_KERNELS_AMX && ck_gemm_int8_amx(m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc, accumulate,
                                                  panel_begin, panel_end)) {
        return;
    }
    if (set >= CK_KERNELS_AVX512) {
        gemm_int8_avx512(m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc, accumulate, panel_begin,
                         panel_end);
        return;
    }
#endif
    gemm_int8_portable(m, n, k, a, lda, a_scales, packed, scales, sums, c, ldc, accumulate, panel_begin,
                           panel_end);
}
