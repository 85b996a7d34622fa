/*
 * dot_x86_helpers.h - the helpers shared by the x86 kernel templates quant/dot_x86_impl.h and
 * quant/dot_x86_fast_impl.h: name pasting, GEMV prefetch, row and group scales, the
 * accumulator arrays of a micro-kernel and the group-wise kernel definer. Written against the
 * vector abstraction of the ISA file (quant/dot_x86_impl.h lists it), which defines it first.
 *
 * Not a normal header: included once per ISA file, by quant/dot_x86_impl.h, or directly by an
 * ISA file that instantiates only the FAST template (quant/dot_avxvnni.c).
 */
#ifndef GLMQ_DOT_X86_HELPERS_H
#define GLMQ_DOT_X86_HELPERS_H

/* 1 when the ISA file's INT4 FAST_B32 kernels read the prepared nb (dot.h §4): the 256-bit
 * levels (quant/dot_avx2_vec.h); the AVX-512 ones do not. */
#ifndef DOT_B32_NB
#define DOT_B32_NB 0
#endif

#define DOT_CAT_(a, b) a##b
#define DOT_CAT(a, b) DOT_CAT_(a, b)
#define DOT_NAME(base) DOT_CAT(base, DOT_ISA)

/* ---- helpers of every kernel ----------------------------------------------------------------- */

/*
 * GEMV prefetch (T == 1 only: GEMM re-reads its panel from L1/L2 for every token group). While
 * a panel of R rows runs chunk ch, the same chunk of the next panel (R rows further, i.e.
 * R * stride bytes ahead) is requested: the prefetch stream is exactly the order in which the
 * data will be used, a whole panel (8-16 KiB INT4) ahead, and works for any stride. Rows of
 * INT4 are only 2 KiB at cols 4096, too short for the hardware prefetchers to ramp up on
 * 4-8 interleaved streams. Prefetches past the matrix end are harmless (they never fault).
 *
 * Into L2 (T1), not L1 (T0): a panel ahead is 16-32 KiB, the current one as much, and L1d is
 * 32-48 KiB, so T0 lines evicted each other before use. On a 2-core Zen 4 (AVX-512 VNNI), same
 * binary otherwise, alternating: decode of synthetic ChatGLM2-6B on 2 threads, 32 tokens, INT4
 * 3.78 s -> 2.10 s, INT8 6.36 s -> 4.70 s; one INT4 FAST_B32 GEMV from DRAM on one thread
 * 17 -> 24-27 GB/s. (A sweep of the next panel in address order instead of in the order of use
 * was no better with T1 and, with T0, slowed the EXACT INT8 GEMV, whose panel is 32 KiB.)
 */
AI void prefetch_next(const uint8_t *p, const int64_t bytes)
{
    for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)(p + o), _MM_HINT_T1);
}

/*
 * FAST_B32 GEMV: the chunk 8 chunks further along the same row (0.5-1 KiB ahead), from L2 into
 * L1 (T0), beside prefetch_next's L2 request a panel ahead. The lines reach L1 shortly before use
 * (R x 8 chunks in flight: 4 KiB INT4 on AVX-512), so they cannot evict each other as a whole
 * panel prefetched into L1 did on Zen 4. On a 2-core Zen 5 (48 KiB L1d), alternating with the
 * L2-only build, decode of synthetic ChatGLM2-6B after 16 tokens: INT4 1.10x on 1 thread, 1.05x
 * on 2 (medians of 4 and 6 pairs; every pair >= 1.0x on 2 threads), INT8 unchanged (0.99-1.00x).
 * A panel prefetched into L1 gave INT4 1.06-1.09x there but cost INT8 0.88x on 1 thread.
 * Not measured on Zen 4. Past the row end it reaches the next row, which the panel reads anyway.
 */
AI void prefetch_near(const uint8_t *chunk, const int64_t cb)
{
    for (int64_t o = 0; o < cb; o += 64)
        _mm_prefetch((const char *)(chunk + 8 * cb + o), _MM_HINT_T0);
}

/* fp16 row scale widened by F16C vcvtph2ps: exact, the same value as glmq_f16_to_f32. */
AI float row_scale(const glmq_dot_mat *w, int64_t r) { return _cvtsh_ss(w->scales[r]); }

/*
 * Group-wise types: the scales of the four 32-column blocks of 128-column chunk ch of row r, as
 * fp32 lanes 0..3 (F16C vcvtph2ps: exact, = glmq_f16_to_f32). A group of G = 32 / 64 / 128
 * (a compile-time constant) holds 1 / 2 / 4 whole blocks, so a chunk needs 4 / 2 / 1 scales.
 * half: the final 64-column half chunk of an INT8 row; only its blocks 0 and 1 are valid and
 * only the scales that exist are read (lanes 2 and 3 are then 0 or a copy, never used).
 */
