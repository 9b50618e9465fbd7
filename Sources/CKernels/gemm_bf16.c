// c = a Wᵀ over packed bf16 panels: an AVX-512 BF16 micro-kernel (vdpbf16ps, up to 12 rows x 32 columns held in
// 24 accumulators) and a portable kernel with the same results up to f32 summation order.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define CK_MR 12
#define CK_KC 384        // pairs of k per block when many rows share the panels
#define CK_MC 192        // rows per chunk when many rows share the panels
#define CK_PANEL_GROUP 8 // panels whose k block stays in L2 while every row block passes over them
#define CK_PREFETCH 1024 // bytes ahead in the panel stream

static inline int min_int(int a, int b) { return a < b ? a : b; }

#if defined(__x86_64__)
CK_TARGET_BF16 static inline __attribute__((always_inline)) void
kernel_bf16(const int rows, int pairs, const uint16_t *a, ptrdiff_t lda, const uint16_t *b, float *c, ptrdiff_t ldc,
            int load, const float *bias, __mmask16 m0, __mmask16 m1) {
    __m512 acc0[CK_MR], acc1[CK_MR];
    const int32_t *ar[CK_MR];
    // The bias starts the sums (once, with the first k block), in place of a separate pass over c.
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        ar[r] = (const int32_t *)(a + r * lda);
        if (load) {
            acc0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c + r * ldc), bias0);
            acc1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + r * ldc + 16), bias1);
        } else {
            acc0[r] = bias0;
            acc1[r] = bias1;
        }
    }
    for (int p = 0; p < pairs; p++) {
        _mm_prefetch((const char *)(b + p * 64) + CK_PREFETCH, _MM_HINT_T0);
        _mm_prefetch((const char *)(b + p * 64) + CK_PREFETCH + 64, _MM_HINT_T0);
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * 64);
        __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * 64 + 32);
        for (int r = 0; r < rows; r++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(ar[r][p]);
            acc0[r] = _mm512_dpbf16_ps(acc0[r], av, b0);
            acc1[r] = _mm512_dpbf16_ps(acc1[r], av, b1);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

#define CK_KERNEL_CASE(R)                                                                                        \
    case R: kernel_bf16(R, pairs, a, lda, b, c, ldc, load, bias, m0, m1); break;

CK_TARGET_BF16 static void tile_bf16(int rows, int pairs, const uint16_t *a, ptrdiff_t lda, const uint16_t *b,
                                     float *c, ptrdiff_t ldc, int load, const float *bias, int columns) {
    __mmask16 m0 = columns >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << columns) - 1);
    __mmask16 m1 = columns >= 32 ? (__mmask16)0xffff : columns > 16 ? (__mmask16)((1u << (columns - 16)) - 1) : 0;
    switch (rows) {
        CK_KERNEL_CASE(1) CK_KERNEL_CASE(2) CK_KERNEL_CASE(3) CK_KERNEL_CASE(4) CK_KERNEL_CASE(5) CK_KERNEL_CASE(6)
        CK_KERNEL_CASE(7) CK_KERNEL_CASE(8) CK_KERNEL_CASE(9) CK_KERNEL_CASE(10) CK_KERNEL_CASE(11)
        CK_KERNEL_CASE(12)
    default: break;
    }
}

CK_TARGET_BF16 static void gemm_bf16_avx512(int m, int n, int k, const uint16_t *a, ptrdiff_t lda,
                                            const uint16_t *packed, float *c, ptrdiff_t ldc, int accumulate,
                                            const float *bias, int panel_begin, int panel_end) {
    int pairs = (k + 1) / 2;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    if (m <= CK_MR) {
        // Few rows (decoding): each panel streams once over the whole of k.
        for (int panel = panel_begin; panel < panel_end; panel++) {
            int column = panel * CK_PANEL;
            tile_bf16(m, pairs, a, lda, packed + panel * panel_size, c + column, ldc, accumulate,
                      bias ? bias + column : NULL, min_int(CK_PANEL, n - column));
        }
        return;
    }
    // Many rows: a group of panels by a chunk of rows is finished over all of k before the next, so its part of c
    // (CK_MC x 256 floats), its rows of a (CK_MC x CK_KC pairs) and its panels' k block all stay in L2.
    for (int group = panel_begin; group < panel_end; group += CK_PANEL_GROUP) {
        int group_end = min_int(group + CK_PANEL_GROUP, panel_end);
        for (int chunk = 0; chunk < m; chunk += CK_MC) {
            int chunk_end = min_int(chunk + CK_MC, m);
            for (int kb = 0; kb < pairs; kb += CK_KC) {
                int count = min_int(CK_KC, pairs - kb);
                int load = accumulate || kb > 0;
                for (int i = chunk; i < chunk_end; i += CK_MR) {
                    int rows = min_int(CK_MR, chunk_end - i);
                    for (int panel = group; panel < group_end; panel++) {
                        int column = panel * CK_PANEL;
                        if (kb == 0 && panel + 1 < group_end) {
                            // The next tile's output lines, fetched for writing while this one computes.
                            float *next = c + i * ldc + column + CK_PANEL;
                            for (int r = 0; r < rows; r++) {
                                __builtin_prefetch(next + r * ldc, 1, 3);
                                __builtin_prefetch(next + r * ldc + 16, 1, 3);
                            }
                        }
                        tile_bf16(rows, count, a + i * lda + 2 * kb, lda,
                                  packed + panel * panel_size + (size_t)kb * 64, c + i * ldc + column, ldc, load,
                                  bias && kb == 0 ? bias + column : NULL, min_int(CK_PANEL, n - column));
                    }
                }
            }
        }
    }
}

#endif

static void gemm_bf16_portable(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                               float *c, ptrdiff_t ldc, int accumulate, const float *bias, int panel_begin,
                               int panel_end) {
    int pairs = (k + 1) / 2;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    float wide[CK_PANEL * 2];
    for (int panel = panel_begin; panel < panel_end; panel++) {
        int column = panel * CK_PANEL, columns = min_int(CK_PANEL, n - column);
        const uint16_t *b = packed + panel * panel_size;
        for (int i = 0; i < m; i++) {
            float acc[CK_PANEL];
            for (int j = 0; j < CK_PANEL; j++) acc[j] = bias && j < columns ? bias[column + j] : 0;
            const uint16_t *row = a + i * lda;
            for (int p = 0; p < pairs; p++) {
                float a0 = ck_bf16_value(row[2 * p]), a1 = ck_bf16_value(row[2 * p + 1]);
                for (int j = 0; j < CK_PANEL * 2; j++) wide[j] = ck_bf16_value(b[p * 64 + j]);
                for (int j = 0; j < CK_PANEL; j++) acc[j] += a0 * wide[2 * j] + a1 * wide[2 * j + 1];
            }
            float *out = c + i * ldc + column;
            for (int j = 0; j < columns; j++) out[j] = accumulate ? out[j] + acc[j] : acc[j];
        }
    }
}

void ck_gemm_bf16(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed, float *c,
                  ptrdiff_t ldc, int accumulate, const float *bias, int panel_begin, int panel_end) {
#if defined(__x86_64__)
    if (ck_fast_kernels()) {
        gemm_bf16_avx512(m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end);
        return;
    }
#endif
    gemm_bf16_portable(m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end);
}
