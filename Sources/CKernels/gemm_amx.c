// c = a Wᵀ on AMX tiles (Sapphire Rapids and later Xeons): TDPBF16PS multiplies a 16 x 32 tile of bf16 activations
// by a 32 x 16 tile of weights into 16 x 16 f32 sums, 16,384 multiply-adds an instruction where vdpbf16ps does 32.
//
// The packed panels are already in the order the weight tiles need: pair p of a panel holds its 32 columns' two
// values side by side (128 bytes), so 16 pairs' first 16 columns are a tile read with a stride of 128 bytes, and the
// next 16 columns the tile 64 bytes further. Activations are copied into tile order per chunk of rows (each tile
// 1 KiB, contiguous, zero past the rows and pairs), and the sums of a block of 32 rows by one panel stay in four
// tiles over a k block, between blocks in a buffer of tiles.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AMX_MC 256        // rows per chunk, put in tile order over the whole of k once
#define AMX_MC_MOST 320   // a last chunk of up to this many rows is not split (each chunk streams the weights once)
#define AMX_KC 512        // pairs of k per block: 32 steps of 16 pairs (measured best of 128 to all of k)
#define AMX_PANEL_GROUP 8 // panels finished together, k block by k block
#define AMX_STEP 16       // pairs of k per tile step (a tile row: 64 bytes)
#define AMX_TILE 512      // uint16 values in a 16 x 64-byte activation tile
#define AMX_FEW_ROWS 32   // products of at most one block of rows stream each panel once: prefetched ahead
#define AMX_STREAM_AHEAD 4096

static inline int min_int(int a, int b) { return a < b ? a : b; }

/// The end of the chunk of rows that starts at `chunk`: AMX_MC rows, or all that are left where at most AMX_MC_MOST.
static inline int amx_chunk_end(int chunk, int m) { return m - chunk <= AMX_MC_MOST ? m : chunk + AMX_MC; }

/// Palette 1: tiles 0-3 hold sums (16 rows of 16 f32), 4-5 activations and 6-7 weights (16 rows of 64 bytes).
struct amx_config {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
};

CK_TARGET_AMX static void amx_configure(void) {
    struct amx_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) {
        config.bytes_per_row[t] = 64;
        config.rows[t] = 16;
    }
    _tile_loadconfig(&config);
}

/// Rows [0, rows) of a (row stride lda, `count` pairs) in tile order at out: tile t (rows 16 t to 16 t + 15), step s
/// at out + (t * steps + s) * AMX_TILE, a row of 16 pairs in 64 bytes; zero past the rows and pairs.
static void amx_pack_rows_bf16(int rows, const uint16_t *a, ptrdiff_t lda, int count, uint16_t *out) {
    int steps = (count + AMX_STEP - 1) / AMX_STEP, tiles = (rows + 15) / 16;
    for (int t = 0; t < tiles; t++) {
        for (int r = 0; r < 16; r++) {
            int row = t * 16 + r;
            for (int s = 0; s < steps; s++) {
                uint16_t *dst = out + ((size_t)(t * steps + s) * 16 + r) * 2 * AMX_STEP;
                int have = row < rows ? min_int(AMX_STEP, count - AMX_STEP * s) : 0;
                if (have > 0) memcpy(dst, a + row * lda + 2 * AMX_STEP * s, (size_t)have * 4);
                if (have < AMX_STEP) memset(dst + 2 * have, 0, (size_t)(AMX_STEP - have) * 4);
            }
        }
    }
}

/// A panel's partial last step of k, `rows` rows of 128 bytes at `step` (bf16 pairs or int8 quads), into `tail` as
/// a whole step: the other rows zero, so that the tile reads nothing past the panel.
static void amx_tail_step(void *tail, const void *step, int rows) {
    memcpy(tail, step, (size_t)rows * 128);
    memset((char *)tail + (size_t)rows * 128, 0, (size_t)(AMX_STEP - rows) * 128);
}

