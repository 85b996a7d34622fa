/*
 * pool.c - fixed-size pthread pool (see pool.h). One generation counter under a mutex wakes the
 * workers; a pending count brings the caller back. No work stealing, no dynamic scheduling:
 * determinism comes from static partitioning by the callee.
 */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct glmq_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t gen;
    int pending, quit;
    glmq_pool_fn fn;
    void *arg;
};

typedef struct {
    glmq_pool *p;
    int i;
} worker_arg;

static void *worker(void *a)
{
    worker_arg wa = *(worker_arg *)a;
    free(a);
    glmq_pool *p = wa.p;
    uint64_t seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        seen = p->gen;
        glmq_pool_fn fn = p->fn;
        void *arg = p->arg;
        pthread_mutex_unlock(&p->mu);
        fn(arg, wa.i, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

int glmq_online_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

glmq_status glmq_pool_create(int nthreads, glmq_pool **out, glmq_err *err)
{
    *out = NULL;
    if (nthreads <= 0) nthreads = glmq_online_cores();
    GLMQ_FAIL_IF(nthreads > 1024, err, GLMQ_E_INVALID, "%d threads is too many (at most 1024)",
                 nthreads);
    glmq_pool *p = calloc(1, sizeof *p);
    GLMQ_FAIL_IF(!p, err, GLMQ_E_NOMEM, "out of memory");
    p->n = nthreads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (!p->th) {
        glmq_pool_free(p);
        return glmq_fail(err, GLMQ_E_NOMEM, "out of memory");
    }
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->i = i;
        }
        if (!wa || pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n = i; /* join the ones we started */
            glmq_pool_free(p);
            return glmq_fail(err, GLMQ_E_NOMEM, "cannot start worker thread %d", i);
        }
    }
    *out = p;
    return GLMQ_OK;
}

void glmq_pool_free(glmq_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int glmq_pool_size(const glmq_pool *p) { return p ? p->n : 1; }

void glmq_pool_run(glmq_pool *p, glmq_pool_fn fn, void *arg)
{
    if (!p || p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
