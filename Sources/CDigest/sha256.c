// SHA-256 compression: the SHA-NI instructions (sha256rnds2, sha256msg1/2) or the portable rounds.
#include "cdigest.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    for (size_t b = 0; b < blocks; b++, data += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)data[4 * i] << 24 | (uint32_t)data[4 * i + 1] << 16 | (uint32_t)data[4 * i + 2] << 8 |
                   (uint32_t)data[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b2 = state[1], c = state[2], d = state[3], e = state[4], f = state[5], g = state[6],
                 h = state[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b2) ^ (a & c) ^ (b2 & c));
            h = g, g = f, f = e, e = d + t1, d = c, c = b2, b2 = a, a = t1 + t2;
        }
        state[0] += a, state[1] += b2, state[2] += c, state[3] += d;
        state[4] += e, state[5] += f, state[6] += g, state[7] += h;
    }
}

#if defined(__x86_64__)
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t state[8], const uint8_t *data,
                                                               size_t blocks) {
    const __m128i shuffle = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);   // DCBA
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]); // HGFE
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                             // CDAB
    state1 = _mm_shuffle_epi32(state1, 0x1B);                       // EFGH
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);               // ABEF
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                    // CDGH
    for (size_t b = 0; b < blocks; b++, data += 64) {
        __m128i abef = state0, cdgh = state1;
        __m128i w[4];
        for (int i = 0; i < 4; i++) w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * i)), shuffle);
        for (int r = 0; r < 16; r++) {
            __m128i msg = _mm_add_epi32(w[r & 3], _mm_loadu_si128((const __m128i *)&K[4 * r]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
            if (r >= 3 && r <= 14) {
                __m128i next = _mm_add_epi32(w[(r + 1) & 3], _mm_alignr_epi8(w[r & 3], w[(r + 3) & 3], 4));
                w[(r + 1) & 3] = _mm_sha256msg2_epu32(next, w[r & 3]);
            }
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(msg, 0x0E));
            if (r >= 1 && r <= 12) w[(r + 3) & 3] = _mm_sha256msg1_epu32(w[(r + 3) & 3], w[r & 3]);
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);
    state1 = _mm_shuffle_epi32(state1, 0xB1);
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);
    state1 = _mm_alignr_epi8(state1, tmp, 8);
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}
#endif

static int accelerated = -1;

int cd_sha256_accelerated(void) {
    int value = __atomic_load_n(&accelerated, __ATOMIC_ACQUIRE);
    if (value < 0) {
        value = 0;
#if defined(__x86_64__)
        unsigned a, b, c, d;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9)) &&
            __get_cpuid_count(7, 0, &a, &b, &c, &d))
            value = (b >> 29) & 1;
#endif
        __atomic_store_n(&accelerated, value, __ATOMIC_RELEASE);
    }
    return value;
}

static void blocks(uint32_t state[8], const uint8_t *data, size_t count) {
#if defined(__x86_64__)
    if (cd_sha256_accelerated()) {
        blocks_shani(state, data, count);
        return;
    }
#endif
    blocks_portable(state, data, count);
}

void cd_sha256_init(cd_sha256 *context) {
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(context->state, initial, sizeof initial);
    context->length = 0;
    context->used = 0;
}

void cd_sha256_update(cd_sha256 *context, const void *data, size_t count) {
    const uint8_t *bytes = data;
    context->length += count;
    if (context->used) {
        size_t take = 64 - context->used < count ? 64 - context->used : count;
        memcpy(context->buffer + context->used, bytes, take);
        context->used += take, bytes += take, count -= take;
        if (context->used < 64) return;
        blocks(context->state, context->buffer, 1);
        context->used = 0;
    }
    if (count >= 64) {
        blocks(context->state, bytes, count / 64);
        bytes += count / 64 * 64;
        count %= 64;
    }
    memcpy(context->buffer, bytes, count);
    context->used = count;
}

void cd_sha256_final(cd_sha256 *context, uint8_t digest[32]) {
    uint64_t bits = context->length * 8;
    uint8_t pad[72] = {0x80};
    size_t padding = (context->used < 56 ? 56 : 120) - context->used;
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)(bits >> (56 - 8 * i));
    uint64_t saved = context->length;
    cd_sha256_update(context, pad, padding);
    cd_sha256_update(context, length, 8);
    context->length = saved;
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(context->state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(context->state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(context->state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)context->state[i];
    }
}