/// The sums of a chunk of rows by a group of panels, in a buffer of 16 x 16 tiles (each 1 KiB, contiguous): tile
/// (row tile rt, column tile ct) at sums + (rt * 2 * AMX_PANEL_GROUP + ct) * 256. The tiles load from it and store to
/// it over each k block, contiguous and in L2, where c's rows lie ldc floats apart (a 16-row tile store straight to
/// c measured at half the products' speed).
static inline float *amx_sums_tile(float *sums, int rt, int ct) {
    return sums + ((size_t)rt * 2 * AMX_PANEL_GROUP + ct) * 256;
}

/// A 16-wide row part's starting sums: c's values (`own`, or NULL where not accumulating) plus the bias (or NULL),
/// each alone where the other is absent, or zero; the real `mask` lanes only.
CK_TARGET_AMX static inline __attribute__((always_inline)) __m512 amx_start_values(const float *own, const float *bias,
                                                                                  __mmask16 mask) {
    __m512 start = bias ? _mm512_maskz_loadu_ps(mask, bias) : _mm512_setzero_ps();
    if (!own) return start;
    __m512 values = _mm512_maskz_loadu_ps(mask, own);
    return bias ? _mm512_add_ps(values, start) : values;
}

/// Fills the sums buffer for rows [0, rows) of c and columns [column, column + 16 * tiles): c's values
/// (`accumulate`) plus the bias (or NULL); zero past the rows and n.
CK_TARGET_AMX static void amx_sums_start(float *sums, int rows, int column, int tiles, int n, const float *c,
                                         ptrdiff_t ldc, int accumulate, const float *bias) {
    for (int row = 0; row < (rows + 15) / 16 * 16; row++) {
        for (int ct = 0; ct < tiles; ct++) {
            int first = column + 16 * ct;
            const float *own = accumulate && row < rows ? c + row * ldc + first : NULL;
            _mm512_store_ps(amx_sums_tile(sums, row / 16, ct) + 16 * (row % 16),
                            amx_start_values(own, bias ? bias + first : NULL, ck_first_lanes(n - first)));
        }
    }
}

/// Writes the sums buffer's real rows and columns to c, row by row (each row's part of c whole lines, in order).
CK_TARGET_AMX static void amx_sums_finish(const float *sums, int rows, int column, int tiles, int n, float *c,
                                          ptrdiff_t ldc) {
    for (int row = 0; row < rows; row++) {
        for (int ct = 0; ct < tiles; ct++) {
            int first = column + 16 * ct;
            const float *tile = amx_sums_tile((float *)sums, row / 16, ct) + 16 * (row % 16);
            _mm512_mask_storeu_ps(c + row * ldc + first, ck_first_lanes(n - first), _mm512_load_ps(tile));
        }
    }
}

#define AMX_START(T)                                                                                             \
    case T:                                                                                                      \
        if (source) {                                                                                            \
            _tile_loadd(T, source, stride);                                                                      \
        } else {                                                                                                 \
            _tile_zero(T);                                                                                       \
        }                                                                                                        \
        break;

/// Sum tile t's start in place, for a product of one k block: the 16 x 16 block of c at `c` (`rows` and `columns` of
/// it real) as amx_start_values makes them, as in the sums buffer.
/// Whole blocks load straight from c or the bias (each row the same 64 bytes: stride 0); partial ones, and c plus a
/// bias, are made in `stage` first.
CK_TARGET_AMX static inline __attribute__((always_inline)) void amx_start_in_place(int t, const float *c,
                                                                                   ptrdiff_t ldc, int rows,
                                                                                   int columns, int accumulate,
                                                                                   const float *bias, float *stage) {
    const void *source = NULL;
    long stride = 0;
    if (rows == 16 && columns >= 16 && !(accumulate && bias)) {
        source = accumulate ? (const void *)c : (const void *)bias;
        stride = accumulate ? (long)(ldc * 4) : 0;
    } else if (accumulate || bias) {
        for (int r = 0; r < 16; r++) {
            const float *own = accumulate && r < rows ? c + r * ldc : NULL;
            _mm512_store_ps(stage + 16 * r, amx_start_values(own, bias, ck_first_lanes(columns)));
        }
        source = stage;
        stride = 64;
    }
    switch (t) {
        AMX_START(0) AMX_START(1) AMX_START(2) AMX_START(3)
    default: break;
    }
}

