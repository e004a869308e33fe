/* A tl_transport between threads of one process, for tests: each thread
 * is a rank; a message is copied into a FIFO per (sender, receiver) pair,
 * as MPI keeps messages between two ranks in order. `jitter` makes test()
 * answer "not yet" at random for a while, so the ranks' timing varies
 * from run to run. `mute` ranks never complete a receive (a dead peer). */
#ifndef TL_TEST_COMM_THREADS_H
#define TL_TEST_COMM_THREADS_H

#include "core/comm.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CT_MAX 16

typedef struct ct_msg {
    struct ct_msg *next;
    size_t bytes;
    unsigned char data[];
} ct_msg;

typedef struct ct_world {
    int size;
    pthread_mutex_t mu;
    ct_msg *head[CT_MAX][CT_MAX], *tail[CT_MAX][CT_MAX]; /* [from][to] */
    int jitter;            /* 0: none; k: about 1 in k tests says "not yet" (and sleeps a little) */
    int dead[CT_MAX];      /* this rank sends nothing (as if killed) */
    long sent_bytes[CT_MAX];
} ct_world;

typedef struct ct_end {
    ct_world *w;
    int rank;
    unsigned rng;
    struct {
        int used, recv, peer;
        void *buf;
        size_t bytes;
    } req[TL_COMM_PENDING];
} ct_end;

static int ct_slot(ct_end *c, int *req, tl_err *e)
{
    for (int i = 0; i < TL_COMM_PENDING; i++)
        if (!c->req[i].used) {
            c->req[i].used = 1;
            *req = i;
            return 0;
        }
    return tl_fail(e, "threads: too many transfers");
}

static int ct_isend(void *ctx, const void *buf, size_t bytes, int peer, int *req, tl_err *e)
{
    ct_end *c = ctx;
    if (ct_slot(c, req, e))
        return -1;
    c->req[*req].recv = 0;
    if (c->w->dead[c->rank])
        return 0;
    ct_msg *m = malloc(sizeof *m + bytes + 1);
    if (!m)
        return tl_fail(e, "threads: out of memory");
    m->next = NULL;
    m->bytes = bytes;
    memcpy(m->data, buf, bytes);
    pthread_mutex_lock(&c->w->mu);
    if (c->w->tail[c->rank][peer])
        c->w->tail[c->rank][peer]->next = m;
    else
        c->w->head[c->rank][peer] = m;
    c->w->tail[c->rank][peer] = m;
    c->w->sent_bytes[c->rank] += (long)bytes;
    pthread_mutex_unlock(&c->w->mu);
    return 0;
}

static int ct_irecv(void *ctx, void *buf, size_t bytes, int peer, int *req, tl_err *e)
{
    ct_end *c = ctx;
    if (ct_slot(c, req, e))
        return -1;
    c->req[*req].recv = 1;
    c->req[*req].peer = peer;
    c->req[*req].buf = buf;
    c->req[*req].bytes = bytes;
    return 0;
}

static int ct_test(void *ctx, int req, tl_err *e)
{
    ct_end *c = ctx;
    if (c->w->jitter) {
        c->rng = c->rng * 1103515245u + 12345u;
        if ((c->rng >> 16) % (unsigned)c->w->jitter == 0) {
            usleep(50 + (c->rng >> 8) % 200);
            return 0;
        }
    }
    if (!c->req[req].recv) {
        c->req[req].used = 0;
        return 1;
    }
    int peer = c->req[req].peer, done = 0;
    pthread_mutex_lock(&c->w->mu);
    ct_msg *m = c->w->head[peer][c->rank];
    if (m) {
        c->w->head[peer][c->rank] = m->next;
        if (!m->next)
            c->w->tail[peer][c->rank] = NULL;
        done = 1;
    }
    pthread_mutex_unlock(&c->w->mu);
    if (!done)
        return 0;
    int rc = 1;
    if (m->bytes != c->req[req].bytes)
        rc = tl_fail(e, "threads: rank %d expected %zu bytes from %d, got %zu", c->rank, c->req[req].bytes, peer,
                     m->bytes);
    else
        memcpy(c->req[req].buf, m->data, m->bytes);
    free(m);
    c->req[req].used = 0;
    return rc;
}

static void ct_world_init(ct_world *w, int size)
{
    memset(w, 0, sizeof *w);
    w->size = size;
    pthread_mutex_init(&w->mu, NULL);
}

/* Messages left undelivered (a test that leaves some has a bug). */
static int ct_world_free(ct_world *w)
{
    int left = 0;
    for (int i = 0; i < CT_MAX; i++)
        for (int j = 0; j < CT_MAX; j++)
            for (ct_msg *m = w->head[i][j], *n; m; m = n) {
                n = m->next;
                free(m);
                left++;
            }
    pthread_mutex_destroy(&w->mu);
    return left;
}

/* end must live as long as the communicator. */
static void ct_comm(tl_comm *c, ct_world *w, ct_end *end, int rank, unsigned seed)
{
    memset(end, 0, sizeof *end);
    end->w = w;
    end->rank = rank;
    end->rng = seed * 2654435761u + (unsigned)rank;
    tl_transport tr = {"threads", rank, w->size, end, ct_isend, ct_irecv, ct_test, NULL, NULL};
    tl_comm_init(c, &tr);
}

#endif
