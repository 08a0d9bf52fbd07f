/* The kernel <-> userspace ABI of revenant: event records written by bpf/revenant.bpf.c
 * into the ring buffer and decoded by RevenantCore. Builtin C types only, no includes,
 * explicit padding: the same layout under clang -target bpf and on the host. */
#ifndef REVENANT_ABI_H
#define REVENANT_ABI_H

/* Capture bounds (bytes, including the terminating NUL where text). */
#define RV_COMM_BYTES     16
#define RV_PATH_BYTES     256   /* path passed to exec, interpreter */
#define RV_CWD_BYTES      256   /* cwd, leaf component first, see RV_CWD_DEPTH */
#define RV_CWD_DEPTH      16    /* path components walked for cwd */
#define RV_CGROUP_BYTES   128   /* leaf cgroup name of the default hierarchy */
#define RV_ARGV_BYTES     2048  /* NUL-separated argv, first bytes only */
#define RV_NAME_BYTES     64    /* one cwd path component */
/* An exec record's texts: path, interpreter, cwd and cgroup end within the first 1,024 bytes
 * (256 + 256 + 256 + 128), argv follows. */
#define RV_EXEC_TEXT_BYTES 1024
#define RV_EXEC_DATA_BYTES (RV_EXEC_TEXT_BYTES + RV_ARGV_BYTES)

/* Per-process kernel state: a direct-mapped array by tgid (a fork is a store into its slot,
 * not a hash-map update), and a hash map for the processes still alive when a new tgid
 * lands on their slot. Processes tracked at once: at most RV_PROC_SLOTS + RV_MAX_PROCS. */
#define RV_PROC_SLOTS     65536
#define RV_MAX_PROCS      131072

/* Policy maps. Rules occupy one half of a 64-bit mask; a reload fills the other half and
 * then flips the active slot, so enforcement never pauses. */
#define RV_MAX_EXE_KEYS     1024
#define RV_MAX_SCRIPT_KEYS  2048
#define RV_MAX_COMM_KEYS    256
#define RV_POLICY_SLOTS     2
/* Per slot, a 2,048-bit filter of its script keys (bit = a key's top 11 bits): most argv
 * elements miss it and skip the hash-map lookups, which cost as much as hashing the bytes. */
#define RV_SCRIPT_FILTER_WORDS 32
#define RV_SCRIPT_FILTER_SHIFT 53
/* Likewise a 1,024-bit filter of its exe keys (bit = top 10 bits of (ino ^ dev) * RV_EXE_MUL):
 * most execs skip the exe map's lookup. */
#define RV_EXE_FILTER_WORDS 16
#define RV_EXE_FILTER_SHIFT 54
#define RV_EXE_MUL 0x9e3779b97f4a7c15ULL

/* FNV-1a 64, also computed by RevenantCore's ScriptHash. */
#define RV_FNV_OFFSET 0xcbf29ce484222325ULL
#define RV_FNV_PRIME  0x00000100000001b3ULL
#define RV_HASH_TAG_REL  0x01
#define RV_HASH_TAG_BASE 0x02

struct rv_exe_key {
    unsigned long long dev;   /* kernel dev_t: major << 20 | minor */
    unsigned long long ino;
};

struct rv_comm_key {
    char comm[RV_COMM_BYTES];
};

/* One policy slot: which rule bits need which kind of match, and what each does. */
struct rv_policy {
    unsigned long long need_exe;
    unsigned long long need_script;
    unsigned long long need_comm;
    unsigned long long audit;
    unsigned long long kill;     /* killed at exec (deny rules too, where the LSM tier is absent) */
    unsigned long long deny;     /* refused by the LSM program */
    unsigned long long script_filter[RV_SCRIPT_FILTER_WORDS];
    unsigned long long exe_filter[RV_EXE_FILTER_WORDS];
};

enum rv_action {
    RV_ACT_NONE = 0,
    RV_ACT_AUDIT = 1,
    RV_ACT_KILL = 2,          /* SIGKILL sent at exec, before the first user instruction */
    RV_ACT_KILL_FAILED = 3,   /* bpf_send_signal refused */
    RV_ACT_DENY = 4,          /* execve refused with EPERM (LSM) */
};

enum rv_event_type {
    RV_EVENT_FORK = 1,
    RV_EVENT_EXEC = 2,
    RV_EVENT_EXIT = 3,
    RV_EVENT_DENY = 4,   /* execve refused by the LSM program: no exec follows */
};

enum rv_flags {
    RV_F_ARGV_TRUNCATED     = 1u << 0,
    RV_F_PATH_TRUNCATED     = 1u << 1,
    RV_F_CWD_TRUNCATED      = 1u << 2,
    RV_F_CGROUP_TRUNCATED   = 1u << 3,
    RV_F_PARENT_UNKNOWN     = 1u << 4,  /* process not in the kernel map (started before load, or map full) */
    RV_F_NONLEADER_EXEC     = 1u << 5,  /* exec came from a non-leader thread (old_pid != tgid) */
    RV_F_ARGV_UNREADABLE    = 1u << 6,
    RV_F_LEFT_CHILDREN      = 1u << 7,  /* exit: the process still had children (they were reparented) */
};

