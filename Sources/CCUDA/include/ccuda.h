// The CUDA driver API, NVRTC and cuBLAS, opened with dlopen at run time: the package builds and runs on machines
// without CUDA, and one binary serves CPU and GPU machines. Only the few signatures used here are declared (from
// CUDA 12/13's public headers); every call returns 0 or an error code with a message in `error`.

#ifndef CCUDA_H
#define CCUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Opens NVRTC (libnvrtc.so.13, .12 or .so, or the file INFMLLM_NVRTC_LIBRARY names). Enough for compiling kernels
/// to PTX on a machine with no GPU. Returns 0, or -1 with the reason in `error`.
int ccuda_open_nvrtc(char *error, size_t error_size);
/// NVRTC's version, once opened.
void ccuda_nvrtc_version(int *major, int *minor);
/// The newest real architecture NVRTC can build for (90 for sm_90), or 0.
int ccuda_nvrtc_newest_arch(void);
/// The oldest one, or 0.
int ccuda_nvrtc_oldest_arch(void);
/// Compiles `source` for `arch` (e.g. "sm_90" for a cubin, "compute_90" for PTX). On success `*image` holds a
/// malloc'ed cubin or NUL-terminated PTX of `*size` bytes; on failure `*log` may hold NVRTC's log (malloc'ed).
int ccuda_nvrtc_compile(const char *source, const char *name, const char *arch, int cubin, void **image, size_t *size,
                        char **log, char *error, size_t error_size);

/// Opens the driver (libcuda.so.1) and cuBLAS (libcublas.so.13 or .12, or INFMLLM_CUBLAS_LIBRARY) and initialises
/// CUDA. Returns 0, or -1 with the reason (no driver, no GPU, no cuBLAS) in `error`.
int ccuda_open_driver(char *error, size_t error_size);
int ccuda_device_count(int *count, char *error, size_t error_size);
/// Name, compute capability, memory and multiprocessors of device `ordinal`.
int ccuda_device_info(int ordinal, char *name, size_t name_size, int *major, int *minor, size_t *total_memory,
                      int *multiprocessors, int *max_shared_optin, char *error, size_t error_size);

/// One device's primary context, its cuBLAS handle and the loaded kernels.
typedef struct ccuda_context ccuda_context;

int ccuda_context_open(int ordinal, ccuda_context **context, char *error, size_t error_size);
void ccuda_context_close(ccuda_context *context);
int ccuda_memory_info(ccuda_context *context, size_t *free_bytes, size_t *total_bytes, char *error, size_t error_size);
int ccuda_alloc(ccuda_context *context, size_t bytes, uint64_t *pointer, char *error, size_t error_size);
void ccuda_free(ccuda_context *context, uint64_t pointer);
int ccuda_upload(ccuda_context *context, uint64_t destination, const void *source, size_t bytes, char *error,
                 size_t error_size);
int ccuda_download(ccuda_context *context, void *destination, uint64_t source, size_t bytes, char *error,
                   size_t error_size);
/// Copies `bytes` of host memory to the device without waiting: the bytes are staged in pinned memory and copied in
/// order with the kernels, so a small input (positions, flags) does not stall the work queued before it.
int ccuda_upload_queued(ccuda_context *context, uint64_t destination, const void *source, size_t bytes, char *error,
                        size_t error_size);
/// Zeroes `bytes` at `destination`.
int ccuda_zero(ccuda_context *context, uint64_t destination, size_t bytes, char *error, size_t error_size);
/// Copies `bytes` from `source` to `destination`, both on the device.
int ccuda_copy(ccuda_context *context, uint64_t destination, uint64_t source, size_t bytes, char *error,
               size_t error_size);
int ccuda_synchronize(ccuda_context *context, char *error, size_t error_size);

/// Loads a cubin or PTX image (the context's one module) and looks up `count` kernels by name into `functions`.
int ccuda_load_module(ccuda_context *context, const void *image, const char *const *names, int count,
                      void **functions, char *error, size_t error_size);
/// Allows `bytes` of dynamic shared memory for `function`.
int ccuda_set_shared_limit(ccuda_context *context, void *function, int bytes, char *error, size_t error_size);
/// Launches `function` on the context's stream; `arguments` points at each argument's value.
int ccuda_launch(ccuda_context *context, void *function, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                 unsigned block_x, unsigned shared_bytes, void **arguments, char *error, size_t error_size);

/// Element types of `ccuda_gemm`.
enum { CCUDA_F32 = 0, CCUDA_BF16 = 14 };

/// Row-major C[m, n] = A[m, k] · B[n, k]ᵀ on the tensor cores (bf16 inputs) or in plain f32 (f32 inputs), f32
/// accumulation and output: A holds activations, B a weight matrix as stored ([out, in]).
int ccuda_gemm(ccuda_context *context, int type, int m, int n, int k, uint64_t a, uint64_t b, uint64_t c, char *error,
               size_t error_size);

/// cuBLAS's column-major strided batched product, f32 output: C_i = op(A_i) · op(B_i) for `batch` matrices, A and B
/// of `type`, `transpose_a`/`transpose_b` nonzero for a transposed operand.
int ccuda_gemm_batched(ccuda_context *context, int type, int transpose_a, int transpose_b, int m, int n, int k,
                       uint64_t a, long long lda, long long stride_a, uint64_t b, long long ldb, long long stride_b,
                       uint64_t c, long long ldc, long long stride_c, int batch, char *error, size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
