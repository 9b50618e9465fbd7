// The CPU backend's arithmetic: bf16 and int8 weight products on packed panels, and the row kernels, with run-time
// dispatch between kernel sets for AMX, AVX-512 (with or without BF16), AVX2 (with or without AVX-VNNI) and portable C
// that runs on any processor.
//
// Every function works on a caller-given range (rows, panels or elements) so that the caller's thread pool
// splits the work; nothing here starts a thread or allocates memory except where a function says so.
#ifndef INFMLLM_CKERNELS_H
#define INFMLLM_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// MARK: CPU features
//
// Kernel sets, in order: each runs on processors with the instructions named, and the products of every set agree
// with the others up to f32 summation order.

enum {
    /// Plain C: any processor.
    CK_KERNELS_PORTABLE = 0,
    /// AVX2, FMA and F16C (Haswell and later, Zen): bf16 weights widened to f32 in registers, f32 FMA; int8 with
    /// vpmaddubsw and vpmaddwd.
    CK_KERNELS_AVX2 = 1,
    /// The same with AVX-VNNI's vpdpbusd for int8 (Alder Lake, Sapphire Rapids, Zen 5).
    CK_KERNELS_AVX2_VNNI = 2,
    /// AVX-512F, DQ, BW, VL and VNNI (Cascade Lake, Ice Lake): bf16 weights widened to f32 in registers, 512-bit
    /// FMA; int8 with vpdpbusd.
    CK_KERNELS_AVX512 = 3,
    /// The same with BF16 (Cooper Lake, Sapphire Rapids, Zen 4): vdpbf16ps and vpdpbusd.
    CK_KERNELS_AVX512_BF16 = 4,
    /// The same with AMX tiles for bf16 products, TDPBF16PS (Sapphire Rapids and later Xeons, with the kernel's
    /// permission for tile data, Linux 5.16 and later).
    CK_KERNELS_AMX = 5,
    CK_KERNEL_SETS = 6
};

/// 1 when this processor (and the operating system) runs kernel set `set`, else 0.
int ck_runs_kernels(int set);
/// The best set this processor runs: the highest, except that where both AVX-512 sets run, the one whose bf16
/// products are faster here (measured once, on first use, in a few milliseconds).
int ck_best_kernels(void);
/// On the calling thread only, uses the best runnable set at or below `set` (-1: the best there is) and returns the
/// previous choice: the CPU backend's pool sets a backend's limit (--kernels) around each part of a run, and tests
/// try each set.
int ck_force_kernels(int set);
/// The set that ck_gemm_* and the other dispatched kernels run on the calling thread now.
int ck_kernels(void);
/// "portable", "avx2", "avx2vnni", "avx512" or "avx512bf16".
const char *ck_kernels_name(int set);
/// The name of ck_kernels().
const char *ck_kernel_name(void);
/// A spin-wait hint (x86 `pause`), for threads that poll for work.
static inline void ck_spin_pause(void) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
}

// MARK: Packed weight panels
//
// A matrix W [n, k] (y = x Wᵀ) is packed into ceil(n / 32) panels of 32 output columns. Within a panel, for each
// pair of inputs (2p, 2p + 1), the 32 columns' two values lie side by side: panel[p][column][2]. k is padded to an
// even count and n to a multiple of 32 with zeros. Panels hold uint16 bfloat16 bits.

/// Element types of a packing source.
enum { CK_F32 = 0, CK_BF16 = 1, CK_F16 = 2 };

/// Memory for packed weights: anonymous pages, 2 MiB aligned and marked for transparent huge pages (fewer TLB
/// misses when decoding streams every weight once a step). NULL when the system refuses. Free with ck_free_pages.
void *ck_alloc_pages(size_t bytes);
void ck_free_pages(void *pointer, size_t bytes);
/// The bytes ck_alloc_pages really holds for `bytes`: whole 2 MiB pages.
size_t ck_pages_length(size_t bytes);


/// Number of uint16 elements of a packed [n, k] matrix.
size_t ck_packed_count(int n, int k);

/// Packs panels [panel_begin, panel_end) of W into `dst` (the whole packed buffer). Element (row r, column c)
/// of W is at `src + (r * row_stride + c * column_stride) * size(src_type)`. f32 and f16 values are rounded to
/// bf16 to nearest even.
void ck_pack_bf16(const void *src, int src_type, ptrdiff_t row_stride, ptrdiff_t column_stride, int n, int k,
                  uint16_t *dst, int panel_begin, int panel_end);

/// int8 panels: 32 output columns, and for each quad of inputs (4q ... 4q + 3) the 32 columns' four values side
/// by side (panel[q][column][4], the operand order of vpdpbusd); k padded to a multiple of 4. Each output column
/// and group of CK_INT8_GROUP inputs has a scale (max |w| / 127) and the sum of its int8 values, laid out
/// [panel][group][32].
#define CK_INT8_GROUP 64

/// Number of int8 values, and of scales (= of sums), of a packed [n, k] matrix.
size_t ck_packed_int8_count(int n, int k);
size_t ck_packed_int8_scales(int n, int k);

/// Quantises panels [panel_begin, panel_end) of W (addressed as for ck_pack_bf16).
void ck_pack_int8(const void *src, int src_type, ptrdiff_t row_stride, ptrdiff_t column_stride, int n, int k,
                  int8_t *dst, float *scales, int32_t *sums, int panel_begin, int panel_end);