AI uint32_t ld_u32(const uint16_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
AI __m128 grp_scales4(const glmq_dot_mat *w, int64_t r, int64_t ch, const int G, const int half)
{
    const uint16_t *s = w->scales + r * w->spr;
    if (G == 32) {
        const __m128i h = half ? _mm_cvtsi32_si128((int)ld_u32(s + 4 * ch))
                               : _mm_loadl_epi64((const __m128i *)(const void *)(s + 4 * ch));
        return _mm_cvtph_ps(h);
    }
    if (G == 64) {
        const __m128 f = _mm_cvtph_ps(half ? _mm_cvtsi32_si128(s[2 * ch])
                                           : _mm_cvtsi32_si128((int)ld_u32(s + 2 * ch)));
        return _mm_unpacklo_ps(f, f); /* s0 s0 s1 s1 */
    }
    const __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128(s[ch]));
    return _mm_shuffle_ps(f, f, 0);
}

/* Groups of 128: the one scale of chunk ch of row r in every lane (exact, as above). */
AI VF grp_scale128(const glmq_dot_mat *w, int64_t r, int64_t ch)
{
    return vf_set1(_cvtsh_ss(w->scales[r * w->spr + ch]));
}

/* GEMV prefetch of the group scales of chunk ch of row r (the row R rows ahead, i.e. the next
 * panel, into L2 as prefetch_next does for the codes): 8 / 4 / 2 bytes per chunk, one request
 * per 32 bytes of a row's scales (so every 64-byte line is requested, whatever the row's
 * alignment). */
AI void prefetch_scales(const glmq_dot_mat *w, int64_t r, int64_t ch, const int G)
{
    if (((ch * (256 / G)) & 31) == 0)
        _mm_prefetch((const char *)(w->scales + r * w->spr + ch * (128 / G)), _MM_HINT_T1);
}

/* Quantize VW floats with block inverse scale id: VW int32 codes in [-127, 127]. */
AI VI act_codes(VF x, VF id)
{
    VF v = vf_mul(x, id);
    v = vf_max(v, vf_set1(-127.0f)); /* vmaxps returns src2 for NaN: -127, as _ref */
    v = vf_min(v, vf_set1(127.0f));
    return vf_cvt_i32(v);
}

#define NV32 (32 / VW) /* fp32 vectors per 32-column activation block */

/* acc[r][t] = 0, and acc[r][t] += inner[r][t], for the R x T outputs of a micro-kernel. */
AI void acc_zero(const int R, const int T, VF (*acc)[TMAX])
{
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = vf_zero();
}
AI void acc_add(const int R, const int T, VF (*acc)[TMAX], VF (*inner)[TMAX])
{
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[r][t] = vf_add(acc[r][t], inner[r][t]);
}

/* The end of a chunk: its fresh partials into the running sums, multiplied by each row's group
 * scale sv[r] when one scale covers the whole chunk (groups of 128), else added as they are. */
AI void acc_add_chunk(const int G, const int R, const int T, VF (*acc)[TMAX], VF (*inner)[TMAX],
                      const VF *sv)
{
    if (G == 128)
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
#pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[r][t] = vf_fma(inner[r][t], sv[r], acc[r][t]);
    else
        acc_add(R, T, acc, inner);
}

/* The rows of a panel (R rows from r) and the prepared tokens of a group (T from t). */
AI void panel_ptrs(const int R, const int T, const glmq_dot_mat *w, int64_t r,
                   const glmq_dot_act *a, int64_t t, const uint8_t **wr, const uint8_t **tk)
{
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) wr[i] = (const uint8_t *)w->data + (size_t)(r + i) * w->stride;
#pragma GCC unroll 8
    for (int j = 0; j < T; j++) tk[j] = glmq_dot_tok(a, t + j);
}

/* A static kernel of a group-wise entry point (GLMQ_DOT_GROUP_ENTRY): one per group size. */
#define DOT_GROUP_KERNEL(fname, BLK, RV, RM, TM, NB)                                             \
    static void fname(const glmq_dot_mat *w, int64_t r0, int64_t r1, const glmq_dot_act *a,     \
                      float *y, int64_t ldy) GLMQ_DOT_DRIVER(RV, RM, TM, BLK, NB)

#endif /* GLMQ_DOT_X86_HELPERS_H */
