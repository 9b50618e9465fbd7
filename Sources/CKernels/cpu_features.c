// Which kernels this processor runs: CPUID for the instruction sets and XGETBV for the OS saving their registers.
// The set in use is the best one the processor runs, or the best at or below the calling thread's choice (which
// the CPU backend's pool sets for a backend limited by --kernels, and tests set to try each set).
#include "ckernels.h"
#include "internal.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

static int detected = -1;  // bit s set: the processor runs set s; written once (atomically) by the first caller
static _Thread_local int thread_choice = -1;

static int detect(void) {
    int sets = 1 << CK_KERNELS_PORTABLE;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return sets;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(osxsave && avx && fma && f16c)) return sets;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0x6) != 0x6) return sets;  // XMM and YMM state enabled by the OS
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return sets;
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni512 = (c >> 11) & 1;
    if (!avx2) return sets;
    sets |= 1 << CK_KERNELS_AVX2;
    unsigned a1 = 0, b1, c1, d1;
    if (!__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) a1 = 0;
    if ((a1 >> 4) & 1) sets |= 1 << CK_KERNELS_AVX2_VNNI;  // AVX-VNNI: VEX-encoded, not implied by AVX-512 VNNI
    int zmm = (lo & 0xe6) == 0xe6;                          // opmask and ZMM state too
    if (zmm && f && dq && bw && vl && vnni512 && ((a1 >> 5) & 1)) sets |= 1 << CK_KERNELS_AVX512_BF16;
#endif
    return sets;
}

static int runnable(void) {
    int value = __atomic_load_n(&detected, __ATOMIC_ACQUIRE);
    if (value < 0) {
        value = detect();
        __atomic_store_n(&detected, value, __ATOMIC_RELEASE);
    }
    return value;
}

int ck_runs_kernels(int set) { return set >= 0 && set < CK_KERNEL_SETS && ((runnable() >> set) & 1); }

/// The best set at or below `set` that the processor runs.
static int runnable_at_most(int set) {
    int sets = runnable();
    if (set >= CK_KERNEL_SETS) set = CK_KERNEL_SETS - 1;
    for (; set > CK_KERNELS_PORTABLE; set--) {
        if ((sets >> set) & 1) return set;
    }
    return CK_KERNELS_PORTABLE;
}

int ck_best_kernels(void) { return runnable_at_most(CK_KERNEL_SETS - 1); }

int ck_force_kernels(int set) {
    int previous = thread_choice;
    thread_choice = set < 0 ? -1 : set;
    return previous;
}

int ck_kernels(void) { return runnable_at_most(thread_choice >= 0 ? thread_choice : CK_KERNEL_SETS - 1); }

const char *ck_kernels_name(int set) {
    switch (set) {
    case CK_KERNELS_AVX2: return "avx2";
    case CK_KERNELS_AVX2_VNNI: return "avx2vnni";
    case CK_KERNELS_AVX512_BF16: return "avx512bf16";
    default: return "portable";
    }
}

const char *ck_kernel_name(void) { return ck_kernels_name(ck_kernels()); }
