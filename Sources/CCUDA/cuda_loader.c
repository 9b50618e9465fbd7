// dlopen'ed CUDA: the driver API, NVRTC and cuBLAS through function pointers resolved once. The signatures below
// are those of CUDA 12 and 13 (cuda.h, nvrtc.h, cublas_api.h); handles are opaque pointers.

#define _GNU_SOURCE
#include "ccuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef void *CUmodule;
typedef void *CUfunction;
typedef void *CUstream;
typedef uint64_t CUdeviceptr;
typedef int nvrtcResult;
typedef void *nvrtcProgram;
typedef int cublasStatus_t;
typedef void *cublasHandle_t;

enum {
    CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97,
    CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    CUBLAS_OP_N = 0,
    CUBLAS_OP_T = 1,
    CUBLAS_COMPUTE_32F = 68,
    CUBLAS_GEMM_DEFAULT = -1,
};

static struct {
    CUresult (*cuInit)(unsigned);
    CUresult (*cuDriverGetVersion)(int *);
    CUresult (*cuGetErrorString)(CUresult, const char **);
    CUresult (*cuDeviceGetCount)(int *);
    CUresult (*cuDeviceGet)(CUdevice *, int);
    CUresult (*cuDeviceGetName)(char *, int, CUdevice);
    CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
    CUresult (*cuDeviceTotalMem_v2)(size_t *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
    CUresult (*cuDevicePrimaryCtxRelease_v2)(CUdevice);
    CUresult (*cuCtxSetCurrent)(CUcontext);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemGetInfo_v2)(size_t *, size_t *);
    CUresult (*cuMemAlloc_v2)(CUdeviceptr *, size_t);
    CUresult (*cuMemFree_v2)(CUdeviceptr);
    CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr, const void *, size_t);
    CUresult (*cuMemcpyDtoH_v2)(void *, CUdeviceptr, size_t);
    CUresult (*cuMemsetD8_v2)(CUdeviceptr, unsigned char, size_t);
    CUresult (*cuMemAllocHost_v2)(void **, size_t);
    CUresult (*cuMemFreeHost)(void *);
    CUresult (*cuMemcpyHtoDAsync_v2)(CUdeviceptr, const void *, size_t, CUstream);
    CUresult (*cuMemcpyDtoD_v2)(CUdeviceptr, CUdeviceptr, size_t);
    CUresult (*cuModuleLoadData)(CUmodule *, const void *);
    CUresult (*cuModuleUnload)(CUmodule);
    CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
    CUresult (*cuFuncSetAttribute)(CUfunction, int, int);
    CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               CUstream, void **, void **);
    cublasStatus_t (*cublasCreate_v2)(cublasHandle_t *);
    cublasStatus_t (*cublasDestroy_v2)(cublasHandle_t);
    cublasStatus_t (*cublasGemmEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *, int, int,
                                   const void *, int, int, const void *, void *, int, int, int, int);
    cublasStatus_t (*cublasGemmStridedBatchedEx)(cublasHandle_t, int, int, int, int, int, const void *, const void *,
                                                 int, int, long long, const void *, int, int, long long,
                                                 const void *, void *, int, int, long long, int, int, int);
} cu;

static struct {
    nvrtcResult (*nvrtcVersion)(int *, int *);
    const char *(*nvrtcGetErrorString)(nvrtcResult);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *, const char *, const char *, int, const char *const *,
                                      const char *const *);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram, int, const char *const *);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram, size_t *);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram, char *);
    nvrtcResult (*nvrtcGetPTXSize)(nvrtcProgram, size_t *);
    nvrtcResult (*nvrtcGetPTX)(nvrtcProgram, char *);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram, size_t *);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram, char *);
    nvrtcResult (*nvrtcGetNumSupportedArchs)(int *);
    nvrtcResult (*nvrtcGetSupportedArchs)(int *);
} rtc;

struct ccuda_context {
    CUdevice device;
    CUcontext context;
    cublasHandle_t blas;
    CUmodule module;
    /// Pinned staging for queued uploads, reused from the start once the device has caught up.
    unsigned char *ring;
    size_t ring_size, ring_used;
    int ring_failed;  // pinned memory was refused: queued uploads copy directly
};

