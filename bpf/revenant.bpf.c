// SPDX-License-Identifier: GPL-2.0
/* revenant: process-level fork/exec/exit tracing with fork-time lineage. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "revenant_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* task_struct flag: forked and not exec'd since (include/linux/sched.h, a #define BTF lacks). */
#define RV_PF_FORKNOEXEC 0x00000040

#include "common.bpf.h"

/* Lazy forks (handle_fork): no fork record for a process that execs (its exec record carries the
 * fork-time parent from `procs`); one is written, with the true fork time, just before the first
 * record that needs it: its exit, a denied exec, or a descendant's exec or exit: fewer records
 * for a fork+exec+exit. handle_fork_all writes a fork record at every fork (`revenant
 * trace`). The loader loads one of the two: a setting in .rodata, read at each fork, missed the
 * cache. */
static __always_inline int on_fork(struct task_struct *parent, struct task_struct *child, bool lazy)
{
	struct rv_fork_event e = {};
	struct rv_proc p = {};

	/* A new thread is not a new process. */
	if (child->pid != child->tgid)
		return 0;

	ident_of(child, &p.self);
	/* The spawner is the caller, even with CLONE_PARENT or a later reparenting. */
	ident_of(parent, &p.parent);
	p.parent_thread = parent->pid;
	p.announced = !lazy;
	track(&p);
	if (lazy)
		return 0;

	e.h.type = RV_EVENT_FORK;
	e.h.size = sizeof(e);
	e.h.time_ns = bpf_ktime_get_boot_ns();
	e.h.proc = p.self;
	e.parent = p.parent;
	e.parent_thread = parent->pid;
	emit(&e, sizeof(e));
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child, true);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork_all, struct task_struct *parent, struct task_struct *child)
{
	return on_fork(parent, child, false);
}

/* Appends one component name at off; returns the new offset, or 0 when it does not fit. */
static __always_inline __u32 cwd_name(char *buf, __u32 off, const unsigned char *name)
{
	long n;

	if (off > RV_CWD_BYTES - RV_NAME_BYTES)
		return 0;
	n = bpf_probe_read_kernel_str(&buf[off], RV_NAME_BYTES, name);
	return n > 0 ? off + n : 0;
}

/* Writes the cwd's components into buf; *len: their bytes, terminators included. The path is
 * the one the process sees, up to its own root (a chroot's, or the namespace's): the root its
 * absolute argv paths resolve against. */
static __always_inline __u32 read_cwd(struct task_struct *t, char *buf, __u32 *len)
{
	struct fs_struct *fs = t->fs;
	struct dentry *d = fs->pwd.dentry;
	struct vfsmount *vm = fs->pwd.mnt;
	struct dentry *top = vm->mnt_root;
	struct dentry *root = fs->root.dentry;
	struct vfsmount *root_mnt = fs->root.mnt;
	struct mount *mnt;
	__u32 off = 0, n;
	int i;

	*len = 0;
	/* Components leaf first, each NUL-terminated: building backwards needs variable
	 * negative offsets the verifier dislikes; userspace reverses them.
	 * Within the cwd's own mount, plain loads of BTF pointers: a fraction of a probe read each. */
	for (i = 0; i < RV_CWD_DEPTH; i++) {
		struct dentry *up = d->d_parent;

		if (d == top || d == up || (d == root && vm == root_mnt))
			break;
		n = cwd_name(buf, off, d->d_name.name);
		if (!n)
			return RV_F_CWD_TRUNCATED;
		*len = off = n;
		d = up;
	}
	if (i == RV_CWD_DEPTH)
		return RV_F_CWD_TRUNCATED;
	/* The common case: the cwd lies in the root's own mount. */
	if (d == root && vm == root_mnt)
		return 0;

	/* Above it, struct mount (container of the vfsmount) has no BTF pointer to it: probe reads. */
	mnt = (void *)vm - bpf_core_field_offset(struct mount, mnt);
	for (; i < RV_CWD_DEPTH; i++) {
		struct dentry *mroot = BPF_CORE_READ(mnt, mnt.mnt_root);
		struct dentry *up = BPF_CORE_READ(d, d_parent);

		if (d == root && (void *)mnt + bpf_core_field_offset(struct mount, mnt) == (void *)root_mnt)
			return 0;
		if (d == mroot || d == up) {
			struct mount *mp = BPF_CORE_READ(mnt, mnt_parent);

			if (mp == mnt || (d == up && d != mroot))
				return 0; /* reached the namespace's root */
			d = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mp;
			continue;
		}
		n = cwd_name(buf, off, BPF_CORE_READ(d, d_name.name));
		if (!n)
			return RV_F_CWD_TRUNCATED;
		*len = off = n;
		d = up;
	}
	return RV_F_CWD_TRUNCATED;
}

