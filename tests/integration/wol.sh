#!/usr/bin/env bash
# Wake-on-LAN between network namespaces (docs/wol.md): the server sends
# magic packets with the wol module (tests/integration/wol_send.c) and UDP
# listeners in other namespaces check the exact 102 bytes, the source and
# the destination address of each.
#
#   1. the lab subnet: two MACs to 10.99.0.255; both clients get both packets
#   2. repeats, and --interface: 255.255.255.255 out of eth0 as well
#   3. a relay command, as an agent in the subnet will run it (another port),
#      and hostile relay commands refused
#   4. another subnet behind a router namespace:
#      a. no route: ENETUNREACH for that target, the batch goes on
#      b. routed, router with default settings: the router takes the
#         directed broadcast as its own and does not forward it (RFC 2644)
#      c. bc_forwarding=1 on the router: it reaches the far subnet
#      d. a /31 target: no broadcast at all, needs a relaying agent
#   The relayed case proper (the server asks an awake mlagent in the far
#   subnet) needs mlagent, which does not exist yet; 3 runs its part.
#
# Needs root and network namespaces (exit 77 = skipped otherwise).
set -euo pipefail
: "${MLSRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${MLBUILD:=$MLSRC/build}"
# shellcheck source=tests/integration/lab.sh
source "$MLSRC/tests/integration/lab.sh"
lab_require_root
lab_require_cmds ip sysctl
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: needs python3"; exit 77; }
WOL=$MLBUILD/tests/integration/wol_send
[ -x "$WOL" ] || { echo "FAIL: $WOL is not built"; exit 1; }

fails=0 checks=0
check() { # check DESCRIPTION COMMAND... : counts; prints FAIL when COMMAND fails
  local what=$1; shift
  checks=$((checks + 1))
  if ! "$@"; then fails=$((fails + 1)); echo "FAIL: $what"; fi
}

TMP=$(mktemp -d /tmp/mlwol.XXXXXX)
lab_trap
lab_on_exit "rm -rf '$TMP'"
lab_up 2 0 0
FAR=${LAB}far
lab_on_exit "ip netns pids '$FAR' 2>/dev/null | xargs -r kill -KILL 2>/dev/null; ip netns del '$FAR' 2>/dev/null"

# The listener: records "SOURCE DESTINATION HEX" per datagram on PORT until
# it has COUNT of them or SECONDS pass. The destination comes from
# IP_PKTINFO (8), so a directed and a limited broadcast can be told apart.
cat >"$TMP/listen.py" <<'EOF'
import socket, struct, sys, time
out, port, count, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.IPPROTO_IP, 8, 1)
s.bind(("0.0.0.0", port))
open(out + ".ready", "w").close()
end, n = time.monotonic() + secs, 0
with open(out, "w") as f:
    while n < count and time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            data, anc, _, addr = s.recvmsg(2048, socket.CMSG_SPACE(12))
        except socket.timeout:
            break
        dst = "?"
        for lvl, typ, d in anc:
            if lvl == socket.IPPROTO_IP and typ == 8:
                dst = socket.inet_ntoa(struct.unpack("i4s4s", d[:12])[2])
        f.write("%s %s %s\n" % (addr[0], dst, data.hex()))
        f.flush()
        n += 1
EOF

# listen NS NAME PORT COUNT SECONDS: starts a listener in namespace NS
# (full name) writing $TMP/NAME; sets LPIDS.
LPIDS=()
listen() {
  local ns=$1 name=$2 port=$3 count=$4 secs=$5
  rm -f "$TMP/$name" "$TMP/$name.ready"
  ip netns exec "$ns" "$PY" "$TMP/listen.py" "$TMP/$name" "$port" "$count" "$secs" &
  LPIDS+=($!)
  lab_wait_file "$TMP/$name.ready" 10 || { echo "FAIL: listener $name did not start"; exit 1; }
}
# collect: waits for the listeners started since the last collect.
collect() {
  local p
  for p in "${LPIDS[@]}"; do wait "$p" || true; done
  LPIDS=()
}

