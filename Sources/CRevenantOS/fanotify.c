#define _GNU_SOURCE /* name_to_handle_at, struct file_handle */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/fanotify.h>
#include "revenant_os.h"

/* Configuration watch: fanotify with directory file handles and names (FAN_REPORT_DFID_NAME). */
#ifndef FAN_REPORT_DFID_NAME
#define FAN_REPORT_DFID_NAME 0x00000c00
#endif
#ifndef FAN_EVENT_INFO_TYPE_DFID_NAME
#define FAN_EVENT_INFO_TYPE_DFID_NAME 2
#endif

int rv_fan_init(void)
{
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_REPORT_DFID_NAME, O_RDONLY | O_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int rv_fan_mark_dir(int fd, const char *dir, unsigned char *handle, int cap)
{
    struct { struct file_handle fh; unsigned char bytes[128]; } h;
    int mount_id, n;
    unsigned long long mask = FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_CLOSE_WRITE |
                              FAN_ATTRIB | FAN_EVENT_ON_CHILD | FAN_ONDIR;

    /* AT_HANDLE_FID: the handle fanotify reports, which also exists where a decodable one does
     * not (overlayfs, a container's root); before 6.5, the decodable one, which is the same. */
    h.fh.handle_bytes = sizeof(h.bytes);
    if (name_to_handle_at(AT_FDCWD, dir, &h.fh, &mount_id, 0x200 /* AT_HANDLE_FID */)) {
        if (errno != EINVAL)
            return -errno;
        h.fh.handle_bytes = sizeof(h.bytes);
        if (name_to_handle_at(AT_FDCWD, dir, &h.fh, &mount_id, 0))
            return -errno;
    }
    if (fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_ONLYDIR, mask, AT_FDCWD, dir))
        return -errno;
    n = (int)(sizeof(int) + h.fh.handle_bytes);
    if (n > cap)
        return -ENOBUFS;
    memcpy(handle, &h.fh.handle_type, sizeof(int));
    memcpy(handle + sizeof(int), h.fh.f_handle, h.fh.handle_bytes);
    return n;
}

int rv_fan_read(int fd, rv_fan_fn fn, void *ctx)
{
    char buf[16384] __attribute__((aligned(8)));
    ssize_t len = read(fd, buf, sizeof(buf));
    struct fanotify_event_metadata *m;
    int n = 0;

    if (len < 0)
        return -errno;
    for (m = (struct fanotify_event_metadata *)buf; FAN_EVENT_OK(m, len); m = FAN_EVENT_NEXT(m, len)) {
        if (m->mask & FAN_Q_OVERFLOW) {
            /* The queue was full: changes were dropped. Told with an empty handle. */
            fn(ctx, m->pid, m->mask, (const unsigned char *)"", 0, "");
            n++;
            continue;
        }
        char *info = (char *)m + m->metadata_len, *end = (char *)m + m->event_len;
        while (info + sizeof(struct fanotify_event_info_header) <= end) {
            struct fanotify_event_info_fid *fid = (struct fanotify_event_info_fid *)info;
            if (fid->hdr.len == 0)
                break;
            if (fid->hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
                struct file_handle *fh = (struct file_handle *)fid->handle;
                unsigned char key[sizeof(int) + 128];
                int klen = (int)(sizeof(int) + fh->handle_bytes);
                const char *name = (const char *)fh->f_handle + fh->handle_bytes;
                if (fh->handle_bytes <= 128) {
                    memcpy(key, &fh->handle_type, sizeof(int));
                    memcpy(key + sizeof(int), fh->f_handle, fh->handle_bytes);
                    fn(ctx, m->pid, m->mask, key, klen, name);
                    n++;
                }
            }
            info += fid->hdr.len;
        }
        if (m->fd >= 0)
            close(m->fd);
    }
    return n;
}
