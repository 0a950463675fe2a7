# shellcheck shell=bash disable=SC2034
# bench/lib/disk.sh — a realistic disk image for the benchmarks, built once
# and cached: an ext4 file system holding a Debian 12 minbase system
# (debootstrap), optionally topped up with copies of this machine's /usr, the
# rest of it free. Without root, debootstrap or the Debian archive, a clearly
# labelled synthetic image holding part of this machine's /usr is made
# instead, and its label says so everywhere it shows.
#
#   source bench/lib/disk.sh
#   disk_make CACHE_DIR SIZE_MIB [DATA_MIB] || ...   # sets DISK_FILE DISK_LABEL DISK_SHORT
#
# DATA_MIB 0 (the default) means the Debian system alone. The stage directory
# of a build in progress is DISK_STAGE; a caller's exit trap should pass it
# to disk_remove_tree (lab.sh's lab_on_exit is used when it is defined).
# Environment: DEBIAN_MIRROR.

DISK_FILE="" DISK_LABEL="" DISK_SHORT="" DISK_STAGE=""

_disk_say() {
  if declare -F say >/dev/null; then say "$@"; else printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; fi
}
_disk_have() { command -v "$1" >/dev/null 2>&1; }

# "1GiB" / "512MiB" for file names; with a space for labels.
_disk_tag() { awk -v m="$1" -v sp="$2" 'BEGIN { if (m % 1024 == 0) printf "%d%sGiB", m / 1024, sp; else printf "%d%sMiB", m, sp }'; }

# Unmounts whatever a debootstrap left mounted under DIR, then removes DIR.
disk_remove_tree() {
  local d=$1
  [ -n "$d" ] && [ -d "$d" ] || return 0
  awk -v p="$d/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
    while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf --one-file-system "$d"
}

# Copies files of /usr (under 64 MiB each, in name order) into DIR/srv/usr-copy-N,
# round after round, until DIR holds MIB MiB.
_disk_fill() {
  local dir=$1 mib=$2 n=0 have
  while :; do
    have=$(du -sm "$dir" | awk '{ print $1 }')
    [ "$have" -ge "$mib" ] && return 0
    n=$((n + 1))
    [ "$n" -le 16 ] || return 0
    find /usr -xdev -type f -size -64M -printf '%s %P\n' 2>/dev/null | sort -k2 |
      awk -v left="$(((mib - have) * 1048576))" '{ s += $1; if (s > left) exit; sub(/^[0-9]+ /, ""); print }' >"$dir.list"
    mkdir -p "$dir/srv/usr-copy-$n"
    tar -C /usr -cf - --files-from "$dir.list" 2>/dev/null | tar -C "$dir/srv/usr-copy-$n" -xf - 2>/dev/null
    rm -f "$dir.list"
  done
}

disk_make() {
  local cache=$1 size=$2 data=${3:-0} tag stag img syn stage used what fill
  local mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
  tag=$(_disk_tag "$size" "") stag=$(_disk_tag "$size" " ")
  if [ "$data" -gt 0 ]; then
    img="$cache/debian12-minbase-usr${data}MiB-ext4-$tag.img" fill=$data
    syn="$cache/synthetic-usr${data}MiB-ext4-$tag.img"
    what="Debian 12 minbase (debootstrap) plus copies of /usr"
  else
    img="$cache/debian12-minbase-ext4-$tag.img" fill=$((size * 7 / 10 < 700 ? size * 7 / 10 : 700))
    syn="$cache/synthetic-usr-ext4-$tag.img"
    what="Debian 12 minbase (debootstrap)"
  fi
  mkdir -p "$cache" || return 1
  stage="$cache/rootfs.$$" DISK_STAGE=$stage
  if [ -s "$img" ] && [ -s "$img.label" ]; then
    DISK_FILE=$img DISK_LABEL=$(cat "$img.label") DISK_SHORT="disk $stag (Debian)"
    _disk_say "data set: $DISK_LABEL (cached)"
    return 0
  fi
  declare -F lab_on_exit >/dev/null && lab_on_exit "disk_remove_tree '$stage'"
  if [ "$(id -u)" = 0 ] && _disk_have debootstrap && _disk_have mkfs.ext4; then
    _disk_say "data set: building the disk image with debootstrap --variant=minbase bookworm (first run only, a few minutes)"
    if timeout 1200 debootstrap --variant=minbase bookworm "$stage" "$mirror" >"$cache/debootstrap.log" 2>&1; then
      disk_remove_tree "$stage/proc"; mkdir -p "$stage/proc"
      rm -rf "$stage/var/cache/apt/archives/"*.deb
      [ "$data" -gt 0 ] && { _disk_say "data set: topping it up to $data MiB with copies of /usr"; _disk_fill "$stage" "$data"; }
      used=$(du -sm "$stage" | awk '{ print $1 }')
      if mkfs.ext4 -q -F -L mlbench -d "$stage" "$img.tmp" "${size}M" >"$cache/mkfs.log" 2>&1; then
        mv "$img.tmp" "$img"
        echo "disk image: $what, ext4 $stag, ${used} MiB used" >"$img.label"
        disk_remove_tree "$stage"
        DISK_FILE=$img DISK_LABEL=$(cat "$img.label") DISK_SHORT="disk $stag (Debian)"
        _disk_say "data set: $DISK_LABEL"
        return 0
      fi
      _disk_say "mkfs.ext4 -d failed (see $cache/mkfs.log)"
    else
      _disk_say "debootstrap failed — no network to the Debian archive? (see $cache/debootstrap.log)"
    fi
    disk_remove_tree "$stage"; rm -f "$img.tmp"
  else
    _disk_say "debootstrap needs root, debootstrap and mkfs.ext4"
  fi
  # Fallback: a synthetic image, labelled as such everywhere it shows.
  if [ ! -s "$syn" ]; then
    _disk_have mkfs.ext4 || { _disk_say "no mkfs.ext4: no disk data set"; return 1; }
    _disk_say "data set: FALLBACK to a synthetic image (ext4 holding ~$fill MiB of this machine's /usr)"
    mkdir -p "$stage"
    _disk_fill "$stage" "$fill"
    used=$(du -sm "$stage" | awk '{ print $1 }')
    if ! mkfs.ext4 -q -F -L mlsynth -d "$stage" "$syn.tmp" "${size}M" >"$cache/mkfs.log" 2>&1; then
      disk_remove_tree "$stage"; rm -f "$syn.tmp"; _disk_say "mkfs.ext4 failed: no disk data set"; return 1
    fi
    mv "$syn.tmp" "$syn"
    echo "SYNTHETIC disk image (no Debian archive): ext4 $stag holding ${used} MiB of this machine's /usr" >"$syn.label"
    disk_remove_tree "$stage"
  fi
  DISK_FILE=$syn DISK_LABEL=$(cat "$syn.label") DISK_SHORT="disk $stag SYNTHETIC"
  _disk_say "data set: $DISK_LABEL"
}
