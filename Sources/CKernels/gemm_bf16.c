// c = a Wᵀ over packed bf16 panels: an AVX-512 BF16 micro-kernel (vdpbf16ps, up to 12 rows x 32 columns held in
// 24 accumulators), one for AVX-512 without BF16 (the same tile, the panels' bf16 pairs widened to f32 in registers
// and 512-bit FMA), AVX2 ones (6 rows x 16 columns in 12 accumulators, f32 FMA: for few rows the panels' bf16 pairs
// widened to f32 in registers by a shift and a mask, for many a k block of a group of panels widened to f32 once in
// the thread's scratch) and a portable kernel, with the same results up to f32 summation order.
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
// Rows that take the few-row path of every set (decoding steps and prompt chunks beside them): each panel streamed
// once over the whole of k, this many bytes ahead, which is what lets the arithmetic of 8 to 24 rows overlap the
// stream (1024 bytes left an 8-row product at 1.3-1.5x the time of reading the weights on the widening sets). With
// vdpbf16ps, up to CK_BF16_STREAM_ROWS rows are bound by the stream alone and keep CK_PREFETCH (as fast or faster
// there on Zen 4).
#define CK_FEW_ROWS 24
#define CK_STREAM_AHEAD 4096
#define CK_BF16_STREAM_ROWS 8

static inline int min_int(int a, int b) { return a < b ? a : b; }

#if defined(__x86_64__)
CK_TARGET_BF16 static inline __attribute__((always_inline)) void
kernel_bf16(const int rows, int pairs, const uint16_t *a, ptrdiff_t lda, const uint16_t *b, float *c, ptrdiff_t ldc,
            int load, const float *bias, __mmask16 m0, __mmask16 m1, const int ahead) {
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
        _mm_prefetch((const char *)(b + p * 64) + ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)(b + p * 64) + ahead + 64, _MM_HINT_T0);
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
    case R: kernel_bf16(R, pairs, a, lda, b, c, ldc, load, bias, m0, m1, ahead); break;

CK_TARGET_BF16 static void tile_bf16(int rows, int pairs, const uint16_t *a, ptrdiff_t lda, const uint16_t *b,
                                     float *c, ptrdiff_t ldc, int load, const float *bias, int columns, int ahead) {
    __mmask16 m0 = ck_first_lanes(columns), m1 = ck_first_lanes(columns - 16);
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
    if (m <= CK_FEW_ROWS) {
        // Few rows (decoding steps and the prompt chunks beside them): each panel streams from memory once over the
        // whole of k, by the first tile of rows, and the others read it from L2.
        int ahead = m <= CK_BF16_STREAM_ROWS ? CK_PREFETCH : CK_STREAM_AHEAD;
        for (int panel = panel_begin; panel < panel_end; panel++) {
            int column = panel * CK_PANEL;
            for (int i = 0; i < m; i += CK_MR) {
                tile_bf16(min_int(CK_MR, m - i), pairs, a + i * lda, lda, packed + panel * panel_size,
                          c + i * ldc + column, ldc, accumulate, bias ? bias + column : NULL,
                          min_int(CK_PANEL, n - column), ahead);
            }
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
                                  bias && kb == 0 ? bias + column : NULL, min_int(CK_PANEL, n - column),
                                  CK_PREFETCH);
                    }
                }
            }
        }
    }
}

// MARK: AVX-512 without BF16: widened in registers, 512-bit FMA

// Pairs of k per block for the kernels that widen panels in registers (here and AVX2): the best of 32 to 256
// measured on both (a 12-row tile's activations in 6 KiB). A tile's widened activations (aw) are its rows' f32 values
// k block by k block: block b's `rows` rows of 2 * CK_WIDE_KC floats each, at aw + b * rows * 2 * CK_WIDE_KC.
#define CK_WIDE_KC 64

