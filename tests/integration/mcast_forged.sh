#!/usr/bin/env bash
# mlcast under attack. An attacker host ("evil", 10.99.0.66) on the same LAN
# runs mcforge.py: it joins the group, learns the session from the real
# sender's ANNOUNCE, then floods the group and the sender's feedback port
# during the transfer (see mcforge.py for the list: garbage, truncated, bad
# magic/version/type, zero and huge lengths, malformed bodies, a wrong
# session, the right session from its own address, and DATA with garbage
# payloads for real chunk/block/sym numbers from the sender's own IP through
# a raw socket).
# Part 1 (no key): every output is still the image, byte for byte; each
# receiver counted bad_pkts + forged_pkts > 0 (hash_failures are allowed);
# the sender counted the garbage sent to it and still completed.
# Part 2 (a shared key, -k): an attacker without the key spoofs the sender's
# ANNOUNCE/END/POLL/REPAIR_ADV (and garbage DATA) from the sender's IP: every
# keyed receiver still completes with forged_pkts > 0; a receiver without
# the key fails (exit 1) with a reason that mentions the key; a receiver
# with a wrong key fails too (exit 1, no output).
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_forged

FORGE=$here/mcforge.py
# How long each attacker runs (from its start, learning included). Spoofed
# DATA aimed just ahead of the sweep stalls the transfer while it lasts (see
# the report), so the attack is kept short; the transfer then completes.
ATTACK_S=${ATTACK_S:-6}
GROUP=239.192.77.1
IMG=$MC_W/img
lab_up 4 1gbit 0 || die "lab_up"
lab_add_host evil 10.99.0.66 || die "lab_add_host evil"
mc_image "$IMG" 64 || die "cannot make the image"
mc_prepare "$IMG" "$MC_W/store"

# start_attacker TAG ARGS... — runs mcforge.py on evil and waits until it
# has joined the group.
start_attacker() {
  local tag=$1
  shift
  mc_start "$tag" evil python3 "$FORGE" --group "$GROUP" --sender-ip "$(lab_ip srv)" "$@"
  lab_wait_joined 10 "$GROUP" evil || bad "the attacker did not join $GROUP"
}

# stop_attacker TAG — ends the attacker (SIGTERM: it prints its report).
stop_attacker() {
  if mc_running "$1"; then
    kill -TERM "${MC_PID[$1]}" 2>/dev/null
  fi
  mc_wait "$1" 10
  note "attacker: $(tail -n 1 "$MC_W/$1.json" | cut -c1-1500)"
  mc_show_err "$1"
}
mc_show_err() { [ -s "$MC_W/$1.err" ] && { echo "--- $1.err"; tail -n 5 "$MC_W/$1.err"; }; return 0; }

# ---- part 1: no key
note "part 1: unauthenticated session under attack"
for i in 1 2 3; do mc_rx_start "r$i" "c$i" --timeout 60; done
start_attacker atk1 --mode plain --spoof --duration "$ATTACK_S"
mc_send_start snd1 srv "$MC_W/store" -r 200M -n 3 -w 60
mc_wait snd1 120
stop_attacker atk1
for i in 1 2 3; do mc_wait "r$i" 30; done
note "$(mc_send_line snd1)"
mc_send_ok snd1 3
check "attacker learned the session and attacked" test "$(mc_json "$MC_W/atk1.json" 'r["ok"] and r["sent_total"] > 0')" = true
check "attacker sent spoofed DATA ($(mc_json "$MC_W/atk1.json" 'r["sent"].get("spoofed_data", 0)'))" \
  test "$(mc_json "$MC_W/atk1.json" 'r["sent"].get("spoofed_data", 0) > 0')" = true
HF=0
for i in 1 2 3; do
  mc_rx_ok "r$i" "$IMG"
  note "$(mc_rx_line "r$i")"
  n=$(mc_json "$MC_W/r$i.json" 'r.get("bad_pkts", 0) + r.get("forged_pkts", 0)')
  check "r$i counted the attack: bad_pkts + forged_pkts = $n > 0" test "${n:-0}" -gt 0
  HF=$((HF + $(mc_field "r$i" hash_failures)))
done
note "figures: hash failures caused by spoofed DATA, all receivers: $HF;" \
  "transfer took $(mc_field snd1 elapsed_s) s with the attacker active for $(mc_json "$MC_W/atk1.json" 'r["attack_s"]') s;" \
  "data_pkts $(mc_field snd1 data_pkts) for an image of $((64 * 729)) symbols"
n=$(mc_json "$MC_W/snd1.json" 'r.get("bad_pkts", 0) + r.get("forged_pkts", 0)')
check "the sender counted the garbage sent to it: bad_pkts + forged_pkts = $n > 0" test "${n:-0}" -gt 0

# ---- part 2: with a key
note "part 2: authenticated session, attacker without the key"
KEY=$MC_W/key WRONG=$MC_W/wrong.key
head -c 32 /dev/urandom >"$KEY"
head -c 32 /dev/urandom >"$WRONG"
chmod 600 "$KEY" "$WRONG"
rm -f "$MC_W"/r?.out
mc_rx_start k1 c1 --timeout 60 -k "$KEY"
mc_rx_start k2 c2 --timeout 60 -k "$KEY"
mc_rx_start nokey c3 --timeout 10
mc_rx_start wrongkey c4 --timeout 10 -k "$WRONG"
start_attacker atk2 --mode keyed --duration "$ATTACK_S"
mc_send_start snd2 srv "$MC_W/store" -r 200M -n 2 -w 60 -k "$KEY"
mc_wait snd2 120
stop_attacker atk2
for t in k1 k2 nokey wrongkey; do mc_wait "$t" 40; done
note "$(mc_send_line snd2)"
mc_send_ok snd2 2
check "attacker sent spoofed control packets" \
  test "$(mc_json "$MC_W/atk2.json" 'r["ok"] and r["sent"].get("spoofed_end", 0) > 0 and r["sent"].get("spoofed_announce", 0) > 0')" = true
for t in k1 k2; do
  mc_rx_ok "$t" "$IMG"
  note "$(mc_rx_line "$t")"
  n=$(mc_field "$t" forged_pkts)
  check "$t counted forged packets: forged_pkts = $n > 0" test "${n:-0}" -gt 0
done
for t in nokey wrongkey; do
  reason=$(mc_field "$t" reason)
  note "$t: exit ${MC_RC[$t]}, reason: $reason"
  check "$t: exit 1" test "${MC_RC[$t]}" = 1
  check "$t: result not ok" test "$(mc_field "$t" ok)" = false
  check "$t: no output" test ! -e "$MC_W/$t.out" -a ! -e "$MC_W/$t.out.mlcast-part"
done
check "nokey: the reason mentions the key" grep -qiE 'key' <<<"$(mc_field nokey reason)"
# With a wrong key the ANNOUNCEs fail their tag like a forger's: the
# receiver counts them as forged and its reason asks about the key.
check "wrongkey: counted the sender's ANNOUNCEs as forged ($(mc_field wrongkey forged_pkts))" \
  test "$(mc_field wrongkey forged_pkts)" -gt 0
check "wrongkey: the reason mentions the key" grep -qiE 'key' <<<"$(mc_field wrongkey reason)"
for t in snd1 snd2 r1 r2 r3 k1 k2 nokey wrongkey; do check "$t did not crash" mc_no_crash "$t"; done

mc_finish
