// OpenBLAS's CBLAS interface (cblas_sgemm, cblas_sgemv) and its thread controls.
#include <cblas.h>
