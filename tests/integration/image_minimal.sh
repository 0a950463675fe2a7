#!/usr/bin/env bash
# The minimal client image (image/build.sh --profile minimal, docs/image.md)
# boots in QEMU and its mlagent enrolls with a real mlserver:
#   1. the image builds (the kernel .deb is downloaded once into
#      IMAGE_CACHE, default build-image/cache of the source tree);
#   2. booted in QEMU (virtio-net, user networking: the host's 127.0.0.1 is
#      10.0.2.2 to the guest) with ml.server=, ml.token=, ml.fp= and
#      ml.name= on the kernel command line, the serial console shows the
#      network up and mlagent started, and the agent shows online in
#      mlserver's API under its ml.name;
#   3. booted again with an e1000 NIC and ml.shell=1, the console says the
#      maintenance shell started and mlagent did not.
# mlserver runs on 127.0.0.1 on a free port (DL_LOOPBACK of deploylib.sh);
# no root is needed. QEMU emulates (TCG) unless IMAGE_TEST_ACCEL=kvm.
set -uo pipefail
: "${MLBUILD:?}" "${MLSRC:?}"
DL_NAME=image_minimal

command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: needs qemu-system-x86_64 (Debian: qemu-system-x86)"; exit 77; }
command -v busybox >/dev/null || { echo "SKIP: needs busybox (Debian: busybox-static)"; exit 77; }
for c in curl jq apt-get dpkg-deb zstd; do
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

# boot NAME NIC APPEND — QEMU in the background, the serial console in
# $DL_W/NAME-console.log (dl_dump shows it on failure); its PID is killed on exit (dl_stop_all).
boot() {
  local name=$1 nic=$2 append=$3
  : >"$DL_W/$name-console.log"
  dl_spawn "qemu-$name" host qemu-system-x86_64 "${ACCEL[@]}" -machine q35 -m 512 -smp 1 \
    -display none -monitor none -serial "file:$DL_W/$name-console.log" -no-reboot \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" -append "console=ttyS0 panic=-1 $append" \
    -netdev user,id=n0 -device "$nic,netdev=n0"
}

# console_has NAME TEXT SECONDS — until TEXT shows on NAME's console.
console_has() {
  local end=$((SECONDS + $3))
  until grep -q -- "$2" "$DL_W/$1-console.log"; do
    [ $SECONDS -ge $end ] && { echo "   '$2' not on the console after $3 s" >&2; return 1; }
    sleep 0.5
  done
}

echo "== 2. boot with ml.server= and virtio-net; the agent enrolls"
start=$SECONDS
# The guest reaches the host's 127.0.0.1 as 10.0.2.2.
boot agent virtio-net-pci "ml.server=https://10.0.2.2:$DL_PORT ml.token=$DL_ETOKEN ml.fp=$DL_FP ml.name=imgtest"
check "the network came up" console_has agent 'microlinux: network up on eth0 10\.0\.2\.15' 180
check "no data partition: the store is in RAM" console_has agent 'images are kept in RAM' 30
check "mlagent started" console_has agent 'microlinux: mlagent started' 30
check "the agent is online in mlserver as imgtest" dl_wait_online 180 imgtest
echo "booted and online in $((SECONDS - start)) s"
check "mlagent did not exit" eq "$(grep -c 'mlagent exited' "$DL_W/agent-console.log")" 0
m=$(dl_api GET /agents | jq -r '.items[] | select(.machine == "imgtest") | .machine')
check "GET /agents lists imgtest" eq "$m" imgtest
dl_stop_all

echo "== 3. boot with e1000 and ml.shell=1: a maintenance shell, no agent"
boot shell e1000 "ml.shell=1"
check "the network came up on e1000" console_has shell 'microlinux: network up on eth0' 180
check "the maintenance shell started" console_has shell 'microlinux: maintenance shell (ml.shell=1)' 30
sleep 2
check "mlagent did not start" eq "$(grep -c 'mlagent started' "$DL_W/shell-console.log")" 0
dl_stop_all

echo "---- console of the first boot (microlinux and mlagent lines)"
grep -a -E '^(microlinux|mlagent):' "$DL_W/agent-console.log" | head -20
dl_summary
