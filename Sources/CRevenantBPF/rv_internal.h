/* The loaded programs, shared by loader.c and pinning.c; never seen by Swift. */
#ifndef RV_INTERNAL_H
#define RV_INTERNAL_H

#include "generated/revenant.skel.h"
#include "generated/revenant_lsm.skel.h"

struct rv_bpf {
    struct revenant_bpf *skel;
    struct revenant_lsm_bpf *lsm;
    int lsm_err, lsm_stage, lsm_argv;
    char lsm_log[2048];
    struct ring_buffer *rb;
    int ncpus;
    /* The ring's consumer and producer positions, mapped read-only: its fill for metrics. */
    const volatile unsigned long *cons_pos, *prod_pos;
    unsigned long rb_size;
};

#endif