struct cwd_ctx {
	const char *buf;
	__u32 len;
	__u64 h;
};

/* cwd as captured: components leaf first, each NUL-terminated. */
static long cwd_step(__u32 i, struct cwd_ctx *c)
{
	if (i >= c->len)
		return 1;
	c->h = fnv_byte(c->h, c->buf[i & (RV_CWD_BYTES - 1)]);
	return 0;
}

#define TEXT_MASK (RV_EXEC_TEXT_BYTES - 1)

/* Where the first k texts of an exec record end in its data (read back from the record). */
static __always_inline __u32 text_end(struct rv_exec_event *e, int k)
{
	__u32 end = 0;

	if (k > 0)
		end += *(volatile __u16 *)&e->filename_len;
	if (k > 1)
		end += *(volatile __u16 *)&e->interp_len;
	if (k > 2)
		end += *(volatile __u16 *)&e->cwd_len;
	if (k > 3)
		end += *(volatile __u16 *)&e->cgroup_len;
	return end & TEXT_MASK;
}

/* Where an exec record's texts lie in its data. */
struct texts {
	const char *filename, *cwd, *argv;
	__u32 filename_len, cwd_len;
};

/* Rule bits whose script/argv keys match this exec. */
static __always_inline __u64 match_script(struct rv_exec_event *e, const struct texts *t, __u32 cwd_ok,
					  const struct rv_policy *pol)
{
	struct cwd_ctx cw = { .buf = t->cwd, .len = t->cwd_len, .h = fnv_byte(RV_FNV_OFFSET, RV_HASH_TAG_REL) };
	struct scan_ctx c = {};

	c.s.filter = pol->script_filter;

	if (cwd_ok)
		bpf_loop(RV_CWD_BYTES, cwd_step, &cw, 0);
	c.rel_seed = cwd_ok ? cw.h : 0;

	c.s.buf = t->argv;
	c.s.len = e->argv_len;
	scan_reset(&c.s, c.rel_seed);
	bpf_loop(RV_ARGV_BYTES, scan_step, &c, 0);
	/* A last element cut by the argv bound is not a whole name: it must not match. */
	if (!(e->flags & RV_F_ARGV_TRUNCATED))
		scan_lookup(&c.s);

	c.s.buf = t->filename;
	c.s.len = t->filename_len;
	scan_reset(&c.s, c.rel_seed);
	bpf_loop(RV_PATH_BYTES, scan_step, &c, 0);
	return c.s.mask;
}

/* The policy rules this exec matches (their bits), or 0; `pol` is the policy in force. */
static __always_inline __u64 policy_match(struct rv_exec_event *e, const struct texts *t, struct rv_policy **polp)
{
	__u32 zero = 0, *slot = bpf_map_lookup_elem(&policy_slot, &zero);
	struct rv_policy *pol;
	__u64 exe = 0, script = 0, comm = 0, *m, matched;
	struct rv_exe_key ek;
	struct rv_comm_key ck = {};

	if (!slot)
		return 0;
	pol = bpf_map_lookup_elem(&policy, slot);
	if (!pol || !(pol->audit | pol->kill | pol->deny))
		return 0;
	*polp = pol;

	ek.dev = e->exe_dev;
	ek.ino = e->exe_ino;
	if (pol->need_exe && exe_filter_has(pol, &ek)) {
		m = bpf_map_lookup_elem(&exe_rules, &ek);
		if (m)
			exe = *m;
	}
	if (pol->need_comm) {
		__builtin_memcpy(ck.comm, e->comm, RV_COMM_BYTES);
		m = bpf_map_lookup_elem(&comm_rules, &ck);
		if (m)
			comm = *m;
	}
	if (pol->need_script)
		script = match_script(e, t, !(e->flags & RV_F_CWD_TRUNCATED), pol);

	matched = (exe | ~pol->need_exe) & (script | ~pol->need_script) & (comm | ~pol->need_comm);
	return matched & (pol->audit | pol->kill | pol->deny);
}