#define AMX_FINISH(T)                                                                                            \
    case T: _tile_stored(T, target, stride); break;

/// Sum tile t into the 16 x 16 block of c at `c`, `rows` and `columns` of it real: whole blocks straight from the
/// tile, partial ones through `stage`.
CK_TARGET_AMX static inline __attribute__((always_inline)) void amx_finish_in_place(int t, float *c, ptrdiff_t ldc,
                                                                                    int rows, int columns,
                                                                                    float *stage) {
    if (columns <= 0) return;
    int whole = rows == 16 && columns >= 16;
    void *target = whole ? (void *)c : (void *)stage;
    long stride = whole ? (long)(ldc * 4) : 64;
    switch (t) {
        AMX_FINISH(0) AMX_FINISH(1) AMX_FINISH(2) AMX_FINISH(3)
    default: break;
    }
    if (whole) return;
    __mmask16 mask = ck_first_lanes(columns);
    for (int r = 0; r < rows; r++) _mm512_mask_storeu_ps(c + r * ldc, mask, _mm512_load_ps(stage + 16 * r));
}

/// One step of a block of one or two row tiles by one panel: activations at a0 (and a1), the panel's two halves at
/// b (stride 128 bytes).
#define AMX_STEP_BF16(TILES, A0, A1, B)                                                                          \
    do {                                                                                                         \
        _tile_loadd(4, A0, 64);                                                                                  \
        _tile_loadd(6, B, 128);                                                                                  \
        _tile_loadd(7, (B) + 32, 128);                                                                           \
        _tile_dpbf16ps(0, 4, 6);                                                                                 \
        _tile_dpbf16ps(1, 4, 7);                                                                                 \
        if (TILES == 2) {                                                                                        \
            _tile_loadd(5, A1, 64);                                                                              \
            _tile_dpbf16ps(2, 5, 6);                                                                             \
            _tile_dpbf16ps(3, 5, 7);                                                                             \
        }                                                                                                        \
    } while (0)

/// The sum tiles += `steps` steps of tile-ordered activations at `at` (a second row tile `stride` values further) by
/// the panel's k block at b; a partial last step (`tail` pairs) reads the panel from `tail_b`, zero-padded.
CK_TARGET_AMX static inline __attribute__((always_inline)) void
amx_steps_bf16(const int tiles, int steps, int tail, const uint16_t *at, size_t stride, const uint16_t *b,
               const uint16_t *tail_b, int ahead) {
    const uint16_t *at1 = at + stride;
    int full = tail ? steps - 1 : steps;
    for (int s = 0; s < full; s++) {
        const uint16_t *bs = b + (size_t)s * AMX_STEP * 64;
        if (ahead) {
            for (int line = 0; line < AMX_STEP * 128; line += 64) {
                _mm_prefetch((const char *)bs + ahead + line, _MM_HINT_T0);
            }
        }
        AMX_STEP_BF16(tiles, at + (size_t)s * AMX_TILE, at1 + (size_t)s * AMX_TILE, bs);
    }
    if (tail) AMX_STEP_BF16(tiles, at + (size_t)full * AMX_TILE, at1 + (size_t)full * AMX_TILE, tail_b);
}

