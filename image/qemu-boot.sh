#!/usr/bin/env bash
# Boots a built image in QEMU, the serial console on this terminal (quit:
# Ctrl-A X). For trying an image by hand; the automated test of the minimal
# profile is tests/integration/image_minimal.sh.
#
#   image/qemu-boot.sh DIR [KERNEL ARGUMENTS...]
#
# DIR is an --out directory of image/build.sh. For the full profile (DIR
# holds filesystem.squashfs) DIR is served over HTTP on 127.0.0.1 (python3
# -m http.server), which the guest reaches as 10.0.2.2, and the kernel gets
# `boot=live fetch=http://10.0.2.2:PORT/filesystem.squashfs`. QEMU's user
# networking gives the guest DHCP; the guest reaches the host's 127.0.0.1 as
# 10.0.2.2, e.g. ml.server=https://10.0.2.2:8443.
#
# Environment: QEMU_MEM (MiB; default 512 minimal, 3072 full), QEMU_ACCEL
# (tcg or kvm; default tcg), QEMU_NIC (default virtio-net-pci),
# QEMU_DISK (a disk image to attach, e.g. with an MLDATA partition),
# QEMU_EXTRA (more QEMU arguments, split at spaces, e.g. "-monitor
# unix:/tmp/mon.sock,server,nowait" to take screendumps of the X session).
set -euo pipefail

dir=${1:?usage: image/qemu-boot.sh DIR [KERNEL ARGUMENTS...]}
shift
[ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] || { echo "qemu-boot: $dir holds no vmlinuz and initrd.img" >&2; exit 1; }

append="console=ttyS0 $*"
mem=${QEMU_MEM:-512}
http_pid=""
cleanup() { [ -z "$http_pid" ] || kill "$http_pid" 2>/dev/null || true; }
trap cleanup EXIT

if [ -s "$dir/filesystem.squashfs" ]; then
	mem=${QEMU_MEM:-3072}
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	python3 -m http.server --bind 127.0.0.1 --directory "$dir" "$port" >"${TMPDIR:-/tmp}/qemu-boot-http.$$.log" 2>&1 &
	http_pid=$!
	append="boot=live fetch=http://10.0.2.2:$port/filesystem.squashfs $append"
	echo "qemu-boot: serving $dir on 127.0.0.1:$port (PID $http_pid)" >&2
fi

disk=()
[ -z "${QEMU_DISK:-}" ] || disk=(-drive "file=$QEMU_DISK,if=virtio,format=raw")
echo "qemu-boot: kernel command line: $append" >&2
qemu-system-x86_64 -accel "${QEMU_ACCEL:-tcg}" -machine q35 -m "$mem" -smp 2 \
	-display none -vga std -serial mon:stdio -no-reboot \
	-kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "$append" \
	-netdev user,id=n0 -device "${QEMU_NIC:-virtio-net-pci},netdev=n0" "${disk[@]}" ${QEMU_EXTRA:-}