enum { RING_BYTES = 8 << 20 };

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static int driver_state, nvrtc_state;  // 0 untried, 1 open, -1 failed
static char driver_failure[512], nvrtc_failure[512];

static void say(char *error, size_t size, const char *format, ...) {
    if (!error || size == 0) return;
    va_list list;
    va_start(list, format);
    vsnprintf(error, size, format, list);
    va_end(list);
}

/// Runs `load` the first time only (under the lock); 0 when it succeeded, else -1 with `failure` in `error`.
static int open_once(int *state, int (*load)(void), const char *failure, char *error, size_t error_size) {
    pthread_mutex_lock(&open_lock);
    if (*state == 0) *state = load() == 0 ? 1 : -1;
    int result = *state;
    pthread_mutex_unlock(&open_lock);
    if (result < 0) say(error, error_size, "%s", failure);
    return result > 0 ? 0 : -1;
}

/// dlopen the file `variable` names, else the first of `names` that opens.
static void *open_library(const char *variable, const char *const *names, char *tried, size_t tried_size) {
    const char *chosen = getenv(variable);
    if (chosen && *chosen) {
        void *handle = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
        if (!handle) say(tried, tried_size, "%s (from %s): %s", chosen, variable, dlerror());
        return handle;
    }
    tried[0] = 0;
    for (int i = 0; names[i]; i++) {
        void *handle = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (handle) return handle;
        size_t used = strlen(tried);
        snprintf(tried + used, tried_size - used, "%s%s", used ? ", " : "", names[i]);
    }
    return NULL;
}

