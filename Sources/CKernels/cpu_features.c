// Which kernels this processor runs: CPUID for AVX-512 BF16 and VNNI and XGETBV for the OS saving the ZMM state.
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static int detected = -1;  // written once (atomically) by the first caller
_Thread_local int ck_portable_forced = 0;

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

int ck_has_avx512bf16(void) {
    int value = __atomic_load_n(&detected, __ATOMIC_ACQUIRE);
    if (value < 0) {
        value = detect();
        __atomic_store_n(&detected, value, __ATOMIC_RELEASE);
    }
    return value;
}

int ck_fast_kernels(void) { return !ck_portable_forced && ck_has_avx512bf16(); }

void ck_force_portable(int portable) { ck_portable_forced = portable != 0; }

const char *ck_kernel_name(void) { return ck_fast_kernels() ? "avx512bf16" : "portable"; }