/// Row 0's values of pair p (even input, then odd) in a tile's widened activations; row r's are r * 2 * CK_WIDE_KC
/// floats further.
static inline const float *widened_pair(const float *aw, int rows, int p) {
    return aw + (size_t)(p / CK_WIDE_KC) * rows * 2 * CK_WIDE_KC + 2 * (p % CK_WIDE_KC);
}

/// Rows [0, rows) of a whole panel's 32 columns += aw (widened activations) times the panel at b, prefetching `ahead`
/// bytes ahead in the panel.
CK_TARGET_AVX512 static inline __attribute__((always_inline)) void
kernel_bf16_fma512(const int rows, int pairs, const float *aw, const uint16_t *b, float *c, ptrdiff_t ldc, int load,
                   const float *bias, __mmask16 m0, __mmask16 m1, const int ahead) {
    __m512 acc0[CK_MR], acc1[CK_MR];
    __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        if (load) {
            acc0[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c + r * ldc), bias0);
            acc1[r] = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + r * ldc + 16), bias1);
        } else {
            acc0[r] = bias0;
            acc1[r] = bias1;
        }
    }
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    for (int p = 0; p < pairs; p++) {
        const float *ap = widened_pair(aw, rows, p);
        _mm_prefetch((const char *)(b + p * 64) + ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)(b + p * 64) + ahead + 64, _MM_HINT_T0);
        __m512i w0 = _mm512_loadu_si512(b + p * 64), w1 = _mm512_loadu_si512(b + p * 64 + 32);
        __m512 e0 = _mm512_castsi512_ps(_mm512_slli_epi32(w0, 16));
        __m512 e1 = _mm512_castsi512_ps(_mm512_slli_epi32(w1, 16));
        __m512 o0 = _mm512_castsi512_ps(_mm512_and_si512(w0, high));
        __m512 o1 = _mm512_castsi512_ps(_mm512_and_si512(w1, high));
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(ap[r * 2 * CK_WIDE_KC]);
            acc0[r] = _mm512_fmadd_ps(x, e0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(x, e1, acc1[r]);
        }
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(ap[r * 2 * CK_WIDE_KC + 1]);
            acc0[r] = _mm512_fmadd_ps(x, o0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(x, o1, acc1[r]);
        }
    }
    for (int r = 0; r < rows; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, acc0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, acc1[r]);
    }
}

#define CK_F_CASE(R)                                                                                             \
    case R: kernel_bf16_fma512(R, pairs, aw, b, c, ldc, load, bias, m0, m1, ahead); break;

CK_TARGET_AVX512 static void tile_bf16_fma512(int rows, int pairs, const float *aw, const uint16_t *b, float *c,
                                              ptrdiff_t ldc, int load, const float *bias, int columns, int ahead) {
    __mmask16 m0 = ck_first_lanes(columns), m1 = ck_first_lanes(columns - 16);
    switch (rows) {
        CK_F_CASE(1) CK_F_CASE(2) CK_F_CASE(3) CK_F_CASE(4) CK_F_CASE(5) CK_F_CASE(6) CK_F_CASE(7) CK_F_CASE(8)
        CK_F_CASE(9) CK_F_CASE(10) CK_F_CASE(11) CK_F_CASE(12)
    default: break;
    }
}

// MARK: AVX2 + FMA

#define CK_A2_MR 6

/// c's 8 columns at `p`: a plain load or store when all 8 are real (vmaskmovps stores are slow on some processors).
CK_TARGET_AVX2 static inline __attribute__((always_inline)) __m256 load8(const float *p, __m256i mask, int full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, mask);
}

CK_TARGET_AVX2 static inline __attribute__((always_inline)) void store8(float *p, __m256i mask, __m256 v, int full) {
    if (full) {
        _mm256_storeu_ps(p, v);
    } else {
        _mm256_maskstore_ps(p, mask, v);
    }
}

