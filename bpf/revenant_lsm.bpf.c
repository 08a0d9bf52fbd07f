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
	if (pol->need_exe) {
		m = bpf_map_lookup_elem(&exe_rules, &ek);
		if (m)
			exe = *m;
	}
	n = bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	if (n < 0)
		n = 0;
	if (pol->need_script)
		script = path_keys(e->filename, n);
	/* comm is still the caller's here: rules that need it are not decided by this tier. */
	matched = (exe | ~pol->need_exe) & (script | ~pol->need_script) & ~pol->need_comm & pol->deny;
	if (!matched)
		return 0;

	e->h.type = RV_EVENT_DENY;
	e->h.size = sizeof(*e);
	e->h.time_ns = bpf_ktime_get_boot_ns();
	ident_of(bpf_get_current_task_btf(), &e->h.proc);
	e->flags = parent_of(&e->h.proc, &e->parent);
	e->exe_dev = ek.dev;
	e->exe_ino = ek.ino;
	e->matched = matched;
	e->uid = bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	emit(e, sizeof(*e));
	return -1; /* -EPERM */
}
