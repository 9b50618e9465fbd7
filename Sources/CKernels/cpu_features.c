// Which kernels this processor runs: CPUID for AVX-512 BF16 and VNNI and XGETBV for the OS saving the ZMM state.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

int ck_use_avx512bf16 = -1;
static int detected = -1;

static int detect(void) {
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if (!(c & (1u << 27))) return 0;  // OSXSAVE
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xe6) != 0xe6) return 0;  // XMM, YMM, opmask, ZMM state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    if (!(f && dq && bw && vl && vnni)) return 0;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1;  // AVX512_BF16
#else
    return 0;
#endif
}

void ck_init_features(void) {
    if (detected < 0) detected = detect();
    if (ck_use_avx512bf16 < 0) ck_use_avx512bf16 = detected;
}

int ck_has_avx512bf16(void) {
    ck_init_features();
    return detected;
}

void ck_force_portable(int portable) {
    ck_init_features();
    ck_use_avx512bf16 = portable ? 0 : detected;
}

const char *ck_kernel_name(void) {
    ck_init_features();
    return ck_use_avx512bf16 ? "avx512bf16" : "portable";
}