/* Kills the new image when a kill rule matched: it dies before its first user instruction. */
static __always_inline void kill_if_ruled(struct rv_exec_event *e, const struct rv_policy *pol)
{
	if (e->matched & pol->kill)
		e->action = bpf_send_signal(9) ? RV_ACT_KILL_FAILED : RV_ACT_KILL;
	else
		e->action = RV_ACT_AUDIT;
}

static __always_inline void enforce(struct rv_exec_event *e, const struct texts *t)
{
	struct rv_policy *pol = NULL;

	e->matched = policy_match(e, t, &pol);
	if (e->matched && pol)
		kill_if_ruled(e, pol);
}

/* Who execs: identity, fork-time and current parent, the new binary's inode, credentials,
 * cgroup id and comm. Announces the process (and a parent still a bare fork) first. */
static __always_inline void capture_identity(struct rv_exec_event *e, struct task_struct *p, pid_t old_pid,
					     struct linux_binprm *bprm, struct kernfs_node *kn, __u32 *flags)
{
	struct rv_proc *me;
	struct inode *inode;
	const struct cred *cred;

	e->h.type = RV_EVENT_EXEC;
	e->h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(p, &e->h.proc);
	me = proc_of(&e->h.proc);
	*flags |= parent_from(me, &e->parent);
	ident_of(p->real_parent, &e->real_parent);
	/* This exec record announces the process; its ancestors are announced before it. A
	 * parent that has exec'd was announced then: only one still a bare fork (or not this
	 * process's parent any more) costs a map lookup. */
	if (me && !me->announced) {
		struct task_struct *rp = p->real_parent;

		me->announced = 1;
		if (rp->tgid != e->parent.tgid || (rp->group_leader->flags & RV_PF_FORKNOEXEC))
			announce(e->parent.tgid);
	}

	e->old_pid = old_pid;
	if ((__u32)old_pid != e->h.proc.tgid)
		*flags |= RV_F_NONLEADER_EXEC;

	/* After binfmt_script/misc, bprm->file is the binary that actually runs. */
	inode = bprm->file->f_inode;
	e->exe_ino = inode->i_ino;
	e->exe_dev = inode->i_sb->s_dev;

	cred = p->cred;
	e->uid = cred->uid.val;
	e->euid = cred->euid.val;
	e->gid = cred->gid.val;
	e->loginuid = (__u32)-1;
	if (bpf_core_field_exists(p->loginuid))
		e->loginuid = p->loginuid.val;

	e->cgroup_id = kn->id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* The path texts, packed one after another in data: filename, interpreter, cwd, cgroup name.
 * Each offset is the sum of the lengths read back from the record, masked: the same bounds on
 * every path, so the verifier checks what follows once, not once per combination of text
 * lengths. All four end within RV_EXEC_TEXT_BYTES. */
static __always_inline void capture_paths(struct rv_exec_event *e, struct task_struct *p, struct linux_binprm *bprm,
					  struct kernfs_node *kn, __u32 *flags)
{
	const char *filename = bprm->filename, *interp = bprm->interp;
	__u32 cwd_len;
	long n;

	n = bpf_probe_read_kernel_str(e->data, RV_PATH_BYTES, filename);
	e->filename_len = n > 0 ? n : 0;
	if (n == RV_PATH_BYTES)
		*flags |= RV_F_PATH_TRUNCATED;

