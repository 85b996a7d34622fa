/*
 * hacc_x86_impl.h - the body of the SIMD H accumulation kernels, included by hacc_avx2.c
 * (V = __m256d, 4 doubles) and hacc_avx512.c (V = __m512d, 8 doubles) after they define
 *
 *   HV        the vector type          HW      its lanes
 *   HLOAD/HSTORE(p[, v])  unaligned    HSET1   broadcast      HFMA(a, b, c) = a * b + c
 *   HMUL(a, b) HSUB(a, b)                                    each rounded on its own
 *   HACC_NAME the function name
 *   HACC_AXPY_NAME, HACC_DOT_NAME + HACC_DOT4_NAME (optional)  GPTQ's loops (hacc.h); the dots
 *             use 256-bit vectors whatever HV is
 *   HACC_DOT4X4_NAME + HACC_DOT4X4_R (optional)  gptq_dot4x4 (hacc.h), R rows of a per pass
 *             (AVX2: 2, so its 8 accumulators and 4 b vectors fit the 16 ymm; AVX-512VL: 4)
 *   HACC_UPDATE_NAME + HACC_UPDATE_R (optional)  gptq_update (hacc.h): tiles of R rows x 4
 *             vectors (AVX2: 2 rows, 8 accumulators; AVX-512: 4 rows, 16)
 *   HACC_DOT8_AVX2 / HACC_DOT8_AVX512 (optional)  the reference forward's dot8_rows (hacc.h)
 *
 * Lane layout: one vector holds h[i][j..j+HW) of one row i (different elements in the lanes);
 * a tile is 4 rows x 3 vectors (12 accumulators of HW doubles), loaded from h, then updated
 * token by token in order (x_ti broadcast times x_t[j..j+3HW)), then stored. The product of two
 * fp64 values converted from fp32 is exact, so HFMA rounds once exactly like the scalar
 * h += xi * xj: every element gets the bits of glmq_hacc_block_ref. Smaller tiles (4 x 1
 * vector, 1 x 1 vector) and a scalar loop per element finish the edges; the 4 x 4 corner on the
 * diagonal is scalar (only j >= i is written).
 */

/* h[r][a..b) by the scalar rule (tokens in order). */
static inline void hacc_elems(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                              int64_t r, int64_t a, int64_t b)
{
    for (int64_t j = a; j < b; j++) {
        double s = h[r * n + j];
        for (int64_t t = 0; t < nt; t++) s += x[t * ldx + r] * x[t * ldx + j];
        h[r * n + j] = s;
    }
}

/* rows i..i+3, columns j..j+3HW */
static inline void hacc_tile4x3(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                                int64_t i, int64_t j)
{
    double *p0 = h + i * n + j, *p1 = p0 + n, *p2 = p1 + n, *p3 = p2 + n;
    HV a00 = HLOAD(p0), a01 = HLOAD(p0 + HW), a02 = HLOAD(p0 + 2 * HW);
    HV a10 = HLOAD(p1), a11 = HLOAD(p1 + HW), a12 = HLOAD(p1 + 2 * HW);
    HV a20 = HLOAD(p2), a21 = HLOAD(p2 + HW), a22 = HLOAD(p2 + 2 * HW);
    HV a30 = HLOAD(p3), a31 = HLOAD(p3 + HW), a32 = HLOAD(p3 + 2 * HW);
    for (int64_t t = 0; t < nt; t++) {
        const double *xt = x + t * ldx;
        const HV b0 = HLOAD(xt + j), b1 = HLOAD(xt + j + HW), b2 = HLOAD(xt + j + 2 * HW);
        HV s = HSET1(xt[i]);
        a00 = HFMA(s, b0, a00);
        a01 = HFMA(s, b1, a01);
        a02 = HFMA(s, b2, a02);
        s = HSET1(xt[i + 1]);
        a10 = HFMA(s, b0, a10);
        a11 = HFMA(s, b1, a11);
        a12 = HFMA(s, b2, a12);
        s = HSET1(xt[i + 2]);
        a20 = HFMA(s, b0, a20);
        a21 = HFMA(s, b1, a21);
        a22 = HFMA(s, b2, a22);
        s = HSET1(xt[i + 3]);
        a30 = HFMA(s, b0, a30);
        a31 = HFMA(s, b1, a31);
        a32 = HFMA(s, b2, a32);
    }
    HSTORE(p0, a00), HSTORE(p0 + HW, a01), HSTORE(p0 + 2 * HW, a02);
    HSTORE(p1, a10), HSTORE(p1 + HW, a11), HSTORE(p1 + 2 * HW, a12);
    HSTORE(p2, a20), HSTORE(p2 + HW, a21), HSTORE(p2 + 2 * HW, a22);
    HSTORE(p3, a30), HSTORE(p3 + HW, a31), HSTORE(p3 + 2 * HW, a32);
}