/// Rows [row_begin, row_end) of x [m, k] quantised per group of CK_INT8_GROUP to int8 + 128 (uint8; row stride
/// ldo >= k rounded up to 4, padding 128) with one scale per row and group (scales[row * groups + group]).
void ck_rows_to_q8(const float *x, ptrdiff_t ldx, int k, uint8_t *out, ptrdiff_t ldo, float *scales, int row_begin,
                   int row_end);

/// Rows [row_begin, row_end) of x [m, k] (row stride ldx floats) as bf16 into out (row stride ldo >= k rounded
/// up to even; the pad element is zeroed).
void ck_rows_to_bf16(const float *x, ptrdiff_t ldx, int k, uint16_t *out, ptrdiff_t ldo, int row_begin,
                     int row_end);

// MARK: Products
//
// c[i, j] = sum_k a[i, k] * W[j, k] for rows [0, m) and the columns of panels [panel_begin, panel_end), with a
// the bf16 rows from ck_rows_to_bf16 (row stride lda elements, k padded to even) and f32 accumulation. When
// `accumulate` is nonzero the products are added to c; otherwise c is overwritten. `bias` (n values, or NULL) is
// added too, as the sums start. Columns past n are not written.

void ck_gemm_bf16(int m, int n, int k, const uint16_t *a, ptrdiff_t lda, const uint16_t *packed, float *c,
                  ptrdiff_t ldc, int accumulate, const float *bias, int panel_begin, int panel_end);

/// c = a Wᵀ over int8 panels with activations from ck_rows_to_q8: integer dot products per group (vpdpbusd on the
/// processors that also run the bf16 kernels, which all have VNNI; portable integer code elsewhere), scaled into
/// f32 sums. Same contract as ck_gemm_bf16.
void ck_gemm_int8(int m, int n, int k, const uint8_t *a, ptrdiff_t lda, const float *a_scales, const int8_t *packed,
                  const float *scales, const int32_t *sums, float *c, ptrdiff_t ldc, int accumulate, int panel_begin,
                  int panel_end);

// MARK: Row kernels (rows [row_begin, row_end) of row-major [rows, width] arrays; out may equal x)

void ck_layer_norm(const float *x, float *out, int width, const float *weight, const float *bias, float epsilon,
                   int row_begin, int row_end);
void ck_rms_norm(const float *x, float *out, int width, const float *weight, float epsilon, int row_begin,
                 int row_end);
/// x[i] += bias[i % width] for rows [row_begin, row_end).
void ck_add_bias(float *x, int width, const float *bias, int row_begin, int row_end);

// MARK: Element kernels (elements [begin, end))

/// Exact GELU, x * Φ(x), with an erf accurate to 2e-7.
void ck_gelu(float *x, size_t begin, size_t end);
/// The same with the C library's erff, for the exact f32 mode.
void ck_gelu_exact(float *x, size_t begin, size_t end);
/// gate[i] = silu(gate[i]) * up[i].
void ck_silu_mul(float *gate, const float *up, size_t begin, size_t end);
/// x[i] += y[i].
void ck_add(float *x, const float *y, size_t begin, size_t end);

// MARK: Attention pieces

/// Softmax of row[0..<count] in place where allowed: entry s takes part when s < limit and (valid == NULL or
/// valid[s]); others become 0. A row with no allowed entry becomes all zeros. Scores are multiplied by `scale`
/// first.
void ck_softmax(float *row, int count, float scale, int limit, const uint8_t *valid);

/// Attention of a few query rows against keys and values stored as f32 (type CK_F32) or bf16 (CK_BF16), for one
/// head: out[t] = sum_s softmax_s(scale * q[t] . k[s]) v[s], with query t seeing keys s < limit + t (and
/// valid[s] when valid is not NULL). `scratch` holds `keys` floats.
void ck_attention_head(const float *q, ptrdiff_t ldq, int queries, const void *k, const void *v, int kv_type,
                       ptrdiff_t ldkv, int keys, int head_size, float scale, int limit, const uint8_t *valid,
                       float *out, ptrdiff_t ldo, float *scratch);

/// Rotate-half rotary embedding on rows [row_begin, row_end) of x [rows, heads * head_size]: position
/// positions[row], frequencies inverse_frequencies[0..<head_size / 2]. head_size is at most 1024.
void ck_rotary(float *x, int heads, int head_size, const int32_t *positions, const float *inverse_frequencies,
               int row_begin, int row_end);

/// y[i, j] = x[i, :] . W[j, :] in f32 for rows i < m (m at most 8) and outputs j in [row_begin, row_end), W [n, k]
/// row-major in its stored type (CK_F32, CK_BF16, CK_F16), widened in registers: the exact mode's products for
/// decoding, which read each stored weight once instead of widening whole matrices.
void ck_gemv_f32(int m, int k, const float *x, const void *w, int w_type, float *y, int n, int row_begin,
                 int row_end);

/// Elements [begin, end) of src (CK_F32, CK_BF16 or CK_F16) as f32 into dst[begin, end).
void ck_widen(const void *src, int src_type, float *dst, size_t begin, size_t end);

// MARK: Machine ceilings, for benchmarks

/// Runs `iterations` rounds of independent multiply-adds on registers in the calling thread's kernel set (vdpbf16ps;
/// f32 FMA on AVX2 and AVX-512 without BF16, which the bf16 products run on there; scalar f32 when portable) and returns the floating-point
/// operations done (2 per multiply-add), so that ops / seconds is one core's peak for the bf16 products.
double ck_peak_bf16(long iterations);
/// Sums `count` floats with vector loads (a read-bandwidth probe); returns the sum so nothing is elided.
float ck_read_sum(const float *x, size_t begin, size_t end);

#ifdef __cplusplus
}
#endif

#endif