	e->interp_len = 0;
	if (interp != filename) {
		n = bpf_probe_read_kernel_str(&e->data[text_end(e, 1)], RV_PATH_BYTES, interp);
		if (n > 0)
			e->interp_len = n;
		if (n == RV_PATH_BYTES)
			*flags |= RV_F_PATH_TRUNCATED;
	}

	*flags |= read_cwd(p, &e->data[text_end(e, 2)], &cwd_len);
	e->cwd_len = cwd_len;

	n = bpf_probe_read_kernel_str(&e->data[text_end(e, 3)], RV_CGROUP_BYTES, kn->name);
	e->cgroup_len = n > 0 ? n : 0;
	if (n == RV_CGROUP_BYTES)
		*flags |= RV_F_CGROUP_TRUNCATED;
}

/* argv, NUL-separated, from the new image's memory at `at`: at most RV_ARGV_BYTES, flagged
 * when cut or unreadable. */
static __always_inline void capture_argv(struct rv_exec_event *e, struct task_struct *p, struct linux_binprm *bprm,
					 __u32 at, __u32 *flags)
{
	struct mm_struct *mm;
	unsigned long arg_start, arg_end, len;

	e->argc = bprm->argc;
	mm = p->mm;
	arg_start = mm->arg_start;
	arg_end = mm->arg_end;
	len = arg_end - arg_start;
	if (len > RV_ARGV_BYTES) {
		len = RV_ARGV_BYTES;
		*flags |= RV_F_ARGV_TRUNCATED;
	}
	if (len && bpf_probe_read_user(&e->data[at], len, (void *)arg_start)) {
		len = 0;
		*flags |= RV_F_ARGV_UNREADABLE;
	}
	e->argv_len = len;
}

/* Sends the record, its size read back like the offsets: one verifier state past the policy
 * match, not one per argv length. */
static __always_inline void emit_exec(struct rv_exec_event *e, __u32 at)
{
	unsigned long len = *(volatile __u32 *)&e->argv_len;

	if (len > RV_ARGV_BYTES)
		len = RV_ARGV_BYTES;
	len += __builtin_offsetof(struct rv_exec_event, data) + at;
	e->h.size = len;
	emit_flagged(e, len, e->matched != 0);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 zero = 0, flags = 0, at;
	struct rv_exec_event *e = bpf_map_lookup_elem(&scratch, &zero);
	struct texts t = {};
	struct kernfs_node *kn;

	if (!e)
		return 0;
	kn = p->cgroups->dfl_cgrp->kn;
	capture_identity(e, p, old_pid, bprm, kn, &flags);
	capture_paths(e, p, bprm, kn, &flags);
	at = text_end(e, 4);
	capture_argv(e, p, bprm, at, &flags);
	e->flags = flags;
	e->matched = 0;
	e->action = RV_ACT_NONE;
	e->_pad2 = 0;

	t.filename = e->data;
	t.filename_len = *(volatile __u16 *)&e->filename_len;
	t.cwd = &e->data[text_end(e, 2)];
	t.cwd_len = *(volatile __u16 *)&e->cwd_len;
	t.argv = &e->data[at];
	enforce(e, &t);
	emit_exec(e, at);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *p)
{
	struct rv_exit_event e = {};
	struct rv_proc *me;

	/* Only the last thread's exit ends the process. */
	if (p->signal->live.counter != 0)
		return 0;

	e.h.type = RV_EVENT_EXIT;
	e.h.size = sizeof(e);
	e.h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(p, &e.h.proc);
	me = proc_of(&e.h.proc);
	e.flags = parent_from(me, &e.parent);
	/* A process that never exec'd is announced (with its fork) before its exit. */
	if (me && !me->announced)
		announce(e.h.proc.tgid);
	ident_of(p->real_parent, &e.real_parent);
	/* Children it leaves behind may be seen only later (lazy forks): userspace must keep it
	 * findable as their parent. Exiting threads have moved theirs to this last one. */
	if (p->children.next != &p->children)
		e.flags |= RV_F_LEFT_CHILDREN;
	e.exit_code = p->exit_code;
	untrack(e.h.proc.tgid);
	emit(&e, sizeof(e));
	return 0;
}