/* rows i..i+3, columns j..j+HW */
static inline void hacc_tile4x1(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                                int64_t i, int64_t j)
{
    double *p0 = h + i * n + j, *p1 = p0 + n, *p2 = p1 + n, *p3 = p2 + n;
    HV a0 = HLOAD(p0), a1 = HLOAD(p1), a2 = HLOAD(p2), a3 = HLOAD(p3);
    for (int64_t t = 0; t < nt; t++) {
        const double *xt = x + t * ldx;
        const HV b = HLOAD(xt + j);
        a0 = HFMA(HSET1(xt[i]), b, a0);
        a1 = HFMA(HSET1(xt[i + 1]), b, a1);
        a2 = HFMA(HSET1(xt[i + 2]), b, a2);
        a3 = HFMA(HSET1(xt[i + 3]), b, a3);
    }
    HSTORE(p0, a0), HSTORE(p1, a1), HSTORE(p2, a2), HSTORE(p3, a3);
}

/* row i, columns j..j+HW */
static inline void hacc_tile1x1(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt,
                                int64_t i, int64_t j)
{
    double *p = h + i * n + j;
    HV a = HLOAD(p);
    for (int64_t t = 0; t < nt; t++) a = HFMA(HSET1(x[t * ldx + i]), HLOAD(x + t * ldx + j), a);
    HSTORE(p, a);
}

void HACC_NAME(double *h, int64_t n, const double *x, int64_t ldx, int64_t nt, int64_t i0,
               int64_t i1, int64_t j0, int64_t j1)
{
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
        const int64_t js = i > j0 ? i : j0;
        int64_t jc = i + 4 < j1 ? i + 4 : j1; /* the diagonal corner [js, jc), scalar */
        if (jc < js) jc = js;
        for (int64_t r = i; r < i + 4; r++) hacc_elems(h, n, x, ldx, nt, r, r > js ? r : js, jc);
        int64_t j = jc;
        for (; j + 3 * HW <= j1; j += 3 * HW) hacc_tile4x3(h, n, x, ldx, nt, i, j);
        for (; j + HW <= j1; j += HW) hacc_tile4x1(h, n, x, ldx, nt, i, j);
        for (int64_t r = i; r < i + 4; r++) hacc_elems(h, n, x, ldx, nt, r, j, j1);
    }
    for (; i < i1; i++) {
        int64_t j = i > j0 ? i : j0;
        for (; j + HW <= j1; j += HW) hacc_tile1x1(h, n, x, ldx, nt, i, j);
        hacc_elems(h, n, x, ldx, nt, i, j, j1);
    }
}

/* GPTQ's loops must round every product and sum on its own (hacc.h); the file is compiled with
 * FMA enabled, and Clang contracts a * b + c by default (GCC does not in ISO C mode). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#ifdef HACC_AXPY_NAME
/* GPTQ's w -= e * u (hacc.h): HW lanes, then the scalar rule for the tail. */
void HACC_AXPY_NAME(double *w, const double *u, double e, int64_t n)
{
    const HV ev = HSET1(e);
    int64_t i = 0;
    for (; i + HW <= n; i += HW) HSTORE(w + i, HSUB(HLOAD(w + i), HMUL(ev, HLOAD(u + i))));
    for (; i < n; i++) w[i] -= e * u[i];
}
#endif

