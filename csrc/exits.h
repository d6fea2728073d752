/* Worker threads announce their exit; the launching thread waits for all
 * of them, polling the caller (signals: Ctrl-C) every 50 ms. The wait
 * times out on a monotonic clock where a condition variable can use one,
 * so a wall-clock jump cannot hold a poll back. */
#ifndef PA_EXITS_H
#define PA_EXITS_H
#include <errno.h>
#include <pthread.h>
#include <time.h>

#if defined(__APPLE__) || !defined(CLOCK_MONOTONIC)
#define PA_EXITS_CLOCK CLOCK_REALTIME /* no pthread_condattr_setclock */
#define PA_EXITS_SETCLOCK 0
#else
#define PA_EXITS_CLOCK CLOCK_MONOTONIC
#define PA_EXITS_SETCLOCK 1
#endif

/* how often a long run asks the caller whether to stop (Ctrl-C) */
#define PA_POLL_NS 50000000LL

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int n_exited;
} pa_exits;

static inline void pa_exits_init(pa_exits *e)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
#if PA_EXITS_SETCLOCK
    pthread_condattr_setclock(&attr, PA_EXITS_CLOCK);
#endif
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, &attr);
    pthread_condattr_destroy(&attr);
    e->n_exited = 0;
}

static inline void pa_exits_destroy(pa_exits *e)
{
    pthread_cond_destroy(&e->cond);
    pthread_mutex_destroy(&e->lock);
}

/* A worker's last act. */
static inline void pa_exits_leave(pa_exits *e)
{
    pthread_mutex_lock(&e->lock);
    e->n_exited++;
    pthread_cond_signal(&e->cond);
    pthread_mutex_unlock(&e->lock);
}

/* Waits until `n` workers have left; where `poll` says stop, sets *stop
 * for the workers to see. */
static inline void pa_exits_wait(pa_exits *e, int n, int (*poll)(void *), void *poll_ctx,
                                 int *stop)
{
    pthread_mutex_lock(&e->lock);
    while (e->n_exited < n) {
        struct timespec ts;
        clock_gettime(PA_EXITS_CLOCK, &ts);
        ts.tv_nsec += PA_POLL_NS;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        int rc = pthread_cond_timedwait(&e->cond, &e->lock, &ts);
        if (rc == ETIMEDOUT && poll) {
            pthread_mutex_unlock(&e->lock);
            if (poll(poll_ctx))
                __atomic_store_n(stop, 1, __ATOMIC_RELAXED);
            pthread_mutex_lock(&e->lock);
        }
    }
    pthread_mutex_unlock(&e->lock);
}
#endif
