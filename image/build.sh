#!/usr/bin/env bash
# Builds the Microlinux client OS that workstations network-boot
# (docs/image.md).
#
#   image/build.sh --profile full|minimal --out DIR [--mlagent PATH] [--cache DIR]
#
# Writes into DIR: vmlinuz, initrd.img, filesystem.squashfs (full only),
# packages.txt (name and version of every package in the image) and
# build-info (profile, date, sizes, kernel version).
#
#   --profile minimal  Debian's kernel and an initramfs with busybox and
#                      mlagent: DHCP, then mlagent (tests; no root needed)
#   --profile full     a debootstrapped Debian 12 for live-boot fetch=,
#                      with X, Openbox, QEMU/KVM, FreeRDP, virt-viewer (root)
#   --mlagent PATH     the mlagent binary (default: build/src/agent/mlagent)
#   --cache DIR        downloads kept between builds (default: DIR/../cache)
#
# Environment: MIRROR (full: the Debian mirror, default
# http://deb.debian.org/debian), SUITE (default bookworm).
set -euo pipefail

IMAGE_SRC=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$IMAGE_SRC")

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

profile="" out="" mlagent="$REPO/build/src/agent/mlagent" cache=""
while [ $# -gt 0 ]; do
	case $1 in
	--profile) profile=${2:-}; shift 2 || break ;;
	--out) out=${2:-}; shift 2 || break ;;
	--mlagent) mlagent=${2:-}; shift 2 || break ;;
	--cache) cache=${2:-}; shift 2 || break ;;
	-h | --help) usage; exit 0 ;;
	*) echo "image/build.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
	esac
done
case $profile in
full | minimal) ;;
"") echo "image/build.sh: --profile full|minimal is required" >&2; exit 2 ;;
*) echo "image/build.sh: unknown profile '$profile' (full or minimal)" >&2; exit 2 ;;
esac
[ -n "$out" ] || { echo "image/build.sh: --out DIR is required" >&2; exit 2; }

# shellcheck source=image/lib/common.sh
. "$IMAGE_SRC/lib/common.sh"

[ -x "$mlagent" ] || die "mlagent is not built: $mlagent (run 'make build', or give --mlagent PATH)"
mkdir -p "$out"
out=$(cd "$out" && pwd)
mlagent=$(cd "$(dirname "$mlagent")" && pwd)/$(basename "$mlagent")
[ -n "$cache" ] || cache=$(dirname "$out")/cache
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# A failed build must not leave the files of an earlier one looking current.
rm -f "$out/vmlinuz" "$out/initrd.img" "$out/filesystem.squashfs" "$out/packages.txt" "$out/build-info"

start=$(date +%s)
case $profile in
minimal)
	# shellcheck source=image/lib/minimal.sh
	. "$IMAGE_SRC/lib/minimal.sh"
	build_minimal
	;;
full)
	# shellcheck source=image/lib/full.sh
	. "$IMAGE_SRC/lib/full.sh"
	build_full
	;;
esac
secs=$(($(date +%s) - start))
echo "build_seconds=$secs" >>"$out/build-info"
log "built the $profile profile in ${secs} s into $out:"
(cd "$out" && ls -l --time-style=+ -- *) | sed 's/^/  /'
