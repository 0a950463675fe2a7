#!/usr/bin/env bash
# Deployment runs when things go wrong (docs/runs.md), on a LAN of network
# namespaces, with a real mlserver and real mlagents:
#
#   1. an agent killed (SIGKILL) in the middle of its reception and started
#      again: it completes in the same run, and its copy is right;
#   2. mlserver killed (SIGKILL) in the middle of a run and started again:
#      the run ends failed ("mlserver stopped during the run"), no machine is
#      left waiting or receiving; a retry of the run completes;
#   3. a run cancelled while it sends (mlctl run cancel): it ends cancelled,
#      the machines keep their active version; its retry completes;
#   4. Wake-on-LAN seen in the targets' own namespaces: a machine in the
#      server's subnet gets the packets straight from the server; a machine
#      in another subnet, behind a router that drops directed broadcasts,
#      gets them from the awake agent of its subnet (the relay), an agent
#      set up only by its kernel command line (ml.server=, ml.token=, ...).
#
# Needs root and network namespaces (exit 77 = skipped otherwise).
set -euo pipefail
: "${MLSRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${MLBUILD:=$MLSRC/build}"
# shellcheck source=tests/integration/lab.sh
source "$MLSRC/tests/integration/lab.sh"
# shellcheck source=tests/integration/deploylib.sh
source "$MLSRC/tests/integration/deploylib.sh"
dl_require
DL_NAME=deploy_faults
# wait_chunks RUN MACHINE PERCENT SECONDS — until MACHINE has PERCENT of its chunks.
wait_chunks() {
  local end=$((SECONDS + $4)) r d n
  while [ $SECONDS -lt $end ]; do
    r=$(dl_api GET "/runs/$1")
    d=$(dl_target "$r" "$2" chunks_done) n=$(dl_target "$r" "$2" chunks_needed)
    [ -n "$n" ] && [ "$n" != 0 ] && [ $((d * 100)) -ge $((n * $3)) ] && return 0
    sleep 0.1
  done
  dl_log "$2 did not reach $3 % of its chunks"
  return 1
}

lab_trap
dl_init
lab_up 3 1gbit 0
dl_sink
dl_server
dl_enroll_token
for i in 1 2; do dl_agent_start "c$i" "pc$i"; done
check "two agents online" dl_wait_online 60 pc1 pc2
# 128 MiB with 48 MiB of random data: about 53 MiB to send, seconds at 40 Mbit/s.
dl_make_image "$DL_W/v1.img" 128 48
dl_image "$DL_W/v1.img" lab
V1=$DL_VERSION IMG=$DL_IMAGE
SHA1=$(sha256sum "$DL_W/v1.img" | cut -d' ' -f1)
PC1=$(dl_machine_id pc1) PC2=$(dl_machine_id pc2)

echo "== 1. an agent killed during its reception"
# 40 Mbit/s: the transfer takes several seconds, time to kill and restart.
dl_deploy killed "$V1" "{\"machines\": [$PC1, $PC2]}" '{"rate_mbps": 40, "wait_s": 30}'
RUN1=$DL_RUN
check "pc2 receives" wait_chunks "$RUN1" pc2 25 120
dl_agent_kill pc2 KILL
check "pc2 was killed before it had everything" \
  bash -c "! grep -q 'received and active' '$DL_W/agent-pc2.log'"
sleep 1
dl_agent_start c2 pc2
dl_wait_run "$RUN1" 300
R=$DL_RUNJSON
check "run 1 done" eq "$(jq -r .state <<<"$R")" done
check "pc2 done after its restart" eq "$(dl_target "$R" pc2 state)" done
check "pc2's restarted agent resumed the reception" grep -q '(resumed)' "$DL_W/agent-pc2.log"
check "pc2 received less after its restart than pc1 in all" \
  test "$(dl_target "$R" pc2 bytes)" -lt "$(dl_target "$R" pc1 bytes)"
check "pc2: version $V1 active" eq "$(dl_active pc2 "$IMG")" "$V1"
check "pc2's copy is byte for byte the image" \
  eq "$(sha256sum "$DL_W/agent-pc2/images/$IMG/v$V1/disk.raw" | cut -d' ' -f1)" "$SHA1"

