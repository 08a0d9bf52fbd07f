#!/usr/bin/env bash
# Boots Debian's own kernel under qemu with BPF LSM active and this machine's root shared
# read-only over 9p, runs SCRIPT inside (chrooted into the host root, with a private /run),
# and exits with its status. Usage: qemu-run.sh SCRIPT
# The host's /tmp stays visible (read-only, like all of it): a checkout may live there. Write
# under /run (a tmpfs in the guest).
# The kernel package is downloaded once into build/qemu (Debian's package, not committed).
set -euo pipefail
SCRIPT=$(realpath "${1:?usage: qemu-run.sh SCRIPT}")
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK="$ROOT/build/qemu"
mkdir -p "$WORK"
cd "$WORK"

pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
[ -n "$pkg" ] || { apt-get update -qq && pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ { print $2; exit }'); }
kver=${pkg#linux-image-}
if [ ! -f "kernel/boot/vmlinuz-$kver" ]; then
  rm -rf kernel ./*.deb
  apt-get download "$pkg" >/dev/null 2>&1
  dpkg-deb -x ./"$pkg"_*.deb kernel
fi

# initramfs: busybox, the virtio + 9p modules in load order, and an init that chroots.
rm -rf initrd && mkdir -p initrd/bin initrd/mods initrd/host
cp /bin/busybox initrd/bin/busybox
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  f=$(find "kernel/lib/modules/$kver" -name "$m.ko*" | head -1)
  [ -n "$f" ] && cp "$f" initrd/mods/
done
cp "$SCRIPT" initrd/run.sh
cat > initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc 2>/dev/null || { mkdir -p /proc && mount -t proc proc /proc; }
mkdir -p /sys /dev && mount -t sysfs sys /sys && mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
  [ -f /mods/$m.ko ] && insmod /mods/$m.ko
done
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host
mount -t proc proc /host/proc && mount -t sysfs sys /host/sys && mount -t devtmpfs dev /host/dev
mount -t tmpfs run /host/run
mount -t securityfs securityfs /host/sys/kernel/security
mount -t bpf bpf /host/sys/fs/bpf 2>/dev/null
mount -t tracefs tracefs /host/sys/kernel/tracing 2>/dev/null
cp /run.sh /host/run/run.sh
chroot /host /usr/bin/env TMPDIR=/run /bin/sh /run/run.sh
echo "QEMU-RUN-EXIT=$?"
poweroff -f
INIT
chmod +x initrd/init
(cd initrd && find . | cpio -o -H newc 2>/dev/null | gzip -1) > initrd.gz

timeout 600 qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 2048 \
  -kernel "kernel/boot/vmlinuz-$kver" -initrd initrd.gz -nographic -no-reboot \
  -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on \
  -append "console=ttyS0 quiet panic=-1 lsm=lockdown,capability,landlock,bpf" </dev/null | tee console.log | tr -d '\r'
status=$(tr -d '\r' < console.log | sed -n 's/^QEMU-RUN-EXIT=\([0-9]*\).*/\1/p' | tail -1)
[ -n "$status" ] || { echo "qemu-run: the guest did not report an exit status" >&2; exit 99; }
exit "$status"
