#!/usr/bin/env bash
# Self-test of the namespace lab (lab.sh): builds a 2-client lab, checks that
# IPv4 multicast from srv reaches both clients through the bridge, that the
# loss rule and the shaping are in place and act, that extra hosts and the
# per-client knobs work, and that teardown — explicit or by a signal caught
# by lab_trap — leaves no namespace behind. Exit 77 (skip) when not root.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/lab.sh
source "$here/lab.sh"
lab_require_root
lab_require_cmds iperf nft tc

fails=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }

work=$(mktemp -d)
lab_on_exit 'rm -rf "$work"'
lab_trap

# 1. Build: 2 clients, ports at 1 Gbit/s, 5 % loss at each client.
if ! lab_up 2 1gbit 5; then bad "lab_up 2 1gbit 5"; exit 1; fi
ok "lab_up 2 1gbit 5"
for h in sw srv c1 c2; do
  check "namespace ${LAB}$h exists" test -n "$(ip netns list | awk -v n="${LAB}$h" '$1 == n')"
done
check "bridge has multicast snooping off" \
  test "$(ip netns exec "${LAB}sw" cat /sys/class/net/br0/bridge/multicast_snooping)" = 0
check "c1 has 10.99.0.11" test "$(lab_ip c1)" = 10.99.0.11
check "c1 routes 224.0.0.0/4 on eth0" bash -c "ip netns exec ${LAB}c1 ip route show 224.0.0.0/4 | grep -q 'dev eth0'"
check "c2 has rp_filter off" test "$(lab_exec c2 sysctl -n net.ipv4.conf.eth0.rp_filter)" = 0
check "switch port to c1 is shaped" bash -c "ip netns exec ${LAB}sw tc qdisc show dev p-c1 | grep -q 'tbf.*rate 1Gbit'"
check "srv NIC is shaped" bash -c "ip netns exec ${LAB}srv tc qdisc show dev eth0 | grep -q 'tbf.*rate 1Gbit'"
for c in c1 c2; do
  check "loss rule present in $c" bash -c "ip netns exec ${LAB}$c nft list table inet lab | grep -q 'numgen random mod 10000 < 500'"
done

# 2. Multicast from srv reaches both clients (iperf 2, UDP, 1472-byte datagrams).
group=239.77.0.1
pids=()
for c in c1 c2; do
  ip netns exec "$(lab_ns "$c")" iperf -s -u -B "$group" -l 1472 -i 1 -y C >"$work/$c.csv" 2>"$work/$c.err" &
  pids+=($!)
done
check "both clients joined $group" lab_wait_joined 10 "$group" c1 c2
tx0=$(lab_tx_bytes srv)
timeout 20 ip netns exec "${LAB}srv" iperf -c "$group" -u -b 300M -l 1472 -T 1 -t 2 >"$work/send.txt" 2>&1
tx1=$(lab_tx_bytes srv)
for c in c1 c2; do
  lab_wait_file "$work/$c.csv" 5 '^[0-9]+,' || true
  # Sum the 1-second interval reports (CSV: ...,interval,bytes,bits/s,jitter,
  # lost,total,...). Not the final summary: iperf prints it only if the
  # client's FIN datagram got through, and the loss rule drops that too.
  read -r bytes lost total < <(awk -F, 'NF >= 13 { split($7, iv, "-"); if (iv[2] - iv[1] <= 1.01) { b += $8; l += $11; t += $12 } }
    END { print b + 0, l + 0, t + 0 }' "$work/$c.csv")
  check "multicast reaches $c (got $bytes bytes)" test "$bytes" -gt 10000000
  # 5 % nominal; accept 2..10 % over ~50k datagrams.
  check "$c lost about 5 % ($lost/$total)" awk -v l="$lost" -v t="$total" 'BEGIN { exit !(t > 0 && l / t > 0.02 && l / t < 0.10) }'
  check "$c loss rule counted drops" test "$(lab_loss_drops "$c")" -gt 0
done
kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null
check "srv tx counter moved ($((tx1 - tx0)) bytes)" test $((tx1 - tx0)) -gt 50000000

# 3. Knobs: per-client loss and rate, extra host.
lab_loss 1 0
check "lab_loss 1 0 removes c1's rule" bash -c "! ip netns exec ${LAB}c1 nft list table inet lab >/dev/null 2>&1"
lab_loss c2 0.5
check "lab_loss c2 0.5 sets 50/10000" bash -c "ip netns exec ${LAB}c2 nft list table inet lab | grep -q '< 50 '"
lab_slow 2 100mbit
check "lab_slow 2 100mbit shapes c2's port" bash -c "ip netns exec ${LAB}sw tc qdisc show dev p-c2 | grep -q 'rate 100Mbit'"
check "lab_add_host evil 10.99.0.66" lab_add_host evil 10.99.0.66
check "evil is on the LAN" bash -c "ip netns exec ${LAB}evil ip -4 -o addr show dev eth0 | grep -q 10.99.0.66/24"
check "lab_wait times out" bash -c "source '$here/lab.sh'; ! lab_wait 0.3 false"

# 4. Teardown leaves nothing: explicitly, and from a script killed by a signal.
# Started detached (not a job of this shell), so killing it prints no notice.
sleeper=$(lab_exec c1 sh -c 'sleep 300 >/dev/null 2>&1 & echo $!')
lab_down
# Gone or a zombie waiting for us: either way no longer running.
check "lab_down ended processes inside the lab" \
  bash -c "! [ -e /proc/$sleeper ] || [ \"\$(awk '{print \$3}' /proc/$sleeper/stat)\" = Z ]"
check "lab_down leaves no namespace" test -z "$(lab_namespaces)"

child_lab="${LAB}t"
LAB=$child_lab bash -c "source '$here/lab.sh'; lab_trap; lab_up 1 0 1 || exit 1; touch '$work/up'; lab_exec c1 sleep 300 & wait \$!" 2>"$work/child.err" &
child=$!
if lab_wait_file "$work/up" 20; then
  kill -TERM "$child"
  wait "$child" 2>/dev/null
  check "a TERMed script's lab_trap removed its namespaces" \
    test -z "$(ip netns list | awk -v p="$child_lab" 'index($1, p) == 1 && substr($1, length(p) + 1) ~ /^(sw|srv|c[0-9]+)$/')"
else
  bad "child lab did not come up"
  kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null
fi

if [ "$fails" -gt 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all lab checks passed"
