/*
 * pool.c - fixed-size pthread pool (see pool.h). A generation counter publishes each job and a
 * pending count brings the caller back. No work stealing, no dynamic scheduling: determinism
 * comes from static partitioning by the callee.
 *
 * Waiting is spin-then-sleep: a decode step runs a few hundred short jobs (one per matrix,
 * ~0.1-1 ms each) separated by microseconds of single-threaded work, and a condition-variable
 * wake-up costs tens of microseconds on a VM. So workers, and the caller waiting for them,
 * first poll the atomics for up to GLMQ_POOL_SPIN_NS, then sleep on the condition variables.
 * Lost wake-ups are excluded by re-checking under the mutex: a sleeper registers itself under
 * the mutex before its final check, and the waker reads the registration under the same mutex
 * after publishing (so either the sleeper sees the new state or the waker sees the sleeper).
 */
#include "core/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define GLMQ_POOL_SPIN_NS 200000 /* 0.2 ms: longer than the gaps inside a forward pass */

struct glmq_pool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    _Atomic uint64_t gen;  /* job number; a new value publishes fn/arg */
    _Atomic int pending;   /* workers still running the current job */
    _Atomic int quit;
    int sleepers;          /* workers asleep on go (under mu) */
    int caller_asleep;     /* the caller is asleep on done (under mu) */
    glmq_pool_fn fn;       /* written before gen is bumped, read after it is seen */
    void *arg;
};

typedef struct {
    glmq_pool *p;
    int i;
} worker_arg;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Poll until gen differs from seen (returns 1) or the spin budget runs out (0). */
static int spin_for_job(glmq_pool *p, uint64_t seen)
{
    int64_t t0 = 0;
    for (uint32_t i = 0;; i++) {
        if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
            atomic_load_explicit(&p->quit, memory_order_relaxed))
            return 1;
        cpu_relax();
        if ((i & 255) == 0) {
            const int64_t t = now_ns();
            if (i == 0) t0 = t;
            else if (t - t0 > GLMQ_POOL_SPIN_NS) return 0;
        }
    }
}

static void *worker(void *a)
{
    worker_arg wa = *(worker_arg *)a;
    free(a);
    glmq_pool *p = wa.p;
    uint64_t seen = 0;
    for (;;) {
        if (!spin_for_job(p, seen)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
                   !atomic_load_explicit(&p->quit, memory_order_relaxed))
                pthread_cond_wait(&p->go, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load_explicit(&p->quit, memory_order_relaxed)) return NULL;
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        p->fn(p->arg, wa.i, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_asleep) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
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
        p->n = 1; /* no workers to join */
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
    atomic_store(&p->quit, 1);
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
    /* the previous job has fully finished (pending reached 0), so no worker reads fn/arg now */
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    int64_t t0 = now_ns();
    for (uint32_t i = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 255) == 0 && now_ns() - t0 > GLMQ_POOL_SPIN_NS) {
            pthread_mutex_lock(&p->mu);
            p->caller_asleep = 1;
            while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
                pthread_cond_wait(&p->done, &p->mu);
            p->caller_asleep = 0;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
}
