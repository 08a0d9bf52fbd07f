// SPDX-License-Identifier: GPL-2.0
/* revenant: process-level fork/exec/exit tracing with fork-time lineage. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "revenant_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* Wake the reader only when this much is pending; it polls on a timer otherwise.
 * A wake-up per event is an IPI, which costs ~20% of an exec loop in a VM. 0 = every event. */
const volatile __u64 wakeup_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* the loader may resize before load */
} events SEC(".maps");

/* tgid -> identity and fork-time parent. A plain hash, not LRU: a full map must be
 * counted (RV_CNT_PROCMAP_FULL), never evict a live process silently. */
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

static __always_inline void emit(void *data, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, data, size, flags))
		count(RV_CNT_RINGBUF_FULL);
	else
		count(RV_CNT_EVENTS);
}

/* A process is its thread group: identity is the tgid and the leader's start time. */
static __always_inline void ident_of(struct task_struct *t, struct rv_ident *id)
{
	id->tgid = BPF_CORE_READ(t, tgid);
	id->_pad = 0;
	id->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
}

/* Fork-time parent from the map; unknown for processes that predate the load. */
static __always_inline __u32 parent_of(const struct rv_ident *self, struct rv_ident *parent)
{
	struct rv_proc *p = bpf_map_lookup_elem(&procs, &self->tgid);

	if (p && p->self.start_ns == self->start_ns) {
		*parent = p->parent;
		return 0;
	}
	parent->tgid = 0;
	parent->_pad = 0;
	parent->start_ns = 0;
	return RV_F_PARENT_UNKNOWN;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct rv_fork_event e = {};
	struct rv_proc p = {};

	/* A new thread is not a new process. */
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0;

	ident_of(child, &p.self);
	/* The spawner is the caller, even with CLONE_PARENT or a later reparenting. */
	ident_of(parent, &p.parent);
	if (bpf_map_update_elem(&procs, &p.self.tgid, &p, BPF_ANY))
		count(RV_CNT_PROCMAP_FULL);

	e.h.type = RV_EVENT_FORK;
	e.h.size = sizeof(e);
	e.h.time_ns = bpf_ktime_get_boot_ns();
	e.h.proc = p.self;
	e.parent = p.parent;
	e.parent_thread = BPF_CORE_READ(parent, pid);
	emit(&e, sizeof(e));
	return 0;
}

static __always_inline __u32 read_cwd(struct task_struct *t, char *buf)
{
	struct fs_struct *fs = BPF_CORE_READ(t, fs);
	struct dentry *d = BPF_CORE_READ(fs, pwd.dentry);
	struct vfsmount *vm = BPF_CORE_READ(fs, pwd.mnt);
	struct mount *mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	__u32 off = 0;
	int i;

	buf[0] = 0;
	/* Components leaf first, each NUL-terminated: building backwards needs variable
	 * negative offsets the verifier dislikes; userspace reverses them. */
	for (i = 0; i < RV_CWD_DEPTH; i++) {
		struct dentry *root = BPF_CORE_READ(mnt, mnt.mnt_root);
		struct dentry *up = BPF_CORE_READ(d, d_parent);

		if (d == root || d == up) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);

			if (mp == mnt || (d == up && d != root))
				return 0; /* reached the global root */
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			continue;
		}
		if (off > RV_CWD_BYTES - RV_NAME_BYTES)
			return RV_F_CWD_TRUNCATED;
		long n = bpf_probe_read_kernel_str(&buf[off], RV_NAME_BYTES, BPF_CORE_READ(d, d_name.name));
		if (n <= 0)
			return RV_F_CWD_TRUNCATED;
		off += n;
		/* The scratch buffer is reused: terminate the component list. */
		if (off < RV_CWD_BYTES)
			buf[off & (RV_CWD_BYTES - 1)] = 0;
		d = up;
	}
	return RV_F_CWD_TRUNCATED;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0;
	struct rv_exec_event *e = bpf_map_lookup_elem(&scratch, &zero);
	const char *filename, *interp;
	unsigned long arg_start, arg_end, len;
	struct kernfs_node *kn;
	__u32 flags = 0;
	long n;

	if (!e)
		return 0;

	e->h.type = RV_EVENT_EXEC;
	e->h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(p, &e->h.proc);
	flags |= parent_of(&e->h.proc, &e->parent);
	ident_of(BPF_CORE_READ(p, real_parent), &e->real_parent);

	e->old_pid = old_pid;
	if ((__u32)old_pid != e->h.proc.tgid)
		flags |= RV_F_NONLEADER_EXEC;

	/* After binfmt_script/misc, bprm->file is the binary that actually runs. */
	e->exe_ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	e->exe_dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);

	e->uid = BPF_CORE_READ(p, cred, uid.val);
	e->euid = BPF_CORE_READ(p, cred, euid.val);
	e->gid = BPF_CORE_READ(p, cred, gid.val);
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(p->loginuid))
		e->loginuid = BPF_CORE_READ(p, loginuid.val);

	kn = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn);
	e->cgroup_id = BPF_CORE_READ(kn, id);
	n = bpf_probe_read_kernel_str(e->cgroup, sizeof(e->cgroup), BPF_CORE_READ(kn, name));
	if (n <= 0)
		e->cgroup[0] = 0;
	else if (n == sizeof(e->cgroup))
		flags |= RV_F_CGROUP_TRUNCATED;

	bpf_get_current_comm(e->comm, sizeof(e->comm));

	filename = BPF_CORE_READ(bprm, filename);
	interp = BPF_CORE_READ(bprm, interp);
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename);
	if (n <= 0)
		e->filename[0] = 0;
	else if (n == sizeof(e->filename))
		flags |= RV_F_PATH_TRUNCATED;
	e->interp[0] = 0;
	if (interp != filename) {
		n = bpf_probe_read_kernel_str(e->interp, sizeof(e->interp), interp);
		if (n <= 0)
			e->interp[0] = 0;
		else if (n == sizeof(e->interp))
			flags |= RV_F_PATH_TRUNCATED;
	}

	flags |= read_cwd(p, e->cwd);

	e->argc = BPF_CORE_READ(bprm, argc);
	arg_start = BPF_CORE_READ(p, mm, arg_start);
	arg_end = BPF_CORE_READ(p, mm, arg_end);
	len = arg_end - arg_start;
	if (len > RV_ARGV_BYTES) {
		len = RV_ARGV_BYTES;
		flags |= RV_F_ARGV_TRUNCATED;
	}
	if (len && bpf_probe_read_user(e->argv, len, (void *)arg_start)) {
		len = 0;
		flags |= RV_F_ARGV_UNREADABLE;
	}
	e->argv_len = len;
	e->flags = flags;
	e->h.size = __builtin_offsetof(struct rv_exec_event, argv) + len;
	emit(e, __builtin_offsetof(struct rv_exec_event, argv) + len);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	struct rv_exit_event e = {};

	/* Only the last thread's exit ends the process. */
	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;

	e.h.type = RV_EVENT_EXIT;
	e.h.size = sizeof(e);
	e.h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(p, &e.h.proc);
	e.flags = parent_of(&e.h.proc, &e.parent);
	ident_of(BPF_CORE_READ(p, real_parent), &e.real_parent);
	e.exit_code = BPF_CORE_READ(p, exit_code);
	bpf_map_delete_elem(&procs, &e.h.proc.tgid);
	emit(&e, sizeof(e));
	return 0;
}
