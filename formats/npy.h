/*
 * npy.h - writer of NumPy .npy files (format 1.0); internal.
 *
 * Layout (numpy/lib/format.py, "Format Version 1.0"):
 *   0  magic "\x93NUMPY"
 *   6  major version 1, minor version 0
 *   8  HEADER_LEN, uint16 little-endian
 *  10  header: an ASCII Python dict literal
 *        {'descr': '<f4', 'fortran_order': False, 'shape': (R, C), }
 *      padded with spaces and ended by '\n' so that 10 + HEADER_LEN is a multiple of 64
 *  10 + HEADER_LEN: the data, R*C little-endian float32 in C (row-major) order.
 */
#ifndef GLMQ_FORMATS_NPY_H
#define GLMQ_FORMATS_NPY_H

#include "core/internal.h"

/* Write data[rows][cols] (host floats, written little-endian) to path as a 2-D '<f4' array,
 * atomically (core/atomic.h): on failure nothing is left at path and an existing file is
 * untouched. rows and cols must be >= 0 (GLMQ_E_INVALID otherwise). */
glmq_status glmq_npy_write_f32(const char *path, const float *data, int64_t rows, int64_t cols,
                               glmq_err *err);

#endif /* GLMQ_FORMATS_NPY_H */