/// Loops: a chunk of AMX_MC rows is put in tile order over all of k, once; then a group of AMX_PANEL_GROUP panels is
/// finished before the next, k block by k block, so that the group's sums (AMX_MC x 256 floats, 256 KiB), the chunk's
/// k block of activations and the panels' k block stay in L2 while every block of 32 rows passes over them. The sums
/// start from c, the bias or zero and go to c once, after the last k block, whatever the rows: a row has the same
/// bits alone or among others.
CK_TARGET_AMX int ck_gemm_bf16_amx(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed,
                                   float *c, ptrdiff_t ldc, int accumulate, const float *bias, int panel_begin,
                                   int panel_end) {
    int pairs = (k + 1) / 2, all_steps = (pairs + AMX_STEP - 1) / AMX_STEP;
    size_t panel_size = (size_t)pairs * CK_PANEL * 2, tile_stride = (size_t)all_steps * AMX_TILE;
    int chunk_tiles = (min_int(m, AMX_MC_MOST) + 15) / 16;
    uint16_t *at = ck_thread_scratch(CK_SCRATCH_TILES, (size_t)chunk_tiles * tile_stride * 2);
    float *sums = ck_thread_scratch(CK_SCRATCH_SUMS, (size_t)chunk_tiles * 2 * AMX_PANEL_GROUP * 1024);
    if (!at || !sums) return 0;
    uint16_t tail_b[AMX_STEP * 64] __attribute__((aligned(64)));
    float stage[256] __attribute__((aligned(64)));
    int ahead = m <= AMX_FEW_ROWS ? AMX_STREAM_AHEAD : 0;
    amx_configure();
    for (int chunk = 0, chunk_end; chunk < m; chunk = chunk_end) {
        chunk_end = amx_chunk_end(chunk, m);
        int chunk_rows = chunk_end - chunk;
        amx_pack_rows_bf16(chunk_rows, a + chunk * lda, lda, pairs, at);
        if (pairs <= AMX_KC) {
            // One k block (attention's products, small layers): each sum tile starts and ends in place.
            int steps = all_steps, tail = pairs % AMX_STEP;
            for (int panel = panel_begin; panel < panel_end; panel++) {
                int column = panel * CK_PANEL, columns = n - column;
                const uint16_t *b = packed + panel * panel_size;
                if (tail) amx_tail_step(tail_b, b + (size_t)(steps - 1) * AMX_STEP * 64, tail);
                const float *start = bias ? bias + column : NULL;
                for (int rt = 0; rt * 16 < chunk_rows; rt += 2) {
                    int tiles = (rt + 1) * 16 < chunk_rows ? 2 : 1;
                    float *out = c + (chunk + rt * 16) * ldc + column;
                    for (int t = 0; t < tiles; t++) {
                        int rows = min_int(16, chunk_rows - (rt + t) * 16);
                        amx_start_in_place(2 * t, out + 16 * t * ldc, ldc, rows, columns, accumulate, start, stage);
                        amx_start_in_place(2 * t + 1, out + 16 * t * ldc + 16, ldc, rows, columns - 16, accumulate,
                                           start && columns > 16 ? start + 16 : NULL, stage);
                    }
                    const uint16_t *ai = at + (size_t)rt * tile_stride;
                    if (tiles == 2) {
                        amx_steps_bf16(2, steps, tail, ai, tile_stride, b, tail_b, ahead);
                    } else {
                        amx_steps_bf16(1, steps, tail, ai, tile_stride, b, tail_b, ahead);
                    }
                    for (int t = 0; t < tiles; t++) {
                        int rows = min_int(16, chunk_rows - (rt + t) * 16);
                        amx_finish_in_place(2 * t, out + 16 * t * ldc, ldc, rows, columns, stage);
                        amx_finish_in_place(2 * t + 1, out + 16 * t * ldc + 16, ldc, rows, columns - 16, stage);
                    }
                }
            }
            continue;
        }
        for (int group = panel_begin; group < panel_end; group += AMX_PANEL_GROUP) {
            int group_end = min_int(group + AMX_PANEL_GROUP, panel_end);
            amx_sums_start(sums, chunk_rows, group * CK_PANEL, 2 * (group_end - group), n, c + chunk * ldc, ldc,
                           accumulate, bias);
            for (int kb = 0; kb < pairs; kb += AMX_KC) {
                int count = min_int(AMX_KC, pairs - kb);
                int steps = (count + AMX_STEP - 1) / AMX_STEP, tail = count % AMX_STEP;
                for (int panel = group; panel < group_end; panel++) {
                    const uint16_t *b = packed + panel * panel_size + (size_t)kb * 64;
                    if (tail) amx_tail_step(tail_b, b + (size_t)(steps - 1) * AMX_STEP * 64, tail);
                    int ct = 2 * (panel - group);
                    for (int rt = 0; rt * 16 < chunk_rows; rt += 2) {
                        int tiles = (rt + 1) * 16 < chunk_rows ? 2 : 1;
                        _tile_loadd(0, amx_sums_tile(sums, rt, ct), 64);
                        _tile_loadd(1, amx_sums_tile(sums, rt, ct + 1), 64);
                        const uint16_t *ai = at + (size_t)rt * tile_stride + (size_t)kb / AMX_STEP * AMX_TILE;
                        if (tiles == 2) {
                            _tile_loadd(2, amx_sums_tile(sums, rt + 1, ct), 64);
                            _tile_loadd(3, amx_sums_tile(sums, rt + 1, ct + 1), 64);
                            amx_steps_bf16(2, steps, tail, ai, tile_stride, b, tail_b, ahead);
                            _tile_stored(2, amx_sums_tile(sums, rt + 1, ct), 64);
                            _tile_stored(3, amx_sums_tile(sums, rt + 1, ct + 1), 64);
                        } else {
                            amx_steps_bf16(1, steps, tail, ai, tile_stride, b, tail_b, ahead);
                        }
                        _tile_stored(0, amx_sums_tile(sums, rt, ct), 64);
                        _tile_stored(1, amx_sums_tile(sums, rt, ct + 1), 64);
                    }
                }
            }
            amx_sums_finish(sums, chunk_rows, group * CK_PANEL, 2 * (group_end - group), n, c + chunk * ldc, ldc);
        }
    }
    _tile_release();
    return 1;
}

