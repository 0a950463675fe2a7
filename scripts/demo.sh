#!/usr/bin/env bash
# make demo: Microlinux's main job end to end on this one machine.
#
# mlserver (SQLite in a temporary directory) imports a realistic disk image,
# DEMO_AGENTS workstations (default 4) running mlagent enroll with it, and a
# deployment "now" sends the image to all of them at once over multicast:
# live progress per machine (mlctl run watch), then the report as the
# administrator gets it by mail, and where each verified copy is.
#
# As root the workstations are network namespaces on a switch (1 Gbit/s
# ports, DEMO_LOSS % random loss at each, default 1). Without root everything
# runs in a private user and network namespace on its loopback interface.
# Nothing leaves this machine; everything is removed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${MLBUILD:-$top/build}
n=${DEMO_AGENTS:-4}
loss=${DEMO_LOSS:-1}
export MLSRC=$top MLBUILD=$build DEMO_AGENTS=$n DEMO_LOSS=$loss
case $n in '' | *[!0-9]*) echo "demo: DEMO_AGENTS must be a number" >&2; exit 2 ;; esac
[ "$n" -ge 1 ] && [ "$n" -le 50 ] || { echo "demo: DEMO_AGENTS must be 1..50" >&2; exit 2; }
for p in src/server/mlserver src/agent/mlagent src/cli/mlctl; do
  [ -x "$build/$p" ] || { echo "demo: $build/$p is missing: run 'make' first" >&2; exit 1; }
done

# The image: an ext4 file system holding a copy of system files, with free
# space, as a workstation's VM disk would be. Built once, then reused.
cache=$build/demo-cache
mkdir -p "$cache"
img=$cache/disk.img
if [ ! -s "$img" ]; then
  echo "== building a 384 MiB ext4 disk image from this system's /usr (once)"
  root=$(mktemp -d /tmp/mldemo-root.XXXXXX)
  for d in /usr/share/doc /usr/lib/x86_64-linux-gnu/perl-base /usr/share/perl5 /usr/sbin; do
    [ -d "$d" ] && mkdir -p "$root$(dirname "$d")" && cp -a "$d" "$root$d" 2>/dev/null || true
  done
  mkfs.ext4 -q -F -L demo -d "$root" "$img.tmp" 384M
  mv "$img.tmp" "$img"
  rm -rf "$root"
fi

if [ -z "${DEMO_INNER:-}" ] && { [ "$(id -u)" != 0 ] || ! ip netns add "mldemo$$probe" 2>/dev/null; }; then
  echo "== not root: a private user and network namespace on loopback"
  exec unshare --user --map-root-user --net env DEMO_INNER=1 DL_LOOPBACK=1 bash "$0"
fi
[ "${DL_LOOPBACK:-0}" = 1 ] || ip netns del "mldemo$$probe"

LAB=mldemo$$
# shellcheck source=../tests/integration/lab.sh
source "$top/tests/integration/lab.sh"
# shellcheck source=../tests/integration/deploylib.sh
source "$top/tests/integration/deploylib.sh"
DL_NAME=demo
DL_IMPORT_ROOTS=$cache

if [ "${DL_LOOPBACK:-0}" = 1 ]; then
  ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo
  host() { echo srv; }
else
  lab_trap
  echo "== a LAN of network namespaces: mlserver and $n workstations, 1 Gbit/s ports, $loss % loss each"
  lab_up "$n" 1gbit "$loss"
  host() { echo "c$1"; }
fi
dl_init
dl_sink
echo "== mlserver: SQLite in $DL_W/server, HTTPS on $DL_URL"
dl_server
echo "   certificate fingerprint $DL_FP"
dl_enroll_token
echo "== $n workstations start mlagent and enroll with a token"
names=()
for i in $(seq 1 "$n"); do
  dl_agent_start "$(host "$i")" "pc$i"
  names+=("pc$i")
done
dl_wait_online 60 "${names[@]}"
dl_api GET /agents | jq -r '.items[] | "   \(.machine): online, agent \(.agent_version // "?")"'

echo "== importing $(basename "$img") ($(du -h --apparent-size "$img" | cut -f1)): chunked, compressed, hashed"
t0=$SECONDS
dl_image "$img" demo-image
echo "   version $DL_VERSION ready in $((SECONDS - t0)) s: $(dl_api GET "/images/$DL_IMAGE/versions/$DL_VERSION" | jq -r '"\(.size) bytes, stored as \(.stored_size)"')"

NEW=$(dl_api GET "/groups?limit=100" | jq -r '.items[] | select(.name == "new") | .id')
echo "== deploying it now to the group 'new' ($n machines), report to admin@lab.test"
dl_deploy demo "$DL_VERSION" "{\"groups\": [$NEW]}" '{"report_to": ["admin@lab.test"], "wait_s": 60}'
set +e
dl_ctl run watch "$DL_RUN" --interval 1
watch_rc=$?
set -e
dl_wait_run "$DL_RUN" 300 || true
echo
echo "== the report mailed to admin@lab.test"
for _ in $(seq 50); do [ "$(dl_mails)" -ge 1 ] && break; sleep 0.2; done
mailf=$(ls "$DL_W"/mail/*.eml 2>/dev/null | head -1 || true)
if [ -n "$mailf" ]; then
  sed -n '/^Subject:/p' "$mailf"
  awk 'body { print "   " $0 } /^\r?$/ { body = 1 }' "$mailf" | tr -d '\r'
else
  echo "   (no mail: $(jq -r .mail <<<"$DL_RUNJSON"))"
fi

echo "== where the copies are, checked byte for byte"
want=$(sha256sum <"$img" | cut -d' ' -f1)
bad=0
for i in $(seq 1 "$n"); do
  f=$DL_W/agent-pc$i/images/$DL_IMAGE/v$DL_VERSION/disk.raw
  got=$(sha256sum <"$f" 2>/dev/null | cut -d' ' -f1 || true)
  if [ "$got" = "$want" ] && [ "$(dl_active "pc$i" "$DL_IMAGE")" = "$DL_VERSION" ]; then
    echo "   pc$i: $f (active, identical)"
  else
    echo "   pc$i: $f MISSING OR DIFFERENT"; bad=1
  fi
done
if [ "$(jq -r .state <<<"$DL_RUNJSON")" = done ] && [ "$bad" = 0 ] && [ "$watch_rc" = 0 ]; then
  echo "demo: OK: $n workstations received, verified and switched to version $DL_VERSION"
else
  echo "demo: FAILED: run $(jq -r '"\(.state): \(.error)"' <<<"$DL_RUNJSON")"
  for f in "$DL_W"/*.log; do echo "---- $f"; tail -20 "$f"; done
  exit 1
fi
