#!/usr/bin/env bash
# Several mlcast sessions side by side: three senders on the same host (srv),
# each with its own 32 MiB random image —
#   S1 on 239.192.77.1 port 7770, S2 on 239.192.77.2 port 7770 (another
#   group), S3 on 239.192.77.1 port 7771 (the same group, another port) —
# and two receivers each, spread so that every client host runs receivers
# of two different sessions at once (c1: S1+S2, c2: S1+S3, c3: S2+S3).
# Every receiver must end with its own sender's image, and every sender
# must list exactly its own two receivers.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_sessions

lab_up 3 1gbit 0 || die "lab_up"
declare -A GROUP=([1]=239.192.77.1 [2]=239.192.77.2 [3]=239.192.77.1)
declare -A PORT=([1]=7770 [2]=7770 [3]=7771)
declare -A HOSTS=([1]="c1 c2" [2]="c1 c3" [3]="c2 c3")
for s in 1 2 3; do
  mc_image "$MC_W/img$s" 32 || die "cannot make image $s"
  mc_prepare "$MC_W/img$s" "$MC_W/store$s"
done
check "the three images differ" test "$(for s in 1 2 3; do mc_sha "$MC_W/img$s"; done | sort -u | wc -l)" = 3

for s in 1 2 3; do
  for h in ${HOSTS[$s]}; do
    mc_rx_start "s$s-$h" "$h" --timeout 60 -g "${GROUP[$s]}" -p "${PORT[$s]}"
  done
done
for s in 1 2 3; do
  mc_send_start "snd$s" srv "$MC_W/store$s" -g "${GROUP[$s]}" -p "${PORT[$s]}" -r 300M -n 2 -w 60
done
for s in 1 2 3; do mc_wait "snd$s" 120; done
for s in 1 2 3; do for h in ${HOSTS[$s]}; do mc_wait "s$s-$h" 30; done; done

for s in 1 2 3; do
  note "session $s (${GROUP[$s]}:${PORT[$s]}): $(mc_send_line "snd$s")"
  mc_send_ok "snd$s" 2
  want=$(for h in ${HOSTS[$s]}; do echo "s$s-$h"; done | sort | tr '\n' ' ')
  got=$(mc_json "$MC_W/snd$s.json" '" ".join(sorted(x["name"] for x in r["receivers"])) + " "')
  check "sender $s lists exactly its own receivers ($got)" test "$got" = "$want"
  for h in ${HOSTS[$s]}; do
    mc_rx_ok "s$s-$h" "$MC_W/img$s"
    note "$(mc_rx_line "s$s-$h")"
  done
done
for s in 1 2 3; do
  check "snd$s did not crash" mc_no_crash "snd$s"
  for h in ${HOSTS[$s]}; do check "s$s-$h did not crash" mc_no_crash "s$s-$h"; done
done

mc_finish
