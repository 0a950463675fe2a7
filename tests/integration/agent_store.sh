#!/usr/bin/env bash
# agent_store: mlagent's image store (src/agent/imgstore.c) around a real
# `mlcast receive` in the namespaced lab, driven by imgstore-tool.
#
# Images: v1 is a 32 MiB ext4 file system made from a directory of binaries
# and text (mkfs.ext4 -d); v2 is v1 with a few files replaced, one removed
# and one added (debugfs, no mount); v3 is v2 with one more file replaced.
# Both pass e2fsck. The server (srv) prepares each; the receiver host (c1)
# keeps the store.
#
# 1. v1: prepare gives the output path (no seed), mlcast receives into it,
#    commit makes it active.
# 2. v2: prepare gives v1 as the seed; mlcast reports seeded chunks and
#    receives only the rest; commit: v2 active, v1 previous.
# 3. rollback: v1 active, v2 previous; again: back to v2.
# 4. v3 over v2: v3 active, v2 previous, v1 removed.
# 5. An interrupted reception (receiver killed halfway) is kept for resume,
#    then aborted: nothing of it stays, v3 stays active and intact.
# 6. A small tmpfs store: v1 fits; v2 is refused before receiving with
#    "not enough space: need N MiB, have M MiB"; v1 stays active and intact.
# 7. BTRFS (when a loop file can be made and mounted): v2 seeded from v1 shares its unchanged
#    chunks (filefrag flags them shared) and the file system grows by about
#    the chunks received, not by the image.
#
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root, or tools missing).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
TOOL=$MLBUILD/tests/integration/imgstore-tool
[ -x "$TOOL" ] || { echo "SKIP: $TOOL not built"; exit 77; }
mc_init_lab agent_store
lab_require_cmds mkfs.ext4 debugfs e2fsck filefrag
MOUNTS=()
# shellcheck disable=SC2317 # run by lab.sh's exit trap
_as_umount() {
  local m
  for m in "${MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
}
lab_on_exit _as_umount

IMG=7
V1=$MC_W/v1.ext4 V2=$MC_W/v2.ext4 V3=$MC_W/v3.ext4
lab_up 1 1gbit 0 || die "lab_up"

# ---- the images
note "making v1 (ext4 from a directory), v2 and v3 (files changed with debugfs)"
SRC=$MC_W/root
mkdir -p "$SRC/bin" "$SRC/etc" "$SRC/data" || die "mkdir"
for i in $(seq -w 1 16); do head -c $((384 * 1024)) /dev/urandom >"$SRC/bin/prog$i"; done
for i in $(seq 1 40); do seq 1 $((i * 300)) >"$SRC/etc/conf$i.txt"; done
head -c $((8 * 1048576)) /dev/urandom >"$SRC/data/base.img"
echo "welcome to v1" >"$SRC/etc/motd"
{ truncate -s 32M "$V1" && mkfs.ext4 -q -F -b 4096 -d "$SRC" -U 5f0c1e2a-0b1c-4d5e-8f90-123456789abc \
  -E root_owner=0:0 "$V1" >/dev/null 2>&1; } || die "mkfs.ext4 -d"
head -c $((384 * 1024)) /dev/urandom >"$MC_W/prog03.new"
head -c $((1024 * 1024)) /dev/urandom >"$MC_W/extra.bin"
echo "welcome to v2" >"$MC_W/motd.new"
cp "$V1" "$V2" || die "cp"
debugfs -w -f - "$V2" >/dev/null 2>&1 <<EOF || die "debugfs v2"
cd /bin
rm prog03
write $MC_W/prog03.new prog03
rm prog09
cd /etc
rm motd
write $MC_W/motd.new motd
cd /data
write $MC_W/extra.bin extra.bin
EOF
head -c $((384 * 1024)) /dev/urandom >"$MC_W/prog05.new"
cp "$V2" "$V3" || die "cp"
debugfs -w -f - "$V3" >/dev/null 2>&1 <<EOF || die "debugfs v3"
cd /bin
rm prog05
write $MC_W/prog05.new prog05
EOF
for v in "$V1" "$V2" "$V3"; do
  check "$(basename "$v") passes e2fsck" e2fsck -fn "$v" >/dev/null 2>&1
