/* Pins in bpffs: kill at exec outlives the daemon that attached it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/mount.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "revenant_bpf.h"
#include "rv_internal.h"

/* The links a later daemon finds under the pin directory, by name. */
static int pin_links(struct rv_bpf *b, struct bpf_link **links, const char **names)
{
    int n = 0;
#define LINK(l, name) do { if (l) { links[n] = (l); names[n] = (name); n++; } } while (0)
    LINK(b->skel->links.handle_fork, "fork");
    LINK(b->skel->links.handle_fork_all, "fork_all");
    LINK(b->skel->links.handle_exec, "exec");
    LINK(b->skel->links.handle_exit, "exit");
    if (b->lsm) {
        LINK(b->lsm->links.deny_exec, "lsm_deny");
        LINK(b->lsm->links.capture_execve, "lsm_argv");
        LINK(b->lsm->links.capture_execveat, "lsm_argv_at");
    }
#undef LINK
    return n;
}

static const char *all_pins[] = {"fork", "fork_all", "exec", "exit", "lsm_deny", "lsm_argv", "lsm_argv_at"};

int rv_bpf_pin(struct rv_bpf *b, const char *dir)
{
    struct bpf_link *links[8];
    const char *names[8];
    char path[512], tmp[520];
    int n = pin_links(b, links, names), i, j, err;

    if (mkdir(dir, 0700) && errno != EEXIST)
        return -errno;
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        /* bpffs refuses names with a dot. */
        snprintf(tmp, sizeof(tmp), "%s/new_%s", dir, names[i]);
        unlink(tmp);
        err = bpf_obj_pin(bpf_link__fd(links[i]), tmp);
        if (err)
            return err < 0 ? err : -err;
        /* Over the earlier daemon's pin: its link detaches once this one is in place. */
        if (rename(tmp, path)) {
            err = -errno;
            unlink(tmp);
            return err;
        }
    }
    /* Pins of programs this daemon did not attach (another fork mode, no LSM) go. */
    for (j = 0; j < (int)(sizeof(all_pins) / sizeof(all_pins[0])); j++) {
        int mine = 0;
        for (i = 0; i < n; i++)
            mine |= !strcmp(names[i], all_pins[j]);
        if (!mine) {
            snprintf(path, sizeof(path), "%s/%s", dir, all_pins[j]);
            unlink(path);
        }
    }
    return 0;
}

int rv_is_bpffs(const char *path)
{
    struct statfs st;
    return !statfs(path, &st) && st.f_type == 0xcafe4a11;
}

int rv_mount_bpffs(const char *path)
{
    return mount("bpf", path, "bpf", 0, "mode=0700") ? -errno : 0;
}

int rv_bpf_unpin(const char *dir)
{
    char path[512];
    int j, n = 0;
    for (j = 0; j < (int)(sizeof(all_pins) / sizeof(all_pins[0])); j++) {
        snprintf(path, sizeof(path), "%s/%s", dir, all_pins[j]);
        if (!unlink(path))
            n++;
    }
    rmdir(dir);
    return n;
}

int rv_bpf_pinned(const char *dir)
{
    char path[512];
    int j, n = 0;
    for (j = 0; j < (int)(sizeof(all_pins) / sizeof(all_pins[0])); j++) {
        snprintf(path, sizeof(path), "%s/%s", dir, all_pins[j]);
        if (!access(path, F_OK))
            n++;
    }
    return n;
}
