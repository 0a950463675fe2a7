#!/usr/bin/env bash
# mlcast late join: three receivers start, the sender starts with -n 3, and a
# fourth receiver starts once the first three are 30 % through the image
# (the sender's sweep has passed about a third of the chunks): it still gets
# every chunk, and all four copies are identical to the image.
# 128 MiB random image, ports at 1 Gbit/s, sender capped at 150 Mbit/s so
# that the transfer lasts long enough (about 7 s) to join in the middle.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_late

IMG=$MC_W/img
lab_up 4 1gbit 0 || die "lab_up"
mc_image "$IMG" 128 || die "cannot make the image"
mc_prepare "$IMG" "$MC_W/store"

for i in 1 2 3; do mc_rx_start "r$i" "c$i" --timeout 60; done
mc_send_start snd srv "$MC_W/store" -n 3 -w 60 -r 150M

# Until each of the first three has reported at least 30 % (progress lines
# come once a second, about 14 % of the image apart at this rate).
FRAC='p.get("chunks_needed", 0) > 0 and p["chunks_done"] >= 0.3 * p["chunks_needed"]'
# shellcheck disable=SC2317 # called through lab_wait
first_three_at_30() {
  local i
  for i in 1 2 3; do mc_true "$MC_W/r$i.json" "$FRAC" || { mc_running "r$i" && return 1; }; done
  return 0
}
lab_wait 90 first_three_at_30 || bad "the first three did not reach 30 % within 90 s"
PCT=""
for i in 1 2 3; do
  PCT+="r$i $(mc_jprog "$MC_W/r$i.json" '"%.0f %%" % (100.0 * p["chunks_done"] / max(p["chunks_needed"], 1))') "
done
note "progress at r4's start: ${PCT}"
check "the first receivers are not finished when r4 starts" mc_running r1
mc_rx_start r4 c4 --timeout 60

mc_wait snd 120
for i in 1 2 3 4; do mc_wait "r$i" 30; done
mc_send_ok snd 4
note "$(mc_send_line snd)"
for i in 1 2 3 4; do
  mc_rx_ok "r$i" "$IMG"
  note "$(mc_rx_line "r$i")"
done
check "r4 received every chunk over the network (chunks_done=$(mc_field r4 chunks_done))" \
  test "$(mc_field r4 chunks_done)" = 128
JOINED=$(mc_json "$MC_W/snd.json" '[x["joined_s"] for x in r["receivers"] if x["name"] == "r4"][0]')
FIRST_DONE=$(mc_json "$MC_W/snd.json" 'min(x["finished_s"] for x in r["receivers"] if x["name"] != "r4")')
R4_DONE=$(mc_json "$MC_W/snd.json" '[x["finished_s"] for x in r["receivers"] if x["name"] == "r4"][0]')
note "figures: r4 joined at ${JOINED} s; first three done at ${FIRST_DONE} s; r4 done at ${R4_DONE} s"
check "the sender saw r4 join late (joined_s $JOINED > 0.5)" awk -v j="$JOINED" 'BEGIN { exit !(j > 0.5) }'
for t in snd r1 r2 r3 r4; do check "$t did not crash" mc_no_crash "$t"; done

mc_finish
