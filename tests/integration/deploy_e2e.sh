#!/usr/bin/env bash
# End-to-end deployment runs (docs/runs.md) on a LAN of network namespaces
# at 1 Gbit/s with 1 % UDP loss at every client: a real mlserver, five real
# mlagents, a real SMTP server (python3-aiosmtpd) capturing the reports.
#
#   1. five agents enroll (registered into the group "new"); version 1 of a
#      96 MiB ext4 image (17 MiB of programs, 32 MiB of random data) goes to all: every run target done, every copy's
#      SHA-256 right and active, the mail's table lists the five machines;
#   2. version 2 differs in exactly 3 chunks: the four machines with room
#      receive about 3 MiB each (the byte count is checked) and the server
#      sends a small fraction of run 1's bytes; pc5, whose data directory is
#      an 80 MiB tmpfs (room for one version, not two: no reflinks), fails with "not enough space" and keeps version 1
#      active, intact;
#   3. pc4's agent is down (the server sees it offline): pc4 missing (woken directly), pc1..pc3 done,
#      the run failed with the count, the mail says missing;
#   4. rollback of run 3: pc1..pc3 are back on version 2;
#   5. a deployment of the version the machines have active, then of the
#      previous one they keep: "already current", nothing multicast, the
#      previous one made active;
#   6. pc3's credential is revoked: its agent is cut off (401, logged), it
#      gets no command, and a deployment to it reports it missing while its
#      store stays as it was.
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
DL_NAME=deploy_e2e

lab_trap
dl_init
lab_up 5 1gbit 1
dl_sink
dl_server
dl_enroll_token

# pc5 keeps its images on a small file system of its own.
mkdir -p "$DL_W/agent-pc5"
mount -t tmpfs -o size=80m mltest "$DL_W/agent-pc5"
lab_on_exit "umount -l '$DL_W/agent-pc5' 2>/dev/null || true"
for i in 1 2 3 4 5; do dl_agent_start "c$i" "pc$i"; done
check "five agents online" dl_wait_online 60 pc1 pc2 pc3 pc4 pc5
NEW=$(dl_api GET "/groups?limit=100" | jq -r '.items[] | select(.name == "new") | .id')
S=$(dl_ctl agent list)
for i in 1 2 3 4 5; do check "mlctl agent list: pc$i online" grep -Eq "^pc$i +[0-9]+ +yes " <<<"$S"; done
check "enrolled machines are in the group new" eq "$(dl_api GET "/groups/$NEW" | jq '.members | length')" 5

echo "== 1. version 1 to five machines"
dl_make_image "$DL_W/v1.img" 96 32
dl_image "$DL_W/v1.img" lab
V1=$DL_VERSION IMG=$DL_IMAGE
SHA1=$(sha256sum "$DL_W/v1.img" | cut -d' ' -f1)
dl_deploy first "$V1" "{\"groups\": [$NEW]}" '{"report_to": ["admin@lab.test", "teacher@lab.test"], "wait_s": 60}'
RUN1=$DL_RUN
dl_wait_run "$RUN1" 240
R=$DL_RUNJSON
check "run 1 done" eq "$(jq -r .state <<<"$R")" done
check "run 1: five machines done" eq "$(jq .totals.done <<<"$R")" 5
for i in 1 2 3 4 5; do
  check "pc$i: version $V1 active" eq "$(dl_active "pc$i" "$IMG")" "$V1"
  check "pc$i: its copy is byte for byte the image" \
    eq "$(sha256sum "$DL_W/agent-pc$i/images/$IMG/v$V1/disk.raw" | cut -d' ' -f1)" "$SHA1"
