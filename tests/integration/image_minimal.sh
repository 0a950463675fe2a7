#!/usr/bin/env bash
# The minimal client image (image/build.sh --profile minimal, docs/image.md)
# boots in QEMU and its mlagent enrolls with a real mlserver:
#   1. the image builds (the kernel .deb is downloaded once into
#      IMAGE_CACHE, default build-image/cache of the source tree);
#   2. booted in QEMU (virtio-net, user networking: the host's 127.0.0.1 is
#      10.0.2.2 to the guest) with ml.server=, ml.token=, ml.fp= and
#      ml.name= on the kernel command line and a disk holding a BTRFS file
#      system labelled MLDATA, the serial console shows the network up, the
#      data partition mounted and mlagent started, and the agent shows
#      online in mlserver's API under its ml.name;
#   3. booted again from the same disk with an e1000 NIC and no token, the
#      agent starts with the credential kept on MLDATA (no new enrollment);
#   4. booted with ml.shell=1 and no disk, the console says the maintenance
#      shell started and mlagent did not, and the store would be in RAM.
# mlserver runs on 127.0.0.1 on a free port (DL_LOOPBACK of deploylib.sh);
# no root is needed. QEMU emulates (TCG) unless IMAGE_TEST_ACCEL=kvm.
set -uo pipefail
: "${MLBUILD:?}" "${MLSRC:?}"
DL_NAME=image_minimal

command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: needs qemu-system-x86_64 (Debian: qemu-system-x86)"; exit 77; }
command -v busybox >/dev/null || { echo "SKIP: needs busybox (Debian: busybox-static)"; exit 77; }
for c in curl jq apt-get dpkg-deb zstd mkfs.btrfs; do
  command -v "$c" >/dev/null || { echo "SKIP: needs $c"; exit 77; }
done
# A sanitizer build's mlagent would drag libasan into the initramfs and run
# slowly under TCG; the boot test belongs to the normal tree.
if ldd "$MLBUILD/src/agent/mlagent" 2>/dev/null | grep -q 'libasan\|libubsan'; then
  echo "SKIP: mlagent is built with sanitizers (the image test runs in the normal build tree)"
  exit 77
fi

export DL_LOOPBACK=1
# shellcheck source=tests/integration/deploylib.sh
. "$MLSRC/tests/integration/deploylib.sh"
# mlserver on a free port: listen on port 0 and read the port it bound.
DL_PORT=0
eval "$(declare -f dl_server_start | sed '1s/dl_server_start/dl_server_start0/')"
dl_server_start() {
  dl_server_start0 || return 1
  DL_PORT=$(tr -dc 0-9 <"$DL_W/server.port")
  DL_URL=https://$DL_ADDR:$DL_PORT
}
dl_init

IMG=$MLBUILD/image-minimal
echo "== 1. build the minimal image into $IMG"
start=$SECONDS
if ! bash "$MLSRC/image/build.sh" --profile minimal --out "$IMG" --mlagent "$MLBUILD/src/agent/mlagent" \
  --cache "${IMAGE_CACHE:-$MLSRC/build-image/cache}" >"$DL_W/build.log" 2>&1; then
  echo "FAIL: image/build.sh --profile minimal"
  tail -20 "$DL_W/build.log"
  exit 1
fi
echo "built in $((SECONDS - start)) s"
for f in vmlinuz initrd.img packages.txt build-info; do
  check "the image has $f" test -s "$IMG/$f"
done
check "build-info names the profile" grep -qx 'profile=minimal' "$IMG/build-info"
check "packages.txt lists the kernel" grep -q '^linux-image-6\.' "$IMG/packages.txt"

dl_server
dl_enroll_token
echo "mlserver on $DL_URL"

# TCG by default: a /dev/kvm that opens may still not run a guest (nested
# virtualisation); IMAGE_TEST_ACCEL=kvm where it does.
ACCEL=(-accel "${IMAGE_TEST_ACCEL:-tcg}")

