#!/bin/bash
# A real systemd as PID 1 of its own PID+mount namespace, on an overlay of / so that nothing it
# does (tmpfiles, units enabled on the host) touches the host. Used by the attribution tests.
#
#   systemd-ns.sh start DIR TARGET   boots it (units go in DIR/upper/etc/systemd/system first);
#                                    prints systemd's PID as the host sees it
#   systemd-ns.sh ctl DIR ARGS…      systemctl inside
#   systemd-ns.sh stop DIR           systemctl poweroff, SIGKILL if it lingers
set -euo pipefail
cmd=${1:?usage: systemd-ns.sh start|ctl|stop DIR …}
dir=${2:?DIR}
shift 2

pid() { cat "$dir/systemd.pid"; }

case $cmd in
start)
    target=${1:?TARGET unit to boot}
    mkdir -p "$dir/upper" "$dir/work" "$dir/merged"
    # Whatever the caller leaked to us must not stay open in a namespace that outlives us.
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
    done
    # Everything below is mounted inside the new mount namespace only; it vanishes with it.
    unshare --pid --fork --mount --propagation private bash -c '
        set -e
        d=$1
        mount -t overlay overlay -o lowerdir=/,upperdir=$d/upper,workdir=$d/work $d/merged
        mount -t proc proc $d/merged/proc
        mount --rbind /sys $d/merged/sys
        mount --rbind /dev $d/merged/dev
        mount -t tmpfs tmpfs $d/merged/tmp
        mount -t tmpfs tmpfs $d/merged/run
        exec chroot $d/merged /usr/bin/env container=other /lib/systemd/systemd --system --unit="$2"
    ' systemd-ns "$dir" "$target" >"$dir/console.log" 2>&1 </dev/null &
    outer=$!
    echo "$outer" >"$dir/unshare.pid"
    for _ in $(seq 100); do
        child=$(pgrep -P "$outer" || true)
        if [ -n "$child" ] && [ "$(cat /proc/"$child"/comm 2>/dev/null)" = systemd ]; then
            echo "$child" >"$dir/systemd.pid"
            # Wait until systemctl can talk to it.
            for _ in $(seq 100); do
                state=$(nsenter -t "$child" -m -p -r -w systemctl is-system-running 2>/dev/null || true)
                case $state in running|degraded|starting) echo "$child"; exit 0 ;; esac
                sleep 0.1
            done
            echo "systemd-ns: systemd $child never answered systemctl" >&2
            cat "$dir/console.log" >&2
            exit 1
        fi
        kill -0 "$outer" 2>/dev/null || break
        sleep 0.1
    done
    echo "systemd-ns: systemd did not start" >&2
    cat "$dir/console.log" >&2
    exit 1
    ;;
ctl)
    exec nsenter -t "$(pid)" -m -p -r -w systemctl "$@"
    ;;
stop)
    p=$(pid)
    nsenter -t "$p" -m -p -r -w systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 100); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
    wait "$(cat "$dir/unshare.pid")" 2>/dev/null || true
    ;;
*)
    echo "systemd-ns.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
