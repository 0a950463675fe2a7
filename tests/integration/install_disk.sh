#!/usr/bin/env bash
# install_disk: ml-install (image/files/usr/sbin/ml-install, docs/install.md)
# on sparse disk files behind loop devices, with small fake system files.
#
# 1. Fresh install on an empty 6 GiB disk: the GPT (types, names), the file
#    systems (labels, types), the files in MLSYS with their SHA-256, GRUB for
#    BIOS (boot sector, core image in the BIOS boot partition) and UEFI
#    (EFI/BOOT/BOOTX64.EFI on the ESP), grub.cfg (the server, fingerprint and
#    name of the running command line carried, never ml.token or ml.install),
#    the status file.
# 2. Reinstall (a new kernel, from an HTTP source): a marker file on MLDATA
#    survives, MLDATA's UUID is the same, MLSYS holds the new kernel.
# 3. --wipe-data --data-fs ext4: the marker is gone, MLDATA is a new ext4.
# 4. Refusals, each with its message, a failed status file and the partition
#    table unchanged: two candidate disks, a too-small disk, another OS's
#    partitions without --yes, a mounted partition, a bad --data-fs, a token
#    in --cmdline, a source missing a file, a truncated file (SHA256SUMS),
#    a truncated file over HTTP, the disk holding the running root.
# 5. --yes destroys the other OS's partitions and installs.
# 6. That disk boots in QEMU (BIOS): GRUB shows the local entry on the serial
#    console (the fake kernel itself cannot boot).
#
# Env: MLSRC. Exit 0 pass, 1 fail, 77 skip (not root, or tools missing).
set -uo pipefail
MLSRC=${MLSRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
ML=$MLSRC/image/files/usr/sbin/ml-install

if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: install_disk needs root (loop devices, mkfs, mount)"
	exit 77
fi
for t in losetup sfdisk partx blkid wipefs mkfs.vfat mkfs.ext4 mkfs.btrfs grub-install \
	sha256sum mdir curl python3; do
	command -v "$t" >/dev/null || {
		echo "SKIP: $t is missing (scripts/install-deps.sh)"
		exit 77
	}
done
{ [ -d /usr/lib/grub/i386-pc ] && [ -d /usr/lib/grub/x86_64-efi ]; } || {
	echo "SKIP: grub-pc-bin or grub-efi-amd64-bin is missing"
	exit 77
}

WORK=$(mktemp -d /tmp/install_disk.XXXXXX)
LOOPS=()
MNTS=()
HTTP_PID=""
# shellcheck disable=SC2317 # the exit trap
cleanup() {
	local m l
	for m in "${MNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	for l in "${LOOPS[@]}"; do
		# ml-install's own loop devices over our disks, then the disk itself.
		for o in $(losetup -n -O NAME -j "$l" 2>/dev/null); do losetup -d "$o" 2>/dev/null; done
		losetup -d "$l" 2>/dev/null
	done
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

# shellcheck source=tests/integration/checks.sh
source "$MLSRC/tests/integration/checks.sh"

NEW=""
new_disk() { # name size: a sparse disk file on a loop device, $NEW (not in $(...): LOOPS must grow here)
	truncate -s "$2" "$WORK/$1.img" || die "truncate $1"
	NEW=$(losetup -P --show -f "$WORK/$1.img") || die "losetup $1"
	LOOPS+=("$NEW")
}

# The partition node of number $2 of disk $1 (partx adds it when the kernel did not).
pnode() {
	local n
	n=$(basename "$1")
	if [ ! -b "/dev/${n}p$2" ]; then
		partx -a "$1" >/dev/null 2>&1 || partx -u "$1" >/dev/null 2>&1
	fi
	blockdev --flushbufs "$1" "/dev/${n}p$2" 2>/dev/null
	echo "/dev/${n}p$2"
}

# What must not change after a refusal: the table and the first and last MiB.
fingerprint() {
	blockdev --flushbufs "$1"
	{
		sfdisk -d "$1" 2>/dev/null
		head -c 1048576 "$1" | sha256sum
		tail -c 1048576 "$1" | sha256sum
	} | sha256sum
}

CMDLINE=$WORK/cmdline
echo 'BOOT_IMAGE=/vmlinuz boot=live fetch=http://192.0.2.1/live/filesystem.squashfs ml.server=https://srv.example:8443 ml.token=mle_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef ml.fp=AB:CD "ml.name=pc 1" ml.install=1 quiet' >"$CMDLINE"
STATUS=$WORK/status.json
OUT=$WORK/out
echo "credential=mla_1" >"$WORK/credential"
mli() { # runs ml-install; its output in $OUT; returns its exit status
	ML_INSTALL_CMDLINE=$CMDLINE ML_INSTALL_CREDENTIAL=$WORK/credential "$ML" --status-file "$STATUS" "$@" >"$OUT" 2>&1
}
said() { grep -q -- "$1" "$OUT"; }

make_source() { # dir seed: small random system files and their SHA256SUMS
	mkdir -p "$1"
	head -c 1500000 /dev/urandom >"$1/vmlinuz"
	head -c 900000 /dev/urandom >"$1/initrd.img"
	head -c 3000000 /dev/urandom >"$1/filesystem.squashfs"
	(cd "$1" && sha256sum vmlinuz initrd.img filesystem.squashfs >SHA256SUMS)
}
make_source "$WORK/src1"
make_source "$WORK/src2"

new_disk d1 6G && D1=$NEW
new_disk d2 6G && D2=$NEW
new_disk d3 2G && D3=$NEW
echo "disks: $D1 $D2 (6 GiB), $D3 (2 GiB)"

MP=""
mount_ro() { # dev: mounts it read-only on a new directory, $MP (not in $(...): MNTS must grow here)
	MP=$(mktemp -d "$WORK/mnt.XXXXXX")
	mount -o ro "$1" "$MP" || return 1
	MNTS+=("$MP")
}
umount_all() {
	local m
	for m in "${MNTS[@]}"; do umount "$m"; done
	MNTS=()
}

# Checks MLSYS of disk $1 against source dir $2.
check_sys() {
	local d=$1 src=$2 m f
	mount_ro "$(pnode "$d" 3)" || {
		fail "mount MLSYS"
		return
	}
	m=$MP
	for f in boot/vmlinuz boot/initrd.img live/filesystem.squashfs; do
		check "MLSYS $f has the source's SHA-256" \
			[ "$(sha256sum <"$m/$f")" = "$(sha256sum <"$src/$(basename "$f")")" ]
	done
	check "MLSYS SHA256SUMS verifies" bash -c "cd '$m' && sha256sum --quiet -c SHA256SUMS"
	local cfg=$m/boot/grub/grub.cfg
	check "grub.cfg boots the local kernel and initrd" \
		grep -q "linux /boot/vmlinuz 'boot=live' 'live-media=/dev/disk/by-label/MLSYS' 'live-media-path=/live' 'ml.local=1'" "$cfg"
	check "grub.cfg has the initrd" grep -q "initrd /boot/initrd.img" "$cfg"
	check "grub.cfg carries ml.server" grep -q "'ml.server=https://srv.example:8443'" "$cfg"
	check "grub.cfg carries ml.fp and ml.name (with its space)" \
		grep -q "'ml.fp=AB:CD' 'ml.name=pc 1'" "$cfg"
	check "grub.cfg has the default consoles" grep -q "'console=tty0' 'console=ttyS0,115200'" "$cfg"
	check "grub.cfg has no ml.token" bash -c "! grep -qF ml.token '$cfg'"
	check "grub.cfg has no ml.install" bash -c "! grep -qF ml.install '$cfg'"
	check "grub.cfg has no fetch=" bash -c "! grep -q fetch= '$cfg'"
	check "grub.cfg finds MLSYS by UUID" \
		grep -q "search --no-floppy --fs-uuid --set=root $(blkid -p -o value -s UUID "$(pnode "$d" 3)")" "$cfg"
	check "GRUB i386-pc core image in MLSYS" [ -f "$m/boot/grub/i386-pc/core.img" ]
	check "GRUB x86_64-efi modules in MLSYS" [ -f "$m/boot/grub/x86_64-efi/normal.mod" ]
	umount_all
	# BIOS: boot.img in the MBR (it holds the string "GRUB"), core.img in the BIOS boot partition.
	check "GRUB boot code in the MBR" bash -c "head -c 440 '$d' | grep -aq GRUB"
	check "GRUB core image in the BIOS boot partition" \
		bash -c "head -c 512 '$(pnode "$d" 1)' | tr -d '\\0' | grep -q ."
	check "EFI/BOOT/BOOTX64.EFI on the ESP" \
		bash -c "MTOOLS_SKIP_CHECK=1 mdir -b -i '$(pnode "$d" 2)' ::/EFI/BOOT 2>/dev/null | grep -q BOOTX64.EFI"
}

status_is() { # jq filter that must be true
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$STATUS" "$1"
}

# ------------------------------------------------------------ 1. fresh

echo "== 1. fresh install on $D1"
if mli --disk "$D1" --source "$WORK/src1"; then pass "fresh install exits 0"; else
	cat "$OUT"
	die "fresh install failed"
fi
TABLE=$(sfdisk -d "$D1")
check "GPT" grep -q "^label: gpt" <<<"$TABLE"
check "p1 BIOS boot, 1 MiB" grep -Eq "p1 : start= *2048, size= *2048, type=21686148-6449-6E6F-744E-656564454649, .*name=\"BIOSBOOT\"" <<<"$TABLE"
check "p2 ESP named MLESP" grep -Eq "p2 : .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, .*name=\"MLESP\"" <<<"$TABLE"
check "p3 Linux named MLSYS, 4 GiB" grep -Eq "p3 : .*size= *8388608, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, .*name=\"MLSYS\"" <<<"$TABLE"
check "p4 Linux named MLDATA" grep -Eq "p4 : .*type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, .*name=\"MLDATA\"" <<<"$TABLE"
fslabel() { blkid -p -o value -s "$2" "$(pnode "$D1" "$1")"; }
check "ESP: vfat MLESP" [ "$(fslabel 2 TYPE) $(fslabel 2 LABEL)" = "vfat MLESP" ]
check "MLSYS: ext4 MLSYS" [ "$(fslabel 3 TYPE) $(fslabel 3 LABEL)" = "ext4 MLSYS" ]
check "MLDATA: btrfs MLDATA" [ "$(fslabel 4 TYPE) $(fslabel 4 LABEL)" = "btrfs MLDATA" ]
check_sys "$D1" "$WORK/src1"
check "status: done, full, data not kept" \
	status_is "d['state'] == 'done' and d['profile'] == 'full' and d['kept_data'] is False and d['disk'] == '$D1' and d['at'] > 1600000000"

m=$(mktemp -d "$WORK/mnt.XXXXXX")
mount "$(pnode "$D1" 4)" "$m" || die "cannot mount MLDATA"
echo "keep me" >"$m/marker"
check "the agent's credential was copied onto the new MLDATA (0600)" \
	bash -c "grep -q mla_1 '$m/credential' && [ \"\$(stat -c %a '$m/credential')\" = 600 ]"
echo "credential=mla_2" >"$WORK/credential"
umount "$m" || die "cannot unmount MLDATA"
DATA_UUID=$(fslabel 4 UUID)

# ------------------------------------------------------- 2. reinstall

echo "== 2. reinstall from an HTTP source, MLDATA mounted (as on /var/lib/mlagent)"
m=$(mktemp -d "$WORK/mnt.XXXXXX")
mount "$(pnode "$D1" 4)" "$m" && MNTS+=("$m")
HPORT=$((20000 + RANDOM % 20000))
(cd "$WORK/src2" && exec python3 -m http.server --bind 127.0.0.1 "$HPORT" >/dev/null 2>&1) &
HTTP_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$HPORT/SHA256SUMS" >/dev/null && break; sleep 0.1; done
if mli --disk "$D1" --source "http://127.0.0.1:$HPORT/"; then pass "reinstall exits 0"; else
	cat "$OUT"
	fail "reinstall failed"
fi
check "reinstall says it keeps MLDATA" said "keeping the data partition"
umount_all
check "MLDATA has the same UUID" [ "$(fslabel 4 UUID)" = "$DATA_UUID" ]
mount_ro "$(pnode "$D1" 4)" && m=$MP
check "the credential on MLDATA was kept" grep -q mla_1 "$m/credential"
check "the marker on MLDATA survived the reinstall" grep -q "keep me" "$m/marker"
umount_all
check_sys "$D1" "$WORK/src2"
check "status: done, data kept" status_is "d['state'] == 'done' and d['kept_data'] is True"

# ------------------------------------------------------- 3. wipe data

echo "== 3. --wipe-data --data-fs ext4"
if mli --disk "$D1" --source "$WORK/src1" --wipe-data --data-fs ext4; then pass "--wipe-data exits 0"; else
	cat "$OUT"
	fail "--wipe-data failed"
fi
check "MLDATA is now ext4 MLDATA" [ "$(fslabel 4 TYPE) $(fslabel 4 LABEL)" = "ext4 MLDATA" ]
mount_ro "$(pnode "$D1" 4)" && m=$MP
check "the marker is gone" [ ! -e "$m/marker" ]
umount_all
check "status: done, data not kept" status_is "d['state'] == 'done' and d['kept_data'] is False"

# ------------------------------------------------------- 4. refusals

echo "== 4. refusals"
# A foreign OS on D2: an MBR table with one ext4 partition.
printf 'label: dos\ntype=83\n' | sfdisk -q "$D2" || die "sfdisk $D2"
partx -a "$D2" >/dev/null 2>&1
mkfs.ext4 -q -L otheros "$(pnode "$D2" 1)" || die "mkfs on $D2"

refused() { # description message exit disk -- ml-install arguments
	local d=$1 msg=$2 want=$3 disk=$4 before rc
	shift 5
	before=$(fingerprint "$disk")
	rm -f "$STATUS"
	mli "$@"
	rc=$?
	if [ "$rc" -eq "$want" ] && said "$msg"; then pass "$d: refused ($msg)"; else
		cat "$OUT"
		fail "$d: exit $rc (want $want), message '$msg'"
	fi
	check "$d: the disk is unchanged" [ "$(fingerprint "$disk")" = "$before" ]
	if [ "$want" -eq 1 ]; then
		check "$d: status failed with a reason" status_is "d['state'] == 'failed' and len(d['reason']) > 0"
	fi
}
ML_INSTALL_SCAN="$(basename "$D1") $(basename "$D2")" ML_INSTALL_SCAN="$(basename "$D1") $(basename "$D3")" mli --source "$WORK/src1" --dry-run
check "one candidate (the small disk is none): chosen with --dry-run" said "disk: $D1 (the only candidate)"
check "--dry-run writes nothing" said "dry run: nothing was written"
refused "too small" "is too small" 1 "$D3" -- --disk "$D3" --source "$WORK/src1"
refused "foreign partitions" "give --yes" 1 "$D2" -- --disk "$D2" --source "$WORK/src1"
check "foreign partitions are listed" said "otheros"
m=$(mktemp -d "$WORK/mnt.XXXXXX")
mount "$(pnode "$D1" 3)" "$m" && MNTS+=("$m")
refused "mounted partition" "is mounted on $m" 1 "$D1" -- --disk "$D1" --source "$WORK/src1" --yes
umount_all
refused "bad --data-fs" "expected btrfs or ext4" 2 "$D1" -- --disk "$D1" --source "$WORK/src1" --data-fs xfs
refused "a token in --cmdline" "ml.token= must not be written" 2 "$D1" -- --disk "$D1" --source "$WORK/src1" --cmdline "quiet ml.token=x"
cp -r "$WORK/src1" "$WORK/nokernel" && rm "$WORK/nokernel/initrd.img"
refused "source without initrd.img" "has no initrd.img" 1 "$D1" -- --disk "$D1" --source "$WORK/nokernel"
cp -r "$WORK/src1" "$WORK/trunc" && truncate -s 2000000 "$WORK/trunc/filesystem.squashfs"
refused "truncated squashfs" "does not match SHA256SUMS" 1 "$D1" -- --disk "$D1" --source "$WORK/trunc"
truncate -s 1000000 "$WORK/src2/filesystem.squashfs"
refused "truncated squashfs over HTTP" "does not match SHA256SUMS" 1 "$D1" -- --disk "$D1" --source "http://127.0.0.1:$HPORT"
rm "$WORK/src2/filesystem.squashfs"
refused "HTTP source without the squashfs SHA256SUMS lists" "lists filesystem.squashfs but the source has no" 1 "$D1" -- --disk "$D1" --source "http://127.0.0.1:$HPORT"
cp -r "$WORK/src1" "$WORK/nosq" && rm "$WORK/nosq/filesystem.squashfs" "$WORK/nosq/SHA256SUMS"
refused "full profile without a squashfs" "needed for the full profile" 1 "$D1" -- --disk "$D1" --source "$WORK/nosq" --profile full
rootdev=$(findmnt -n -o SOURCE / 2>/dev/null)
if [ -b "$rootdev" ]; then
	rootdisk=/dev/$(lsblk -no PKNAME "$rootdev" 2>/dev/null | head -n 1)
	[ "$rootdisk" = /dev/ ] && rootdisk=$rootdev
	# --dry-run as a second guard: this is the machine's own disk.
	rm -f "$STATUS"
	mli --disk "$rootdisk" --source "$WORK/src1" --dry-run --yes
	check "the running root's disk ($rootdisk) is refused" said "holds the running system"
else
	echo "skip: the root file system is not on a block device ($rootdev)"
fi

# ------------------------------------------------------- 5. --yes

echo "== 5. --yes over another OS"
if mli --disk "$D2" --source "$WORK/src1" --yes --system-size 1G; then pass "--yes installs"; else
	cat "$OUT"
	fail "--yes failed"
fi
check "--yes said what it destroys" said "installing destroys it"
check "$D2 is now GPT with MLSYS of 1 GiB" bash -c "sfdisk -d '$D2' | grep -Eq 'p3 : .*size= *2097152, .*name=\"MLSYS\"'"

# ------------------------------------------------------- 6. boot (BIOS)

# The fake kernel cannot boot, but GRUB's menu on the serial console shows
# that the BIOS boot code, the core image in the BIOS boot partition and
# grub.cfg on MLSYS (found by UUID) work together.
if command -v qemu-system-x86_64 >/dev/null; then
	echo "== 6. boot $D2's image in QEMU (BIOS, no network)"
	sync
	blockdev --flushbufs "$D2"
	qemu-system-x86_64 -accel kvm -accel tcg -m 512 -nographic -net none \
		-drive "file=$WORK/d2.img,format=raw,snapshot=on" >"$WORK/serial.log" 2>&1 &
	qpid=$!
	for _ in $(seq 240); do
		grep -aq "Microlinux (local, full)" "$WORK/serial.log" && break
		kill -0 "$qpid" 2>/dev/null || break
		sleep 0.5
	done
	kill "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
	check "GRUB booted from the disk and shows the local entry on the serial console" \
		grep -aq "Microlinux (local, full)" "$WORK/serial.log"
else
	echo "skip: no qemu-system-x86_64 for the boot check"
fi

if [ "$FAILS" -gt 0 ]; then
	echo "install_disk: $FAILS check(s) failed"
	exit 1
fi
echo "install_disk: all checks passed"