#ifdef HACC_UPDATE_NAME
/* GPTQ's lazy-batch update (hacc.h): R rows x 4 vectors of w held in registers while the nc
 * columns of e and rows of u pass in order, then stored; columns in tiles of 4 vectors (u's
 * slice of a tile, nc x 4 vectors, is re-read from L1 by every group of rows). */
static inline __attribute__((always_inline)) void update_tile(double *w, int64_t ldw,
                                                              const double *e, int64_t lde,
                                                              const double *u, int64_t ldu,
                                                              int64_t nc, const int R)
{
    HV acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) acc[r][i] = HLOAD(w + r * ldw + i * HW);
    for (int64_t c = 0; c < nc; c++) {
        HV uv[4];
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) uv[i] = HLOAD(u + c * ldu + i * HW);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const HV ev = HSET1(e[r * lde + c]);
#pragma GCC unroll 4
            for (int i = 0; i < 4; i++) acc[r][i] = HSUB(acc[r][i], HMUL(ev, uv[i]));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int i = 0; i < 4; i++) HSTORE(w + r * ldw + i * HW, acc[r][i]);
}

void HACC_UPDATE_NAME(double *w, int64_t ldw, int64_t nr, const double *e, int64_t lde,
                      const double *u, int64_t ldu, int64_t nc, int64_t nk)
{
    int64_t k = 0;
    for (; k + 4 * HW <= nk; k += 4 * HW) {
        int64_t r = 0;
        for (; r + HACC_UPDATE_R <= nr; r += HACC_UPDATE_R)
            update_tile(w + r * ldw + k, ldw, e + r * lde, lde, u + k, ldu, nc, HACC_UPDATE_R);
        for (; r < nr; r++) update_tile(w + r * ldw + k, ldw, e + r * lde, lde, u + k, ldu, nc, 1);
    }
    for (int64_t r = 0; r < nr; r++) /* the last columns: the scalar rule */
        for (int64_t c = 0; c < nc; c++)
            for (int64_t i = k; i < nk; i++) w[r * ldw + i] -= e[r * lde + c] * u[c * ldu + i];
}
#endif

#if defined(HACC_DOT_NAME) || defined(HACC_DOT4X4_NAME)
/* The end of gptq_dot (hacc.h): its four lanes in acc, the tail terms a[k] b[k] for k in
 * [i, n) into lane 0, then (s0 + s1) + (s2 + s3). */
static inline double dot4_finish(__m256d acc, const double *a, const double *b, int64_t i,
                                 int64_t n)
{
    double s[4];
    _mm256_storeu_pd(s, acc);
    for (; i < n; i++) s[0] += a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}
#endif

#ifdef HACC_DOT_NAME
/* GPTQ's fixed-order dot product (hacc.h): the four partial sums of glmq_gptq_dot_ref in the
 * lanes of one 256-bit vector (multiply, then add). */
double HACC_DOT_NAME(const double *a, const double *b, int64_t n)
{
    __m256d acc = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        acc = _mm256_add_pd(acc, _mm256_mul_pd(_mm256_loadu_pd(a + i), _mm256_loadu_pd(b + i)));
    return dot4_finish(acc, a, b, i, n);
}

/* Four of those against one b: out[r] = dot(a + r * lda, b, n). */
void HACC_DOT4_NAME(const double *a, int64_t lda, const double *b, int64_t n, double *out)
{
    __m256d acc[4] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                      _mm256_setzero_pd()};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d bv = _mm256_loadu_pd(b + i);
        for (int r = 0; r < 4; r++)
            acc[r] = _mm256_add_pd(acc[r], _mm256_mul_pd(_mm256_loadu_pd(a + r * lda + i), bv));
    }
    for (int r = 0; r < 4; r++) out[r] = dot4_finish(acc[r], a + r * lda, b, i, n);
}
#endif

