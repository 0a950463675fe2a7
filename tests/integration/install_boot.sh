#!/usr/bin/env bash
# install_boot: the minimal client OS, installed by ml-install onto a disk,
# boots from that disk alone and runs offline (docs/install.md).
#
# 1. image/build.sh --profile minimal builds the real client OS (the kernel
#    .deb is downloaded once into IMAGE_CACHE, default build-image/cache of
#    the source tree, as in image_minimal.sh).
# 2. ml-install --profile minimal puts it onto a sparse 2 GiB disk file
#    behind a loop device, with the running command line (ML_INSTALL_CMDLINE)
#    carrying ml.server=, ml.fp= and ml.name= and an enrolled credential
#    (ML_INSTALL_CREDENTIAL) that lands on the new MLDATA; a marker file is
#    put onto MLDATA.
# 3. QEMU boots the disk file (BIOS, TCG, IDE disk, no network device at
#    all): on the serial console GRUB shows the local entry, the kernel's
#    command line has ml.local=1 and the carried ml.server=, the init finds
#    no network, mounts MLDATA on /var/lib/mlagent, starts mlagent, which
#    reads the credential from MLDATA (its machine id and name), fails to
#    reach the server and keeps retrying: after 20 s it has not exited and
#    the machine is still up. The boot time (QEMU start to "mlagent
#    started") is printed.
# 4. ml-install again onto the same disk (a reinstall, another ml.name):
#    the marker and the credential survive, and the disk boots again with
#    the new command line and the same credential, this time as a UEFI PC
#    (OVMF: GRUB from the ESP's EFI/BOOT/BOOTX64.EFI).
#
# Env: MLBUILD, MLSRC; IMAGE_CACHE. Exit 0 pass, 1 fail, 77 skip (not root,
# tools missing, a sanitizer build).
set -uo pipefail
: "${MLBUILD:?}" "${MLSRC:?}"
ML=$MLSRC/image/files/usr/sbin/ml-install

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: install_boot needs root (loop devices, mkfs, mount)"
	exit 77
fi
[ -e /usr/share/OVMF/OVMF_CODE_4M.fd ] || {
	echo "SKIP: needs OVMF, the UEFI firmware for QEMU (Debian: ovmf)"
	exit 77
}
for t in qemu-system-x86_64 busybox apt-get dpkg-deb zstd losetup sfdisk partx blkid wipefs \
	mkfs.vfat mkfs.ext4 mkfs.btrfs grub-install sha256sum; do
	command -v "$t" >/dev/null || {
		echo "SKIP: $t is missing (scripts/install-deps.sh)"
		exit 77
	}
done
{ [ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ]; } || {
	echo "SKIP: grub-pc-bin or grub-efi-amd64-bin is missing"
	exit 77
}
# A sanitizer build's mlagent would drag libasan into the initramfs and run
# slowly under TCG; the boot test belongs to the normal tree.
if ldd "$MLBUILD/src/agent/mlagent" 2>/dev/null | grep -q 'libasan\|libubsan'; then
	echo "SKIP: mlagent is built with sanitizers (the boot test runs in the normal build tree)"
	exit 77
fi