echo "== 2. mlserver killed during a run"
dl_change_chunks "$DL_W/v1.img" "$DL_W/v2.img" 30 40
dl_image "$DL_W/v2.img" lab
V2=$DL_VERSION
SHA2=$(sha256sum "$DL_W/v2.img" | cut -d' ' -f1)
dl_deploy crash "$V2" "{\"machines\": [$PC1, $PC2]}" '{"rate_mbps": 20, "wait_s": 30}'
RUN2=$DL_RUN
check "pc1 receives" wait_chunks "$RUN2" pc1 10 120
kill -KILL "$DL_SERVER_PID"
wait "$DL_SERVER_PID" 2>/dev/null || true
dl_server_start
dl_wait_run "$RUN2" 60
R=$DL_RUNJSON
check "run 2 ended failed" eq "$(jq -r .state <<<"$R")" failed
check "run 2 says why" eq "$(jq -r .error <<<"$R")" "mlserver stopped during the run"
check "no machine of run 2 left unfinished" \
  eq "$(jq '[.targets[] | select(.state == "waiting" or .state == "ready" or .state == "receiving")] | length' <<<"$R")" 0
check "machines keep version 1 active" eq "$(dl_active pc1 "$IMG")" "$V1"
N=$(dl_api POST "/runs/$RUN2/retry")
check "retry accepted" eq "$(dl_status)" 201
RUN3=$(jq -r .id <<<"$N")
check "the retry names its run" eq "$(jq -r .retry_of <<<"$N")" "$RUN2"
dl_wait_run "$RUN3" 300
R=$DL_RUNJSON
check "the retry is done" eq "$(jq -r .state <<<"$R")" done
for m in pc1 pc2; do
  check "$m: version $V2 active" eq "$(dl_active "$m" "$IMG")" "$V2"
  check "$m: version 2 byte for byte" \
    eq "$(sha256sum "$DL_W/agent-$m/images/$IMG/v$V2/disk.raw" | cut -d' ' -f1)" "$SHA2"
done

echo "== 3. a run cancelled while it sends (mlctl run cancel), then retried"
dl_change_chunks "$DL_W/v2.img" "$DL_W/v3.img" 20 40
dl_image "$DL_W/v3.img" lab
V3=$DL_VERSION
SHA3=$(sha256sum "$DL_W/v3.img" | cut -d' ' -f1)
dl_deploy cancelme "$V3" "{\"machines\": [$PC1, $PC2]}" '{"rate_mbps": 20, "wait_s": 30}'
RUN4=$DL_RUN
check "pc1 receives version 3" wait_chunks "$RUN4" pc1 10 120
check "mlctl run cancel" dl_ctl run cancel "$RUN4"
dl_wait_run "$RUN4" 60
R=$DL_RUNJSON
check "the run ended cancelled" eq "$(jq -r .state <<<"$R")" cancelled
check "its machines are cancelled" eq "$(jq -c '[.targets[].state] | unique' <<<"$R")" '["cancelled"]'
set +e; dl_ctl run cancel "$RUN4" >/dev/null 2>&1; rc=$?; set -e
check "a second cancel is refused (the run has ended)" eq "$rc" 1
for m in pc1 pc2; do check "$m keeps version 2 active" eq "$(dl_active "$m" "$IMG")" "$V2"; done
N=$(dl_api POST "/runs/$RUN4/retry")
dl_wait_run "$(jq -r .id <<<"$N")" 300
R=$DL_RUNJSON
check "the retry of the cancelled run is done" eq "$(jq -r .state <<<"$R")" done
for m in pc1 pc2; do
  check "$m: version 3 byte for byte" \
    eq "$(sha256sum "$DL_W/agent-$m/images/$IMG/v$V3/disk.raw" | cut -d' ' -f1)" "$SHA3"
done

echo "== 4. Wake-on-LAN, direct and relayed"
# A far subnet, 10.98.0.0/24, behind a router (10.99.0.254 / 10.98.0.1) that
# does not forward directed broadcasts: "far" runs an awake agent, "sleep2"
# is asleep (only a listener on UDP 9). In the lab subnet, c3 is asleep.
lab_add_host router 10.99.0.254
RTR=$(lab_ns router)
FAR=${LAB}far SLP=${LAB}sleep2
lab_on_exit "ip netns del '$FAR' 2>/dev/null; ip netns del '$SLP' 2>/dev/null"
ip netns add "$FAR"
ip netns add "$SLP"
ip -n "$RTR" link add br1 type bridge
ip -n "$RTR" addr add 10.98.0.1/24 brd + dev br1
ip -n "$RTR" link set br1 up
ip netns exec "$RTR" sysctl -qw net.ipv4.ip_forward=1
for h in far:"$FAR":10.98.0.11 sleep2:"$SLP":10.98.0.12; do
  IFS=: read -r n ns ip <<<"$h"
  ip link add "p-$n" netns "$RTR" type veth peer name eth0 netns "$ns"
  ip -n "$RTR" link set "p-$n" master br1 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$ip/24" brd + dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route add default via 10.98.0.1
