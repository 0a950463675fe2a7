#!/usr/bin/env bash
# mlcast under random loss: one sender, four receivers, every port shaped to
# 1 Gbit/s, a 128 MiB random image sent three times — with 0 %, 1 % and 5 %
# of the UDP reaching each client dropped at random (independently per
# client). Every copy must be byte-identical and every receiver report ok;
# at 5 % the sender must have sent FEC parity.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_loss

N=4
IMG=$MC_W/img
lab_up "$N" 1gbit 0 || die "lab_up $N 1gbit 0"
mc_image "$IMG" 128 || die "cannot make the image"
mc_prepare "$IMG" "$MC_W/store"
note "image: 128 MiB random, $(mc_sha "$IMG")"

for loss in 0 1 5; do
  note "run with $loss % loss at each receiver"
  for ((i = 1; i <= N; i++)); do lab_loss "$i" "$loss" || die "lab_loss $i $loss"; done
  for ((i = 1; i <= N; i++)); do
    rm -f "$MC_W/l$loss-r$i.out"
    mc_rx_start "l$loss-r$i" "c$i" --timeout 60
  done
  mc_send_start "l$loss-snd" srv "$MC_W/store" -n "$N" -w 60
  mc_wait "l$loss-snd" 240
  for ((i = 1; i <= N; i++)); do mc_wait "l$loss-r$i" 60; done

  mc_send_ok "l$loss-snd" "$N"
  note "$(mc_send_line "l$loss-snd")"
  for ((i = 1; i <= N; i++)); do
    mc_rx_ok "l$loss-r$i" "$IMG"
    note "$(mc_rx_line "l$loss-r$i") (lab dropped $(lab_loss_drops "$i") packets)"
  done
  # The rate controller must tell random loss from congestion (ratectl.h):
  # on an idle 1 Gbit/s LAN the pacing rate has no reason to sink to the
  # floor (cap / 100 = 10 Mbit/s by default) while receivers still need data.
  minrate=$(mc_jall "$MC_W/l$loss-snd.json" 'min([o["rate_bps"] for o in L if o.get("event") == "progress" and any(x["state"] != "done" for x in o["receivers"])] or [0])')
  note "figures: $loss % loss: sender $(mc_field "l$loss-snd" elapsed_s) s, lowest pacing rate while receivers were busy $((minrate / 1000000)) Mbit/s"
  check "$loss % loss: the pacing rate stayed above the 10 Mbit/s floor (lowest $((minrate / 1000000)) Mbit/s)" \
    test "$minrate" -gt 10000000 -o "$minrate" = 0
  parity=$(mc_field "l$loss-snd" parity_pkts)
  if [ "$loss" = 5 ]; then
    check "at 5 % loss the sender sent parity (parity_pkts=$parity)" test "${parity:-0}" -gt 0
  fi
  if [ "$loss" != 0 ]; then
    lost=0
    for ((i = 1; i <= N; i++)); do lost=$((lost + $(lab_loss_drops "$i"))); done
    check "the loss rules dropped packets at $loss % ($lost)" test "$lost" -gt 0
  fi
  for t in "l$loss-snd" "l$loss-r1" "l$loss-r2" "l$loss-r3" "l$loss-r4"; do
    check "$t did not crash" mc_no_crash "$t"
  done
  rm -f "$MC_W"/l"$loss"-r*.out
done

mc_finish
