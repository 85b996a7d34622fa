/*
 * ggml_dequant.h - exact decoding of ggml's tensor types (as found in GGUF files) to fp32
 * (internal).
 *
 * glmq_ggml_dequant_row gives, for every input bit pattern, the same fp32 bits as ggml's own
 * to-float functions (dequantize_row_<type>, ggml_fp16_to_fp32_row, ggml_bf16_to_fp32_row) of
 * the llama.cpp release pinned as the test peer; tests/check_ggml_peer.c proves it against the
 * real library, on rows made by ggml's quantizer and on rows of random bytes.
 *
 * Decoded types (block = elements per block, bytes = bytes per block; f16 fields little-endian):
 *
 *   type  block bytes  layout of one block                          value of element i
 *   f32     1     4    IEEE binary32                                 the same bits
 *   f16     1     2    IEEE binary16                                 exact; a NaN comes out quiet
 *   bf16    1     2    bfloat16                                      bits << 16 (NaN kept as is)
 *   q4_0   32    18    d | qs[16]                                    (nib(i) - 8) * d
 *   q4_1   32    20    d | m | qs[16]                                nib(i) * d + m
 *   q5_0   32    22    d | qh[4] | qs[16]                            ((nib | hi << 4) - 16) * d
 *   q5_1   32    24    d | m | qh[4] | qs[16]                        (nib | hi << 4) * d + m
 *   q8_0   32    34    d | int8 qs[32]                               qs[i] * d
 *   q2_K  256    84    scales[16] | qs[64] | d | dmin                see ggml_dequant.c
 *   q3_K  256   110    hmask[32] | qs[64] | scales[12] | d
 *   q4_K  256   144    d | dmin | scales[12] | qs[128]
 *   q5_K  256   176    d | dmin | scales[12] | qh[32] | qs[128]
 *   q6_K  256   210    ql[128] | qh[64] | int8 scales[16] | d
 *
 * In the 32-element types byte j of qs holds element j in its low nibble and element j + 16 in
 * its high nibble; bit i of the little-endian u32 qh is the fifth bit of element i.
 *
 * Every product and sum is one rounded fp32 operation in the order ggml's definition writes it
 * (no fused multiply-add: the file is compiled with -ffp-contract=off), so the bits are equal,
 * not merely close.
 */
#ifndef GLMQ_QUANT_GGML_DEQUANT_H
#define GLMQ_QUANT_GGML_DEQUANT_H

#include "core/ggml_type.h"
#include "core/internal.h"

/*
 * Decode one row of `ne0` elements of ggml type `type` (a glmq_ggml_type id) from `src`
 * (glmq_ggml_row_bytes(type, ne0) bytes, any alignment) into dst[0..ne0).
 * @return GLMQ_OK (ne0 == 0 writes nothing);
 *         GLMQ_E_UNSUPPORTED for a type glmq does not decode (the IQ and TQ families, MXFP4,
 *         Q8_1, Q8_K, the integer types), naming it, or for an unknown type id;
 *         GLMQ_E_INVALID when ne0 is negative or not a multiple of the type's block size, or a
 *         pointer is NULL.
 * Thread-safe; never allocates.
 */
glmq_status glmq_ggml_dequant_row(uint32_t type, const void *src, int64_t ne0, float *dst,
                                  glmq_err *err);

#endif /* GLMQ_QUANT_GGML_DEQUANT_H */
