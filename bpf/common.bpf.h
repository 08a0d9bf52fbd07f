/* Maps and helpers shared by revenant.bpf.c and revenant_lsm.bpf.c: the loader hands the LSM object
 * the tracing object's map descriptors, so both see one policy and one ring buffer. */
#ifndef REVENANT_COMMON_BPF_H
#define REVENANT_COMMON_BPF_H

/* Wake the reader only when this much is pending; it polls on a timer otherwise.
 * A wake-up per event is an IPI, dear in a VM. 0 = every event. */
const volatile __u64 wakeup_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader may resize before load */
} events SEC(".maps");

/* Identity and fork-time parent of each process, first in its slot (tgid mod RV_PROC_SLOTS:
 * a fork, exec and exit cost a store and two loads, no hash-map operation: see
 * docs/architecture.md, "Why lazy forks"); an occupant still alive when another tgid takes its
 * slot moves to `procs`. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, RV_PROC_SLOTS);
	__type(key, __u32);
	__type(value, struct rv_proc);
} proc_slots SEC(".maps");

/* tgid -> the same, for processes moved out of their slot. A plain hash, not LRU: a full map
 * must be counted (RV_CNT_PROCMAP_FULL), never evict a live process silently. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RV_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct rv_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RV_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Policy: keys map to rule bits; `policy` holds two slots, `policy_slot` the active one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RV_MAX_EXE_KEYS);
	__type(key, struct rv_exe_key);
	__type(value, __u64);
} exe_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RV_MAX_SCRIPT_KEYS);
	__type(key, __u64);
	__type(value, __u64);
} script_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RV_MAX_COMM_KEYS);
	__type(key, struct rv_comm_key);
	__type(value, __u64);
} comm_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RV_POLICY_SLOTS);
	__type(key, __u32);
	__type(value, struct rv_policy);
} policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} policy_slot SEC(".maps");

/* The exec record is too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rv_exec_event);
} scratch SEC(".maps");


static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

/* The ring's fill is read once per this many bytes a CPU writes, not at every record: the read
 * misses the cache (the reader moves the consumer position). The loader
 * sets it so that all CPUs together overshoot wakeup_bytes by at most half of it; 0 with a
 * wakeup_bytes of 0 (every record wakes the reader). */
const volatile __u32 query_every_bytes = 64 << 10;

/* urgent: a record userspace must act on now (a policy match): wake the reader at once. */
static __always_inline void emit_flagged(void *data, __u64 size, bool urgent)
{
	__u32 idx = RV_CNT_BUDGET;
	__u64 flags = BPF_RB_NO_WAKEUP, *budget;

	if (urgent) {
		flags = BPF_RB_FORCE_WAKEUP;
	} else {
		/* A countdown in the counters line that count() below touches anyway: the settings
		 * (.rodata, a line of their own that misses) are read only when it runs out. */
		budget = bpf_map_lookup_elem(&counters, &idx);
		if (budget && (__s64)(*budget -= size) < 0) {
			*budget = query_every_bytes;
			if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
				flags = BPF_RB_FORCE_WAKEUP;
		}
	}
	if (bpf_ringbuf_output(&events, data, size, flags))
		count(RV_CNT_RINGBUF_FULL);
	else
		count(RV_CNT_EVENTS);
}

static __always_inline void emit(void *data, __u64 size)
{
	emit_flagged(data, size, false);
}

/* A process is its thread group: identity is the tgid and the leader's start time.
 * Callers hold BTF pointers (tp_btf/lsm arguments or fields of them): plain loads, which the
 * verifier turns into fault-safe reads, cost a fraction of a bpf_probe_read_kernel call each. */
static __always_inline void ident_of(struct task_struct *t, struct rv_ident *id)
{
	id->tgid = t->tgid;
	id->_pad = 0;
	id->start_ns = t->group_leader->start_boottime;
}

/* Orders the stores into a slot; x86 keeps stores in program order. */
#define barrier() asm volatile("" ::: "memory")

static __always_inline struct rv_proc *slot_of(__u32 tgid)
{
	__u32 k = tgid & (RV_PROC_SLOTS - 1);

	return bpf_map_lookup_elem(&proc_slots, &k);
}

