# shellcheck shell=bash
# The minimal profile of image/build.sh (sourced): Debian's kernel and an
# initramfs holding busybox, a few kernel modules, mlagent and its shared
# libraries. No root needed: the archive's owners are set by cpio -R 0:0 and
# device nodes come from devtmpfs at boot.

# Modules loaded at boot (minimal/init), with their dependencies. Network
# boot in QEMU (virtio, e1000) and on common PCs (Intel, Realtek); disks
# (ata_piix: Intel SATA in IDE mode, and QEMU's "pc" machine, whose default
# disk is IDE: an installed system boots from it, docs/install.md) and
# file systems for the data partition (LABEL=MLDATA). btrfs and ext4 need a
# crc32c implementation, which modules.dep does not list (a softdep).
MIN_MODULES_NET="failover net_failover virtio_pci virtio_net e1000 e1000e igb r8169"
MIN_MODULES_DISK="virtio_blk virtio_scsi ahci ata_piix sd_mod nvme"
MIN_MODULES_FS="crc32c_generic crc32c_intel btrfs ext4 vfat nls_cp437 nls_iso8859_1"

# min_modules ROOT — copies the wanted modules and everything they depend on
# into ROOT/lib/modules/KVER and runs depmod there; modules built into the
# kernel are skipped (they need no file).
min_modules() {
	local root=$1 kdir="$KROOT/lib/modules/$KVER" line path name m d
	local -A dep_of=() builtin=() picked=()
	while IFS= read -r line; do
		path=${line%%:*}
		name=${path##*/}; name=${name%%.ko*}; name=${name//-/_}
		dep_of[$name]="$path:${line#*:}"
	done <"$kdir/modules.dep"
	while IFS= read -r path; do
		name=${path##*/}; name=${name%%.ko*}; name=${name//-/_}
		builtin[$name]=1
	done <"$kdir/modules.builtin"

	local queue=($MIN_MODULES_NET $MIN_MODULES_DISK $MIN_MODULES_FS)
	while [ ${#queue[@]} -gt 0 ]; do
		m=${queue[0]}; queue=("${queue[@]:1}")
		[ -n "${picked[$m]:-}" ] && continue
		if [ -n "${builtin[$m]:-}" ]; then
			picked[$m]=builtin
			continue
		fi
		[ -n "${dep_of[$m]:-}" ] || die "kernel $KVER has no module $m"
		line=${dep_of[$m]}
		picked[$m]=${line%%:*}
		for d in ${line#*:}; do
			d=${d##*/}; d=${d%%.ko*}; queue+=("${d//-/_}")
		done
	done

	local nmod=0 nbuiltin=0
	for m in "${!picked[@]}"; do
		path=${picked[$m]}
		if [ "$path" = builtin ]; then
			nbuiltin=$((nbuiltin + 1))
			continue
		fi
		mkdir -p "$root/lib/modules/$KVER/$(dirname "$path")"
		cp "$kdir/$path" "$root/lib/modules/$KVER/$path"
		nmod=$((nmod + 1))
	done
	cp "$kdir/modules.builtin" "$kdir/modules.order" "$root/lib/modules/$KVER/"
	busybox depmod -b "$root" "$KVER"
	log "kernel $KVER: $nmod modules copied, $nbuiltin built in"
}

# min_binary ROOT FILE DEST — FILE at DEST in ROOT with every shared library
# ldd lists (and the dynamic loader) at the same path.
min_binary() {
	local root=$1 file=$2 dest=$3 lib
	install -D -m 0755 "$file" "$root$dest"
	if command -v strip >/dev/null; then strip --strip-unneeded "$root$dest"; fi
	ldd "$file" >"$root.ldd" || die "ldd $file failed"
	if grep -q 'not found' "$root.ldd"; then
		die "$file needs libraries this machine lacks: $(grep 'not found' "$root.ldd" | tr -s ' \t\n' ' ')"
	fi
	# "libx.so => /path (addr)" and the loader's "/lib64/ld-linux-x86-64.so.2 (addr)".
	awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' "$root.ldd" | sort -u >"$root.libs"
	rm -f "$root.ldd"
	while IFS= read -r lib; do
		[ -e "$root$lib" ] && continue
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done <"$root.libs"
}

build_minimal() {
	need_cmd busybox busybox-static
	need_cmd apt-get apt
	need_cmd dpkg-deb dpkg
	need_cmd zstd zstd
	local bb
	bb=$(command -v busybox)
	if ldd "$bb" >/dev/null 2>&1; then
		die "$bb is linked dynamically; the initramfs needs busybox-static"
	fi

	kernel_fetch

	local root
	root=$(mktemp -d "$out/.initramfs.XXXXXX")
	on_exit "rm -rf '$root' '$root.libs'"
	log "initramfs in $root"

	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/lib/mlagent,lib/modules}
	chmod 1777 "$root/tmp"
	chmod 0700 "$root/root" "$root/var/lib/mlagent"
	cp "$bb" "$root/bin/busybox"
	local a
	for a in $("$bb" --list-full); do
		[ -e "$root/$a" ] || [ -L "$root/$a" ] || ln -s /bin/busybox "$root/$a"
	done

	min_binary "$root" "$mlagent" /usr/sbin/mlagent
	min_modules "$root"

	install -m 0755 "$IMAGE_SRC/minimal/init" "$root/init"
	install -m 0755 "$IMAGE_SRC/minimal/udhcpc.script" "$root/etc/udhcpc.script"
	local agentver
	agentver=$("$mlagent" --version 2>/dev/null | awk '{ print $2 }')
	echo "mlagent ${agentver:-?}, built $(date -u +%Y-%m-%d)" >"$root/etc/microlinux-version"
	cat >"$root/etc/microlinux-modules" <<-EOM
		MODULES_NET="$MIN_MODULES_NET"
		MODULES_DISK="$MIN_MODULES_DISK"
		MODULES_FS="$MIN_MODULES_FS"
	EOM
	# What glibc and libcurl read: users for getpwuid, name resolution
	# through /etc/hosts then DNS (glibc 2.36 has both built in).
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\ntty:x:5:\n' >"$root/etc/group"
	printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n' >"$root/etc/nsswitch.conf"
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	cat >"$root/etc/os-release" <<-EOM
		NAME="Microlinux minimal"
		ID=microlinux
		ID_LIKE=debian
		PRETTY_NAME="Microlinux minimal client (Debian kernel $KVER)"
	EOM

	log "packing initrd.img (newc cpio, zstd)"
	rm -f "$out/filesystem.squashfs"
	(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
		busybox cpio -o -H newc -0 -R 0:0 2>/dev/null) |
		zstd -q -10 -T0 >"$out/initrd.img.tmp"
	mv "$out/initrd.img.tmp" "$out/initrd.img"
	cp "$KROOT/boot/vmlinuz-$KVER" "$out/vmlinuz"

	{
		echo "$KPKG $KPKGVER"
		host_packages "$bb" $(cat "$root.libs")
		echo "mlagent ${agentver:-?}"
	} >"$out/packages.txt"

	cat >"$out/build-info" <<-EOM
		profile=minimal
		date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		kernel=$KVER
		kernel_package=$KPKG $KPKGVER
		mlagent=${agentver:-?} ($mlagent)
		modules=$(find "$root/lib/modules" -name '*.ko*' | wc -l)
		vmlinuz_bytes=$(size_of "$out/vmlinuz")
		initrd_bytes=$(size_of "$out/initrd.img")
		initramfs_unpacked_bytes=$(du -sb "$root" | cut -f1)
	EOM
}