// MARK: int8

#define AMX_GROUP_BLOCK 16 // groups of 64 inputs per k block
#define AMX_INT8_ROWS 16   // int8 products of fewer rows run the AVX-512 VNNI kernel, with the same results

/// Rows [0, rows) of a (int8 + 128, row stride lda, `quads` quads) as signed int8 in tile order at out: tile t,
/// group g at out + (t * groups + g) * 1024, a row of the group's 64 values in 64 bytes; zero past the rows and quads.
CK_TARGET_AMX static void amx_pack_rows_int8(int rows, const uint8_t *a, ptrdiff_t lda, int quads, int8_t *out) {
    int groups = (quads + AMX_STEP - 1) / AMX_STEP, tiles = (rows + 15) / 16;
    const __m512i sign = _mm512_set1_epi8((char)0x80);
    for (int t = 0; t < tiles; t++) {
        for (int r = 0; r < 16; r++) {
            int row = t * 16 + r;
            for (int g = 0; g < groups; g++) {
                int have = row < rows ? min_int(AMX_STEP, quads - AMX_STEP * g) : 0;
                __mmask64 mask = have >= AMX_STEP ? ~(__mmask64)0 : ((__mmask64)1 << (4 * have)) - 1;
                __m512i values = _mm512_maskz_loadu_epi8(mask, a + row * lda + 64 * g);
                _mm512_store_si512(out + ((size_t)(t * groups + g) * 16 + r) * 64,
                                   _mm512_maskz_mov_epi8(mask, _mm512_xor_si512(values, sign)));
            }
        }
    }
}

