#!/usr/bin/env bash
# mlcast receive --resume: a receiver killed with SIGKILL half-way through
# and restarted with --resume into the same output, while the same sender
# session goes on, takes back what its journal holds and receives only the
# rest; a plain restart (no --resume) starts over.
#
# Part 1: sender (-r 100M, --rx-timeout 30, -n 2), receivers r1 (c1, the
# victim) and r2 (c2, a bystander), 64 MiB random image. Once r1's journal
# holds at least half the chunks, r1 gets SIGKILL; .mlcast-part and the
# journal stay; r1 restarts with --resume: it completes, seeded_chunks > 0
# (at least all the journal held), and the chunks it receives over the
# network are at most what it lacked at the kill + 8 (chunks in flight),
# counting what it lacked both by the journal and by its last progress
# line. The sender counts it once, as done.
# Part 2: a new session (--rx-timeout 5); r3 is killed the same way and
# restarted WITHOUT --resume: seeded_chunks == 0, it receives every chunk,
# and its output is still correct. The killed incarnation is dropped by the
# sender (it fell silent), so the sender reports one dropped receiver.
# Part 3: --resume across sessions: r4 is killed at half, its session ends
# (the sender drops it), and r4 --resume against a new session of the same
# store takes back its journal and receives only the rest.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_resume

IMG=$MC_W/img
lab_up 2 1gbit 0 || die "lab_up"
mc_image "$IMG" 64 || die "cannot make the image"
mc_prepare "$IMG" "$MC_W/store"
NEED=64
HALF=$((NEED / 2))

# jr_half_or_gone TAG OUTPUT — true once OUTPUT's journal holds half the
# chunks (what a restart can take back: it is synced every 2 s, so the
# progress lines usually run ahead of it), or when TAG ended.
# shellcheck disable=SC2317 # called through lab_wait
jr_half_or_gone() { [ "$(mc_jr_records "$2")" -ge "$HALF" ] || ! mc_running "$1"; }

# ---- part 1: SIGKILL at half, restart with --resume in the same session
note "part 1: kill r1 at half, restart it with --resume"
mc_rx_start r1 c1 --timeout 60
mc_rx_start r2 c2 --timeout 60
mc_send_start snd1 srv "$MC_W/store" -r 100M --rx-timeout 30 -n 2 -w 60
OUT1=$MC_W/r1.out

lab_wait 90 jr_half_or_gone r1 "$OUT1"
if ! mc_running r1; then
  mc_wait r1 5
  mc_show r1
  die "r1 ended before it was half-way (exit ${MC_RC[r1]})"
fi
mc_kill r1 KILL
check "r1 died of SIGKILL (status ${MC_RC[r1]})" test "${MC_RC[r1]}" = 137
JR=$(mc_jr_records "$OUT1")
PROG_DONE=$(mc_jprog "$MC_W/r1.json" 'p.get("chunks_done", 0)')
note "at the kill: journal holds $JR chunks, last progress line said chunks_done=$PROG_DONE of $NEED"
check "partial output kept after SIGKILL" test -e "$OUT1.mlcast-part"
check "journal kept after SIGKILL" test -e "$OUT1.mlcast-jrnl"
check "no final output after SIGKILL" test ! -e "$OUT1"
check "journal holds at least half the chunks ($JR >= $HALF)" test "$JR" -ge "$HALF"
check "the sender is still running" mc_running snd1

mc_rx_start r1 c1 --timeout 60 --resume
mc_wait r1 60
mc_wait r2 60
mc_wait snd1 60
mc_rx_ok r1 "$IMG"
mc_rx_ok r2 "$IMG"
mc_send_ok snd1 2
note "$(mc_rx_line r1)"
note "$(mc_send_line snd1)"
DONE2=$(mc_field r1 chunks_done)
SEEDED2=$(mc_field r1 seeded_chunks)
LACK=$((NEED - JR))
check "resumed run seeded chunks from its journal (seeded_chunks=$SEEDED2 > 0)" test "${SEEDED2:-0}" -gt 0
check "resumed run seeded all the journal held ($SEEDED2 >= $JR)" test "${SEEDED2:-0}" -ge "$JR"
check "resumed run received at most what the journal lacked + 8 (chunks_done=$DONE2 <= $LACK + 8)" \
  test "${DONE2:-999}" -le $((LACK + 8))