/// A 6 x 16 tile's sums at the start of a k block: c's values (`load`: a later block, or accumulating into c) plus
/// the bias, if any (given with the first block only).
CK_TARGET_AVX2 static inline __attribute__((always_inline)) void
start_sums_avx2(const int rows, __m256 *acc0, __m256 *acc1, const float *c, ptrdiff_t ldc, int load, const float *bias,
                __m256i m0, __m256i m1, const int full) {
    __m256 bias0 = bias ? load8(bias, m0, full) : _mm256_setzero_ps();
    __m256 bias1 = bias ? load8(bias + 8, m1, full) : _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        if (load) {
            acc0[r] = _mm256_add_ps(load8(c + r * ldc, m0, full), bias0);
            acc1[r] = _mm256_add_ps(load8(c + r * ldc + 8, m1, full), bias1);
        } else {
            acc0[r] = bias0;
            acc1[r] = bias1;
        }
    }
}

CK_TARGET_AVX2 static inline __attribute__((always_inline)) void
store_sums_avx2(const int rows, const __m256 *acc0, const __m256 *acc1, float *c, ptrdiff_t ldc, __m256i m0,
                __m256i m1, const int full) {
    for (int r = 0; r < rows; r++) {
        store8(c + r * ldc, m0, acc0[r], full);
        store8(c + r * ldc + 8, m1, acc1[r], full);
    }
}

/// Rows [0, rows) of c's 16 columns (`columns` of them real) += aw (widened activations) times the half panel at b
/// (pair p's 16 columns at b + 64 p: 8 int32 lanes of (even, odd) bf16 pairs, then 8 more).
CK_TARGET_AVX2 static inline __attribute__((always_inline)) void
kernel_bf16_avx2(const int rows, int pairs, const float *aw, const uint16_t *b, float *c, ptrdiff_t ldc, int load,
                 const float *bias, __m256i m0, __m256i m1, const int full, const int ahead) {
    __m256 acc0[CK_A2_MR], acc1[CK_A2_MR];
    start_sums_avx2(rows, acc0, acc1, c, ldc, load, bias, m0, m1, full);
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int p = 0; p < pairs; p++) {
        const float *ap = widened_pair(aw, rows, p);
        _mm_prefetch((const char *)(b + p * 64) + ahead, _MM_HINT_T0);
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(b + p * 64));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(b + p * 64 + 16));
        // The even input's weights are the low halves of each lane, the odd input's the high halves.
        __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16));
        __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16));
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC);
            acc0[r] = _mm256_fmadd_ps(x, e0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(x, e1, acc1[r]);
        }
        // Loaded again rather than kept (the empty asm stops the compiler reusing the first load): 12
        // accumulators, two weight vectors, a broadcast and the mask fill the 16 registers, and a load beats a
        // spill and reload.
        __asm__ volatile("" ::: "memory");
        __m256 o0 = _mm256_and_ps(_mm256_loadu_ps((const float *)(b + p * 64)), _mm256_castsi256_ps(high));
        __m256 o1 = _mm256_and_ps(_mm256_loadu_ps((const float *)(b + p * 64 + 16)), _mm256_castsi256_ps(high));
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC + 1);
            acc0[r] = _mm256_fmadd_ps(x, o0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(x, o1, acc1[r]);
        }
    }
    store_sums_avx2(rows, acc0, acc1, c, ldc, m0, m1, full);
}