#ifdef HACC_DOT4X4_NAME
/* HACC_DOT4X4_R (2 or 4) rows of a against the 4 staggered rows of b (hacc.h, gptq_dot4x4):
 * accumulator [r][m] is row r's and b row m's four lanes, joining at quad m, so every one runs
 * gptq_dot's additions in its order; the shared b and a loads feed R x 4 independent chains. */
static inline __attribute__((always_inline)) void dot4x4_rows(const double *a, int64_t lda,
                                                              const double *b, int64_t ldb,
                                                              int64_t n, double *out, const int R)
{
    const int64_t nq = n / 4;
    __m256d acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) acc[r][m] = _mm256_setzero_pd();
    for (int64_t q = 0; q < 3; q++) /* the staggered starts: b row m from quad m on */
        for (int m = 0; m <= q; m++) {
            const __m256d bv = _mm256_loadu_pd(b + m * ldb + 4 * q);
            for (int r = 0; r < R; r++)
                acc[r][m] = _mm256_add_pd(acc[r][m],
                                          _mm256_mul_pd(_mm256_loadu_pd(a + r * lda + 4 * q), bv));
        }
    for (int64_t q = 3; q < nq; q++) {
        __m256d bv[4];
#pragma GCC unroll 4
        for (int m = 0; m < 4; m++) bv[m] = _mm256_loadu_pd(b + m * ldb + 4 * q);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m256d av = _mm256_loadu_pd(a + r * lda + 4 * q);
#pragma GCC unroll 4
            for (int m = 0; m < 4; m++)
                acc[r][m] = _mm256_add_pd(acc[r][m], _mm256_mul_pd(av, bv[m]));
        }
    }
    for (int r = 0; r < R; r++)
        for (int m = 0; m < 4; m++)
            out[4 * r + m] = dot4_finish(acc[r][m], a + r * lda, b + m * ldb, 4 * nq, n);
}

void HACC_DOT4X4_NAME(const double *a, int64_t lda, const double *b, int64_t ldb, int64_t n,
                      double *out)
{
#if HACC_DOT4X4_R == 4
    dot4x4_rows(a, lda, b, ldb, n, out, 4);
#else
    dot4x4_rows(a, lda, b, ldb, n, out, 2);
    dot4x4_rows(a + 2 * lda, lda, b, ldb, n, out + 8, 2);
#endif
}
#endif

/* ---- the reference forward's dot8 (hacc.h), rows x tokens ------------------------------------ */

#if defined(HACC_DOT8_AVX2) || defined(HACC_DOT8_AVX512)
/* One output from its 8 lanes l: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), then the
 * tail terms w[i] x[i], i = n8 .. n-1, in order (glmq_dot8_f32's operations). */
static inline float dot8_finish(const float *l, const float *w, const float *x, int64_t n8,
                                int64_t n)
{
    float s = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
    for (int64_t i = n8; i < n; i++) s += w[i] * x[i];
    return s;
}

/* R rows (1 or 4) x T tokens (1 or 2) from w / x, one 256-bit vector of lanes per output. */
static inline __attribute__((always_inline)) void dot8_ymm(const float *w, int64_t ldw,
                                                           const float *x, int64_t ldx,
                                                           int64_t n, float *y, int64_t ldy,
                                                           const int R, const int T)
{
    const int64_t n8 = n - n % 8;
    __m256 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        __m256 xv[2];
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps(x + t * ldx + i);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m256 wv = _mm256_loadu_ps(w + r * ldw + i);
#pragma GCC unroll 4
            for (int t = 0; t < T; t++)
                acc[r][t] = _mm256_add_ps(acc[r][t], _mm256_mul_ps(wv, xv[t]));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            float l[8];
            _mm256_storeu_ps(l, acc[r][t]);
            y[t * ldy + r] = dot8_finish(l, w + r * ldw, x + t * ldx, n8, n);
        }
}
#endif