/* The entry of tgid (its latest incarnation): its slot, else the overflow map. */
static __always_inline struct rv_proc *entry_of(__u32 tgid)
{
	struct rv_proc *p = slot_of(tgid);

	if (p && p->self.tgid == tgid)
		return p;
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* This process's entry, if it is the same incarnation. A slot holding its tgid holds its
 * latest incarnation: the overflow map can only hold a stale one then. */
static __always_inline struct rv_proc *proc_of(const struct rv_ident *self)
{
	struct rv_proc *p = entry_of(self->tgid);

	return p && p->self.start_ns == self->start_ns ? p : NULL;
}

/* At fork: the child takes its slot; a different tgid still there is alive (an exit clears
 * its slot) and moves to the overflow map first. The tgid is written last and cleared by
 * compare-and-swap, so a reader never takes a half-written entry for a whole one. */
static __always_inline void track(const struct rv_proc *np)
{
	struct rv_proc *s = slot_of(np->self.tgid);
	struct rv_proc old;

	if (!s)
		return;
	if (s->self.tgid && s->self.tgid != np->self.tgid) {
		old = *s;
		if (old.self.tgid && old.self.tgid != np->self.tgid &&
		    bpf_map_update_elem(&procs, &old.self.tgid, &old, BPF_ANY))
			count(RV_CNT_PROCMAP_FULL);
	}
	s->self.tgid = 0;
	barrier();
	s->self.start_ns = np->self.start_ns;
	s->self._pad = 0;
	s->parent = np->parent;
	s->parent_thread = np->parent_thread;
	s->announced = np->announced;
	barrier();
	s->self.tgid = np->self.tgid;
}

/* At exit: forget tgid, from its slot or from the overflow map (a stale incarnation too). */
static __always_inline void untrack(__u32 tgid)
{
	struct rv_proc *s = slot_of(tgid);

	if (s && s->self.tgid == tgid)
		__sync_val_compare_and_swap(&s->self.tgid, tgid, 0);
	else
		bpf_map_delete_elem(&procs, &tgid);
}

/* Fork-time parent from the map entry; unknown for processes that predate the load. */
static __always_inline __u32 parent_from(const struct rv_proc *p, struct rv_ident *parent)
{
	if (p) {
		*parent = p->parent;
		return 0;
	}
	parent->tgid = 0;
	parent->_pad = 0;
	parent->start_ns = 0;
	return RV_F_PARENT_UNKNOWN;
}

static __always_inline __u32 parent_of(const struct rv_ident *self, struct rv_ident *parent)
{
	return parent_from(proc_of(self), parent);
}

/* Ancestors walked to announce before a record: deeper chains of processes that never
 * exec'd nor exited are announced by their own later records. */
#define RV_ANNOUNCE_DEPTH 8

/* Lazy forks: writes the fork record of `tgid` and of its ancestors not yet announced,
 * farthest first, so every record userspace reads names only processes it has seen. */
static __always_inline void announce(__u32 tgid)
{
	__u32 chain[RV_ANNOUNCE_DEPTH] = {};
	struct rv_fork_event e = {};
	struct rv_proc *p;
	__u32 key = tgid;
	int n = 0, i;

	for (i = 0; i < RV_ANNOUNCE_DEPTH; i++) {
		p = entry_of(key);
		if (!p || p->announced)
			break;
		chain[i] = key;
		n = i + 1;
		key = p->parent.tgid;
	}
	for (i = RV_ANNOUNCE_DEPTH - 1; i >= 0; i--) {
		if (i >= n)
			continue;
		key = chain[i];
		p = entry_of(key);
		/* Another CPU may announce it at the same moment: one of the two records wins. */
		if (!p || __sync_fetch_and_add(&p->announced, 1))
			continue;
		e.h.type = RV_EVENT_FORK;
		e.h.size = sizeof(e);
		e.h.time_ns = p->self.start_ns; /* the fork's own time: the task's start */
		e.h.proc = p->self;
		e.parent = p->parent;
		e.parent_thread = p->parent_thread;
		emit(&e, sizeof(e));
	}
}

/* Hashing argv elements, one byte per bpf_loop step (verified once, not per byte). */
struct scan {
	const char *buf;
	const __u64 *filter;	/* the active slot's script_filter */
	__u32 len;
	__u64 full, base, rel, mask;
	__u8 slash, empty;
};

static __always_inline __u64 fnv_byte(__u64 h, __u8 c)
{
	return (h ^ c) * RV_FNV_PRIME;
}

static __always_inline __u64 base_seed(void)
{
	return fnv_byte(RV_FNV_OFFSET, RV_HASH_TAG_BASE);
}

static __always_inline int filter_has(const __u64 *f, __u64 h)
{
	__u32 b = h >> RV_SCRIPT_FILTER_SHIFT;

	return (f[(b >> 6) & (RV_SCRIPT_FILTER_WORDS - 1)] >> (b & 63)) & 1;
}

/* Whether an exe key may be in the policy: its bit in the slot's exe filter. */
static __always_inline int exe_filter_has(const struct rv_policy *pol, const struct rv_exe_key *k)
{
	__u32 b = ((k->ino ^ k->dev) * RV_EXE_MUL) >> RV_EXE_FILTER_SHIFT;

	return (pol->exe_filter[(b >> 6) & (RV_EXE_FILTER_WORDS - 1)] >> (b & 63)) & 1;
}

static __always_inline void scan_lookup(struct scan *s)
{
	__u64 *m;

	if (s->empty)
		return;
	if (filter_has(s->filter, s->full)) {
		m = bpf_map_lookup_elem(&script_rules, &s->full);
		if (m)
			s->mask |= *m;
	}
	if (filter_has(s->filter, s->base)) {
		m = bpf_map_lookup_elem(&script_rules, &s->base);
		if (m)
			s->mask |= *m;
	}
	/* Every element, slashes or not: a rule also holds the rel keys of "./name" spellings. */
	if (filter_has(s->filter, s->rel)) {
		m = bpf_map_lookup_elem(&script_rules, &s->rel);
		if (m)
			s->mask |= *m;
	}
}

static __always_inline void scan_reset(struct scan *s, __u64 rel_seed)
{
	s->full = RV_FNV_OFFSET;
	s->base = base_seed();
	s->rel = rel_seed;
	s->slash = 0;
	s->empty = 1;
}

struct scan_ctx {
	struct scan s;
	__u64 rel_seed;
};

static long scan_step(__u32 i, struct scan_ctx *c)
{
	__u8 ch;

	if (i >= c->s.len)
		return 1;
	/* One constant mask for both buffers: each lies at least RV_ARGV_BYTES before the end
	 * of the scratch record, and len keeps reads inside the buffer itself. */
	ch = c->s.buf[i & (RV_ARGV_BYTES - 1)];
	if (ch == 0) {
		scan_lookup(&c->s);
		scan_reset(&c->s, c->rel_seed);
		return 0;
	}
	c->s.empty = 0;
	c->s.full = fnv_byte(c->s.full, ch);
	c->s.rel = fnv_byte(c->s.rel, ch);
	if (ch == '/') {
		c->s.slash = 1;
		c->s.base = base_seed();
	} else {
		c->s.base = fnv_byte(c->s.base, ch);
	}
	return 0;
}

#endif