/// Rows [0, rows) (at most 2) of a whole panel's 32 columns: decoding's kernel, which reads each panel front to back.
CK_TARGET_AVX2 static inline __attribute__((always_inline)) void
kernel_bf16_avx2_panel(const int rows, int pairs, const float *aw, const uint16_t *b, float *c, ptrdiff_t ldc,
                       int load, const float *bias, const __m256i *masks, const int full, const int ahead) {
    __m256 acc[2][4];
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < 4; v++) {
            __m256 start = bias ? load8(bias + 8 * v, masks[v], full) : _mm256_setzero_ps();
            acc[r][v] = load ? _mm256_add_ps(load8(c + r * ldc + 8 * v, masks[v], full), start) : start;
        }
    }
    const __m256 high = _mm256_castsi256_ps(_mm256_set1_epi32((int)0xffff0000u));
    for (int p = 0; p < pairs; p++) {
        const float *ap = widened_pair(aw, rows, p);
        _mm_prefetch((const char *)(b + p * 64) + ahead, _MM_HINT_T0);
        _mm_prefetch((const char *)(b + p * 64) + ahead + 64, _MM_HINT_T0);
        __m256 e[4];
        for (int v = 0; v < 4; v++) {
            __m256i w = _mm256_loadu_si256((const __m256i *)(b + p * 64 + 16 * v));
            e[v] = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
        }
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC);
            for (int v = 0; v < 4; v++) acc[r][v] = _mm256_fmadd_ps(x, e[v], acc[r][v]);
        }
        for (int v = 0; v < 4; v++) {
            e[v] = _mm256_and_ps(_mm256_loadu_ps((const float *)(b + p * 64 + 16 * v)), high);
        }
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC + 1);
            for (int v = 0; v < 4; v++) acc[r][v] = _mm256_fmadd_ps(x, e[v], acc[r][v]);
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < 4; v++) store8(c + r * ldc + 8 * v, masks[v], acc[r][v], full);
    }
}

CK_TARGET_AVX2 static void panel_bf16_avx2(int rows, int pairs, const float *aw, const uint16_t *b, float *c,
                                           ptrdiff_t ldc, int load, const float *bias, int columns, int ahead) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i masks[4];
    for (int v = 0; v < 4; v++) masks[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - 8 * v), lane);
    if (columns == CK_PANEL) {
        if (rows == 1) {
            kernel_bf16_avx2_panel(1, pairs, aw, b, c, ldc, load, bias, masks, 1, ahead);
        } else {
            kernel_bf16_avx2_panel(2, pairs, aw, b, c, ldc, load, bias, masks, 1, ahead);
        }
    } else if (rows == 1) {
        kernel_bf16_avx2_panel(1, pairs, aw, b, c, ldc, load, bias, masks, 0, ahead);
    } else {
        kernel_bf16_avx2_panel(2, pairs, aw, b, c, ldc, load, bias, masks, 0, ahead);
    }
}

#define CK_A2_CASE(R)                                                                                            \
    case R:                                                                                                      \
        if (columns == 16) {                                                                                     \
            kernel_bf16_avx2(R, pairs, aw, b, c, ldc, load, bias, m0, m1, 1, ahead);                             \
        } else {                                                                                                 \
            kernel_bf16_avx2(R, pairs, aw, b, c, ldc, load, bias, m0, m1, 0, ahead);                             \
        }                                                                                                        \
        break;

CK_TARGET_AVX2 static void tile_bf16_avx2(int rows, int pairs, const float *aw, const uint16_t *b, float *c,
                                          ptrdiff_t ldc, int load, const float *bias, int columns, int ahead) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - 8), lane);
    switch (rows) {
        CK_A2_CASE(1) CK_A2_CASE(2) CK_A2_CASE(3) CK_A2_CASE(4) CK_A2_CASE(5) CK_A2_CASE(6)
    default: break;
    }
}