done
ip -n "$(lab_ns srv)" route add 10.98.0.0/24 via 10.99.0.254
# The far agent reaches the server through the router. It has no settings
# but a kernel command line, as a network-booted workstation.
lab_ns() { case $1 in far) echo "$FAR" ;; *) printf '%s%s\n' "$LAB" "$1" ;; esac; }
mkdir -p "$DL_W/agent-pcfar"
printf 'BOOT_IMAGE=/vmlinuz quiet ml.server=%s ml.token=%s ml.fp=%s ml.name=pcfar ml.interface=eth0\n' \
  "$DL_URL" "$DL_ETOKEN" "$DL_FP" >"$DL_W/cmdline"
dl_spawn agent-pcfar far "$MLAGENT" --config /dev/null --cmdline "$DL_W/cmdline" --data-dir "$DL_W/agent-pcfar"
check "the far agent, configured by its kernel command line, is online" dl_wait_online 60 pcfar
MAC3=$(ip -n "$(lab_ns c3)" -j link show eth0 | jq -r '.[0].address')
MACS2=$(ip -n "$SLP" -j link show eth0 | jq -r '.[0].address')
dl_api POST /machines "{\"name\": \"sleep1\", \"macs\": [\"$MAC3\"], \"ip\": \"10.99.0.13\", \"subnet\": \"10.99.0.0/24\"}" >/dev/null
S1=$(dl_api GET "/machines?limit=1000" | jq -r '.items[] | select(.name == "sleep1") | .id')
dl_api POST /machines "{\"name\": \"sleep2\", \"macs\": [\"$MACS2\"], \"ip\": \"10.98.0.12\", \"subnet\": \"10.98.0.0/24\"}" >/dev/null
S2=$(dl_api GET "/machines?limit=1000" | jq -r '.items[] | select(.name == "sleep2") | .id')
cat >"$DL_W/listen.py" <<'EOF'
import socket, sys, time
out, secs = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("0.0.0.0", 9))
open(out + ".ready", "w").close()
s.settimeout(0.2)
end = time.monotonic() + secs
with open(out, "w") as f:
    while time.monotonic() < end:
        try:
            data, (src, _) = s.recvfrom(2048)
        except socket.timeout:
            continue
        f.write("%s %s\n" % (src, data.hex()))
        f.flush()
EOF
ip netns exec "$(lab_ns c3)" /usr/bin/python3 "$DL_W/listen.py" "$DL_W/wol1" 40 &
L1=$!
ip netns exec "$SLP" /usr/bin/python3 "$DL_W/listen.py" "$DL_W/wol2" 40 &
L2=$!
DL_PIDS+=("$L1" "$L2")
for _ in $(seq 50); do [ -e "$DL_W/wol1.ready" ] && [ -e "$DL_W/wol2.ready" ] && break; sleep 0.1; done
dl_deploy wake "$V1" "{\"machines\": [$S1, $S2]}" '{"wait_s": 8}'
dl_wait_run "$DL_RUN" 120
R=$DL_RUNJSON
magic() { printf 'ffffffffffff'; for _ in $(seq 16); do printf '%s' "${1//:/}"; done; }
check "sleep1 missing, woken directly" eq "$(dl_target "$R" sleep1 state) $(dl_target "$R" sleep1 woken)" "missing direct"
check "sleep2 missing, woken directly and through the relay" \
  eq "$(dl_target "$R" sleep2 state) $(dl_target "$R" sleep2 woken)" "missing direct+relay"
for _ in $(seq 50); do [ -s "$DL_W/wol2" ] && break; sleep 0.1; done
check "sleep1's namespace saw its magic packet from the server" \
  grep -q "^10.99.0.1 $(magic "$MAC3")\$" "$DL_W/wol1"
check "sleep2's namespace saw its magic packet from the far agent" \
  grep -q "^10.98.0.11 $(magic "$MACS2")\$" "$DL_W/wol2"
check "sleep2 got nothing from the server itself (the router drops it)" \
  bash -c "! grep -q '^10.99.0.1 ' '$DL_W/wol2'"

dl_summary