# The resumed run also re-hashes the partial output where the journal is
# silent, so what it lacked by its last progress line (at most ~1 s before
# the kill) bounds what it receives too.
check "resumed run received at most what the first run lacked by its progress + 8 ($DONE2 <= $((NEED - PROG_DONE)) + 8)" \
  test "${DONE2:-999}" -le $((NEED - PROG_DONE + 8))
check "resumed run: seeded + received = all $NEED chunks ($SEEDED2 + $DONE2)" \
  test $((${SEEDED2:-0} + ${DONE2:-0})) -eq "$NEED"
note "figures: killed with $JR chunks journaled, $PROG_DONE done by the last progress line;" \
  "resumed run seeded $SEEDED2 ($JR from the journal, $((SEEDED2 - JR)) by re-hashing the partial output)" \
  "and received $DONE2 of the $((NEED - JR)) the journal lacked"

# ---- part 2: SIGKILL at half, plain restart (no --resume) starts over
note "part 2: kill r3 at half, restart it without --resume"
OUT3=$MC_W/r3.out
mc_rx_start r3 c1 --timeout 60
mc_send_start snd2 srv "$MC_W/store" -r 100M --rx-timeout 5 -n 1 -w 60
lab_wait 90 jr_half_or_gone r3 "$OUT3"
if ! mc_running r3; then
  mc_wait r3 5
  mc_show r3
  die "r3 ended before it was half-way (exit ${MC_RC[r3]})"
fi
mc_kill r3 KILL
JR3=$(mc_jr_records "$OUT3")
check "r3's journal held chunks at the kill ($JR3)" test "$JR3" -gt 0
mc_rx_start r3 c1 --timeout 60
mc_wait r3 120
mc_wait snd2 120
mc_rx_ok r3 "$IMG"
note "$(mc_rx_line r3)"
note "$(mc_send_line snd2)"
check "plain restart seeded nothing (seeded_chunks=$(mc_field r3 seeded_chunks))" \
  test "$(mc_field r3 seeded_chunks)" = 0
check "plain restart received all $NEED chunks (chunks_done=$(mc_field r3 chunks_done))" \
  test "$(mc_field r3 chunks_done)" = "$NEED"
check "sender of part 2: the restarted receiver done, the killed one dropped" \
  test "$(mc_json "$MC_W/snd2.json" 'sorted(x["state"] for x in r["receivers"])')" = '["done", "dropped"]'
check "sender of part 2 exits 1 (one receiver dropped): ${MC_RC[snd2]}" test "${MC_RC[snd2]}" = 1
# ---- part 3: SIGKILL at half, the session ends, --resume in a new session
note "part 3: kill r4 at half, let its session end, resume it in a new session"
OUT4=$MC_W/r4.out
mc_rx_start r4 c1 --timeout 60
mc_send_start snd3 srv "$MC_W/store" -r 100M --rx-timeout 2 -n 1 -w 60
lab_wait 90 jr_half_or_gone r4 "$OUT4"
if ! mc_running r4; then
  mc_wait r4 5
  mc_show r4
  die "r4 ended before it was half-way (exit ${MC_RC[r4]})"
fi
mc_kill r4 KILL
JR4=$(mc_jr_records "$OUT4")
mc_wait snd3 60
check "session 3 ended with r4 dropped (exit ${MC_RC[snd3]}, $(mc_json "$MC_W/snd3.json" 'r["receivers"][0]["state"]'))" \
  test "$(mc_json "$MC_W/snd3.json" 'r["receivers"][0]["state"]')" = dropped
mc_rx_start r4 c1 --timeout 60 --resume
mc_send_start snd4 srv "$MC_W/store" -r 100M -n 1 -w 60
mc_wait r4 60
mc_wait snd4 60
mc_rx_ok r4 "$IMG"
mc_send_ok snd4 1
note "$(mc_rx_line r4)"
DONE4=$(mc_field r4 chunks_done)
SEEDED4=$(mc_field r4 seeded_chunks)
check "resumed in a new session: seeded_chunks=$SEEDED4 >= journal $JR4 (> 0)" \
  test "${SEEDED4:-0}" -ge "$JR4" -a "${SEEDED4:-0}" -gt 0
check "resumed in a new session: received $DONE4 <= lacked $((NEED - JR4)) + 8" \
  test "${DONE4:-999}" -le $((NEED - JR4 + 8))

for t in snd1 snd2 snd3 snd4 r1 r2 r3 r4; do check "$t did not crash" mc_no_crash "$t"; done

mc_finish