done
check "v2 holds the new prog03" \
  test "$(debugfs -R 'cat /bin/prog03' "$V2" 2>/dev/null | sha256sum)" = "$(sha256sum <"$MC_W/prog03.new")"
SIZE=$(stat -c %s "$V1")
for n in 1 2 3; do
  v=$MC_W/v$n.ext4
  mc_prepare "$v" "$MC_W/store$n"
  declare "SHA$n=$(mc_sha "$v")"
done
NZ2=$("$MLCAST" info --json "$MC_W/store2" | python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["chunks"] - m["zero_chunks"])')
note "images of $SIZE bytes; v2 has $NZ2 non-zero chunks"

# ---- helpers
# tool TAG DIR ARGS... — runs imgstore-tool on c1; its JSON goes to $MC_W/TAG.tool.
tool() {
  local tag=$1
  shift
  lab_exec c1 "$TOOL" "$@" >"$MC_W/$tag.tool" 2>"$MC_W/$tag.tool.err"
}
# tj TAG EXPR — EXPR (Python, r = the tool's JSON) on TAG's output.
tj() { mc_json "$MC_W/$1.tool" "$2"; }
# receive TAG STORE N OUTPUT [SEED] — sends vN from srv, receives it on c1 into OUTPUT.
receive() {
  local tag=$1 n=$3 out=$4 seed=${5:-}
  local args=(--timeout 30 --resume -o "$out")
  [ -n "$seed" ] && args+=(--seed "$seed")
  mc_rx_start "$tag" c1 "${args[@]}"
  mc_send_start "snd-$tag" srv "$MC_W/store$n" -n 1 -w 30
  mc_wait "snd-$tag" 60
  mc_wait "$tag" 30
  mc_send_ok "snd-$tag" 1
  mc_rx_ok "$tag" "$MC_W/v$n.ext4" "$out"
  note "$(mc_rx_line "$tag")"
}
# state STORE ACTIVE PREVIOUS — list shows them, and the active image is vACTIVE byte for byte.
state() {
  local st=$1 a=$2 p=$3 path
  tool list "$st" list || { bad "list failed: $(cat "$MC_W/list.tool")"; return 1; }
  check "active v$a, previous ${p/#0/none}" \
    test "$(tj list "' '.join('%d/%d' % (i['active'], i['previous']) for i in r['images'] if i['id'] == $IMG)")" = "$a/$p"
  tool active "$st" active "$IMG" || { bad "active failed"; return 1; }
  path=$(tj active "r['path']")
  check "the active disk.raw is v$a" test "$(sha256sum <"$path" | cut -d' ' -f1)" = "$(mc_sha "$MC_W/v$a.ext4")"
}
# versions STORE — prints the image's versions as "id:state" words.
versions() {
  tool list "$1" list
  tj list "' '.join('%d:%s' % (v['id'], v['state']) for i in r['images'] if i['id'] == $IMG for v in i['versions'])"
}

S=$MC_W/c1store

# ---- 1. v1
note "1. v1 into an empty store"
tool p1 "$S" prepare "$IMG" 1 "$SHA1" "$SIZE" || die "prepare v1: $(cat "$MC_W/p1.tool")"
OUT=$(tj p1 "r['output']")
check "prepare v1: no seed" test "$(tj p1 "r['seed']")" = null
check "prepare v1: the output is in incoming/" test "${OUT#"$S"/incoming/}" != "$OUT"
receive r1 "$S" 1 "$OUT"
tool c1 "$S" commit "$IMG" 1 "$SHA1" "$SIZE" || bad "commit v1: $(cat "$MC_W/c1.tool")"
state "$S" 1 0

