#!/usr/bin/env bash
# make demo: one multicast transfer of a realistic disk image to several
# receivers on this machine, shown live, then checked byte for byte.
#
# As root it builds a small LAN of network namespaces (a switch, a server and
# DEMO_RECEIVERS clients, ports shaped to 1 Gbit/s, DEMO_LOSS % random loss at
# each client). Without root it runs in a private user and network namespace
# on its loopback interface. Nothing leaves this machine.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MLBUILD:-$top/build}
mlcast=$build/src/mcast/mlcast
n=${DEMO_RECEIVERS:-4}
loss=${DEMO_LOSS:-1}
[ -x "$mlcast" ] || { echo "demo: $mlcast is missing: run 'make' first" >&2; exit 1; }

work=$(mktemp -d /tmp/mlcast-demo.XXXXXX)
cache=$build/demo-cache
mkdir -p "$cache"

# A realistic image: an ext4 filesystem holding a copy of system files, with
# free space, as a workstation's VM disk would be. Built once, then reused.
img=$cache/disk.img
if [ ! -s "$img" ]; then
  echo "== building a 384 MiB ext4 disk image from this system's /usr (once)"
  root=$work/root
  mkdir -p "$root"
  for d in /usr/share/doc /usr/lib/x86_64-linux-gnu/perl-base /usr/share/perl5 /usr/sbin; do
    [ -d "$d" ] && mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d" 2>/dev/null || true
  done
  mkfs.ext4 -q -F -L demo -d "$root" "$img.tmp" 384M
  mv "$img.tmp" "$img"
  rm -rf "$root"
fi

echo "== mlcast prepare: chunk, compress and hash the image"
"$mlcast" prepare "$img" "$work/store"
echo

cleanup() {
  rm -rf "$work"
}
trap cleanup EXIT


if [ "$(id -u)" = 0 ] && ip netns add "mldemo$$probe" 2>/dev/null; then
  ip netns del "mldemo$$probe"
  LAB=mldemo$$
  # shellcheck source=../tests/integration/lab.sh
  source "$top/tests/integration/lab.sh"
  trap 'lab_down; cleanup' EXIT
  echo "== a LAN of network namespaces: 1 sender, $n receivers, 1 Gbit/s ports, $loss % loss each"
  lab_up "$n" 1gbit "$loss"
  pids=()
  for i in $(seq 1 "$n"); do
    lab_exec "c$i" "$mlcast" receive -i eth0 --name "pc$i" --json -o "$work/pc$i.img" \
      >"$work/pc$i.log" 2>&1 &
    pids+=($!)
  done
  sleep 0.3
  echo "== mlcast send (live progress per receiver)"
  set +e
  lab_exec srv "$mlcast" send -i eth0 --min-receivers "$n" --wait 20 "$work/store"
  src=$?
  set -e
else
  echo "== not root: a private network namespace on loopback, 1 sender, $n receivers"
  export MLCAST=$mlcast WORK=$work N=$n
  set +e
  unshare --user --map-root-user --net bash -c '
    ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo || exit 1
    for i in $(seq 1 "$N"); do
      "$MLCAST" receive -i lo --name "pc$i" --json -o "$WORK/pc$i.img" >"$WORK/pc$i.log" 2>&1 &
    done
    sleep 0.3
    "$MLCAST" send -i lo --loop --rate 2G --min-receivers "$N" --wait 20 "$WORK/store"
    rc=$?; wait; exit $rc'
  src=$?
  set -e
  pids=()
fi
for p in "${pids[@]}"; do wait "$p" || true; done

echo
echo "== what each receiver says, and a byte-for-byte check"
want=$(sha256sum <"$img" | cut -d' ' -f1)
bad=0
for i in $(seq 1 "$n"); do
  last=$(tail -n 1 "$work/pc$i.log")
  got=$(sha256sum <"$work/pc$i.img" 2>/dev/null | cut -d' ' -f1 || true)
  same=no; [ "$got" = "$want" ] && same=yes || bad=1
  printf '  pc%-3s identical: %-3s  %s\n' "$i" "$same" \
    "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("%.2f s, %d chunks received, %d NACKs, %s" % (d.get("elapsed_s",0), d.get("chunks_done",0), d.get("nacks_sent",0), "ok" if d.get("ok") else d.get("reason","failed")))' "$last" 2>/dev/null || echo "$last")"
done
if [ "$src" = 0 ] && [ "$bad" = 0 ]; then
  echo "demo: OK: $n receivers hold a verified copy of $(basename "$img")"
else
  echo "demo: FAILED (sender exit $src)"; exit 1
fi