magic() { # magic MAC: the 102-byte magic packet as hex
  local m=${1//:/} i out=ffffffffffff
  for ((i = 0; i < 16; i++)); do out+=$m; done
  echo "$out"
}
MAC1=02:00:00:00:00:01 MAC2=02:00:00:00:00:02 MAC3=02:00:00:00:00:03
P1=$(magic $MAC1) P2=$(magic $MAC2) P3=$(magic $MAC3)
check "magic packet hex is 102 bytes" test ${#P1} -eq 204
same() { [ "$1" = "$2" ] || { echo "  got:  $(printf '%s' "$1" | cut -c1-300)"; echo "  want: $(printf '%s' "$2" | cut -c1-300)"; return 1; }; }

SRV=$(lab_ns srv)
echo "== 1. two MACs to the lab subnet's broadcast"
listen "$(lab_ns c1)" c1 9 2 5
listen "$(lab_ns c2)" c2 9 2 5
out=$(ip netns exec "$SRV" "$WOL" --repeat 1 "$MAC1@10.99.0.0/24" "$MAC2@10.99.0.0/24")
collect
check "1: wol_send reports both sent" same "$out" "$MAC1 -> 10.99.0.255:9 sent 1/1
$MAC2 -> 10.99.0.255:9 sent 1/1"
want=$(printf '10.99.0.1 10.99.0.255 %s\n10.99.0.1 10.99.0.255 %s' "$P1" "$P2")
check "1: c1 got both packets, exact bytes" same "$(sort "$TMP/c1")" "$(sort <<<"$want")"
check "1: c2 got both packets, exact bytes" same "$(sort "$TMP/c2")" "$(sort <<<"$want")"

echo "== 2. repeats, and 255.255.255.255 out of the interface"
listen "$(lab_ns c1)" c1 9 10 3
out=$(ip netns exec "$SRV" "$WOL" --repeat 3 --gap 50 --interface eth0 "$MAC1@10.99.0.0/24")
collect
check "2: both destinations sent 3 times" same "$out" "$MAC1 -> 10.99.0.255:9 sent 3/3
$MAC1 -> 255.255.255.255:9 sent 3/3"
check "2: three directed broadcasts" test "$(grep -c "^10.99.0.1 10.99.0.255 $P1\$" "$TMP/c1")" = 3
check "2: three limited broadcasts" test "$(grep -c "^10.99.0.1 255.255.255.255 $P1\$" "$TMP/c1")" = 3
check "2: nothing else" test "$(wc -l <"$TMP/c1")" = 6

echo "== 3. a relay command, run as an agent in the subnet would (from c2, port 7)"
listen "$(lab_ns c1)" c1 7 4 5
out=$(ip netns exec "$(lab_ns c2)" "$WOL" --relay \
  "{\"macs\": [\"$MAC1\", \"02-00-00-00-00-03\"], \"broadcast\": \"10.99.0.255\", \"port\": 7, \"repeat\": 2, \"gap_ms\": 20}")
collect
check "3: relay sent" same "$out" "$MAC1 -> 10.99.0.255:7 sent 2/2
$MAC3 -> 10.99.0.255:7 sent 2/2"
want=$(printf '10.99.0.12 10.99.0.255 %s\n' "$P1" "$P1" "$P3" "$P3")
check "3: c1 got the relayed packets from c2" same "$(sort "$TMP/c1")" "$(sort <<<"$want")"
for bad in '{"macs": ["'$MAC1'"], "broadcast": "10.99.0.1"}' \
           '{"macs": ["'$MAC1'"], "broadcast": "10.99.0.255", "exec": "sh"}' \
           '{"macs": "'$MAC1'", "broadcast": "10.99.0.255"}' \
           '{"macs": ["'$MAC1'"], "broadcast": "10.99.0.255", "port": 70000}' \
           '[1, 2' ; do
  rc=0
  err=$(ip netns exec "$(lab_ns c2)" "$WOL" --relay "$bad" 2>&1) || rc=$?
  check "3: hostile relay command refused: $bad" test "$rc" = 2
  check "3: ... with one clear line" test "$(wc -l <<<"$err")" = 1
  [[ $err == "wol_send: relay command: "* ]] || { echo "  $err"; check "3: message prefix" false; }
done

echo "== 4. another subnet behind a router"
# router: 10.99.0.254 on the lab, 10.98.0.1 on its own link to $FAR (10.98.0.11).
lab_add_host router 10.99.0.254
RTR=$(lab_ns router)
ip netns add "$FAR"
ip link add eth1 netns "$RTR" type veth peer name eth0 netns "$FAR"
ip -n "$RTR" addr add 10.98.0.1/24 brd + dev eth1
ip -n "$RTR" link set eth1 up
ip -n "$FAR" link set lo up
ip -n "$FAR" addr add 10.98.0.11/24 brd + dev eth0
ip -n "$FAR" link set eth0 up
ip -n "$FAR" route add default via 10.98.0.1
ip netns exec "$RTR" sysctl -qw net.ipv4.ip_forward=1

echo "-- 4a. no route to 10.98.0.0/24: that target fails, the others are sent"
listen "$(lab_ns c1)" c1 9 1 5
rc=0
out=$(ip netns exec "$SRV" "$WOL" "$MAC1@10.98.0.0/24" "$MAC2@10.99.0.0/24") || rc=$?
collect
check "4a: exit 1" test "$rc" = 1
check "4a: per-target results" same "$out" "$MAC1 -> 10.98.0.255:9 failed: Network is unreachable
$MAC2 -> 10.99.0.255:9 sent 1/1"
check "4a: the local target still got its packet" same "$(cat "$TMP/c1")" "10.99.0.1 10.99.0.255 $P2"

echo "-- 4b. routed; the router does not forward directed broadcasts by default"
ip -n "$SRV" route add 10.98.0.0/24 via 10.99.0.254
listen "$FAR" far 9 1 2
listen "$RTR" router 9 1 5
out=$(ip netns exec "$SRV" "$WOL" "$MAC1@10.98.0.0/24")
collect
check "4b: the kernel took it" same "$out" "$MAC1 -> 10.98.0.255:9 sent 1/1"
check "4b: the router received it as its own broadcast" same "$(cat "$TMP/router")" "10.99.0.1 10.98.0.255 $P1"
check "4b: the far subnet got nothing" test ! -s "$TMP/far"

echo "-- 4c. with bc_forwarding=1 on the router, the far subnet gets it"
if ip netns exec "$RTR" sysctl -qw net.ipv4.conf.all.bc_forwarding=1 net.ipv4.conf.eth0.bc_forwarding=1 \
     net.ipv4.conf.eth1.bc_forwarding=1 2>/dev/null; then
  listen "$FAR" far 9 1 5
  out=$(ip netns exec "$SRV" "$WOL" "$MAC1@10.98.0.0/24")
  collect
  check "4c: sent" same "$out" "$MAC1 -> 10.98.0.255:9 sent 1/1"
  check "4c: the far subnet got the exact packet" same "$(cat "$TMP/far")" "10.99.0.1 10.98.0.255 $P1"
else
  echo "   (this kernel has no bc_forwarding (Linux < 5.0): 4c skipped)"
fi

echo "-- 4d. a /31: no broadcast address; only a relaying agent can wake it"
rc=0
out=$(ip netns exec "$SRV" "$WOL" "$MAC1@10.98.0.10/31") || rc=$?
check "4d: exit 1, says it needs a relay" same "$rc $out" "1 $MAC1 -> (none): no broadcast the server can reach; needs a relaying agent"

echo "$((checks - fails))/$checks checks passed"
[ "$fails" = 0 ]