/* Per-CPU counters (index into the "counters" map). */
enum rv_counter {
    RV_CNT_RINGBUF_FULL  = 0,  /* events that could not be written to the ring buffer */
    RV_CNT_PROCMAP_FULL  = 1,  /* processes that could not be added to the kernel map */
    RV_CNT_EVENTS        = 2,  /* events written */
    RV_CNT_BUDGET        = 3,  /* not a counter: bytes this CPU may still write before it reads the ring's fill */
    RV_CNT__MAX          = 4,
};

/* A process identity: tgid plus its start time (CLOCK_BOOTTIME, ns). */
struct rv_ident {
    unsigned int tgid;
    unsigned int _pad;
    unsigned long long start_ns;
};

/* A process's slot in proc_slots (index: tgid mod RV_PROC_SLOTS; tgid 0 = free), and the
 * value of the overflow map procs (key: tgid). */
struct rv_proc {
    struct rv_ident self;
    struct rv_ident parent;  /* fork-time parent, never overwritten */
    unsigned int parent_thread;  /* pid of the thread that called fork/clone */
    unsigned int announced;      /* a record naming this process was written to the ring */
};

struct rv_header {
    unsigned int type;       /* enum rv_event_type */
    unsigned int size;       /* bytes of this record as written */
    unsigned long long time_ns;  /* CLOCK_BOOTTIME (bpf_ktime_get_boot_ns) */
    struct rv_ident proc;
};

struct rv_fork_event {
    struct rv_header h;
    struct rv_ident parent;  /* the process whose thread called fork/clone */
    unsigned int parent_thread;  /* pid of that thread */
    unsigned int flags;
};

struct rv_exit_event {
    struct rv_header h;
    struct rv_ident parent;       /* fork-time parent (tgid 0 if unknown) */
    struct rv_ident real_parent;  /* parent at exit: differs once reparented */
    unsigned int exit_code;       /* wait status: (code << 8) | signal */
    unsigned int flags;
};

struct rv_exec_event {
    struct rv_header h;
    struct rv_ident parent;       /* fork-time parent (tgid 0 if unknown) */
    struct rv_ident real_parent;  /* parent at exec: differs once reparented */
    unsigned long long exe_dev;   /* kernel dev_t of the executable's super block */
    unsigned long long exe_ino;
    unsigned long long cgroup_id; /* default-hierarchy (cgroup v2) id */
    unsigned int old_pid;         /* tracepoint's old_pid: the thread that called exec */
    unsigned int uid, euid, gid, loginuid;
    unsigned int flags;
    unsigned int argc;            /* full argument count, even if argv is truncated */
    unsigned int argv_len;        /* bytes of argv captured */
    unsigned long long matched;   /* policy rule bits that matched */
    unsigned int action;          /* enum rv_action taken in the kernel */
    unsigned int _pad2;
    char comm[RV_COMM_BYTES];
    /* Bytes of each text in data, NUL terminators included; 0 when none was read. */
    unsigned short filename_len;  /* path passed to exec */
    unsigned short interp_len;    /* interpreter actually run, when it differs (#!, binfmt_misc) */
    unsigned short cwd_len;       /* components leaf first, each NUL-terminated */
    unsigned short cgroup_len;    /* leaf cgroup name, e.g. training-worker.service */
    /* The texts packed in that order, then argv_len bytes of argv; the record is cut there.
     * Packed, an exec record is ~200 bytes plus argv, not 1 KiB of mostly empty fields. */
    char data[RV_EXEC_DATA_BYTES];
};

/* An execve refused by the deny tier (the process keeps its old image). */
struct rv_deny_event {
    struct rv_header h;
    struct rv_ident parent;       /* fork-time parent of the caller */
    unsigned long long exe_dev;
    unsigned long long exe_ino;
    unsigned long long matched;
    unsigned int uid;
    unsigned int flags;
    char comm[RV_COMM_BYTES];     /* the caller's */
    char filename[RV_PATH_BYTES]; /* path passed to execve */
};

_Static_assert(sizeof(struct rv_deny_event) == 352, "rv_deny_event layout");
_Static_assert(sizeof(struct rv_ident) == 16, "rv_ident layout");
_Static_assert(sizeof(struct rv_header) == 32, "rv_header layout");
_Static_assert(sizeof(struct rv_fork_event) == 56, "rv_fork_event layout");
_Static_assert(sizeof(struct rv_exit_event) == 72, "rv_exit_event layout");
_Static_assert(__builtin_offsetof(struct rv_exec_event, data) == 160, "rv_exec_event layout");
_Static_assert(sizeof(struct rv_exec_event) == 160 + RV_EXEC_DATA_BYTES, "rv_exec_event layout");
_Static_assert(sizeof(struct rv_policy) == 48 + 8 * (RV_SCRIPT_FILTER_WORDS + RV_EXE_FILTER_WORDS), "rv_policy layout");

#endif
