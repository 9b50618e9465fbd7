// Large allocations for packed weights, backed by transparent huge pages where the kernel allows them.
#include "ckernels.h"

#include <sys/mman.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

// The engine allocates and frees activations of tens to hundreds of megabytes per layer. Handed back to the system
// and mapped again, each costs a page fault per 4 KiB and the kernel zeroing every page (14% of a vision pass, and a
// fifth of the time of a 4,100-row product, whose 69 MB output no thread arena can hold). So glibc keeps freed memory
// for reuse: one arena for every thread (a thread arena falls back to mmap for blocks over 64 MB whatever the
// settings), no mmap'ed chunks, no trimming. It must run before the first thread allocates, hence a constructor.
__attribute__((constructor)) static void ck_keep_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

#define CK_HUGE (2u << 20)

size_t ck_pages_length(size_t bytes) {
    size_t length = (bytes + CK_HUGE - 1) / CK_HUGE * CK_HUGE;
    return length == 0 ? CK_HUGE : length;
}

void *ck_alloc_pages(size_t bytes) {
    size_t length = ck_pages_length(bytes);
    // Over-allocate by one huge page to align the start, then return the unused ends.
    char *raw = mmap(NULL, length + CK_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uintptr_t start = ((uintptr_t)raw + CK_HUGE - 1) / CK_HUGE * CK_HUGE;
    size_t head = start - (uintptr_t)raw, tail = CK_HUGE - head;
    if (head) munmap(raw, head);
    if (tail) munmap((char *)start + length, tail);
#ifdef MADV_HUGEPAGE
    madvise((void *)start, length, MADV_HUGEPAGE);
#endif
    return (void *)start;
}

void ck_free_pages(void *pointer, size_t bytes) {
    if (!pointer) return;
    munmap(pointer, ck_pages_length(bytes));
}