#define RESOLVE(table, handle, symbol, failure)                                                                       \
    do {                                                                                                              \
        *(void **)&table.symbol = dlsym(handle, #symbol);                                                             \
        if (!table.symbol) {                                                                                          \
            snprintf(failure, sizeof failure, "%s lacks %s", #handle, #symbol);                                      \
            return -1;                                                                                                \
        }                                                                                                             \
    } while (0)

static int load_nvrtc(void) {
    static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", NULL};
    char tried[256];
    void *nvrtc = open_library("INFMLLM_NVRTC_LIBRARY", names, tried, sizeof tried);
    if (!nvrtc) {
        snprintf(nvrtc_failure, sizeof nvrtc_failure,
                 "NVRTC not found (tried %s): install CUDA's NVRTC (or pip's nvidia-cuda-nvrtc) and add its lib "
                 "folder to LD_LIBRARY_PATH, or name the file in INFMLLM_NVRTC_LIBRARY",
                 tried);
        return -1;
    }
    RESOLVE(rtc, nvrtc, nvrtcVersion, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetErrorString, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcCreateProgram, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcCompileProgram, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcDestroyProgram, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetProgramLogSize, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetProgramLog, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetPTXSize, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetPTX, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetCUBINSize, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetCUBIN, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetNumSupportedArchs, nvrtc_failure);
    RESOLVE(rtc, nvrtc, nvrtcGetSupportedArchs, nvrtc_failure);
    return 0;
}

int ccuda_open_nvrtc(char *error, size_t error_size) {
    return open_once(&nvrtc_state, load_nvrtc, nvrtc_failure, error, error_size);
}

void ccuda_nvrtc_version(int *major, int *minor) {
    *major = *minor = 0;
    if (nvrtc_state > 0) rtc.nvrtcVersion(major, minor);
}

/// The newest (or the oldest) architecture NVRTC supports, or 0.
static int supported_arch(int newest) {
    int count = 0, found = 0;
    if (nvrtc_state <= 0 || rtc.nvrtcGetNumSupportedArchs(&count) != 0 || count <= 0) return 0;
    int *archs = calloc((size_t)count, sizeof(int));
    if (archs && rtc.nvrtcGetSupportedArchs(archs) == 0) {
        for (int i = 0; i < count; i++) {
            if (found == 0 || (newest ? archs[i] > found : archs[i] < found)) found = archs[i];
        }
    }
    free(archs);
    return found;
}

int ccuda_nvrtc_newest_arch(void) { return supported_arch(1); }

int ccuda_nvrtc_oldest_arch(void) { return supported_arch(0); }

int ccuda_nvrtc_compile(const char *source, const char *name, const char *arch, int cubin, void **image, size_t *size,
                        char **log, char *error, size_t error_size) {
    *image = NULL;
    *size = 0;
    *log = NULL;
    if (ccuda_open_nvrtc(error, error_size) != 0) return -1;
    nvrtcProgram program;
    nvrtcResult result = rtc.nvrtcCreateProgram(&program, source, name, 0, NULL, NULL);
    if (result != 0) {
        say(error, error_size, "nvrtcCreateProgram: %s", rtc.nvrtcGetErrorString(result));
        return -1;
    }
    char architecture[64];
    snprintf(architecture, sizeof architecture, "--gpu-architecture=%s", arch);
    const char *options[] = {architecture, "--std=c++17", "--device-as-default-execution-space"};
    result = rtc.nvrtcCompileProgram(program, 3, options);
    size_t log_size = 0;
    if (rtc.nvrtcGetProgramLogSize(program, &log_size) == 0 && log_size > 1) {
        *log = malloc(log_size);
        if (*log && rtc.nvrtcGetProgramLog(program, *log) != 0) (*log)[0] = 0;
    }
    if (result != 0) {
        say(error, error_size, "NVRTC could not compile %s for %s: %s", name, arch, rtc.nvrtcGetErrorString(result));
        rtc.nvrtcDestroyProgram(&program);
        return -1;
    }
    result = cubin ? rtc.nvrtcGetCUBINSize(program, size) : rtc.nvrtcGetPTXSize(program, size);
    if (result == 0) {
        *image = malloc(*size ? *size : 1);
        if (!*image) {
            say(error, error_size, "out of memory for %zu bytes of %s", *size, cubin ? "cubin" : "PTX");
            rtc.nvrtcDestroyProgram(&program);
            return -1;
        }
        result = cubin ? rtc.nvrtcGetCUBIN(program, *image) : rtc.nvrtcGetPTX(program, *image);
    }
    rtc.nvrtcDestroyProgram(&program);
    if (result != 0) {
        free(*image);
        *image = NULL;
        say(error, error_size, "NVRTC output for %s: %s", arch, rtc.nvrtcGetErrorString(result));
        return -1;
    }
    return 0;
}

static int load_driver(void) {
    static const char *const driver_names[] = {"libcuda.so.1", "libcuda.so", NULL};
    static const char *const blas_names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so", NULL};
    char tried[256];
    void *driver = open_library("INFMLLM_CUDA_DRIVER_LIBRARY", driver_names, tried, sizeof tried);
    if (!driver) {
        snprintf(driver_failure, sizeof driver_failure,
                 "no NVIDIA driver on this machine (tried %s): --device cuda needs an NVIDIA GPU and its driver",
                 tried);
        return -1;
    }
    RESOLVE(cu, driver, cuInit, driver_failure);
    RESOLVE(cu, driver, cuDriverGetVersion, driver_failure);
    RESOLVE(cu, driver, cuGetErrorString, driver_failure);
    RESOLVE(cu, driver, cuDeviceGetCount, driver_failure);
    RESOLVE(cu, driver, cuDeviceGet, driver_failure);
    RESOLVE(cu, driver, cuDeviceGetName, driver_failure);
    RESOLVE(cu, driver, cuDeviceGetAttribute, driver_failure);
    RESOLVE(cu, driver, cuDeviceTotalMem_v2, driver_failure);
    RESOLVE(cu, driver, cuDevicePrimaryCtxRetain, driver_failure);
    RESOLVE(cu, driver, cuDevicePrimaryCtxRelease_v2, driver_failure);
    RESOLVE(cu, driver, cuCtxSetCurrent, driver_failure);
    RESOLVE(cu, driver, cuCtxSynchronize, driver_failure);
    RESOLVE(cu, driver, cuMemGetInfo_v2, driver_failure);
    RESOLVE(cu, driver, cuMemAlloc_v2, driver_failure);
    RESOLVE(cu, driver, cuMemFree_v2, driver_failure);
    RESOLVE(cu, driver, cuMemcpyHtoD_v2, driver_failure);
    RESOLVE(cu, driver, cuMemcpyDtoH_v2, driver_failure);
    RESOLVE(cu, driver, cuMemsetD8_v2, driver_failure);
    RESOLVE(cu, driver, cuMemAllocHost_v2, driver_failure);
    RESOLVE(cu, driver, cuMemFreeHost, driver_failure);
    RESOLVE(cu, driver, cuMemcpyHtoDAsync_v2, driver_failure);
    RESOLVE(cu, driver, cuMemcpyDtoD_v2, driver_failure);
    RESOLVE(cu, driver, cuModuleLoadData, driver_failure);
    RESOLVE(cu, driver, cuModuleUnload, driver_failure);
    RESOLVE(cu, driver, cuModuleGetFunction, driver_failure);
    RESOLVE(cu, driver, cuFuncSetAttribute, driver_failure);
    RESOLVE(cu, driver, cuLaunchKernel, driver_failure);
    CUresult result = cu.cuInit(0);
    if (result != 0) {
        const char *text = "unknown error";
        cu.cuGetErrorString(result, &text);
        snprintf(driver_failure, sizeof driver_failure, "the NVIDIA driver did not start (cuInit: %s, error %d)",
                 text ? text : "?", result);
        return -1;
    }
    void *blas = open_library("INFMLLM_CUBLAS_LIBRARY", blas_names, tried, sizeof tried);
    if (!blas) {
        snprintf(driver_failure, sizeof driver_failure,
                 "cuBLAS not found (tried %s): install CUDA's cuBLAS (or pip's nvidia-cublas) and add its lib "
                 "folder to LD_LIBRARY_PATH, or name the file in INFMLLM_CUBLAS_LIBRARY",
                 tried);
        return -1;
    }
    RESOLVE(cu, blas, cublasCreate_v2, driver_failure);
    RESOLVE(cu, blas, cublasDestroy_v2, driver_failure);
    RESOLVE(cu, blas, cublasGemmEx, driver_failure);
    RESOLVE(cu, blas, cublasGemmStridedBatchedEx, driver_failure);
    return 0;
}

int ccuda_open_driver(char *error, size_t error_size) {
    return open_once(&driver_state, load_driver, driver_failure, error, error_size);
}


/// 0, or -1 with `what` and the driver's words for `result` in `error`.
static int check(CUresult result, const char *what, char *error, size_t error_size) {
    if (result == 0) return 0;
    const char *text = NULL;
    if (cu.cuGetErrorString) cu.cuGetErrorString(result, &text);
    say(error, error_size, "%s: %s (CUDA error %d)", what, text ? text : "unknown error", result);
    return -1;
}

int ccuda_device_count(int *count, char *error, size_t error_size) {
    *count = 0;
    if (ccuda_open_driver(error, error_size) != 0) return -1;
    return check(cu.cuDeviceGetCount(count), "cuDeviceGetCount", error, error_size);
}

int ccuda_device_info(int ordinal, char *name, size_t name_size, int *major, int *minor, size_t *total_memory,
                      int *multiprocessors, int *max_shared_optin, char *error, size_t error_size) {
    if (ccuda_open_driver(error, error_size) != 0) return -1;
    CUdevice device;
    if (check(cu.cuDeviceGet(&device, ordinal), "cuDeviceGet", error, error_size)) return -1;
    if (check(cu.cuDeviceGetName(name, (int)name_size, device), "cuDeviceGetName", error, error_size)) return -1;
    if (check(cu.cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device), "attribute",
              error, error_size))
        return -1;
    if (check(cu.cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device), "attribute",
              error, error_size))
        return -1;
    if (check(cu.cuDeviceGetAttribute(multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
              "attribute", error, error_size))
        return -1;
    if (check(cu.cuDeviceGetAttribute(max_shared_optin, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                                      device),
              "attribute", error, error_size))
        return -1;
    return check(cu.cuDeviceTotalMem_v2(total_memory, device), "cuDeviceTotalMem", error, error_size);
}

int ccuda_context_open(int ordinal, ccuda_context **out, char *error, size_t error_size) {
    *out = NULL;
    if (ccuda_open_driver(error, error_size) != 0) return -1;
    ccuda_context *context = calloc(1, sizeof *context);
    if (!context) {
        say(error, error_size, "out of memory");
        return -1;
    }
    if (check(cu.cuDeviceGet(&context->device, ordinal), "cuDeviceGet", error, error_size) ||
        check(cu.cuDevicePrimaryCtxRetain(&context->context, context->device), "cuDevicePrimaryCtxRetain", error,
              error_size)) {
        free(context);
        return -1;
    }
    cu.cuCtxSetCurrent(context->context);
    cublasStatus_t status = cu.cublasCreate_v2(&context->blas);
    if (status != 0) {
        say(error, error_size, "cublasCreate failed (cuBLAS status %d)", status);
        cu.cuDevicePrimaryCtxRelease_v2(context->device);
        free(context);
        return -1;
    }
    *out = context;
    return 0;
}

void ccuda_context_close(ccuda_context *context) {
    if (!context) return;
    cu.cuCtxSetCurrent(context->context);
    cu.cuCtxSynchronize();
    if (context->module) cu.cuModuleUnload(context->module);
    if (context->ring) cu.cuMemFreeHost(context->ring);
    cu.cublasDestroy_v2(context->blas);
    cu.cuDevicePrimaryCtxRelease_v2(context->device);
    free(context);
}

/// Makes the context current on the calling thread (cheap when it already is).
static int bind(ccuda_context *context, char *error, size_t error_size) {
    return check(cu.cuCtxSetCurrent(context->context), "cuCtxSetCurrent", error, error_size);
}

int ccuda_memory_info(ccuda_context *context, size_t *free_bytes, size_t *total_bytes, char *error,
                      size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuMemGetInfo_v2(free_bytes, total_bytes), "cuMemGetInfo", error, error_size);
}

