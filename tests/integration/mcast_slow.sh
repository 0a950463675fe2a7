#!/usr/bin/env bash
# mlcast with one slow receiver: ports at 1 Gbit/s, c4's shaped to 100 Mbit/s
# (lab_slow). Run 1, the three fast receivers alone, measures their time T.
# Run 2 adds the slow one: the fast receivers must still finish within
# 2 x T + 2 s (a generous safety bound, not a benchmark: the ratio is
# printed), the slow one must complete too (a drop fails the test, with the
# reason printed), and every output must be identical to the image.
# 128 MiB random image.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_slow

IMG=$MC_W/img
lab_up 4 1gbit 0 || die "lab_up"
lab_slow 4 100mbit || die "lab_slow 4 100mbit"
mc_image "$IMG" 128 || die "cannot make the image"
mc_prepare "$IMG" "$MC_W/store"

# ---- run 1: the fast receivers alone
note "run 1: three fast receivers"
for i in 1 2 3; do mc_rx_start "a$i" "c$i" --timeout 60; done
mc_send_start snd1 srv "$MC_W/store" -n 3 -w 60
mc_wait snd1 120
for i in 1 2 3; do mc_wait "a$i" 30; done
mc_send_ok snd1 3
for i in 1 2 3; do mc_rx_ok "a$i" "$IMG"; done
note "$(mc_send_line snd1)"
T=$(mc_json "$MC_W/snd1.json" 'max(x["finished_s"] for x in r["receivers"])')
rm -f "$MC_W"/a?.out

# ---- run 2: the same plus the slow one
note "run 2: three fast receivers and one at 100 Mbit/s"
for i in 1 2 3; do mc_rx_start "b$i" "c$i" --timeout 60; done
mc_rx_start slow c4 --timeout 60
mc_send_start snd2 srv "$MC_W/store" -n 4 -w 60
mc_wait snd2 180
for i in 1 2 3; do mc_wait "b$i" 30; done
mc_wait slow 30
note "$(mc_send_line snd2)"
for i in 1 2 3; do mc_rx_ok "b$i" "$IMG"; done
SLOW_STATE=$(mc_json "$MC_W/snd2.json" '[x for x in r["receivers"] if x["name"] == "slow"][0]["state"]')
if [ "$SLOW_STATE" != "done" ]; then
  bad "the slow receiver was not done at the sender: $SLOW_STATE," \
    "reason: $(mc_json "$MC_W/snd2.json" '[x for x in r["receivers"] if x["name"] == "slow"][0].get("reason")')" \
    "/ its own: $(mc_field slow reason)"
fi
mc_rx_ok slow "$IMG"
mc_send_ok snd2 4
note "$(mc_rx_line slow)"

FAST=$(mc_json "$MC_W/snd2.json" 'max(x["finished_s"] for x in r["receivers"] if x["name"] != "slow")')
SLOW=$(mc_json "$MC_W/snd2.json" '[x for x in r["receivers"] if x["name"] == "slow"][0]["finished_s"]')
LAG=$(mc_json "$MC_W/snd2.json" '[x for x in r["receivers"] if x["name"] == "slow"][0]["lagging"]')
RATIO=$(awk -v a="$FAST" -v b="$T" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
note "figures: T (fast alone) = $T s; fast with the slow one = $FAST s (ratio $RATIO);" \
  "slow receiver done at $SLOW s (lagging=$LAG)"
check "fast receivers within 2 x T + 2 s ($FAST <= 2 x $T + 2)" \
  awk -v f="$FAST" -v t="$T" 'BEGIN { exit !(f > 0 && f <= 2 * t + 2) }'

# ---- run 3: a disk-like image (zero chunks, compressible chunks) with the
# slow receiver. Its whole-chunk NACKs are deferred while it lags; once the
# fast receivers are done it must still get every chunk (a receiver that
# forgot a deferred NACK used to wait here for ever).
note "run 3: a disk-like image, three fast receivers and one at 100 Mbit/s"
DISK=$MC_W/disk
mc_image "$DISK" 96 0-15 48-79 || die "cannot make the disk-like image"
base64 -w 0 /dev/urandom | head -c $((16 * 1048576)) |
  dd of="$DISK" bs=1M seek=16 conv=notrunc iflag=fullblock status=none
mc_prepare "$DISK" "$MC_W/dstore"
rm -f "$MC_W"/b?.out "$MC_W"/slow.out
for i in 1 2 3; do mc_rx_start "d$i" "c$i" --timeout 60; done
mc_rx_start dslow c4 --timeout 60
mc_send_start snd3 srv "$MC_W/dstore" -n 4 -w 60
mc_wait snd3 180
for i in 1 2 3; do mc_wait "d$i" 30; done
mc_wait dslow 30
note "$(mc_send_line snd3)"
for i in 1 2 3; do mc_rx_ok "d$i" "$DISK"; done
mc_rx_ok dslow "$DISK"
mc_send_ok snd3 4
note "$(mc_rx_line dslow)"
for t in snd1 snd2 snd3 a1 a2 a3 b1 b2 b3 slow d1 d2 d3 dslow; do
  check "$t did not crash" mc_no_crash "$t"
done

mc_finish