/// Rows [0, rows) of c's 16 columns += aw (widened activations) times a half panel already widened to f32 at w
/// (pair p's 32 floats at w + 32 p: the even input's 16 columns, then the odd input's). The blocked path's kernel
/// where a processor's FMA pipes are its bottleneck: no widening in the loop, 12 FMAs to each 6 broadcasts and two
/// loads, as in an f32 product. Same sums in the same order as kernel_bf16_avx2.
CK_TARGET_AVX2 static inline __attribute__((always_inline)) void
kernel_f32_avx2(const int rows, int pairs, const float *aw, const float *w, float *c, ptrdiff_t ldc, int load,
                const float *bias, __m256i m0, __m256i m1, const int full) {
    __m256 acc0[CK_A2_MR], acc1[CK_A2_MR];
    start_sums_avx2(rows, acc0, acc1, c, ldc, load, bias, m0, m1, full);
    for (int p = 0; p < pairs; p++) {
        const float *ap = widened_pair(aw, rows, p);
        __m256 e0 = _mm256_load_ps(w + p * 32), e1 = _mm256_load_ps(w + p * 32 + 8);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC);
            acc0[r] = _mm256_fmadd_ps(x, e0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(x, e1, acc1[r]);
        }
        __m256 o0 = _mm256_load_ps(w + p * 32 + 16), o1 = _mm256_load_ps(w + p * 32 + 24);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(ap + r * 2 * CK_WIDE_KC + 1);
            acc0[r] = _mm256_fmadd_ps(x, o0, acc0[r]);
            acc1[r] = _mm256_fmadd_ps(x, o1, acc1[r]);
        }
    }
    store_sums_avx2(rows, acc0, acc1, c, ldc, m0, m1, full);
}

#define CK_F32_CASE(R)                                                                                           \
    case R:                                                                                                      \
        if (columns == 16) {                                                                                     \
            kernel_f32_avx2(R, pairs, aw, w, c, ldc, load, bias, m0, m1, 1);                                     \
        } else {                                                                                                 \
            kernel_f32_avx2(R, pairs, aw, w, c, ldc, load, bias, m0, m1, 0);                                     \
        }                                                                                                        \
        break;

CK_TARGET_AVX2 static void tile_f32_avx2(int rows, int pairs, const float *aw, const float *w, float *c, ptrdiff_t ldc,
                                         int load, const float *bias, int columns) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns), lane);
    __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - 8), lane);
    switch (rows) {
        CK_F32_CASE(1) CK_F32_CASE(2) CK_F32_CASE(3) CK_F32_CASE(4) CK_F32_CASE(5) CK_F32_CASE(6)
    default: break;
    }
}

/// Pairs [0, count) of a panel's k block at b (bf16 pairs, 64 values a pair) widened to f32 at w in
/// kernel_f32_avx2's layout: the first half panel's `count` pairs of 32 floats, then the second's.
CK_TARGET_AVX2 static void widen_panel_avx2(int count, const uint16_t *b, float *w) {
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    for (int half = 0; half < 2; half++) {
        for (int p = 0; p < count; p++) {
            __m256i w0 = _mm256_loadu_si256((const __m256i *)(b + p * 64 + 32 * half));
            __m256i w1 = _mm256_loadu_si256((const __m256i *)(b + p * 64 + 32 * half + 16));
            float *out = w + ((size_t)half * count + p) * 32;
            _mm256_store_ps(out, _mm256_castsi256_ps(_mm256_slli_epi32(w0, 16)));
            _mm256_store_ps(out + 8, _mm256_castsi256_ps(_mm256_slli_epi32(w1, 16)));
            _mm256_store_ps(out + 16, _mm256_castsi256_ps(_mm256_and_si256(w0, high)));
            _mm256_store_ps(out + 24, _mm256_castsi256_ps(_mm256_and_si256(w1, high)));
        }
    }
}

/// Rows [0, rows) of a (bf16, row stride lda), pairs [kb, kb + count), as f32 into aw (row stride 2 * CK_WIDE_KC), for
/// every set that widens panels (AVX2 or AVX-512 alike: this is a small part of a product).
CK_TARGET_AVX2 static void widen_rows_avx2(int rows, int kb, int count, const uint16_t *a, ptrdiff_t lda, float *aw) {
    for (int r = 0; r < rows; r++) {
        const uint16_t *in = a + r * lda + 2 * kb;
        float *out = aw + r * 2 * CK_WIDE_KC;
        int i = 0;
        for (; i + 8 <= 2 * count; i += 8) {
            __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(in + i)));
            _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16)));
        }
        for (; i < 2 * count; i++) out[i] = ck_bf16_value(in[i]);
    }
}