done
for _ in $(seq 50); do [ "$(dl_mails)" -ge 1 ] && break; sleep 0.2; done
check "run 1: the report is mailed" eq "$(jq -r .mail <<<"$R")" "sent to 2 recipients"
M=$(cat "$DL_W"/mail/*.eml 2>/dev/null || true)
check "the mail names the run" has "$M" "first (run $RUN1)"
check "the mail's result line" has "$M" "5 machines: 5 done"
for i in 1 2 3 4 5; do check "the mail's row for pc$i" grep -Eq "^pc$i +done " <<<"$M"; done
SENT1=$(jq .sent_bytes <<<"$R")
S=$(dl_ctl run show "$RUN1")
check "mlctl run show: the run is done" grep -q '^state: *done' <<<"$S"
for i in 1 2 3 4 5; do check "mlctl run show: pc$i done" grep -Eq "^pc$i +done +100%" <<<"$S"; done
check "mlctl run show: the totals" grep -q '^5 machines: 5 done' <<<"$S"
check "mlctl run watch of a done run exits 0" dl_ctl run watch "$RUN1"

echo "== 2. version 2: three chunks changed"
dl_change_chunks "$DL_W/v1.img" "$DL_W/v2.img" 40 3
dl_image "$DL_W/v2.img" lab
V2=$DL_VERSION
SHA2=$(sha256sum "$DL_W/v2.img" | cut -d' ' -f1)
dl_deploy second "$V2" "{\"groups\": [$NEW]}" '{"report_to": ["admin@lab.test"], "wait_s": 60}'
RUN2=$DL_RUN
dl_wait_run "$RUN2" 240
R=$DL_RUNJSON
check "run 2 failed (pc5 has no room)" eq "$(jq -r .state <<<"$R")" failed
check "run 2: four done, one failed" eq "$(jq -c '[.totals.done, .totals.failed]' <<<"$R")" "[4,1]"
for i in 1 2 3 4; do
  B=$(dl_target "$R" "pc$i" bytes)
  # A receiver counts every packet of the session it takes in, the repairs
  # that the others asked for included: at most what the server sent (the
  # bound below), far from the 96 MiB image. Under the sanitizers, slower
  # receivers lose more and see more repairs (6.5 MiB seen).
  check "pc$i received the changed chunks, not the image ($B bytes)" le "$B" $((3 * 3 * 1048576))
  check "pc$i received at least the 3 changed chunks" le $((3 * 1048576)) "$B"
  check "pc$i: version $V2 active" eq "$(dl_active "pc$i" "$IMG")" "$V2"
  check "pc$i: version 2 byte for byte" \
    eq "$(sha256sum "$DL_W/agent-pc$i/images/$IMG/v$V2/disk.raw" | cut -d' ' -f1)" "$SHA2"
done
SENT2=$(jq .sent_bytes <<<"$R")
# On the wire: the 3 chunks, their parity and the repairs of 1 % loss at
# five receivers, the manifest, control packets; not the image.
check "run 2 sent about the 3 changed chunks ($SENT2 bytes)" le "$SENT2" $((3 * 3 * 1048576))
check "run 2 sent under a quarter of run 1 ($SENT2 vs $SENT1 bytes)" le $((SENT2 * 4)) "$SENT1"
check "pc5 failed for lack of space" has "$(dl_target "$R" pc5 reason)" "not enough space"
check "pc5 keeps version 1 active" eq "$(dl_active pc5 "$IMG")" "$V1"
check "pc5's version 1 is intact" \
  eq "$(sha256sum "$DL_W/agent-pc5/images/$IMG/v$V1/disk.raw" | cut -d' ' -f1)" "$SHA1"
set +e; dl_ctl run watch "$RUN2" >/dev/null; rc=$?; set -e
check "mlctl run watch of a failed run exits 1" eq "$rc" 1
check "pc5 left nothing half-received" eq "$(find "$DL_W/agent-pc5/incoming" -mindepth 1 | wc -l)" 0

echo "== 3. pc4's agent is down"
dl_agent_kill pc4
check "the server sees pc4 offline" dl_wait_offline 60 pc4
dl_change_chunks "$DL_W/v2.img" "$DL_W/v3.img" 50 2
dl_image "$DL_W/v3.img" lab
V3=$DL_VERSION
P=()
for i in 1 2 3 4; do P+=("$(dl_machine_id "pc$i")"); done
TARGETS="{\"machines\": [$(IFS=,; echo "${P[*]}")]}"
dl_deploy third "$V3" "$TARGETS" '{"report_to": ["admin@lab.test"], "wait_s": 25}'
RUN3=$DL_RUN
dl_wait_run "$RUN3" 240
R=$DL_RUNJSON
check "run 3 failed" eq "$(jq -r .state <<<"$R")" failed
check "run 3's error counts the missing machine" has "$(jq -r .error <<<"$R")" "1 of 4 machines did not get the version (1 missing, 0 failed)"
check "pc4 missing" eq "$(dl_target "$R" pc4 state)" missing
check "pc4 was woken" eq "$(dl_target "$R" pc4 woken)" direct
for i in 1 2 3; do check "pc$i done" eq "$(dl_target "$R" "pc$i" state)" done; done
for _ in $(seq 50); do [ "$(dl_mails)" -ge 3 ] && break; sleep 0.2; done
M=$(cat "$(ls -t "$DL_W"/mail/*.eml | head -1)")
check "run 3's mail shows pc4 missing" grep -Eq "^pc4 +missing" <<<"$M"

echo "== 4. rollback of run 3 (mlctl run rollback --wait)"
S=$(dl_ctl run rollback "$RUN3" --wait)
check "mlctl run rollback waits for the three machines" eq "$(grep -Ec '^ *[0-9]+ +pc[123] +done' <<<"$S")" 3
C=$(dl_api GET "/commands?state=done&limit=1000")
C=$(jq '{commands: [.items[] | select(.kind == "rollback")]}' <<<"$C")
check "three rollback commands done" eq "$(jq '.commands | length' <<<"$C")" 3
for _ in $(seq 100); do
  n=0
  for i in 1 2 3; do [ "$(dl_active "pc$i" "$IMG")" = "$V2" ] && n=$((n + 1)); done
  [ $n = 3 ] && break
  sleep 0.2
done
for i in 1 2 3; do check "pc$i back on version 2" eq "$(dl_active "pc$i" "$IMG")" "$V2"; done
for id in $(jq -r '.commands[].id' <<<"$C"); do
  check "rollback command $id done" eq "$(dl_api GET "/commands/$id" | jq -r .state)" done
done

echo "== 5. versions the machines hold already"
# pc1 and pc2: version 2 active (after the rollback), version 3 previous.
dl_deploy again2 "$V2" "{\"machines\": [${P[0]}, ${P[1]}]}" '{"wait_s": 25}'
dl_wait_run "$DL_RUN" 120
R=$DL_RUNJSON
check "a deployment of the active version: done" eq "$(jq -r .state <<<"$R")" done
check "both machines already current" eq "$(jq .totals.current <<<"$R")" 2
check "nothing was multicast" eq "$(jq .sent_bytes <<<"$R")" 0
dl_deploy again3 "$V3" "{\"machines\": [${P[0]}, ${P[1]}]}" '{"wait_s": 25}'
dl_wait_run "$DL_RUN" 120
R=$DL_RUNJSON
check "a deployment of the kept previous version: both current" eq "$(jq .totals.current <<<"$R")" 2
check "nothing was multicast for it either" eq "$(jq .sent_bytes <<<"$R")" 0
for i in 1 2; do check "pc$i: version 3 active again" eq "$(dl_active "pc$i" "$IMG")" "$V3"; done

echo "== 6. a revoked credential"
PC3=$(dl_machine_id pc3)
dl_api DELETE "/agents/$PC3" >/dev/null
check "revoke answers 204" eq "$(dl_status)" 204
for _ in $(seq 100); do grep -qi 'revoked\|401' "$DL_W/agent-pc3.log" && break; sleep 0.2; done
check "pc3's agent says it was cut off" grep -qi 'revoked\|401' "$DL_W/agent-pc3.log"
dl_deploy fourth "$V3" "{\"machines\": [$PC3]}" '{"wait_s": 25}'
dl_wait_run "$DL_RUN" 120
R=$DL_RUNJSON
check "pc3 missing: its agent is not let in" eq "$(dl_target "$R" pc3 state)" missing
check "no command was queued for pc3 in that run" \
  eq "$(dl_api GET "/commands?run=$DL_RUN" | jq '.items | length')" 0
check "pc3's store is as it was" eq "$(dl_active pc3 "$IMG")" "$V2"

dl_summary
