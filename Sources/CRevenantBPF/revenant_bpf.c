#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "revenant_bpf.h"
#include "generated/revenant.skel.h"

struct rv_bpf {
    struct revenant_bpf *skel;
    struct ring_buffer *rb;
    int ncpus;
};

/* libbpf reports through a global print callback: collect into the loading thread's buffer. */
static __thread char *log_buf;
static __thread size_t log_len, log_cap;

static int collect(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level == LIBBPF_DEBUG || !log_buf || log_len + 1 >= log_cap)
        return 0;
    int n = vsnprintf(log_buf + log_len, log_cap - log_len, fmt, ap);
    if (n > 0)
        log_len = (log_len + (size_t)n < log_cap) ? log_len + (size_t)n : log_cap - 1;
    return n;
}

int rv_bpf_start(struct rv_bpf **out, const struct rv_bpf_options *opts,
                 rv_event_fn fn, void *ctx, int *stage, char *log, unsigned long loglen)
{
    struct rv_bpf *b;
    int err;

    *out = NULL;
    log_buf = log; log_len = 0; log_cap = loglen;
    if (log && loglen)
        log[0] = 0;
    libbpf_set_print(collect);

    b = calloc(1, sizeof(*b));
    if (!b)
        return -ENOMEM;

    *stage = RV_STAGE_OPEN;
    b->skel = revenant_bpf__open();
    if (!b->skel) {
        err = -errno;
        goto fail;
    }
    b->skel->rodata->wakeup_bytes = opts ? opts->wakeup_bytes : (1u << 20);
    if (opts && opts->ringbuf_bytes) {
        err = bpf_map__set_max_entries(b->skel->maps.events, opts->ringbuf_bytes);
        if (err)
            goto fail;
    }

    *stage = RV_STAGE_LOAD;
    err = revenant_bpf__load(b->skel);
    if (err)
        goto fail;

    *stage = RV_STAGE_ATTACH;
    err = revenant_bpf__attach(b->skel);
    if (err)
        goto fail;

    *stage = RV_STAGE_RINGBUF;
    b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), (ring_buffer_sample_fn)fn, ctx, NULL);
    if (!b->rb) {
        err = -errno;
        goto fail;
    }
    b->ncpus = libbpf_num_possible_cpus();
    if (b->ncpus <= 0) {
        err = b->ncpus ? b->ncpus : -EINVAL;
        goto fail;
    }
    log_buf = NULL;
    *out = b;
    return 0;

fail:
    log_buf = NULL;
    rv_bpf_stop(b);
    return err < 0 ? err : -err;
}

int rv_bpf_poll(struct rv_bpf *b, int timeout_ms)
{
    /* Most records are submitted without a wake-up: poll on a timer, then drain. */
    int n = ring_buffer__poll(b->rb, timeout_ms);
    if (n < 0 && n != -EINTR)
        return n;
    int m = ring_buffer__consume(b->rb);
    if (m < 0)
        return m;
    return (n > 0 ? n : 0) + m;
}

int rv_bpf_counters(struct rv_bpf *b, unsigned long long *out)
{
    int fd = bpf_map__fd(b->skel->maps.counters);
    unsigned long long *vals = calloc((size_t)b->ncpus, sizeof(*vals));
    if (!vals)
        return -ENOMEM;
    for (unsigned int k = 0; k < RV_CNT__MAX; k++) {
        out[k] = 0;
        if (bpf_map_lookup_elem(fd, &k, vals)) {
            int err = -errno;
            free(vals);
            return err;
        }
        for (int c = 0; c < b->ncpus; c++)
            out[k] += vals[c];
    }
    free(vals);
    return 0;
}

long rv_bpf_proc_count(struct rv_bpf *b)
{
    int fd = bpf_map__fd(b->skel->maps.procs);
    unsigned int key, next;
    long n = 0;
    void *prev = NULL;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        key = next;
        prev = &key;
        n++;
    }
    return n;
}

void rv_bpf_stop(struct rv_bpf *b)
{
    if (!b)
        return;
    ring_buffer__free(b->rb);
    revenant_bpf__destroy(b->skel);
    free(b);
}
