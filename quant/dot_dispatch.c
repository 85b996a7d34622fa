/*
 * dot_dispatch.c - argument checks and thread-pool wrappers of quant/dot.h. The kernel tables
 * are quant/dispatch.c's.
 *
 * The pool wrappers split work statically from (ith, nth) alone (src/core/pool.h), so results
 * never depend on scheduling; dot.h §3 makes them independent of the thread count as well.
 */
#include "quant/dot.h"

#include <stdint.h>

const char *glmq_dot_mode_name(glmq_dot_mode m)
{
    switch (m) {
    case GLMQ_DOT_EXACT: return "exact";
    case GLMQ_DOT_FAST_B32: return "fast-b32";
    case GLMQ_DOT_FAST_ROW: return "fast-row";
    }
    return "unknown";
}

/* ---- setup ----------------------------------------------------------------------------------- */

size_t glmq_dot_row_bytes(glmq_type type, int64_t cols)
{
    if (cols <= 0 || cols > GLMQ_DOT_MAX_COLS || type == GLMQ_TYPE_F32) return 0;
    const int64_t rb = glmq_row_bytes(type, cols);
    return rb > 0 ? (size_t)rb : 0;
}


/* Everything a kernel relies on about a matrix: a supported type and width, rows > 0, a stride
 * holding a packed row, data, and scales exactly when the type has them. */
static glmq_status check_mat(const glmq_dot_mat *m, glmq_err *err)
{
    GLMQ_FAIL_IF(m == NULL, err, GLMQ_E_INVALID, "dot: NULL matrix");
    const size_t rb = glmq_dot_row_bytes(m->type, m->cols);
    GLMQ_FAIL_IF(rb == 0, err, GLMQ_E_INVALID,
                 "dot: unsupported matrix (type %d, %lld cols; at most %d cols)", (int)m->type,
                 (long long)m->cols, GLMQ_DOT_MAX_COLS);
    GLMQ_FAIL_IF(m->rows <= 0, err, GLMQ_E_INVALID, "dot: %lld rows", (long long)m->rows);
    GLMQ_FAIL_IF(m->stride < rb, err, GLMQ_E_INVALID, "dot: row stride %zu < row bytes %zu",
                 m->stride, rb);
    GLMQ_FAIL_IF(m->data == NULL, err, GLMQ_E_INVALID, "dot: NULL matrix data");
    GLMQ_FAIL_IF(glmq_type_scaled(m->type) != (m->scales != NULL), err, GLMQ_E_INVALID,
                 "dot: %s matrix %s scales", glmq_type_name(m->type),
                 glmq_type_scaled(m->type) ? "without" : "with");
    GLMQ_FAIL_IF(m->group != glmq_type_group(m->type) ||
                     m->spr != glmq_scales_per_row(m->type, m->cols),
                 err, GLMQ_E_INVALID, "dot: %s matrix with group %lld, %lld scales per row",
                 glmq_type_name(m->type), (long long)m->group, (long long)m->spr);
    return GLMQ_OK;
}

glmq_status glmq_dot_mat_init(glmq_dot_mat *m, glmq_type type, int64_t rows, int64_t cols,
                              const void *data, const uint16_t *scales, glmq_err *err)
{
    GLMQ_FAIL_IF(m == NULL, err, GLMQ_E_INVALID, "dot: NULL matrix");
    m->type = type;
    m->rows = rows;
    m->cols = cols;
    m->stride = glmq_dot_row_bytes(type, cols);
    m->data = data;
    m->scales = scales;
    m->group = glmq_type_group(type);
    m->spr = glmq_scales_per_row(type, cols);
    return check_mat(m, err);
}

size_t glmq_dot_scratch_size(glmq_dot_mode mode, int64_t cols, int64_t ntok)
{
    if ((unsigned)mode >= GLMQ_DOT_NMODES || cols <= 0 || cols > GLMQ_DOT_MAX_COLS || ntok <= 0)
        return 0;
    uint64_t n;
    if (!glmq_mul_u64(glmq_dot_tok_bytes(mode, glmq_dot_padded_cols(cols)), (uint64_t)ntok, &n) ||
        !glmq_add_u64(n, 63, &n) || n > SIZE_MAX)
        return 0;
    return (size_t)n;
}

/* ---- prepare --------------------------------------------------------------------------------- */

/* Validate prepare's arguments and fill *out (mode, sizes, the 64-aligned buffer); the table
 * defaults to the active one. Shared by the serial and pool versions. */
