#!/usr/bin/env bash
# Installs the Debian 12 packages that building, testing, fuzzing and
# benchmarking Microlinux need -- only those that are missing, so that a
# machine that has them all needs neither root nor the network.
#
#   scripts/install-deps.sh           install what is missing (root)
#   scripts/install-deps.sh --check   only list what is missing; exit 1 if any
#
# The list lives here and only here; the Makefile's "deps" target runs this.
set -euo pipefail

PACKAGES=(
	# Build: compiler and libc headers, meson + ninja, pkg-config to find libraries.
	build-essential meson ninja-build pkg-config
	# Fuzzing and formatting: clang, its libFuzzer/sanitizer runtimes, clang-format.
	clang libclang-rt-14-dev clang-format
	# Libraries (headers): OpenSSL (SHA-256, HMAC), zstd (chunk compression),
	# ISA-L (Reed-Solomon FEC), inih (config files), cmocka (unit tests).
	libssl-dev libzstd-dev libisal-dev libinih-dev libcmocka-dev
	# mlserver and mlctl: HTTP server (libmicrohttpd), JSON (jansson), the
	# store (SQLite; libpq for the PostgreSQL driver), password hashes
	# (libargon2), HTTP client (libcurl), sqlite3 CLI for tests.
	libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libargon2-dev
	libcurl4-openssl-dev sqlite3
	# Image tools for tests and the demo: zstd CLI, qemu-img (qcow2 images).
	zstd qemu-utils
	# Networking for integration tests and benchmarks: network namespaces,
	# veth and netem (iproute2), packet loss and filtering (nftables).
	iproute2 nftables
	# Peers mlcast is benchmarked against: udp-sender/udp-receiver, UFTP,
	# and iperf for the raw link rate.
	udpcast uftp iperf
	# HTTP load generator for the API latency benchmark.
	wrk
	# Shell tools the scripts rely on: arithmetic, /usr/bin/time, ps/pkill,
	# losetup/mount, mkfs.ext4, building a test root file system, helpers.
	bc time procps util-linux e2fsprogs debootstrap python3
	# The agent's image store on BTRFS (reflinks): mkfs.btrfs for the loop-mounted
	# file systems of test_imgstore and tests/integration/agent_store.sh.
	btrfs-progs
	# SMTP server for the mail integration test (tests/integration/mail.py runs
	# it with /usr/bin/python3, since a python3 earlier on PATH may lack it).
	python3-aiosmtpd
	# JSON on the command line: the end-to-end deployment tests and the demo
	# read the API's answers with jq.
	jq curl
	# Real TFTP clients for tests/integration/tftp.sh (curl also speaks TFTP):
	# tftp-hpa's tftp and atftp (blksize, tsize and windowsize options).
	tftp-hpa atftp
	# Network boot: iPXE's loaders (mlserver serves undionly.kpxe and ipxe.efi
	# over TFTP), QEMU to PXE-boot test machines (tests/integration/netboot_e2e.sh),
	# OVMF (UEFI firmware) for the one that boots as a UEFI PC, dnsmasq as
	# their DHCP server.
	ipxe qemu-system-x86 ovmf dnsmasq-base
	# The TFTP server bench/tftp-vs-tftpd-hpa compares with: it runs
	# /usr/sbin/in.tftpd -L itself on its own port. Debian's package also
	# installs a system service on port 69 (seen stopped on the test machine,
	# `ss -ulpn`); the tests and the benchmark use other ports or namespaces.
	tftpd-hpa
	# ml-install (install to disk) and tests/integration/install_disk.sh:
	# partitioning (sfdisk from fdisk), FAT for the ESP (dosfstools; mtools
	# reads it back, fusefat writes it on kernels without FAT), GRUB for BIOS
	# and UEFI. (btrfs-progs, e2fsprogs and curl are listed above.)
	fdisk dosfstools mtools fusefat grub-pc-bin grub-efi-amd64-bin
	# The client OS (image/build.sh, docs/image.md): busybox-static and
	# Debian's kernel (fetched with apt-get download, unpacked with dpkg-deb)
	# for the minimal initramfs, QEMU to boot it in tests/integration/
	# image_minimal.sh; debootstrap and squashfs-tools for the full profile.
	busybox-static qemu-system-x86 squashfs-tools
)

check_only=0
case "${1:-}" in
--check) check_only=1 ;;
"") ;;
-h | --help)
	sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "install-deps: unknown option '$1' (try --help)" >&2
	exit 2
	;;
esac

# A package counts as present when dpkg says it is installed ("install ok
# installed", or "hold ok installed"); "not-installed" and "config-files"
# (removed, not purged) do not.
missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ "$status" != *" installed" ]]; then
		missing+=("$pkg")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all ${#PACKAGES[@]} packages are installed"
	exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$check_only" -eq 1 ]; then
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: installing packages needs root; run as root:" >&2
	echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Wait for a dpkg lock held by another apt run rather than failing at once.
apt_opts=(-y -q -o DPkg::Lock::Timeout=600)
echo "install-deps: apt-get update"
apt-get "${apt_opts[@]}" update
echo "install-deps: apt-get install ${missing[*]}"
apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"

# Say so clearly if apt "succeeded" but a package is still absent.
still=()
for pkg in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == *" installed" ]] || still+=("$pkg")
done
if [ "${#still[@]}" -gt 0 ]; then
	echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "install-deps: installed ${#missing[@]} package(s)"
