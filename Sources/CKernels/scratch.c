// Per-thread scratch memory for the products: widened rows and panels (AVX2, AVX-512 FMA) and tile-ordered
// activations (AMX), kept from one product to the next and freed when the thread ends.
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t scratch_keys[CK_SCRATCH_SLOTS];
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static void scratch_keys_make(void) {
    for (int slot = 0; slot < CK_SCRATCH_SLOTS; slot++) pthread_key_create(&scratch_keys[slot], free);
}

void *ck_thread_scratch(int slot, size_t bytes) {
    pthread_once(&scratch_once, scratch_keys_make);
    size_t *block = pthread_getspecific(scratch_keys[slot]);
    if (block && block[0] >= bytes) return block + 8;
    free(block);
    pthread_setspecific(scratch_keys[slot], NULL);
    block = aligned_alloc(64, 64 + (bytes + 63) / 64 * 64);
    if (!block) return NULL;
    block[0] = bytes;
    pthread_setspecific(scratch_keys[slot], block);
    return block + 8;
}