#if defined(HACC_DOT8_AVX2)
/* All nr rows against T tokens from x: 4 rows at a time, then single rows. */
static inline __attribute__((always_inline)) void dot8_ymm_rows(const float *w, int64_t ldw,
                                                                int64_t nr, const float *x,
                                                                int64_t ldx, int64_t n, float *y,
                                                                int64_t ldy, const int T)
{
    int64_t r = 0;
    for (; r + 4 <= nr; r += 4) dot8_ymm(w + r * ldw, ldw, x, ldx, n, y + r, ldy, 4, T);
    for (; r < nr; r++) dot8_ymm(w + r * ldw, ldw, x, ldx, n, y + r, ldy, 1, T);
}

/* Token pairs (4 rows x 2 tokens: 8 accumulators), then an odd last token alone. */
void glmq_dot8_rows_avx2(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                         int64_t nt, int64_t n, float *y, int64_t ldy)
{
    int64_t t = 0;
    for (; t + 2 <= nt; t += 2) dot8_ymm_rows(w, ldw, nr, x + t * ldx, ldx, n, y + t * ldy, ldy, 2);
    if (t < nt) dot8_ymm_rows(w, ldw, nr, x + t * ldx, ldx, n, y + t * ldy, ldy, 1);
}
#endif

#if defined(HACC_DOT8_AVX512)
/* R rows (1 or 4) x 4 tokens: one 512-bit vector holds the 8 lanes of tokens t, t+1 (low and
 * high half; each row's 8 weights broadcast to both halves), another those of t+2, t+3. */
static inline __attribute__((always_inline)) void dot8_zmm(const float *w, int64_t ldw,
                                                           const float *x, int64_t ldx,
                                                           int64_t n, float *y, int64_t ldy,
                                                           const int R)
{
    const int64_t n8 = n - n % 8;
    __m512 acc[4][2];
#pragma GCC unroll 4
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n8; i += 8) {
        __m512 xv[2];
#pragma GCC unroll 4
        for (int p = 0; p < 2; p++)
            xv[p] = _mm512_castpd_ps(_mm512_insertf64x4(
                _mm512_castps_pd(_mm512_castps256_ps512(_mm256_loadu_ps(x + 2 * p * ldx + i))),
                _mm256_castps_pd(_mm256_loadu_ps(x + (2 * p + 1) * ldx + i)), 1));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            const __m512 wv = _mm512_castpd_ps(
                _mm512_broadcast_f64x4(_mm256_castps_pd(_mm256_loadu_ps(w + r * ldw + i))));
#pragma GCC unroll 4
            for (int p = 0; p < 2; p++)
                acc[r][p] = _mm512_add_ps(acc[r][p], _mm512_mul_ps(wv, xv[p]));
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int p = 0; p < 2; p++) {
            float l[16];
            _mm512_storeu_ps(l, acc[r][p]);
#pragma GCC unroll 4
            for (int h = 0; h < 2; h++) {
                const int t = 2 * p + h;
                y[t * ldy + r] = dot8_finish(l + 8 * h, w + r * ldw, x + t * ldx, n8, n);
            }
        }
}

/* Token quads, 4 rows at a time (8 accumulators of 16 lanes), then single rows; the last
 * nt % 4 tokens by the AVX2 kernel (the same bits). */
void glmq_dot8_rows_avx512(const float *w, int64_t ldw, int64_t nr, const float *x, int64_t ldx,
                           int64_t nt, int64_t n, float *y, int64_t ldy)
{
    int64_t t = 0;
    for (; t + 4 <= nt; t += 4) {
        int64_t r = 0;
        for (; r + 4 <= nr; r += 4)
            dot8_zmm(w + r * ldw, ldw, x + t * ldx, ldx, n, y + t * ldy + r, ldy, 4);
        for (; r < nr; r++)
            dot8_zmm(w + r * ldw, ldw, x + t * ldx, ldx, n, y + t * ldy + r, ldy, 1);
    }
    if (t < nt) glmq_dot8_rows_avx2(w, ldw, nr, x + t * ldx, ldx, nt - t, n, y + t * ldy, ldy);
}
#endif
