// SPDX-License-Identifier: GPL-2.0
/* revenant deny tier: refuses execve of a blocklisted program before it is loaded.
 * A separate object, loaded only where BPF LSM is active; its failure never touches tracing.
 * At bprm_check_security the new argv is in the new mm, which this task cannot read: it
 * matches the executable (device+inode, at every binfmt pass) and the exec path; rules that
 * need an argv element or comm are left to kill-at-exec, which sees them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "revenant_abi.h"
#include "common.bpf.h"

char LICENSE[] SEC("license") = "GPL";

static __always_inline __u64 path_keys(const char *buf, __u32 len)
{
	__u64 full = RV_FNV_OFFSET, base = (RV_FNV_OFFSET ^ RV_HASH_TAG_BASE) * RV_FNV_PRIME, mask = 0, *m;
	__u32 i;

	for (i = 0; i < RV_PATH_BYTES; i++) {
		__u8 c;
		if (i >= len)
			break;
		c = buf[i];
		if (!c)
			break;
		full = (full ^ c) * RV_FNV_PRIME;
		if (c == '/')
			base = (RV_FNV_OFFSET ^ RV_HASH_TAG_BASE) * RV_FNV_PRIME;
		else
			base = (base ^ c) * RV_FNV_PRIME;
	}
	m = bpf_map_lookup_elem(&script_rules, &full);
	if (m)
		mask |= *m;
	m = bpf_map_lookup_elem(&script_rules, &base);
	if (m)
		mask |= *m;
	return mask;
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rv_deny_event);
} deny_scratch SEC(".maps");

/* argv is not readable at bprm_check_security (it lives in the new mm): hash it at syscall
 * entry, per thread, the way execsnoop reads it. Bounds: 32 arguments of 255 bytes. */
#define RV_LSM_ARGS 32

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);    /* pid_tgid of the thread calling execve */
	__type(value, __u64);  /* script rule bits its argv matched */
} exec_args SEC(".maps");

struct arg_buf {
	char b[RV_ARGV_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct arg_buf);
} arg_scratch SEC(".maps");

static __always_inline int capture(const char *const *argv)
{
	__u32 zero = 0, *slot = bpf_map_lookup_elem(&policy_slot, &zero);
	struct rv_policy *pol;
	struct arg_buf *buf;
	struct scan_ctx c = {};
	__u64 key = bpf_get_current_pid_tgid();
	int i;

	if (!slot)
		return 0;
	pol = bpf_map_lookup_elem(&policy, slot);
	if (!pol || !pol->deny || !pol->need_script)
		return 0;
	buf = bpf_map_lookup_elem(&arg_scratch, &zero);
	if (!buf)
		return 0;
	c.s.filter = pol->script_filter;
	for (i = 0; i < RV_LSM_ARGS; i++) {
		const char *arg = NULL;
		long n;

		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		n = bpf_probe_read_user_str(buf->b, RV_PATH_BYTES, arg);
		if (n <= 0)
			break;
		c.s.buf = buf->b;
		c.s.len = n;
		scan_reset(&c.s, 0);
		/* rel keys need the cwd: without it (rel_seed 0) they cannot collide with a rule's */
		bpf_loop(RV_PATH_BYTES, scan_step, &c, 0);
	}
	bpf_map_update_elem(&exec_args, &key, &c.s.mask, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_enter_execve")
int capture_execve(struct trace_event_raw_sys_enter *ctx)
{
	return capture((const char *const *)ctx->args[1]);
}

SEC("tp/syscalls/sys_enter_execveat")
int capture_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return capture((const char *const *)ctx->args[2]);
}

SEC("lsm/bprm_check_security")
int BPF_PROG(deny_exec, struct linux_binprm *bprm, int ret)
{
	__u32 zero = 0, *slot;
	struct rv_policy *pol;
	struct rv_exe_key ek;
	struct rv_deny_event *e;
	__u64 exe = 0, script = 0, matched, *m;
	long n;

	if (ret)
		return ret;
	slot = bpf_map_lookup_elem(&policy_slot, &zero);
	if (!slot)
		return 0;
	pol = bpf_map_lookup_elem(&policy, slot);
	if (!pol || !pol->deny)
		return 0;
	e = bpf_map_lookup_elem(&deny_scratch, &zero);
	if (!e)
		return 0;

	ek.dev = BPF_CORE_READ(bprm, file, f_inode, i_sb, s_dev);
	ek.ino = BPF_CORE_READ(bprm, file, f_inode, i_ino);
	if (pol->need_exe && exe_filter_has(pol, &ek)) {
		m = bpf_map_lookup_elem(&exe_rules, &ek);
		if (m)
			exe = *m;
	}
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	if (n < 0)
		n = 0;
	if (pol->need_script) {
		__u64 key = bpf_get_current_pid_tgid(), *args = bpf_map_lookup_elem(&exec_args, &key);

		script = path_keys(e->filename, n);
		if (args)
			script |= *args;
	}
	/* comm is still the caller's here: rules that need it are not decided by this tier. */
	matched = (exe | ~pol->need_exe) & (script | ~pol->need_script) & ~pol->need_comm & pol->deny;
	if (!matched)
		return 0;

	e->h.type = RV_EVENT_DENY;
	e->h.size = sizeof(*e);
	e->h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(bpf_get_current_task_btf(), &e->h.proc);
	e->flags = parent_of(&e->h.proc, &e->parent);
	/* The caller keeps its image: it may never have been announced. */
	announce(e->h.proc.tgid);
	e->exe_dev = ek.dev;
	e->exe_ino = ek.ino;
	e->matched = matched;
	e->uid = bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	emit_flagged(e, sizeof(*e), true);
	return -1; /* -EPERM */
}
