#!/usr/bin/env bash
# mlcast send --chunks: a version whose chunks live in a content-addressed
# chunk store (docs/chunkstore.md), as mlserver keeps versions, is sent to
# three receivers at 1 % loss each, and every copy is byte-identical to the
# source image.
#
# The image: 48 chunks of 1 MiB, random, chunks 5-7 zero, chunks 20-21 copies
# of chunks 0-1 (stored once), chunks 30-33 text (stored as zstd frames). It
# is prepared with `mlcast prepare --chunks`, which puts the chunks through
# mc_prepare()'s sink into the store: the version directory holds only the
# manifest.
# Run 2: one chunk file is deleted before sending. The sender ends the
# session with an error naming the chunk's index and hash; the receivers
# fail cleanly (a reason that names the chunk, no output file, no crash).
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_cas

N=3
IMG=$MC_W/img CAS=$MC_W/chunks VER=$MC_W/version
GONE=25 # the chunk deleted in run 2
lab_up "$N" 1gbit 0 || die "lab_up $N 1gbit 0"
mc_image "$IMG" 48 5-7 || die "cannot make the image"
dd if="$IMG" of="$IMG" bs=1M skip=0 seek=20 count=2 conv=notrunc status=none || die "dd copy"
python3 -c 'import sys; sys.stdout.write(("the same line of text, again and again\n" * 120000)[:4 << 20])' |
  dd of="$IMG" bs=1M seek=30 conv=notrunc iflag=fullblock status=none || die "dd text"
mc_prepare "$IMG" "$VER" --chunks "$CAS"
note "image: 48 MiB, $(mc_sha "$IMG")"

# The version is a manifest only; the store holds each distinct non-zero
# chunk once: 48 - 3 zero - 2 copies = 43 files, 4 of them zstd frames.
check "the version directory holds only the manifest" test "$(ls "$VER")" = manifest
nfiles=$(find "$CAS" -type f -name '*.[zr]' | wc -l)
nz=$(find "$CAS" -type f -name '*.z' | wc -l)
check "the chunk store holds 43 chunk files ($nfiles)" test "$nfiles" = 43
check "4 of them are zstd frames ($nz)" test "$nz" = 4

# ---- run 1: three receivers, 1 % loss each
note "run 1: send --chunks to $N receivers at 1 % loss"
for ((i = 1; i <= N; i++)); do lab_loss "$i" 1 || die "lab_loss $i 1"; done
for ((i = 1; i <= N; i++)); do mc_rx_start "r$i" "c$i" --timeout 60; done
mc_send_start snd1 srv "$VER" --chunks "$CAS" -n "$N" -w 60
mc_wait snd1 180
for ((i = 1; i <= N; i++)); do mc_wait "r$i" 60; done
mc_send_ok snd1 "$N"
note "$(mc_send_line snd1)"
lost=0
for ((i = 1; i <= N; i++)); do
  mc_rx_ok "r$i" "$IMG"
  note "$(mc_rx_line "r$i")"
  lost=$((lost + $(lab_loss_drops "$i")))
done
check "the loss rules dropped packets ($lost)" test "$lost" -gt 0
for t in snd1 r1 r2 r3; do check "$t did not crash" mc_no_crash "$t"; done

# ---- run 2: a chunk file is missing
hash=$(dd if="$IMG" bs=1M skip="$GONE" count=1 status=none | sha256sum | cut -d' ' -f1)
file=$CAS/${hash:0:2}/$hash.r
check "chunk $GONE is stored raw at ${file#"$MC_W"/}" test -f "$file"
rm -f "$file"
note "run 2: chunk $GONE ($hash) deleted from the store"
for ((i = 1; i <= N; i++)); do lab_loss "$i" 0 || die "lab_loss $i 0"; done
for ((i = 1; i <= N; i++)); do
  rm -f "$MC_W/m$i.out"
  mc_rx_start "m$i" "c$i" --timeout 30
done
mc_send_start snd2 srv "$VER" --chunks "$CAS" -n "$N" -w 60
mc_wait snd2 120
for ((i = 1; i <= N; i++)); do mc_wait "m$i" 60; done

reason=$(mc_field snd2 reason)
note "sender: exit ${MC_RC[snd2]}, reason: $reason"
check "the sender exited 1" test "${MC_RC[snd2]}" = 1
check "its result is not ok" test "$(mc_field snd2 ok)" = false
check "its reason names chunk $GONE and its file in the store" \
  test "$reason" = "chunk $GONE: $file is missing from the chunk store"
check "its log says it ended the session" grep -q "chunk $GONE: .* missing from the chunk store: ending the session" "$MC_W/snd2.err"
for ((i = 1; i <= N; i++)); do
  rreason=$(mc_field "m$i" reason)
  note "m$i: exit ${MC_RC[m$i]}, reason: $rreason"
  check "m$i failed (exit ${MC_RC[m$i]})" test "${MC_RC[m$i]}" != 0
  check "m$i did not crash" mc_no_crash "m$i"
  check "m$i's reason names chunk $GONE and its hash" \
    grep -q "cannot read chunk $GONE (sha256 $hash)" <<<"$rreason"
  check "m$i left no output file" test ! -e "$MC_W/m$i.out"
done
check "snd2 did not crash" mc_no_crash snd2

mc_finish