WORK=$(mktemp -d /tmp/install_boot.XXXXXX)
DISK_IMG=$WORK/disk.img
LOOP=""
QPID=""
MNT=""
# shellcheck disable=SC2317 # the exit trap
cleanup() {
	if [ -n "$QPID" ]; then
		kill "$QPID" 2>/dev/null
		wait "$QPID" 2>/dev/null
	fi
	[ -n "$MNT" ] && { umount "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; }
	if [ -n "$LOOP" ]; then
		# ml-install's own loop devices over our disk, then the disk itself.
		for o in $(losetup -n -O NAME -j "$LOOP" 2>/dev/null); do losetup -d "$o" 2>/dev/null; done
		losetup -d "$LOOP" 2>/dev/null
	fi
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# shellcheck source=tests/integration/checks.sh
source "$MLSRC/tests/integration/checks.sh"

attach() { # the disk file on a loop device with its partitions, $LOOP
	LOOP=$(losetup -P --show -f "$DISK_IMG") || die "losetup $DISK_IMG"
}
detach() { # flushes and detaches $LOOP (QEMU then has the file to itself)
	sync
	blockdev --flushbufs "$LOOP" 2>/dev/null
	losetup -d "$LOOP" || die "cannot detach $LOOP"
	LOOP=""
}
pnode() { # partition node $1 of $LOOP (partx adds it when the kernel did not)
	local n
	n=$(basename "$LOOP")
	[ -b "/dev/${n}p$1" ] || partx -a "$LOOP" >/dev/null 2>&1 || partx -u "$LOOP" >/dev/null 2>&1
	echo "/dev/${n}p$1"
}
mount_data() { # MLDATA of $LOOP on $MNT
	MNT=$WORK/mnt
	mkdir -p "$MNT"
	mount "$(pnode 4)" "$MNT" || {
		MNT=""
		return 1
	}
}
umount_data() {
	umount "$MNT" || die "cannot unmount MLDATA"
	MNT=""
}

# ------------------------------------------------------------ 1. build

IMG=$WORK/image
echo "== 1. build the minimal image"
start=$SECONDS
if ! bash "$MLSRC/image/build.sh" --profile minimal --out "$IMG" --mlagent "$MLBUILD/src/agent/mlagent" \
	--cache "${IMAGE_CACHE:-$MLSRC/build-image/cache}" >"$WORK/build.log" 2>&1; then
	tail -20 "$WORK/build.log"
	die "image/build.sh --profile minimal"
fi
echo "built in $((SECONDS - start)) s"

# ------------------------------------------------------------ 2. install

# No server runs: the machine has no network. The port, fingerprint, pin and
# credential only have to be well-formed.
PORT=8443
SERVER=https://10.0.2.2:$PORT
FP=$(printf 'microlinux install_boot' | sha256sum | awk '{ print toupper($1) }')
PIN="sha256//$(printf '%032d' 7 | base64)"
TOKEN=mla_$(printf 'a credential' | sha256sum | awk '{ print $1 }')
printf 'credential=%s\nmachine_id=7\nname=pc7\nserver=%s\nfingerprint=%s\npin=%s\n' \
	"$TOKEN" "$SERVER" "$FP" "$PIN" >"$WORK/credential"
chmod 0600 "$WORK/credential"
# The running (network-booted) system's command line, as the install boot mode has it.
echo "BOOT_IMAGE=vmlinuz console=ttyS0 ml.server=$SERVER ml.fp=$FP ml.name=pc7 ml.install=1" >"$WORK/cmdline"

mli() { # ml-install of the image onto $LOOP; its output in $WORK/install.log
	ML_INSTALL_CMDLINE=$WORK/cmdline ML_INSTALL_CREDENTIAL=$WORK/credential "$ML" \
		--status-file "$WORK/status.json" --disk "$LOOP" --source "$IMG" --profile minimal \
		--system-size 512M >"$WORK/install.log" 2>&1
}

echo "== 2. ml-install onto a 2 GiB disk"
truncate -s 2G "$DISK_IMG" || die "truncate"
attach
start=$SECONDS
if mli; then pass "ml-install exits 0 ($((SECONDS - start)) s)"; else
	cat "$WORK/install.log"
	die "ml-install failed"
fi
check "ml-install copied the credential" grep -q "copied the agent's credential" "$WORK/install.log"
mount_data || die "cannot mount MLDATA"
echo "keep me" >"$MNT/marker"
check "the credential is on MLDATA" cmp -s "$WORK/credential" "$MNT/credential"
umount_data
detach

# ------------------------------------------------------------ 3. boot

# console_has LOG TEXT SECONDS: until TEXT (a basic regex) shows on the
# console; fails at once when QEMU has ended.
console_has() {
	local end=$((SECONDS + $3))
	until grep -aq -- "$2" "$1"; do
		if [ $SECONDS -ge "$end" ]; then
			echo "   '$2' not on the console after $3 s" >&2
			return 1
		fi
		if ! kill -0 "$QPID" 2>/dev/null; then
			echo "   QEMU ended before '$2' showed" >&2
			return 1
		fi
		sleep 0.5
	done
}
count() { grep -ac -- "$2" "$1"; }

BOOT_S=""
# boot NAME NAME_ARG bios|uefi: boots the disk without a network and checks
# the console. UEFI: OVMF with its variables in a fresh copy, so the disk's
# EFI/BOOT/BOOTX64.EFI (GRUB, installed as removable) is what it finds.
boot() {
	local log=$WORK/$1-console.log name=$2 t0 fw=()
	: >"$log"
	if [ "$3" = uefi ]; then
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$WORK/$1.vars"
		fw=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
			-drive "if=pflash,format=raw,unit=1,file=$WORK/$1.vars")
	fi
	t0=$SECONDS
	qemu-system-x86_64 -machine "pc,accel=tcg" "${fw[@]}" -m 512 -smp 1 -display none -monitor none \
		-serial "file:$log" -drive "file=$DISK_IMG,format=raw" -nic none -no-reboot 2>>"$WORK/qemu.err" &
	QPID=$!
	if ! console_has "$log" "Microlinux (local, minimal)" 60; then
		# Nothing else can show: do not wait for each of the checks below.
		fail "$1: GRUB shows the local entry"
		kill "$QPID" 2>/dev/null
		wait "$QPID" 2>/dev/null
		QPID=""
		return
	fi
	pass "$1: GRUB shows the local entry"
	check "$1: the kernel's command line has ml.local=1 and the carried ml.server=, ml.fp=, ml.name=" \
		console_has "$log" "Command line: .*ml\.local=1 ml\.server=$SERVER ml\.fp=$FP ml\.name=$name " 60
	check "$1: no token and no ml.install on the command line" \
		bash -c "! grep -a 'Command line:' '$log' | grep -q 'ml\.token\|ml\.install'"
	check "$1: no network (no ethernet interface)" \
		console_has "$log" "microlinux: no ethernet interface found" 120
	check "$1: the data partition MLDATA is mounted on /var/lib/mlagent" \
		console_has "$log" "microlinux: data partition /dev/sda4 (LABEL=MLDATA) mounted on /var/lib/mlagent" 60
	if console_has "$log" "microlinux: mlagent started" 60; then
		BOOT_S=$((SECONDS - t0))
		pass "$1: mlagent started, $BOOT_S s after QEMU started"
	else
		fail "$1: mlagent started"
	fi
	check "$1: mlagent runs with the credential on MLDATA (machine 7, pc7)" \
		console_has "$log" "machine 7 (pc7), server $SERVER" 30
	check "$1: mlagent tries the unreachable server" console_has "$log" "mlagent.*hello: " 30
	# Offline it must keep running and retrying: neither exit nor crash.
	sleep 20
	check "$1: after 20 s the machine is still up" kill -0 "$QPID"
	check "$1: mlagent did not exit" [ "$(count "$log" "mlagent exited")" -eq 0 ]
	check "$1: mlagent backs off (fewer than 30 failed hellos in 20 s)" \
		[ "$(count "$log" "mlagent.*hello: ")" -lt 30 ]
	check "$1: mlagent started once" [ "$(count "$log" "microlinux: mlagent started")" -eq 1 ]
	check "$1: no kernel panic or oops" bash -c "! grep -aq 'Kernel panic\|Oops\|segfault' '$log'"
	echo "---- $1: console (microlinux and mlagent lines)"
	grep -a -E '^(microlinux|mlagent)' "$log" | head -n 20
	kill "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=""
}

echo "== 3. boot the disk in QEMU (BIOS, TCG, no network device)"
boot boot1 pc7 bios
BOOT1=$BOOT_S

# ------------------------------------------------------------ 4. reinstall

echo "== 4. reinstall onto the same disk (ml.name=pc8), boot again, as a UEFI PC"
sed -i 's/ml\.name=pc7/ml.name=pc8/' "$WORK/cmdline"
attach
if mli; then pass "the reinstall exits 0"; else
	cat "$WORK/install.log"
	fail "the reinstall failed"
fi
check "the reinstall keeps MLDATA" grep -q "keeping the data partition" "$WORK/install.log"
mount_data || die "cannot mount MLDATA after the reinstall"
check "the marker on MLDATA survived the reinstall" grep -q "keep me" "$MNT/marker"
check "the credential on MLDATA survived the reinstall" cmp -s "$WORK/credential" "$MNT/credential"
umount_data
detach
boot boot2 pc8 uefi

echo "boot time (QEMU start to \"mlagent started\", TCG): BIOS ${BOOT1:-?} s, UEFI after the reinstall ${BOOT_S:-?} s"
if [ "$FAILS" -gt 0 ]; then
	for b in boot1 boot2; do
		echo "---- console of $b (tail)"
		tail -n 40 "$WORK/$b-console.log" | tr -d '\033'
	done
	echo "install_boot: $FAILS check(s) failed"
	exit 1
fi
echo "install_boot: all checks passed"