/// The tile kernels of a set that widens panels in registers: `panel` multiplies a whole panel (32 columns) for up
/// to `panel_rows` rows, `half` half of one (16 columns) for more, up to `rows`.
typedef void (*ck_widened_tile)(int rows, int pairs, const float *aw, const uint16_t *b, float *c, ptrdiff_t ldc,
                                int load, const float *bias, int columns, int ahead);
/// `prewidened`, where set, serves the many-row path: it multiplies a half panel's k block already widened to f32 (by
/// widen_panel_avx2, once per chunk of rows rather than once per tile of them).
typedef void (*ck_prewidened_tile)(int rows, int pairs, const float *aw, const float *w, float *c, ptrdiff_t ldc,
                                   int load, const float *bias, int columns);
struct ck_widened_kernels {
    int rows, panel_rows;
    ck_widened_tile panel, half;
    ck_prewidened_tile prewidened;
};

static const struct ck_widened_kernels widened_fma512 = {CK_MR, CK_MR, tile_bf16_fma512, NULL, NULL};
static const struct ck_widened_kernels widened_avx2 = {CK_A2_MR, 2, panel_bf16_avx2, tile_bf16_avx2, tile_f32_avx2};

/// c = a Wᵀ for few rows (decoding steps and the prompt chunks beside them): every row of a is widened once, tile by
/// tile of `kernels->rows` rows, each tile as k blocks of CK_WIDE_KC pairs in widen_rows_avx2's layout; then each
/// panel is streamed from memory once, front to back over the whole of k with the accumulators in registers, by the
/// first tile (the stream prefetched CK_STREAM_AHEAD bytes ahead, so that the arithmetic overlaps it), and read from
/// L2 by the others. The sums are those of the blocked path, in the same order. Returns 0, having done nothing, when
/// there is no memory for the widened rows.
static int gemm_bf16_widened_few(const struct ck_widened_kernels *kernels, int m, int n, int k, const uint16_t *a,
                                 ptrdiff_t lda, const uint16_t *packed, float *c, ptrdiff_t ldc, int accumulate,
                                 const float *bias, int panel_begin, int panel_end) {
    int pairs = (k + 1) / 2;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    size_t row_floats = (size_t)(pairs + CK_WIDE_KC - 1) / CK_WIDE_KC * 2 * CK_WIDE_KC;
    float *aw = ck_thread_scratch(CK_SCRATCH_ROWS, (size_t)m * row_floats * sizeof(float));
    if (!aw) return 0;
    for (int i = 0; i < m; i += kernels->rows) {
        int rows = min_int(kernels->rows, m - i);
        for (int kb = 0; kb < pairs; kb += CK_WIDE_KC) {
            widen_rows_avx2(rows, kb, min_int(CK_WIDE_KC, pairs - kb), a + i * lda, lda,
                            aw + i * row_floats + (size_t)kb * rows * 2);
        }
    }
    for (int panel = panel_begin; panel < panel_end; panel++) {
        for (int i = 0; i < m; i += kernels->rows) {
            int rows = min_int(kernels->rows, m - i);
            int width = rows <= kernels->panel_rows ? CK_PANEL : 16;
            ck_widened_tile tile = rows <= kernels->panel_rows ? kernels->panel : kernels->half;
            for (int part = 0; part * width < CK_PANEL; part++) {
                int column = panel * CK_PANEL + width * part;
                if (column >= n) break;
                tile(rows, pairs, aw + i * row_floats, packed + panel * panel_size + 2 * width * part,
                     c + i * ldc + column, ldc, accumulate, bias ? bias + column : NULL, min_int(width, n - column),
                     CK_STREAM_AHEAD);
            }
        }
    }
    return 1;
}

