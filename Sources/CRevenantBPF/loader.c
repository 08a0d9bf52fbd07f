/* Opens, loads and attaches the skeletons; reads the ring, the counters and the maps. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "revenant_bpf.h"
#include "rv_internal.h"

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

/* The deny program shares the tracing object's maps; any failure leaves tracing as it was. */
static void start_lsm(struct rv_bpf *b)
{
    char *saved = log_buf;
    size_t saved_len = log_len, saved_cap = log_cap;
    struct revenant_lsm_bpf *l;
    int err;

    log_buf = b->lsm_log; log_len = 0; log_cap = sizeof(b->lsm_log);
    b->lsm_stage = RV_STAGE_OPEN;
    l = revenant_lsm_bpf__open();
    if (!l) {
        err = -errno;
        goto out;
    }
    l->rodata->wakeup_bytes = b->skel->rodata->wakeup_bytes;
    l->rodata->query_every_bytes = b->skel->rodata->query_every_bytes;
#define SHARE(m) do { err = bpf_map__reuse_fd(l->maps.m, bpf_map__fd(b->skel->maps.m)); if (err) goto fail; } while (0)
    SHARE(events); SHARE(proc_slots); SHARE(procs); SHARE(counters); SHARE(exe_rules); SHARE(script_rules);
    SHARE(comm_rules); SHARE(policy); SHARE(policy_slot);
#undef SHARE
    /* The argv capture is attached by hand below: without tracefs it fails alone. */
    bpf_program__set_autoattach(l->progs.capture_execve, false);
    bpf_program__set_autoattach(l->progs.capture_execveat, false);
    b->lsm_stage = RV_STAGE_LOAD;
    err = revenant_lsm_bpf__load(l);
    if (err)
        goto fail;
    b->lsm_stage = RV_STAGE_ATTACH;
    err = revenant_lsm_bpf__attach(l);
    if (err)
        goto fail;
    b->lsm = l;
    l->links.capture_execve = bpf_program__attach(l->progs.capture_execve);
    l->links.capture_execveat = bpf_program__attach(l->progs.capture_execveat);
    b->lsm_argv = l->links.capture_execve != NULL;
    err = 0;
    goto out;
fail:
    revenant_lsm_bpf__destroy(l);
out:
    b->lsm_err = err < 0 ? err : -err;
    log_buf = saved; log_len = saved_len; log_cap = saved_cap;
}

int rv_bpf_lsm_argv(struct rv_bpf *b)
{
    return b->lsm_argv;
}

int rv_bpf_lsm_status(struct rv_bpf *b, int *stage, char *log, unsigned long loglen)
{
    *stage = b->lsm_stage;
    if (log && loglen) {
        strncpy(log, b->lsm_log, loglen - 1);
        log[loglen - 1] = 0;
    }
    if (!b->lsm && !b->lsm_err && !b->lsm_stage)
        return -ENOENT; /* not attempted */
    return b->lsm_err;
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
    /* All CPUs together may overshoot wakeup_bytes by half of it before one reads the fill. */
    b->ncpus = libbpf_num_possible_cpus();   /* checked below, where a failure always was */
    if (!b->skel->rodata->wakeup_bytes) {
        b->skel->rodata->query_every_bytes = 0;
    } else if (b->ncpus > 0) {
        __u64 every = b->skel->rodata->wakeup_bytes / (2 * (__u64)b->ncpus);
        b->skel->rodata->query_every_bytes = every < 4096 ? 4096 : every > (1u << 20) ? (1u << 20) : every;
    }
    /* One of the two fork programs (see revenant.bpf.c). */
    bpf_program__set_autoload(b->skel->progs.handle_fork, opts && opts->lazy_forks);
    bpf_program__set_autoload(b->skel->progs.handle_fork_all, !(opts && opts->lazy_forks));
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
    if (b->ncpus <= 0) {
        err = b->ncpus ? b->ncpus : -EINVAL;
        goto fail;
    }
    {
        long page = sysconf(_SC_PAGESIZE);
        int fd = bpf_map__fd(b->skel->maps.events);
        void *c = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
        void *p = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, page);
        if (c != MAP_FAILED && p != MAP_FAILED) {
            b->cons_pos = c;
            b->prod_pos = p;
            b->rb_size = bpf_map__max_entries(b->skel->maps.events);
        } else {   /* metrics only: the ring works without it */
            if (c != MAP_FAILED) munmap(c, page);
            if (p != MAP_FAILED) munmap(p, page);
        }
    }
    if (opts && opts->try_lsm)
        start_lsm(b);
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