int ccuda_alloc(ccuda_context *context, size_t bytes, uint64_t *pointer, char *error, size_t error_size) {
    *pointer = 0;
    if (bind(context, error, error_size)) return -1;
    char what[96];
    snprintf(what, sizeof what, "cuMemAlloc of %zu bytes", bytes);
    return check(cu.cuMemAlloc_v2(pointer, bytes ? bytes : 1), what, error, error_size);
}

void ccuda_free(ccuda_context *context, uint64_t pointer) {
    if (!pointer) return;
    cu.cuCtxSetCurrent(context->context);
    cu.cuMemFree_v2(pointer);
}

int ccuda_upload(ccuda_context *context, uint64_t destination, const void *source, size_t bytes, char *error,
                 size_t error_size) {
    if (bytes == 0) return 0;
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuMemcpyHtoD_v2(destination, source, bytes), "copy to the GPU", error, error_size);
}

int ccuda_download(ccuda_context *context, void *destination, uint64_t source, size_t bytes, char *error,
                   size_t error_size) {
    if (bytes == 0) return 0;
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuMemcpyDtoH_v2(destination, source, bytes), "copy from the GPU", error, error_size);
}

int ccuda_upload_queued(ccuda_context *context, uint64_t destination, const void *source, size_t bytes, char *error,
                        size_t error_size) {
    if (bytes == 0) return 0;
    if (bind(context, error, error_size)) return -1;
    if (!context->ring && !context->ring_failed) {
        void *ring = NULL;
        if (cu.cuMemAllocHost_v2(&ring, RING_BYTES) == 0) {
            context->ring = ring;
            context->ring_size = RING_BYTES;
            context->ring_used = 0;
        } else {
            context->ring_failed = 1;
        }
    }
    if (!context->ring || bytes > context->ring_size)
        return check(cu.cuMemcpyHtoD_v2(destination, source, bytes), "copy to the GPU", error, error_size);
    size_t offset = (context->ring_used + 255) & ~(size_t)255;
    if (offset + bytes > context->ring_size) {
        // Every queued copy out of the ring must be done before it is written again.
        if (check(cu.cuCtxSynchronize(), "cuCtxSynchronize", error, error_size)) return -1;
        offset = 0;
    }
    memcpy(context->ring + offset, source, bytes);
    context->ring_used = offset + bytes;
    return check(cu.cuMemcpyHtoDAsync_v2(destination, context->ring + offset, bytes, NULL), "queued copy to the GPU",
                 error, error_size);
}