static glmq_status prep_check(const glmq_dot_kernels **k, glmq_dot_mode mode, const float *x,
                              int64_t ldx, int64_t cols, int64_t ntok, void *scratch,
                              size_t scratch_size, glmq_dot_act *out, glmq_err *err)
{
    if (*k == NULL) *k = glmq_dot_kernels_get();
    GLMQ_FAIL_IF(out == NULL || x == NULL || scratch == NULL, err, GLMQ_E_INVALID,
                 "dot: NULL argument to prepare");
    const size_t need = glmq_dot_scratch_size(mode, cols, ntok);
    GLMQ_FAIL_IF(need == 0, err, GLMQ_E_INVALID,
                 "dot: cannot prepare %lld tokens of %lld columns in mode %d", (long long)ntok,
                 (long long)cols, (int)mode);
    GLMQ_FAIL_IF(ntok > 1 && ldx < cols, err, GLMQ_E_INVALID,
                 "dot: token stride %lld < %lld columns", (long long)ldx, (long long)cols);
    GLMQ_FAIL_IF(scratch_size < need, err, GLMQ_E_INVALID,
                 "dot: scratch of %zu bytes, %zu needed", scratch_size, need);
    const int64_t pc = glmq_dot_padded_cols(cols);
    out->mode = mode;
    out->cols = cols;
    out->pcols = pc;
    out->ntok = ntok;
    out->tok_bytes = glmq_dot_tok_bytes(mode, pc);
    out->buf = (uint8_t *)glmq_align_up((uintptr_t)scratch, 64);
    return GLMQ_OK;
}

glmq_status glmq_dot_prepare(const glmq_dot_kernels *k, glmq_dot_mode mode, const float *x,
                             int64_t ldx, int64_t cols, int64_t ntok, void *scratch,
                             size_t scratch_size, glmq_dot_act *out, glmq_err *err)
{
    GLMQ_TRY(prep_check(&k, mode, x, ldx, cols, ntok, scratch, scratch_size, out, err));
    for (int64_t t = 0; t < ntok; t++)
        k->prep[mode](x + t * ldx, cols, out->pcols, out->buf + (size_t)t * out->tok_bytes);
    return GLMQ_OK;
}

/* Thread ith of nth prepares tokens [ntok*ith/nth, ntok*(ith+1)/nth): disjoint slices of the
 * scratch, no synchronisation needed. */
typedef struct {
    const glmq_dot_kernels *k;
    const float *x;
    int64_t ldx;
    glmq_dot_act *a;
} prep_job;

static void prep_worker(void *arg, int ith, int nth)
{
    const prep_job *j = (const prep_job *)arg;
    const int64_t n = j->a->ntok;
    const int64_t t0 = n * ith / nth, t1 = n * (ith + 1) / nth;
    for (int64_t t = t0; t < t1; t++)
        j->k->prep[j->a->mode](j->x + t * j->ldx, j->a->cols, j->a->pcols,
                               j->a->buf + (size_t)t * j->a->tok_bytes);
}

glmq_status glmq_dot_prepare_pool(glmq_pool *pool, const glmq_dot_kernels *k,
                                  glmq_dot_mode mode, const float *x, int64_t ldx, int64_t cols,
                                  int64_t ntok, void *scratch, size_t scratch_size,
                                  glmq_dot_act *out, glmq_err *err)
{
    GLMQ_TRY(prep_check(&k, mode, x, ldx, cols, ntok, scratch, scratch_size, out, err));
    prep_job j = {k, x, ldx, out};
    if (pool == NULL || ntok < 2 * glmq_pool_size(pool))
        prep_worker(&j, 0, 1); /* a handful of tokens: not worth a wake-up */
    else
        glmq_pool_run(pool, prep_worker, &j);
    return GLMQ_OK;
}

/* ---- matmul ---------------------------------------------------------------------------------- */

/* The kernel for a weight type and activation mode, or NULL (F16/BF16 are EXACT only). */
static glmq_dot_mm_fn kernel_of(const glmq_dot_kernels *k, glmq_type type, glmq_dot_mode mode)
{
    switch (type) {
    case GLMQ_TYPE_INT4: return k->q4[mode];
    case GLMQ_TYPE_INT8: return k->q8[mode];
    case GLMQ_TYPE_INT4_G32:
    case GLMQ_TYPE_INT4_G64:
    case GLMQ_TYPE_INT4_G128: return k->q4g[mode];
    case GLMQ_TYPE_INT8_G32:
    case GLMQ_TYPE_INT8_G64:
    case GLMQ_TYPE_INT8_G128: return k->q8g[mode];
    case GLMQ_TYPE_F16: return mode == GLMQ_DOT_EXACT ? k->f16 : NULL;
    case GLMQ_TYPE_BF16: return mode == GLMQ_DOT_EXACT ? k->bf16 : NULL;
    default: return NULL;
    }
}

/* Validate matmul's arguments (matrix, act vs matrix columns, row range, output stride) and
 * pick the kernel. */