int rv_wake_fd(void)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rv_bpf_wait(struct rv_bpf *b, int timeout_ms, int wake_fd)
{
    /* The ring's epoll descriptor is readable when a submission woke it, as in ring_buffer__poll. */
    struct pollfd p[2] = {
        { .fd = ring_buffer__epoll_fd(b->rb), .events = POLLIN },
        { .fd = wake_fd, .events = POLLIN },
    };
    int n = poll(p, wake_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0 && errno != EINTR)
        return -errno;
    if (n > 0 && wake_fd >= 0 && (p[1].revents & POLLIN)) {
        uint64_t v;
        if (read(wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
            return -errno;
    }
    return ring_buffer__consume(b->rb);
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

/* The slot array, read in place (one mmap instead of 65,536 lookups); NULL on failure. */
static const struct rv_proc *map_slots(struct rv_bpf *b, size_t *len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t n = (size_t)RV_PROC_SLOTS * sizeof(struct rv_proc);
    void *m;

    *len = (n + (size_t)page - 1) / (size_t)page * (size_t)page;
    m = mmap(NULL, *len, PROT_READ, MAP_SHARED, bpf_map__fd(b->skel->maps.proc_slots), 0);
    return m == MAP_FAILED ? NULL : m;
}

long rv_bpf_unannounced(struct rv_bpf *b, struct rv_proc *out, long cap)
{
    int fd = bpf_map__fd(b->skel->maps.procs);
    unsigned int key, next;
    void *prev = NULL;
    long n = 0;
    size_t len;
    const struct rv_proc *slots = map_slots(b, &len);

    if (slots) {
        for (long i = 0; i < RV_PROC_SLOTS && n < cap; i++) {
            /* A fork writes the tgid last and clears it first: a slot whose tgid changed while
             * it was copied is being rewritten, and skipped. */
            unsigned int tgid = __atomic_load_n(&slots[i].self.tgid, __ATOMIC_ACQUIRE);
            struct rv_proc p = slots[i];
            if (tgid != 0 && !p.announced && tgid == __atomic_load_n(&slots[i].self.tgid, __ATOMIC_ACQUIRE) &&
                p.self.tgid == tgid)
                out[n++] = p;
        }
        munmap((void *)slots, len);
    }
    while (n < cap && bpf_map_get_next_key(fd, prev, &next) == 0) {
        key = next;
        prev = &key;
        if (bpf_map_lookup_elem(fd, &key, &out[n]) == 0 && !out[n].announced)
            n++;
    }
    return n;
}

int rv_bpf_map_fd(struct rv_bpf *b, int map)
{
    switch (map) {
    case RV_MAP_EXE_RULES: return bpf_map__fd(b->skel->maps.exe_rules);
    case RV_MAP_SCRIPT_RULES: return bpf_map__fd(b->skel->maps.script_rules);
    case RV_MAP_COMM_RULES: return bpf_map__fd(b->skel->maps.comm_rules);
    case RV_MAP_POLICY: return bpf_map__fd(b->skel->maps.policy);
    case RV_MAP_POLICY_SLOT: return bpf_map__fd(b->skel->maps.policy_slot);
    default: return -1;
    }
}

int rv_map_update(int fd, const void *key, const void *value)
{
    return bpf_map_update_elem(fd, key, value, BPF_ANY) ? -errno : 0;
}

int rv_map_lookup(int fd, const void *key, void *value)
{
    return bpf_map_lookup_elem(fd, key, value) ? -errno : 0;
}

int rv_map_delete(int fd, const void *key)
{
    return bpf_map_delete_elem(fd, key) ? -errno : 0;
}

int rv_map_next_key(int fd, const void *key, void *next)
{
    return bpf_map_get_next_key(fd, key, next) ? -errno : 0;
}

long rv_bpf_ring_fill(struct rv_bpf *b, unsigned long *size)
{
    if (!b || !b->cons_pos)
        return -ENOENT;
    *size = b->rb_size;
    return (long)(__atomic_load_n(b->prod_pos, __ATOMIC_ACQUIRE) - __atomic_load_n(b->cons_pos, __ATOMIC_ACQUIRE));
}

void rv_bpf_stop(struct rv_bpf *b)
{
    if (!b)
        return;
    if (b->cons_pos) {
        long page = sysconf(_SC_PAGESIZE);
        munmap((void *)b->cons_pos, page);
        munmap((void *)b->prod_pos, page);
    }
    ring_buffer__free(b->rb);
    revenant_lsm_bpf__destroy(b->lsm);
    revenant_bpf__destroy(b->skel);
    free(b);
}
