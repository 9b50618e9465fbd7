// Which kernels this processor runs: CPUID for the instruction sets and XGETBV for the OS saving their registers.
// The set in use is the best one the processor runs (AMX where it runs; else between the two AVX-512 sets, the faster
// here), or the best at or below the calling thread's choice (which the CPU backend's pool sets for a backend limited
// by --kernels, and tests set to try each set).
#include "ckernels.h"
#include "internal.h"

#include <time.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__)
/// Asks Linux for this process's permission to use AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM for
/// XFEATURE_XTILEDATA, Linux 5.16 and later), without which the first tile instruction traps: 1 when granted.
static int permit_tiles(void) {
#if defined(__linux__)
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
    return 0;
#endif
}
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
    if (zmm && f && dq && bw && vl && vnni512) {
        sets |= 1 << CK_KERNELS_AVX512;
        if ((a1 >> 5) & 1) sets |= 1 << CK_KERNELS_AVX512_BF16;
    }
    int amx = ((d >> 22) & 1) && ((d >> 24) & 1) && ((d >> 25) & 1);  // AMX-BF16, AMX-TILE, AMX-INT8
    int tile_state = (lo & 0x60000) == 0x60000;                        // XTILECFG and XTILEDATA
    if (((sets >> CK_KERNELS_AVX512_BF16) & 1) && amx && tile_state && permit_tiles()) sets |= 1 << CK_KERNELS_AMX;
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

static int preferred = -1;  // the best set; written once (atomically) by the first caller

/// AMX where it runs: a tile multiply does 512 times the work of a vdpbf16ps in 16 cycles (several times the 512-bit
/// FMA peak, measured in BENCHMARKS). Otherwise, where both AVX-512 sets run, the one whose bf16 products are faster
/// here. vdpbf16ps does two multiply-adds a lane where a 512-bit FMA does one, but processors differ in how many of
/// each they issue: Zen 4 runs vdpbf16ps at about twice the FMA rate, while on some Xeons FMA measures twice
/// vdpbf16ps. The peaks are measured on this thread (a few milliseconds, three times each, the best kept) and FMA is
/// chosen only when 1.25 times faster, a margin far from where either kind of processor lies, so the choice does not
/// move with noise.
static int prefer(int sets) {
    if ((sets >> CK_KERNELS_AMX) & 1) return CK_KERNELS_AMX;
    int both = (1 << CK_KERNELS_AVX512) | (1 << CK_KERNELS_AVX512_BF16);
    if ((sets & both) != both) return runnable_at_most(CK_KERNEL_SETS - 1);
    int previous = ck_force_kernels(CK_KERNELS_AVX512_BF16);
    double fma = 0, dot = 0;
    for (int round = 0; round < 3; round++) {
        struct timespec t0, t1, t2;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_force_kernels(CK_KERNELS_AVX512_BF16);
        double dot_ops = ck_peak_bf16(40000);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ck_force_kernels(CK_KERNELS_AVX512);
        double fma_ops = ck_peak_bf16(40000);
        clock_gettime(CLOCK_MONOTONIC, &t2);
        double dot_seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
        double fma_seconds = (double)(t2.tv_sec - t1.tv_sec) + (double)(t2.tv_nsec - t1.tv_nsec) * 1e-9;
        if (dot_seconds > 0 && dot_ops / dot_seconds > dot) dot = dot_ops / dot_seconds;
        if (fma_seconds > 0 && fma_ops / fma_seconds > fma) fma = fma_ops / fma_seconds;
    }
    ck_force_kernels(previous);
    return fma > 1.25 * dot ? CK_KERNELS_AVX512 : CK_KERNELS_AVX512_BF16;
}

int ck_best_kernels(void) {
    int value = __atomic_load_n(&preferred, __ATOMIC_ACQUIRE);
    if (value < 0) {
        // Threads that measure at once keep the first answer stored, so that every thread uses the same set.
        int expected = -1, measured = prefer(runnable());
        value = __atomic_compare_exchange_n(&preferred, &expected, measured, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
                    ? measured
                    : expected;
    }
    return value;
}

int ck_force_kernels(int set) {
    int previous = thread_choice;
    thread_choice = set < 0 ? -1 : set;
    return previous;
}

int ck_kernels(void) { return thread_choice >= 0 ? runnable_at_most(thread_choice) : ck_best_kernels(); }

const char *ck_kernels_name(int set) {
    switch (set) {
    case CK_KERNELS_AVX2: return "avx2";
    case CK_KERNELS_AVX2_VNNI: return "avx2vnni";
    case CK_KERNELS_AVX512: return "avx512";
    case CK_KERNELS_AVX512_BF16: return "avx512bf16";
    case CK_KERNELS_AMX: return "amx";
    default: return "portable";
    }
}

const char *ck_kernel_name(void) { return ck_kernels_name(ck_kernels()); }