static glmq_status mm_check(const glmq_dot_kernels **k, const glmq_dot_mat *w, int64_t r0,
                            int64_t r1, const glmq_dot_act *a, const float *y, int64_t ldy,
                            glmq_dot_mm_fn *fn, glmq_err *err)
{
    if (*k == NULL) *k = glmq_dot_kernels_get();
    GLMQ_TRY(check_mat(w, err));
    GLMQ_FAIL_IF(a == NULL || y == NULL || a->buf == NULL, err, GLMQ_E_INVALID,
                 "dot: NULL argument to matmul");
    GLMQ_FAIL_IF((unsigned)a->mode >= GLMQ_DOT_NMODES, err, GLMQ_E_INVALID, "dot: bad mode %d",
                 (int)a->mode);
    GLMQ_FAIL_IF(a->cols != w->cols || a->pcols != glmq_dot_padded_cols(a->cols), err,
                 GLMQ_E_SHAPE, "dot: activations of %lld columns, matrix of %lld",
                 (long long)a->cols, (long long)w->cols);
    GLMQ_FAIL_IF(r0 < 0 || r0 > r1 || r1 > w->rows, err, GLMQ_E_SHAPE,
                 "dot: rows [%lld, %lld) outside [0, %lld)", (long long)r0, (long long)r1,
                 (long long)w->rows);
    GLMQ_FAIL_IF(a->ntok < 1 || (a->ntok > 1 && ldy < r1), err, GLMQ_E_SHAPE,
                 "dot: output stride %lld < %lld rows", (long long)ldy, (long long)r1);
    *fn = kernel_of(*k, w->type, a->mode);
    GLMQ_FAIL_IF(*fn == NULL, err, GLMQ_E_INVALID, "dot: %s weights cannot take %s activations",
                 glmq_type_name(w->type), glmq_dot_mode_name(a->mode));
    return GLMQ_OK;
}

glmq_status glmq_dot_matmul(const glmq_dot_kernels *k, const glmq_dot_mat *w, int64_t r0,
                            int64_t r1, const glmq_dot_act *a, float *y, int64_t ldy,
                            glmq_err *err)
{
    glmq_dot_mm_fn fn;
    GLMQ_TRY(mm_check(&k, w, r0, r1, a, y, ldy, &fn, err));
    if (r1 > r0) fn(w, r0, r1, a, y, ldy);
    return GLMQ_OK;
}

typedef struct {
    glmq_dot_mm_fn fn;
    const glmq_dot_mat *w;
    const glmq_dot_act *a;
    float *y;
    int64_t ldy;
} mm_job;

/* Thread ith of nth: rows [g0, g1) * GRAIN of the ceil(rows / GRAIN) grains, contiguous. */
static void mm_worker(void *arg, int ith, int nth)
{
    const mm_job *j = (const mm_job *)arg;
    const int64_t rows = j->w->rows;
    const int64_t ng = (rows + GLMQ_DOT_ROW_GRAIN - 1) / GLMQ_DOT_ROW_GRAIN;
    int64_t r0 = ng * ith / nth * GLMQ_DOT_ROW_GRAIN;
    int64_t r1 = ng * (ith + 1) / nth * GLMQ_DOT_ROW_GRAIN;
    if (r1 > rows) r1 = rows;
    if (r0 < r1) j->fn(j->w, r0, r1, j->a, j->y, j->ldy);
}

glmq_status glmq_dot_matmul_pool(glmq_pool *pool, const glmq_dot_kernels *k,
                                 const glmq_dot_mat *w, const glmq_dot_act *a, float *y,
                                 int64_t ldy, glmq_err *err)
{
    glmq_dot_mm_fn fn;
    GLMQ_TRY(mm_check(&k, w, 0, w ? w->rows : 0, a, y, ldy, &fn, err));
    mm_job j = {fn, w, a, y, ldy};
    if (pool == NULL || glmq_pool_size(pool) == 1)
        mm_worker(&j, 0, 1);
    else
        glmq_pool_run(pool, mm_worker, &j);
    return GLMQ_OK;
}

glmq_status glmq_dot_gemm_pool(glmq_pool *pool, const glmq_dot_kernels *k, glmq_dot_mode mode,
                               const glmq_dot_mat *w, const float *x, int64_t ldx, int64_t ntok,
                               float *y, int64_t ldy, void *scratch, size_t scratch_size,
                               glmq_err *err)
{
    GLMQ_FAIL_IF(w == NULL, err, GLMQ_E_INVALID, "dot: NULL matrix");
    glmq_dot_act a;
    GLMQ_TRY(glmq_dot_prepare_pool(pool, k, mode, x, ldx, w->cols, ntok, scratch, scratch_size,
                                   &a, err));
    return glmq_dot_matmul_pool(pool, k, w, &a, y, ldy, err);
}
