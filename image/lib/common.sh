# shellcheck shell=bash
# Helpers shared by both profiles of image/build.sh (sourced, not run).

log() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

# Cleanup actions run in reverse order on exit, whether the build succeeded
# or not (unmounts before removals).
CLEANUPS=()
on_exit() { CLEANUPS=("$1" "${CLEANUPS[@]}"); }
run_cleanups() {
	local c
	for c in "${CLEANUPS[@]}"; do eval "$c" || true; done
	CLEANUPS=()
}
trap run_cleanups EXIT
# set -e stops at the first failing command; say which one.
set -E
trap 'echo "image: error: \"$BASH_COMMAND\" failed (exit $?) at ${BASH_SOURCE[0]##*/}:$LINENO" >&2' ERR
trap 'exit 130' INT TERM

# need_cmd CMD PACKAGE — stops with the Debian package to install.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 || die "'$1' is missing (Debian package: $2; scripts/install-deps.sh installs it)"
}

# size_of FILE — its size in bytes.
size_of() { stat -c %s "$1"; }

# human BYTES — "12.3 MiB".
human() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# kernel_fetch — the Debian kernel that linux-image-amd64 depends on, as a
# .deb in the cache (downloaded once with apt-get download, which checks it
# against the archive's signed index) and extracted next to it, with a
# modules.dep made by busybox depmod. Sets KPKG, KPKGVER, KVER (uname -r),
# KROOT (the extracted tree).
kernel_fetch() {
	local deb="" want=""
	KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
	if [ -n "$KPKG" ]; then
		KPKGVER=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null | awk '$1 == "Version:" { print $2; exit }')
		want="$cache/${KPKG}_${KPKGVER//:/%3a}_amd64.deb"
		if [ -s "$want" ]; then
			deb=$want
		else
			log "downloading $KPKG $KPKGVER (once; kept in $cache)"
			(cd "$cache" && apt-get download -q "$KPKG=$KPKGVER" >/dev/null 2>"$cache/apt-download.log") ||
				die "apt-get download $KPKG failed: $(tail -3 "$cache/apt-download.log")"
			[ -s "$want" ] || die "apt-get download did not write $want"
			deb=$want
		fi
	else
		# No package lists (no apt-get update): the newest cached kernel will do.
		deb=$(find "$cache" -maxdepth 1 -name 'linux-image-6.*-amd64_*_amd64.deb' | sort -V | tail -1)
		[ -n "$deb" ] || die "apt knows no linux-image-amd64 and the cache $cache holds no kernel: run 'apt-get update'"
		log "apt knows no linux-image-amd64; using the cached $(basename "$deb")"
	fi
	KPKG=$(dpkg-deb -f "$deb" Package)
	KPKGVER=$(dpkg-deb -f "$deb" Version)
	# Older kernels of the cache go once a newer one is there.
	find "$cache" -maxdepth 1 -name 'linux-image-*.deb' ! -name "$(basename "$deb")" -delete
	find "$cache" -maxdepth 1 -name 'kernel-*' ! -name "kernel-${KPKG}_${KPKGVER//:/%3a}" -exec rm -rf {} +

	KROOT="$cache/kernel-${KPKG}_${KPKGVER//:/%3a}"
	if [ ! -e "$KROOT/.complete" ]; then
		log "extracting $(basename "$deb")"
		rm -rf "$KROOT"
		mkdir -p "$KROOT"
		dpkg-deb -x "$deb" "$KROOT"
		KVER=$(ls "$KROOT/lib/modules")
		busybox depmod -b "$KROOT" "$KVER"
		touch "$KROOT/.complete"
	fi
	KVER=$(ls "$KROOT/lib/modules")
	[ -f "$KROOT/boot/vmlinuz-$KVER" ] || die "$deb holds no boot/vmlinuz-$KVER"
}

# host_packages PATH... — "name version" of the host packages owning PATHs
# (with usrmerge a file is known to dpkg as /lib/... or /usr/lib/...).
host_packages() {
	local p cands=()
	for p in "$@"; do
		cands+=("$p" "$(readlink -f "$p")")
		case $p in
		/usr/*) cands+=("${p#/usr}") ;;
		*) cands+=("/usr$p") ;;
		esac
	done
	{ dpkg-query -S "${cands[@]}" 2>/dev/null || true; } | sed 's/:.*//; s/, /\n/g' | sort -u |
		xargs -r dpkg-query -W -f='${Package} ${Version}\n' | sort -u
}