/// One group of a block of one or two row tiles by one panel: integer sums of activations at a0 (and a1) with the
/// panel's two halves at b (stride 128 bytes) into tiles 0-3, stored as int32 at `sums` (tile t at sums + 256 t).
/// Signed by signed (TDPBSSD): the sums are those of the int8 + 128 activations less 128 x the weights' sums.
#define AMX_GROUP_INT8(TILES, A0, A1, B, SUMS)                                                                   \
    do {                                                                                                         \
        _tile_zero(0);                                                                                           \
        _tile_zero(1);                                                                                           \
        _tile_loadd(4, A0, 64);                                                                                  \
        _tile_loadd(6, B, 128);                                                                                  \
        _tile_loadd(7, (B) + 64, 128);                                                                           \
        _tile_dpbssd(0, 4, 6);                                                                                   \
        _tile_dpbssd(1, 4, 7);                                                                                   \
        if (TILES == 2) {                                                                                        \
            _tile_zero(2);                                                                                       \
            _tile_zero(3);                                                                                       \
            _tile_loadd(5, A1, 64);                                                                              \
            _tile_dpbssd(2, 5, 6);                                                                               \
            _tile_dpbssd(3, 5, 7);                                                                               \
            _tile_stored(2, (SUMS) + 512, 64);                                                                   \
            _tile_stored(3, (SUMS) + 768, 64);                                                                   \
        }                                                                                                        \
        _tile_stored(0, SUMS, 64);                                                                               \
        _tile_stored(1, (SUMS) + 256, 64);                                                                       \
    } while (0)

/// acc (rows x 32, row stride 32) += each row's integer sums of one group times the row's and the column's scales:
/// the VNNI kernel's arithmetic, operation for operation, on the same integers (which it reaches by subtracting 128 x
/// the weights' sums from its unsigned-by-signed sums).
CK_TARGET_AMX static inline __attribute__((always_inline)) void
amx_scale_int8(int rows, const int32_t *sums, const float *a_scales, int groups, const float *w_scales, float *acc) {
    __m512 w0 = _mm512_loadu_ps(w_scales), w1 = _mm512_loadu_ps(w_scales + 16);
    for (int r = 0; r < rows; r++) {
        const int32_t *s = sums + (r / 16) * 512 + (r % 16) * 16;
        __m512 sa = _mm512_set1_ps(a_scales[(size_t)r * groups]);
        __m512 s0 = _mm512_cvtepi32_ps(_mm512_load_si512(s));
        __m512 s1 = _mm512_cvtepi32_ps(_mm512_load_si512(s + 256));
        _mm512_store_ps(acc + r * 32, _mm512_fmadd_ps(s0, _mm512_mul_ps(w0, sa), _mm512_load_ps(acc + r * 32)));
        _mm512_store_ps(acc + r * 32 + 16,
                        _mm512_fmadd_ps(s1, _mm512_mul_ps(w1, sa), _mm512_load_ps(acc + r * 32 + 16)));
    }
}