int ccuda_zero(ccuda_context *context, uint64_t destination, size_t bytes, char *error, size_t error_size) {
    if (bytes == 0) return 0;
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuMemsetD8_v2(destination, 0, bytes), "cuMemsetD8", error, error_size);
}

int ccuda_copy(ccuda_context *context, uint64_t destination, uint64_t source, size_t bytes, char *error,
               size_t error_size) {
    if (bytes == 0) return 0;
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuMemcpyDtoD_v2(destination, source, bytes), "copy on the GPU", error, error_size);
}

int ccuda_synchronize(ccuda_context *context, char *error, size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuCtxSynchronize(), "cuCtxSynchronize", error, error_size);
}

int ccuda_load_module(ccuda_context *context, const void *image, const char *const *names, int count,
                      void **functions, char *error, size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    CUmodule module;
    if (check(cu.cuModuleLoadData(&module, image), "cuModuleLoadData", error, error_size)) return -1;
    for (int i = 0; i < count; i++) {
        char what[128];
        snprintf(what, sizeof what, "kernel %s", names[i]);
        if (check(cu.cuModuleGetFunction(&functions[i], module, names[i]), what, error, error_size)) {
            cu.cuModuleUnload(module);
            return -1;
        }
    }
    if (context->module) cu.cuModuleUnload(context->module);
    context->module = module;
    return 0;
}