/// c = a Wᵀ with one of those sets. Few rows take gemm_bf16_widened_few. Otherwise a group of panels by a chunk of
/// rows is finished over all of k before the next (as for AVX-512 BF16); a tile's rows of a are widened once per k
/// block and serve every panel of the group. A set with a `prewidened` tile also widens each k block of the group's
/// panels once per chunk of rows, into the thread's scratch (CK_PANEL_GROUP panels' k block: 128 KiB), before its
/// tiles pass over it, so that their loops hold only loads, broadcasts and FMAs; without memory for that, its panels
/// are widened in registers as for the other sets.
static void gemm_bf16_widened(const struct ck_widened_kernels *kernels, int m, int n, int k, const uint16_t *a,
                              ptrdiff_t lda, const uint16_t *packed, float *c, ptrdiff_t ldc, int accumulate,
                              const float *bias, int panel_begin, int panel_end) {
    int pairs = (k + 1) / 2;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2;
    if (m <= CK_FEW_ROWS &&
        gemm_bf16_widened_few(kernels, m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end)) {
        return;
    }
    size_t panel_floats = (size_t)CK_WIDE_KC * CK_PANEL * 2;
    size_t wide_bytes = CK_PANEL_GROUP * panel_floats * sizeof(float);
    float *wide = kernels->prewidened ? ck_thread_scratch(CK_SCRATCH_PANELS, wide_bytes) : NULL;
    float aw[CK_MR * 2 * CK_WIDE_KC] __attribute__((aligned(64)));
    for (int group = panel_begin; group < panel_end; group += CK_PANEL_GROUP) {
        int group_end = min_int(group + CK_PANEL_GROUP, panel_end);
        for (int chunk = 0; chunk < m; chunk += CK_MC) {
            int chunk_end = min_int(chunk + CK_MC, m);
            for (int kb = 0; kb < pairs; kb += CK_WIDE_KC) {
                int count = min_int(CK_WIDE_KC, pairs - kb);
                int load = accumulate || kb > 0;
                for (int panel = group; wide && panel < group_end; panel++) {
                    widen_panel_avx2(count, packed + panel * panel_size + (size_t)kb * 64,
                                     wide + (panel - group) * panel_floats);
                }
                for (int i = chunk; i < chunk_end; i += kernels->rows) {
                    int rows = min_int(kernels->rows, chunk_end - i);
                    widen_rows_avx2(rows, kb, count, a + i * lda, lda, aw);
                    int width = wide || rows > kernels->panel_rows ? 16 : CK_PANEL;
                    ck_widened_tile tile = rows <= kernels->panel_rows ? kernels->panel : kernels->half;
                    for (int panel = group; panel < group_end; panel++) {
                        for (int part = 0; part * width < CK_PANEL; part++) {
                            int column = panel * CK_PANEL + width * part;
                            if (column >= n) break;
                            float *out = c + i * ldc + column;
                            const float *start = bias && kb == 0 ? bias + column : NULL;
                            int columns = min_int(width, n - column);
                            if (wide) {
                                kernels->prewidened(rows, count, aw,
                                                    wide + (panel - group) * panel_floats + (size_t)part * count * 32,
                                                    out, ldc, load, start, columns);
                            } else {
                                tile(rows, count, aw, packed + panel * panel_size + (size_t)kb * 64 + 2 * width * part,
                                     out, ldc, load, start, columns, CK_PREFETCH);
                            }
                        }
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
    int set = ck_kernels();
    if (set == CK_KERNELS_AMX &&
        ck_gemm_bf16_amx(m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end)) {
        return;
    }
    if (set >= CK_KERNELS_AVX512_BF16) {
        gemm_bf16_avx512(m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end);
        return;
    }
    if (set == CK_KERNELS_AVX512) {
        gemm_bf16_widened(&widened_fma512, m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin,
                          panel_end);
        return;
    }
    if (set != CK_KERNELS_PORTABLE) {
        gemm_bf16_widened(&widened_avx2, m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin,
                          panel_end);
        return;
    }
#endif
    gemm_bf16_portable(m, n, k, a, lda, packed, c, ldc, accumulate, bias, panel_begin, panel_end);
}
