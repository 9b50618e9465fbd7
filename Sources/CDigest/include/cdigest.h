// SHA-256 (FIPS 180-4) over streamed bytes, with the x86 SHA extensions where the processor has them and portable C
// elsewhere (chosen at run time): checkpoint files of 15 GB are hashed at memory speed, not at a loop's.
#ifndef INFMLLM_CDIGEST_H
#define INFMLLM_CDIGEST_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t state[8];
    uint64_t length;     // bytes consumed
    uint8_t buffer[64];  // a partial block
    size_t used;
} cd_sha256;

void cd_sha256_init(cd_sha256 *context);
void cd_sha256_update(cd_sha256 *context, const void *data, size_t count);
/// Pads, finishes and writes the 32-byte digest; the context must be initialised again before reuse.
void cd_sha256_final(cd_sha256 *context, uint8_t digest[32]);
/// 1 when the SHA extensions are in use, else 0.
int cd_sha256_accelerated(void);

#endif
