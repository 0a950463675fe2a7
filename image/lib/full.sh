# shellcheck shell=bash
# The full profile of image/build.sh (sourced): a Debian 12 root file system
# made with debootstrap, booted by live-boot with `boot=live fetch=URL`
# (the squashfs is copied into RAM). Needs root (debootstrap, chroot,
# mounts). Everything mounted here is unmounted by path on exit, also on
# failure.

SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# Security updates; empty to leave them out (a mirror without them).
SECURITY_MIRROR=${SECURITY_MIRROR-http://deb.debian.org/debian-security}

# What the client OS holds, by purpose (docs/image.md). mlagent's own
# runtime libraries are added from its ldd (full_agent_packages).
FULL_PACKAGES=(
	# Kernel and network boot: live-boot's initramfs fetches the squashfs
	# (fetch=) with busybox's wget; systemd as init.
	linux-image-amd64 live-boot live-boot-initramfs-tools busybox initramfs-tools
	systemd-sysv systemd-resolved systemd-timesyncd dbus libpam-systemd
	# zstd: initramfs-tools compresses the initrd with it (else gzip).
	zstd
	# Networking and shell tools.
	iproute2 iputils-ping procps less kmod udev ca-certificates curl
	# X, input, the Openbox session (xmessage is in x11-utils).
	xserver-xorg-core xserver-xorg-video-all xserver-xorg-input-libinput xserver-xorg-legacy
	xinit x11-xserver-utils x11-utils openbox xterm fonts-dejavu-core
	# Local VMs, remote desktops (RDP, SPICE).
	qemu-system-x86 qemu-utils freerdp2-x11 virt-viewer
	# Disks: the MLDATA data partition, installing to disk (GRUB for BIOS and UEFI).
	btrfs-progs e2fsprogs dosfstools fdisk gdisk grub-pc-bin grub-efi-amd64-bin
)

# full_mount SRC DEST [OPTS...] — mounts; full_umount_all undoes it.
FULL_MOUNTS=()
full_mount() {
	local src=$1 dest=$2
	shift 2
	mkdir -p "$dest"
	mount "$@" "$src" "$dest"
	FULL_MOUNTS=("$dest" "${FULL_MOUNTS[@]}")
}

# full_umount_all — unmounts what full_mount mounted, by path, last first.
full_umount_all() {
	local m
	for m in "${FULL_MOUNTS[@]}"; do
		umount "$m" 2>/dev/null || umount -l "$m" || log "cannot unmount $m"
	done
	FULL_MOUNTS=()
}

# full_mounted_under DIR — true when anything is mounted at or below DIR.
full_mounted_under() { awk -v t="$1" 'index($2, t) == 1 { f = 1 } END { exit !f }' /proc/mounts; }

# full_rm_target — removes the tree, never through a mount (/dev is bound in).
full_rm_target() {
	if full_mounted_under "$target"; then
		log "not removing $target: something is still mounted there"
		return 1
	fi
	rm -rf --one-file-system "$target"
}

full_chroot() { LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive chroot "$target" "$@"; }

# full_agent_packages — the host packages of mlagent's shared libraries
# (the same Debian release, so the names hold in the image).
full_agent_packages() {
	ldd "$mlagent" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' >"$out/.ldd"
	# shellcheck disable=SC2046
	host_packages $(cat "$out/.ldd") | awk '{ print $1 }'
	rm -f "$out/.ldd"
}

build_full() {
	[ "$(id -u)" = 0 ] || die "the full profile needs root (debootstrap, chroot, mounts)"
	need_cmd debootstrap debootstrap
	need_cmd mksquashfs squashfs-tools
	if ldd "$mlagent" | grep -q 'libasan\|libubsan'; then
		die "$mlagent is built with sanitizers; give a normal build (--mlagent)"
	fi

	target="$out/.rootfs"
	# A previous run stopped hard may have left mounts: undo them first.
	local m
	for m in $(awk -v t="$target" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		umount "$m" || umount -l "$m"
	done
	full_rm_target || die "$target is still in use"
	mkdir -p "$target" "$cache/debootstrap" "$cache/apt-archives"
	on_exit full_rm_target
	on_exit full_umount_all

	log "debootstrap $SUITE from $MIRROR (downloads kept in $cache)"
	debootstrap --variant=minbase --cache-dir="$cache/debootstrap" --include=apt-utils,ca-certificates \
		"$SUITE" "$target" "$MIRROR" >"$out/debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -5 "$out/debootstrap.log"; tail -5 "$target/debootstrap/debootstrap.log" 2>/dev/null)"

	full_mount proc "$target/proc" -t proc
	full_mount sysfs "$target/sys" -t sysfs
	full_mount /dev "$target/dev" --bind
	full_mount devpts "$target/dev/pts" -t devpts -o gid=5,mode=620
	full_mount tmpfs "$target/run" -t tmpfs
	# The .debs outlive the build in the cache.
	full_mount "$cache/apt-archives" "$target/var/cache/apt/archives" --bind

	# No daemon starts inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$target/usr/sbin/policy-rc.d"
	chmod 0755 "$target/usr/sbin/policy-rc.d"
	{
		echo "deb $MIRROR $SUITE main"
		echo "deb $MIRROR $SUITE-updates main"
		[ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
	} >"$target/etc/apt/sources.list"
	cp /etc/resolv.conf "$target/etc/resolv.conf" 2>/dev/null || true
	# The image needs no manuals, documentation or translations (the
	# copyright files stay): less to download into every machine's RAM.
	cat >"$target/etc/dpkg/dpkg.cfg.d/01-microlinux-nodoc" <<-EOM
		path-exclude /usr/share/doc/*
		path-include /usr/share/doc/*/copyright
		path-exclude /usr/share/man/*
		path-exclude /usr/share/info/*
		path-exclude /usr/share/locale/*
		path-include /usr/share/locale/locale.alias
	EOM

	local agent_pkgs
	agent_pkgs=$(full_agent_packages | tr '\n' ' ')
	log "mlagent needs: $agent_pkgs"
	log "apt-get install (${#FULL_PACKAGES[@]} packages and their dependencies)"
	# Updates first: installing systemd-resolved turns /etc/resolv.conf into
	# a link to its stub, which does not answer inside the chroot.
	local apt_opts=(-q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
	{
		full_chroot apt-get -q update &&
			full_chroot apt-get "${apt_opts[@]}" dist-upgrade &&
			full_chroot apt-get "${apt_opts[@]}" install --no-install-recommends "${FULL_PACKAGES[@]}" $agent_pkgs
	} >"$out/apt.log" 2>&1 || die "apt-get in the image failed: $(tail -15 "$out/apt.log")"

	log "configuring the image"
	# Our files first (the skeleton of the ml user's home among them).
	tar -C "$IMAGE_SRC/full/root" --owner=0 --group=0 -cf - . | tar -C "$target" -xf -
	# Files of other parts of the project (image/files/: ml-install, ...).
	local units=()
	if [ -d "$IMAGE_SRC/files" ]; then
		tar -C "$IMAGE_SRC/files" --owner=0 --group=0 -cf - . | tar -C "$target" -xf -
		mapfile -t units < <(cd "$IMAGE_SRC/files" && find . -name '*.service' -path '*/systemd/system/*' -printf '%f\n' | sort -u)
	fi
	install -m 0755 "$mlagent" "$target/usr/sbin/mlagent"
	strip --strip-unneeded "$target/usr/sbin/mlagent" 2>/dev/null || true
	install -m 0644 "$REPO/packaging/mlagent.service" "$target/etc/systemd/system/mlagent.service"

	full_chroot useradd -m -s /bin/bash -c 'Microlinux kiosk' -G video,audio,input,render,kvm,plugdev ml 2>/dev/null ||
		full_chroot useradd -m -s /bin/bash -c 'Microlinux kiosk' -G video,audio,input,kvm ml
	full_chroot passwd -l root >/dev/null
	full_chroot passwd -l ml >/dev/null
	# Any console user may start X (the autologin on tty1 is one).
	printf 'allowed_users=console\nneeds_root_rights=auto\n' >"$target/etc/X11/Xwrapper.config"

	# Machine name from DHCP: no static host name. A fresh machine id at
	# every boot (the image runs on many machines).
	rm -f "$target/etc/hostname"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$target/etc/hosts"
	: >"$target/etc/machine-id"
	rm -f "$target/var/lib/dbus/machine-id"
	echo 'LANG=C.UTF-8' >"$target/etc/default/locale"
	ln -sf /run/systemd/resolve/stub-resolv.conf "$target/etc/resolv.conf"

	full_chroot systemctl enable systemd-networkd systemd-resolved ml-data.service mlagent.service >/dev/null 2>&1
	local u
	for u in "${units[@]}"; do
		log "enabling $u (image/files)"
		full_chroot systemctl enable "$u"
	done
	full_chroot systemctl set-default graphical.target >/dev/null 2>&1 || true

	log "initramfs with live-boot"
	full_chroot update-initramfs -u -k all >>"$out/apt.log" 2>&1 || die "update-initramfs failed: $(tail -5 "$out/apt.log")"

	local kver
	kver=$(basename "$(ls "$target"/boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')
	cp "$target/boot/vmlinuz-$kver" "$out/vmlinuz"
	cp "$target/boot/initrd.img-$kver" "$out/initrd.img"
	{
		full_chroot dpkg-query -W -f='${Package} ${Version}\n'
		echo "mlagent $("$mlagent" --version | awk '{ print $2 }')"
	} >"$out/packages.txt"

	# Clean up: caches, logs, what apt and the chroot left (not with
	# apt-get clean: it would empty the bind-mounted download cache).
	rm -f "$target/usr/sbin/policy-rc.d" "$target"/var/cache/apt/*.bin
	# What debootstrap installed before the path-excludes were there.
	find "$target/usr/share/doc" -type f ! -name copyright -delete
	rm -rf "$target"/usr/share/man/* "$target"/usr/share/info/*
	find "$target/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
	rm -rf "$target"/var/lib/apt/lists/* "$target"/tmp/* "$target"/var/tmp/* "$target"/var/log/*.log \
		"$target"/var/log/apt/* "$target"/var/cache/debconf/*-old "$target"/var/cache/ldconfig/* \
		"$target"/etc/ssh/ssh_host_* "$target"/root/.bash_history
	full_umount_all
	full_mounted_under "$target" && die "something is still mounted under $target"
	rm -rf "$target"/var/cache/apt/archives/*.deb "$target"/var/cache/apt/archives/partial/*

	log "mksquashfs (xz) of $(du -sh "$target" | cut -f1)"
	rm -f "$out/filesystem.squashfs"
	mksquashfs "$target" "$out/filesystem.squashfs" -comp xz -Xbcj x86 -b 1M -noappend -no-progress \
		-wildcards -e 'boot/vmlinuz-*' 'boot/initrd.img-*' 'var/cache/apt/archives/*.deb' \
		>"$out/mksquashfs.log" 2>&1 || die "mksquashfs failed: $(tail -5 "$out/mksquashfs.log")"

	cat >"$out/build-info" <<-EOM
		profile=full
		date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		suite=$SUITE
		mirror=$MIRROR
		kernel=$kver
		kernel_package=$(grep "^linux-image-$kver " "$out/packages.txt")
		mlagent=$("$mlagent" --version | awk '{ print $2 }') ($mlagent)
		packages=$(grep -vc '^mlagent ' "$out/packages.txt")
		rootfs_bytes=$(du -sb "$target" | cut -f1)
		vmlinuz_bytes=$(size_of "$out/vmlinuz")
		initrd_bytes=$(size_of "$out/initrd.img")
		squashfs_bytes=$(size_of "$out/filesystem.squashfs")
	EOM
}
