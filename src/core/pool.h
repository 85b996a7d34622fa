/*
 * pool.h - a fixed pthread pool for data-parallel loops (internal).
 *
 * glmq_pool_run(p, fn, arg) calls fn(arg, i, n) once for every i in [0, n) where n is the pool
 * size, the caller's own thread running i = 0, and returns when all have finished. Work is split
 * by the callee from (i, n) alone, so results never depend on scheduling: callers partition
 * statically and reduce in index order, which keeps outputs identical for any thread count.
 */
#ifndef GLMQ_POOL_H
#define GLMQ_POOL_H

#include "core/internal.h"

typedef struct glmq_pool glmq_pool;
typedef void (*glmq_pool_fn)(void *arg, int ith, int nth);

/* nthreads <= 0 means the number of online cores. */
glmq_status glmq_pool_create(int nthreads, glmq_pool **out, glmq_err *err);
void glmq_pool_free(glmq_pool *p); /* NULL-safe; joins the workers */
int glmq_pool_size(const glmq_pool *p);
void glmq_pool_run(glmq_pool *p, glmq_pool_fn fn, void *arg);
int glmq_online_cores(void);

#endif