int ccuda_set_shared_limit(ccuda_context *context, void *function, int bytes, char *error, size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuFuncSetAttribute(function, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                 "cuFuncSetAttribute", error, error_size);
}

int ccuda_launch(ccuda_context *context, void *function, unsigned grid_x, unsigned grid_y, unsigned grid_z,
                 unsigned block_x, unsigned shared_bytes, void **arguments, char *error, size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    return check(cu.cuLaunchKernel(function, grid_x, grid_y, grid_z, block_x, 1, 1, shared_bytes, NULL, arguments,
                                   NULL),
                 "cuLaunchKernel", error, error_size);
}

int ccuda_gemm(ccuda_context *context, int type, int m, int n, int k, uint64_t a, uint64_t b, uint64_t c, char *error,
               size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    const float one = 1, zero = 0;
    // Column-major, cuBLAS's view: Cᵀ [n, m] = B [n, k] (stored [k, n], transposed) · Aᵀ [k, m].
    cublasStatus_t status =
        cu.cublasGemmEx(context->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, (const void *)(uintptr_t)b, type, k,
                        (const void *)(uintptr_t)a, type, k, &zero, (void *)(uintptr_t)c, CCUDA_F32, n,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (status != 0) {
        say(error, error_size, "cublasGemmEx (%d x %d x %d, %s) failed: cuBLAS status %d", m, n, k,
            type == CCUDA_BF16 ? "bf16" : "f32", status);
        return -1;
    }
    return 0;
}

int ccuda_gemm_batched(ccuda_context *context, int type, int transpose_a, int transpose_b, int m, int n, int k,
                       uint64_t a, long long lda, long long stride_a, uint64_t b, long long ldb, long long stride_b,
                       uint64_t c, long long ldc, long long stride_c, int batch, char *error, size_t error_size) {
    if (bind(context, error, error_size)) return -1;
    const float one = 1, zero = 0;
    cublasStatus_t status = cu.cublasGemmStridedBatchedEx(
        context->blas, transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one,
        (const void *)(uintptr_t)a, type, (int)lda, stride_a, (const void *)(uintptr_t)b, type, (int)ldb, stride_b,
        &zero, (void *)(uintptr_t)c, CCUDA_F32, (int)ldc, stride_c, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (status != 0) {
        say(error, error_size, "cublasGemmStridedBatchedEx (%d x %d x %d, batch %d, %s) failed: cuBLAS status %d", m,
            n, k, batch, type == CCUDA_BF16 ? "bf16" : "f32", status);
        return -1;
    }
    return 0;
}