# ---- 2. v2 seeded from v1
note "2. v2 with v1 as the seed"
tool p2 "$S" prepare "$IMG" 2 "$SHA2" "$SIZE" || die "prepare v2: $(cat "$MC_W/p2.tool")"
OUT=$(tj p2 "r['output']")
SEED=$(tj p2 "r['seed']")
check "prepare v2: the seed is v1's disk.raw ($SEED)" test "$SEED" = "$S/images/$IMG/v1/disk.raw"
receive r2 "$S" 2 "$OUT" "$SEED"
SEEDED=$(mc_field r2 seeded_chunks)
DONE=$(mc_field r2 chunks_done)
check "v2: chunks seeded from v1 ($SEEDED) and only the rest received ($DONE of $NZ2)" \
  test "${SEEDED:-0}" -gt 0 -a "$((SEEDED + DONE))" = "$NZ2" -a "$DONE" -lt "$((NZ2 / 2))"
tool c2 "$S" commit "$IMG" 2 "$SHA2" "$SIZE" || bad "commit v2: $(cat "$MC_W/c2.tool")"
state "$S" 2 1
check "v1 is still there for rollback" test -f "$S/images/$IMG/v1/disk.raw"

# ---- 3. rollback
note "3. rollback, twice"
tool rb1 "$S" rollback "$IMG" || bad "rollback: $(cat "$MC_W/rb1.tool")"
state "$S" 1 2
tool rb2 "$S" rollback "$IMG" || bad "rollback back: $(cat "$MC_W/rb2.tool")"
state "$S" 2 1

# ---- 4. v3: the oldest goes
note "4. v3 over v2"
tool p3 "$S" prepare "$IMG" 3 "$SHA3" "$SIZE" || die "prepare v3"
receive r3 "$S" 3 "$(tj p3 "r['output']")" "$(tj p3 "r['seed']")"
tool c3 "$S" commit "$IMG" 3 "$SHA3" "$SIZE" || bad "commit v3: $(cat "$MC_W/c3.tool")"
state "$S" 3 2
check "v1 was removed" test ! -e "$S/images/$IMG/v1"
check "versions: 2 previous, 3 active ($(versions "$S"))" test "$(versions "$S")" = "2:previous 3:active"

# ---- 5. an interrupted reception, kept, then aborted
note "5. a reception killed halfway, kept for resume, then aborted"
tool p9 "$S" prepare "$IMG" 9 "$SHA1" "$SIZE" || die "prepare v9"
OUT=$(tj p9 "r['output']")
mc_rx_start r9 c1 --timeout 30 --resume -o "$OUT"
mc_send_start snd-r9 srv "$MC_W/store1" -n 1 -w 30 -r 20M --rx-timeout 2
if mc_wait_progress r9 60 "p.get('chunks_done', 0) >= 3"; then
  mc_kill r9 KILL
  check "a partial file and journal are left" test -e "$OUT.mlcast-part" -a -e "$OUT.mlcast-jrnl"
  check "the store keeps it for resume ($(versions "$S"))" test "$(versions "$S")" = "2:previous 3:active 9:receiving"
  tool p9b "$S" prepare "$IMG" 9 "$SHA1" "$SIZE"
  check "prepare again: resumed" test "$(tj p9b "r['resumed']")" = true
  tool a9 "$S" abort "$IMG" 9 "$SHA1" "$SIZE" || bad "abort: $(cat "$MC_W/a9.tool")"
  check "after abort nothing of it is left" test -z "$(ls -A "$S/incoming")"
else
  bad "r9 made no progress"
  mc_show r9
fi
mc_kill snd-r9
state "$S" 3 2
tool vf "$S" verify "$IMG" 3 || bad "verify v3: $(cat "$MC_W/vf.tool")"

# ---- 6. a store too small for two versions
note "6. a 40 MiB tmpfs store: v1 fits, v2 is refused for space"
SM=$MC_W/small
{ mkdir -p "$SM" && mount -t tmpfs -o size=40m none "$SM"; } || die "cannot mount a tmpfs"
MOUNTS+=("$SM")
tool sp1 "$SM/store" prepare "$IMG" 1 "$SHA1" "$SIZE" || die "prepare v1 on tmpfs: $(cat "$MC_W/sp1.tool")"
receive rs1 "$SM/store" 1 "$(tj sp1 "r['output']")"
tool sc1 "$SM/store" commit "$IMG" 1 "$SHA1" "$SIZE" || bad "commit v1 on tmpfs: $(cat "$MC_W/sc1.tool")"
state "$SM/store" 1 0
if tool sp2 "$SM/store" prepare "$IMG" 2 "$SHA2" "$SIZE"; then
  bad "v2 was accepted on the small store: $(cat "$MC_W/sp2.tool")"
