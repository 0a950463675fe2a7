#!/usr/bin/env bash
# mlcast receive --seed: a receiver holding the previous version of an image
# takes every unchanged chunk from it and receives only the changed ones.
#
# v1: 64 chunks of 1 MiB, random, chunks 10-13 zero (60 non-zero chunks).
# v2: v1 with K=5 non-zero chunks (3, 17, 30, 45, 63) overwritten with new
# random data; v2 is prepared and sent.
# Run 1: receiver A (--seed v1) and receiver B (no seed): A receives exactly
# K chunks and seeds 60 - K; B receives all 60 non-zero chunks; both outputs
# are v2, byte for byte.
# Run 2: only seeded receivers (A2, C): the sender's data_pkts stays below
# twice the K changed chunks' worth of symbols, far below run 1's.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_seed

CHUNKS=64
ZERO=4 # chunks 10-13
CHANGED=(3 17 30 45 63)
K=${#CHANGED[@]}
NONZERO=$((CHUNKS - ZERO))
SYMS_PER_CHUNK=$(((1048576 + 1439) / 1440)) # random chunks are stored raw

V1=$MC_W/v1 V2=$MC_W/v2
lab_up 3 1gbit 0 || die "lab_up"
mc_image "$V1" "$CHUNKS" 10-13 || die "cannot make v1"
cp "$V1" "$V2"
for c in "${CHANGED[@]}"; do mc_put_random "$V2" "$c" || die "cannot change chunk $c"; done
check "v1 and v2 differ" test "$(mc_sha "$V1")" != "$(mc_sha "$V2")"
mc_prepare "$V2" "$MC_W/store"
check "v2's store: $ZERO zero chunks" test "$("$MLCAST" info --json "$MC_W/store" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["zero_chunks"])')" = "$ZERO"

# ---- run 1: one seeded receiver, one without a seed
note "run 1: A with --seed v1, B without"
mc_rx_start A c1 --timeout 60 --seed "$V1"
mc_rx_start B c2 --timeout 60
mc_send_start snd1 srv "$MC_W/store" -n 2 -w 60
mc_wait snd1 120
mc_wait A 30
mc_wait B 30
mc_send_ok snd1 2
mc_rx_ok A "$V2"
mc_rx_ok B "$V2"
note "$(mc_send_line snd1)"
note "$(mc_rx_line A)"
note "$(mc_rx_line B)"
check "A received exactly the $K changed chunks (chunks_done=$(mc_field A chunks_done))" \
  test "$(mc_field A chunks_done)" = "$K"
check "A seeded the $((NONZERO - K)) unchanged non-zero chunks (seeded_chunks=$(mc_field A seeded_chunks))" \
  test "$(mc_field A seeded_chunks)" = $((NONZERO - K))
check "B received all $NONZERO non-zero chunks (chunks_done=$(mc_field B chunks_done))" \
  test "$(mc_field B chunks_done)" = "$NONZERO"
check "B seeded nothing (seeded_chunks=$(mc_field B seeded_chunks))" \
  test "$(mc_field B seeded_chunks)" = 0
check "the seed v1 is unchanged" test "$(sha256sum "$V1" | cut -d' ' -f1)" = "$(mc_sha "$V1")"
FULL=$(mc_field snd1 data_pkts)

# ---- run 2: seeded receivers only
note "run 2: A2 and C, both with --seed v1"
mc_rx_start A2 c1 --timeout 60 --seed "$V1"
mc_rx_start C c3 --timeout 60 --seed "$V1"
mc_send_start snd2 srv "$MC_W/store" -n 2 -w 60
mc_wait snd2 120
mc_wait A2 30
mc_wait C 30
mc_send_ok snd2 2
mc_rx_ok A2 "$V2"
mc_rx_ok C "$V2"
note "$(mc_send_line snd2)"
note "$(mc_rx_line A2)"
note "$(mc_rx_line C)"
for t in A2 C; do
  check "$t received exactly $K chunks (chunks_done=$(mc_field "$t" chunks_done))" \
    test "$(mc_field "$t" chunks_done)" = "$K"
done
DATA=$(mc_field snd2 data_pkts)
WANT=$((K * SYMS_PER_CHUNK))
note "figures: data_pkts $DATA with seeded receivers only vs $FULL in run 1;" \
  "$K changed chunks = $WANT symbols; ratio $(awk -v a="$DATA" -v b="$WANT" 'BEGIN { printf "%.2f", a / b }')"
check "seeded-only run: data_pkts $DATA < 2 x $WANT" test "${DATA:-999999999}" -lt $((2 * WANT))
check "seeded-only run: data_pkts $DATA >= the changed chunks' $WANT" test "${DATA:-0}" -ge "$WANT"
# The manifest is repeated only until each receiver says it holds it (its
# first STATUS), not while it hashes its seed: control traffic stays a
# small part of a small update (it was a third of the packets before).
CTL=$(mc_field snd2 control_pkts)
check "seeded-only run: control_pkts $CTL < data_pkts / 4" test "${CTL:-999999999}" -lt $((DATA / 4))
check "run 1 sent every non-zero chunk ($FULL >= $((NONZERO * SYMS_PER_CHUNK)))" \
  test "${FULL:-0}" -ge $((NONZERO * SYMS_PER_CHUNK))
for t in snd1 snd2 A B A2 C; do check "$t did not crash" mc_no_crash "$t"; done

mc_finish