# The data disk: a whole-disk BTRFS labelled MLDATA (no root needed).
truncate -s 256M "$DL_W/mldata.img"
mkfs.btrfs -q -L MLDATA "$DL_W/mldata.img" >/dev/null

# boot NAME NIC DISK APPEND — QEMU in the background, the serial console in
# $DL_W/NAME-console.log (dl_dump shows it on failure); its PID is killed on
# exit (dl_stop_all). DISK "" attaches none.
boot() {
  local name=$1 nic=$2 disk=$3 append=$4 drive=()
  [ -z "$disk" ] || drive=(-drive "file=$disk,if=virtio,format=raw")
  : >"$DL_W/$name-console.log"
  dl_spawn "qemu-$name" host qemu-system-x86_64 "${ACCEL[@]}" -machine q35 -m 512 -smp 1 \
    -display none -monitor none -serial "file:$DL_W/$name-console.log" -no-reboot \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "console=ttyS0 panic=-1 $append" \
    -netdev user,id=n0 -device "$nic,netdev=n0" "${drive[@]}"
}

# console_has NAME TEXT SECONDS — until TEXT shows on NAME's console.
console_has() {
  local end=$((SECONDS + $3))
  until grep -q -- "$2" "$DL_W/$1-console.log"; do
    [ $SECONDS -ge $end ] && { echo "   '$2' not on the console after $3 s" >&2; return 1; }
    sleep 0.5
  done
}
# console_count NAME TEXT — how many lines of NAME's console hold TEXT.
console_count() { grep -c -- "$2" "$DL_W/$1-console.log"; }

# The guest reaches the host's 127.0.0.1 as 10.0.2.2.
SRV="ml.server=https://10.0.2.2:$DL_PORT ml.fp=$DL_FP"

echo "== 2. boot with ml.server=, virtio-net and the MLDATA disk; the agent enrolls"
start=$SECONDS
boot agent virtio-net-pci "$DL_W/mldata.img" "$SRV ml.token=$DL_ETOKEN ml.name=imgtest"
check "the network came up" console_has agent 'microlinux: network up on eth0 10\.0\.2\.15' 180
check "the data partition is mounted" console_has agent 'microlinux: data partition /dev/vda (LABEL=MLDATA) mounted' 30
check "mlagent started" console_has agent 'microlinux: mlagent started' 30
check "the agent is online in mlserver as imgtest" dl_wait_online 180 imgtest
echo "booted and online in $((SECONDS - start)) s"
check "the agent enrolled" console_has agent 'enrolled as machine' 5
check "mlagent did not exit" eq "$(console_count agent 'mlagent exited')" 0
dl_stop_all

echo "== 3. boot again from the same disk with e1000 and no token: the credential was kept"
boot again e1000 "$DL_W/mldata.img" "$SRV"
check "the network came up on e1000" console_has again 'microlinux: network up on eth0' 180
check "the data partition is mounted" console_has again 'mounted on /var/lib/mlagent' 30
check "mlagent runs as imgtest with its stored credential" console_has again 'machine 1 (imgtest)' 120
check "no second enrollment" eq "$(console_count again 'enrolled as')" 0
dl_stop_all

echo "== 4. boot with ml.shell=1 and no disk: a maintenance shell, no agent"
boot shell virtio-net-pci "" "ml.shell=1"
check "the network came up" console_has shell 'microlinux: network up on eth0' 180
check "no disk: the store is in RAM" console_has shell 'images are kept in RAM' 30
check "the maintenance shell started" console_has shell 'microlinux: maintenance shell (ml.shell=1)' 30
sleep 2
check "mlagent did not start" eq "$(console_count shell 'mlagent started')" 0
dl_stop_all

echo "---- console of the first boot (microlinux and mlagent lines)"
grep -a -E '^(microlinux|mlagent):' "$DL_W/agent-console.log" | head -20
dl_summary
