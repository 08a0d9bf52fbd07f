/* A tiny C API over the generated libbpf skeleton, so Swift never touches libbpf types. */
#ifndef REVENANT_BPF_H
#define REVENANT_BPF_H

#include "revenant_abi.h"

struct rv_bpf;

/* Called for every record read from the ring buffer; return non-zero to stop the batch. */
typedef int (*rv_event_fn)(void *ctx, const void *data, unsigned long size);

struct rv_bpf_options {
    unsigned int ringbuf_bytes;      /* power of two, multiple of the page size; 0 = default */
    unsigned long long wakeup_bytes; /* wake the reader when this much is pending; 0 = every event */
    int try_lsm;                     /* also load the deny program (lsm/bprm_check_security) */
    int lazy_forks;                  /* fork records only when needed (see revenant.bpf.c) */
};

/* Outcome of the optional deny program: 0 attached, else -errno of the failed step. */
int rv_bpf_lsm_status(struct rv_bpf *b, int *stage, char *log, unsigned long loglen);

/* Whether the deny tier also sees argv (sys_enter_execve attached; needs tracefs). */
int rv_bpf_lsm_argv(struct rv_bpf *b);

enum rv_bpf_stage {
    RV_STAGE_OPEN = 1,
    RV_STAGE_LOAD = 2,
    RV_STAGE_ATTACH = 3,
    RV_STAGE_RINGBUF = 4,
};

/* Opens, loads and attaches. Returns 0 or a negative errno; on failure *stage says which
 * step failed and log holds libbpf's messages (NUL-terminated, cut to loglen). */
int rv_bpf_start(struct rv_bpf **out, const struct rv_bpf_options *opts,
                 rv_event_fn fn, void *ctx, int *stage, char *log, unsigned long loglen);

/* Waits up to timeout_ms for a wake-up, then drains the ring. Returns records read or -errno. */
int rv_bpf_poll(struct rv_bpf *b, int timeout_ms);

/* As rv_bpf_poll, but also returns early when wake_fd (an eventfd) is written, e.g. to stop
 * or reload: the reader can then sleep long between drains. The eventfd is reset. */
int rv_bpf_wait(struct rv_bpf *b, int timeout_ms, int wake_fd);

/* A non-blocking, close-on-exec eventfd for rv_bpf_wait's wake_fd. Returns it or -errno. */
int rv_wake_fd(void);

/* Sums the per-CPU counters into out[RV_CNT__MAX]. Returns 0 or -errno. */
int rv_bpf_counters(struct rv_bpf *b, unsigned long long *out);

/* Up to `cap` live processes the ring has not announced yet (lazy forks); returns how many. */
long rv_bpf_unannounced(struct rv_bpf *b, struct rv_proc *out, long cap);

enum rv_map {
    RV_MAP_EXE_RULES = 0,
    RV_MAP_SCRIPT_RULES = 1,
    RV_MAP_COMM_RULES = 2,
    RV_MAP_POLICY = 3,
    RV_MAP_POLICY_SLOT = 4,
};

/* File descriptor of one of the policy maps, or -1. */
int rv_bpf_map_fd(struct rv_bpf *b, int map);

/* Thin wrappers over the bpf(2) map commands: 0 or -errno. */
int rv_map_update(int fd, const void *key, const void *value);
int rv_map_lookup(int fd, const void *key, void *value);
int rv_map_delete(int fd, const void *key);
/* The key after `key` (NULL: the first); -ENOENT after the last. */
int rv_map_next_key(int fd, const void *key, void *next);

/* Pins the attached programs' links under dir (on a bpffs) so they outlive this process:
 * kill at exec stays in force while no daemon runs. An earlier daemon's pins are replaced by
 * rename, so its programs detach only once this one's are attached. 0 or -errno. */
int rv_bpf_pin(struct rv_bpf *b, const char *dir);
/* Removes the pins: the pinned programs detach (enforcement by them ends). Returns how many. */
int rv_bpf_unpin(const char *dir);
/* Whether path is on a bpf filesystem; mounts one at path (mode 0700): 0 or -errno. */
int rv_is_bpffs(const char *path);
int rv_mount_bpffs(const char *path);
/* How many pins are present under dir. */
int rv_bpf_pinned(const char *dir);

/* Bytes written to the ring buffer and not yet consumed (its size in *size); -ENOENT when unknown. */
long rv_bpf_ring_fill(struct rv_bpf *b, unsigned long *size);

void rv_bpf_stop(struct rv_bpf *b);

#endif