/// int8 products on AMX tiles (TDPBSSD: 16 x 16 x 64 multiply-adds of signed activations by signed weights), one
/// group of 64 inputs a step, each group's integer sums scaled into f32 as the VNNI kernel scales them, in the same
/// order: the results are that kernel's, bit for bit. Loops as for bf16, with a block of 32 rows by a panel summed
/// in an L1 block of f32 over a k block of groups. 0 for fewer than AMX_INT8_ROWS rows or when there is no memory
/// for the tile-ordered activations.
CK_TARGET_AMX int ck_gemm_int8_amx(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales,
                                   const int8_t *packed, const float *scales, const int32_t *sums, float *c,
                                   ptrdiff_t ldc, int accumulate, int panel_begin, int panel_end) {
    if (m < AMX_INT8_ROWS) return 0;
    int quads = (k + 3) / 4, groups = (k + CK_INT8_GROUP - 1) / CK_INT8_GROUP;
    size_t panel_size = (size_t)quads * CK_PANEL * 4, panel_scales = (size_t)groups * CK_PANEL;
    size_t tile_stride = (size_t)groups * 1024;
    int chunk_tiles = (min_int(m, AMX_MC_MOST) + 15) / 16, tail = quads % AMX_STEP;
    int8_t *at = ck_thread_scratch(CK_SCRATCH_TILES, (size_t)chunk_tiles * tile_stride);
    (void)sums;  // the activations are made signed instead: the tiles' sums need no correction by the weights' sums
    if (!at) return 0;
    int8_t tail_b[AMX_STEP * 128] __attribute__((aligned(64)));
    int32_t group_sums[4 * 256] __attribute__((aligned(64)));
    float acc[32 * 32] __attribute__((aligned(64)));
    amx_configure();
    for (int chunk = 0, chunk_end; chunk < m; chunk = chunk_end) {
        chunk_end = amx_chunk_end(chunk, m);
        amx_pack_rows_int8(chunk_end - chunk, a + chunk * lda, lda, quads, at);
        for (int group = panel_begin; group < panel_end; group += AMX_PANEL_GROUP) {
            int group_end = min_int(group + AMX_PANEL_GROUP, panel_end);
            for (int gb = 0; gb < groups; gb += AMX_GROUP_BLOCK) {
                int ge = min_int(gb + AMX_GROUP_BLOCK, groups);
                int load = accumulate || gb > 0;
                for (int panel = group; panel < group_end; panel++) {
                    int column = panel * CK_PANEL, columns = min_int(CK_PANEL, n - column);
                    const int8_t *b = packed + panel * panel_size;
                    const float *w_scales = scales + panel * panel_scales;
                    if (tail && ge == groups) amx_tail_step(tail_b, b + (size_t)(groups - 1) * AMX_STEP * 128, tail);
                    __mmask16 m0 = ck_first_lanes(columns), m1 = ck_first_lanes(columns - 16);
                    for (int i = chunk; i < chunk_end; i += 32) {
                        int rows = min_int(32, chunk_end - i), tiles = rows > 16 ? 2 : 1;
                        float *out = c + i * ldc + column;
                        for (int r = 0; r < rows; r++) {
                            _mm512_store_ps(acc + r * 32, load ? _mm512_maskz_loadu_ps(m0, out + r * ldc)
                                                               : _mm512_setzero_ps());
                            _mm512_store_ps(acc + r * 32 + 16, load ? _mm512_maskz_loadu_ps(m1, out + r * ldc + 16)
                                                                    : _mm512_setzero_ps());
                        }
                        const int8_t *ai = at + (size_t)((i - chunk) / 16) * tile_stride;
                        for (int g = gb; g < ge; g++) {
                            const int8_t *bg = tail && g == groups - 1 ? tail_b : b + (size_t)g * AMX_STEP * 128;
                            const int8_t *a0 = ai + (size_t)g * 1024;
                            if (tiles == 2) {
                                AMX_GROUP_INT8(2, a0, a0 + tile_stride, bg, group_sums);
                            } else {
                                AMX_GROUP_INT8(1, a0, a0, bg, group_sums);
                            }
                            amx_scale_int8(rows, group_sums, a_scales + (size_t)i * groups + g, groups,
                                           w_scales + (size_t)g * CK_PANEL, acc);
                        }
                        for (int r = 0; r < rows; r++) {
                            _mm512_mask_storeu_ps(out + r * ldc, m0, _mm512_load_ps(acc + r * 32));
                            _mm512_mask_storeu_ps(out + r * ldc + 16, m1, _mm512_load_ps(acc + r * 32 + 16));
                        }
                    }
                }
            }
        }
    }
    _tile_release();
    return 1;
}

/// TDPBF16PS into four sum tiles from registers: the AMX set's multiply-add peak.
CK_TARGET_AMX double ck_peak_amx(long iterations) {
    uint16_t ones[AMX_TILE] __attribute__((aligned(64)));
    for (int i = 0; i < AMX_TILE; i++) ones[i] = 0x3f80;
    float sums[256] __attribute__((aligned(64)));
    amx_configure();
    _tile_loadd(4, ones, 64);
    _tile_loadd(6, ones, 64);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    // Each instruction is 16 x 16 x 32 multiply-adds (16 cycles on Sapphire Rapids): a call of `iterations` takes
    // a few times less than the vector sets' probes.
    long count = iterations / 8 + 1;
    for (long n = 0; n < count; n++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 4, 6);
        _tile_dpbf16ps(3, 4, 6);
    }
    _tile_stored(0, sums, 64);
    _tile_release();
    volatile float keep = sums[0];
    (void)keep;
    return (double)count * 4 * 16 * 16 * 32 * 2;
}

#endif