else
  MSG=$(tj sp2 "r['error']")
  note "refused: $MSG"
  check "refused with ENOSPC" test "$(tj sp2 "r['errno']")" = ENOSPC
  check "the reason says the space: $MSG" \
    python3 -c 'import re,sys; sys.exit(not re.fullmatch(r"not enough space: need 32 MiB, have \d+ MiB", sys.argv[1]))' "$MSG"
fi
check "nothing was left in incoming/" test -z "$(ls -A "$SM/store/incoming")"
state "$SM/store" 1 0
tool svf "$SM/store" verify "$IMG" 1 || bad "verify v1 on tmpfs: $(cat "$MC_W/svf.tool")"

# ---- 7. BTRFS: reflinked seeding
BT=$MC_W/btrfs
if ! command -v mkfs.btrfs >/dev/null 2>&1; then
  note "7. skipped: mkfs.btrfs is not installed (btrfs-progs)"
elif ! { mkdir -p "$BT" && truncate -s 192M "$MC_W/btrfs.img" &&
  mkfs.btrfs -q "$MC_W/btrfs.img" >/dev/null 2>&1 && mount -o loop "$MC_W/btrfs.img" "$BT"; }; then
  note "7. skipped: cannot make and mount a BTRFS loop file"
else
  MOUNTS+=("$BT")
  note "7. a BTRFS store: v2's unchanged chunks are shared with v1"
  tool bp1 "$BT/store" prepare "$IMG" 1 "$SHA1" "$SIZE" || die "prepare v1 on btrfs"
  receive rb1 "$BT/store" 1 "$(tj bp1 "r['output']")"
  tool bc1 "$BT/store" commit "$IMG" 1 "$SHA1" "$SIZE" || bad "commit v1 on btrfs: $(cat "$MC_W/bc1.tool")"
  sync
  USED1=$(df -B1 --output=used "$BT" | tail -1)
  tool bp2 "$BT/store" prepare "$IMG" 2 "$SHA2" "$SIZE" || die "prepare v2 on btrfs"
  check "prepare v2 on btrfs: reflink" test "$(tj bp2 "r['reflink']")" = true
  receive rb2 "$BT/store" 2 "$(tj bp2 "r['output']")" "$(tj bp2 "r['seed']")"
  tool bc2 "$BT/store" commit "$IMG" 2 "$SHA2" "$SIZE" || bad "commit v2 on btrfs: $(cat "$MC_W/bc2.tool")"
  state "$BT/store" 2 1
  sync
  USED2=$(df -B1 --output=used "$BT" | tail -1)
  BSEEDED=$(mc_field rb2 seeded_chunks)
  BDONE=$(mc_field rb2 chunks_done)
  # filefrag -v: extent lines "N: logical.. : physical.. : LENGTH: ... flags", 4 KiB blocks.
  SHARED=$(filefrag -v -b4096 "$BT/store/images/$IMG/v2/disk.raw" |
    awk -F: '/shared/ { n += $4 } END { print n * 4096 + 0 }')
  GREW=$((USED2 - USED1))
  note "btrfs: $BSEEDED chunks seeded, $BDONE received; $((SHARED / 1048576)) MiB of v2 shared; the file system grew by $((GREW / 1048576)) MiB"
  check "v2 shares its seeded chunks with v1 ($SHARED bytes shared, $BSEEDED chunks seeded)" \
    test "$SHARED" = "$((BSEEDED * 1048576))"
  check "the file system grew by the received chunks, not the image ($GREW bytes, $BDONE chunks received)" \
    test "$GREW" -lt "$(((BDONE + 4) * 1048576))"
fi

for t in r1 r2 r3 rs1; do check "$t did not crash" mc_no_crash "$t"; done
mc_finish
