// The AVX2 int8 micro-kernel, included by gemm_int8.c once per instruction set with CK_Q8_A2_BODY (its name),
// CK_Q8_A2_TARGET (its target attribute) and CK_Q8_A2_VNNI (1: vpdpbusd on int8 + 128; 0: vpmaddubsw on magnitudes
// and signs) defined.

/// c's 8 x `vectors` columns (b at the first quad of those columns; 2 vectors: half a panel, 4: a whole one) for
/// rows [0, rows), over the groups [group_begin, group_end) of k. `x` and `magnitude` are the tile's activation
/// bytes from group_begin on; `masks` the columns to load and store (`full`: all of them). rows x vectors is at most
/// 8.
CK_Q8_A2_TARGET static inline __attribute__((always_inline)) void
CK_Q8_A2_BODY(const int rows, const int vectors, int group_begin, int group_end, int quads, const uint8_t *x,
              const uint8_t *magnitude, const float *a_scales, int groups, const int8_t *b, const float *w_scales,
              const int32_t *w_sums, float *c, ptrdiff_t ldc, int load, const __m256i *masks, int full) {
    __m256 acc[CK_Q8_A2_MR][4];
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < vectors; v++) {
            acc[r][v] = !load ? _mm256_setzero_ps()
                        : full ? _mm256_loadu_ps(c + r * ldc + 8 * v)
                               : _mm256_maskload_ps(c + r * ldc + 8 * v, masks[v]);
        }
    }
#if !CK_Q8_A2_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    for (int g = group_begin; g < group_end; g++) {
        __m256i s[CK_Q8_A2_MR][4];
        for (int r = 0; r < rows; r++) {
            for (int v = 0; v < vectors; v++) s[r][v] = _mm256_setzero_si256();
        }
        int q_end = min_int((g + 1) * CK_QUADS_PER_GROUP, quads);
        for (int q = g * CK_QUADS_PER_GROUP; q < q_end; q++) {
            _mm_prefetch((const char *)(b + q * 128) + 2048, _MM_HINT_T0);
            if (vectors > 2) _mm_prefetch((const char *)(b + q * 128) + 2048 + 64, _MM_HINT_T0);
            __m256i w[4];
            for (int v = 0; v < vectors; v++) w[v] = _mm256_loadu_si256((const __m256i *)(b + q * 128 + 32 * v));
            int offset = 4 * (q - group_begin * CK_QUADS_PER_GROUP);
            for (int r = 0; r < rows; r++) {
                int32_t four;
                memcpy(&four, x + r * CK_Q8_A2_STRIDE + offset, 4);
                __m256i av = _mm256_set1_epi32(four);
#if CK_Q8_A2_VNNI
                for (int v = 0; v < vectors; v++) s[r][v] = _mm256_dpbusd_avx_epi32(s[r][v], av, w[v]);
#else
                int32_t size;
                memcpy(&size, magnitude + r * CK_Q8_A2_STRIDE + offset, 4);
                __m256i mv = _mm256_set1_epi32(size);
                for (int v = 0; v < vectors; v++) {
                    __m256i pairs = _mm256_maddubs_epi16(mv, _mm256_sign_epi8(w[v], av));
                    s[r][v] = _mm256_add_epi32(s[r][v], _mm256_madd_epi16(pairs, ones));
                }
#endif
            }
        }
        for (int v = 0; v < vectors; v++) {
            __m256i correction = _mm256_setzero_si256();
            if (CK_Q8_A2_VNNI) {  // the +128 of every activation, times the group's weight sum
                correction = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i *)(w_sums + g * CK_PANEL + 8 * v)), 7);
            }
            __m256 ws = _mm256_loadu_ps(w_scales + g * CK_PANEL + 8 * v);
            for (int r = 0; r < rows; r++) {
                __m256 scale = _mm256_mul_ps(ws, _mm256_set1_ps(a_scales[r * groups + g]));
                __m256 dot = _mm256_cvtepi32_ps(_mm256_sub_epi32(s[r][v], correction));
                acc[r][v] = _mm256_fmadd_ps(dot, scale, acc[r][v]);
            }
        }
    }
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < vectors; v++) {
            if (full) {  // plain stores where every column is real: vmaskmovps stores are slow on some processors
                _mm256_storeu_ps(c + r * ldc + 8 * v, acc[r][v]);
            } else {
                _mm256_maskstore_ps(c + r * ldc + 8 * v, masks[v], acc[r][v]);
            }
        }
    }
}
