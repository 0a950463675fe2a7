#!/usr/bin/env bash
# Network boot end to end (docs/netboot.md), in network namespaces:
#
#   srv   mlserver with its TFTP server (port 69) and boot listener, and
#         dnsmasq for DHCP only (no DNS), which points iPXE clients at
#         boot.ipxe over TFTP and plain PXE ROMs at undionly.kpxe;
#   sw    the switch; two QEMU machines (TCG) with a tap port each.
#
# pc1 is a BIOS PC that PXE-boots with the iPXE ROM of its virtio NIC: DHCP,
# then boot.ipxe from mlserver's TFTP (the first stage, built in). pc2 is a
# UEFI PC (OVMF) whose NIC has no option ROM: the firmware's own PXE client
# fetches snponly.efi (built in, from Debian's ipxe) over TFTP, and iPXE then
# fetches boot.ipxe. Both then get their own script over HTTP, chosen by
# MAC, then the minimal client OS (kernel and initramfs over HTTP; pc2's
# kernel starts through its EFI stub). Its mlagent enrolls with the token
# the script carries, and both machines show online through the API. The
# time from QEMU's start to each agent online is printed (NETBOOT: lines).
#
# Then a boot mode: pc2 is set to "local"; started again, it fetches its
# script, which leaves iPXE with an error, so that the firmware goes on with
# its next boot entry (there is no disk here), as the console, the server's
# log and the machine's record show.
#
# Last, the site's DHCP server knows nothing of network boot (dnsmasq in
# another namespace, addresses only) and dnsmasq in proxy-DHCP mode beside
# it gives the boot information (docs/netboot.md's example): pc1 (BIOS) and
# pc2 (UEFI, back to the default mode) boot again, up to their agents.
#
# The minimal profile is built with image/build.sh (a Debian kernel
# package is downloaded once into IMAGE_CACHE, default build-image/cache)
# unless NETBOOT_PROFILE names a directory that holds one. Needs root, network namespaces, QEMU,
# iPXE's ROMs and dnsmasq (exit 77 = skipped otherwise).
set -euo pipefail
: "${MLSRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${MLBUILD:=$MLSRC/build}"
# shellcheck source=tests/integration/lab.sh
source "$MLSRC/tests/integration/lab.sh"
# shellcheck source=tests/integration/deploylib.sh
source "$MLSRC/tests/integration/deploylib.sh"
dl_require
lab_require_cmds qemu-system-x86_64 dnsmasq
[ -e /dev/net/tun ] || { echo "SKIP: needs /dev/net/tun for QEMU's tap ports"; exit 77; }
[ -e /usr/lib/ipxe/qemu/efi-virtio.rom ] || [ -e /usr/lib/ipxe/qemu/pxe-virtio.rom ] ||
  { echo "SKIP: needs iPXE's QEMU ROMs (Debian: ipxe-qemu)"; exit 77; }
OVMF=/usr/share/OVMF
[ -e "$OVMF/OVMF_CODE_4M.fd" ] && [ -e "$OVMF/OVMF_VARS_4M.fd" ] ||
  { echo "SKIP: needs OVMF, the UEFI firmware for QEMU (Debian: ovmf)"; exit 77; }
# A sanitizer build's mlagent would drag libasan into the initramfs and run
# slowly under TCG; like image_minimal, the boot test belongs to the normal
# tree (the server's boot code runs under the sanitizers in api_boot).
if [ -z "${NETBOOT_PROFILE:-}" ] && ldd "$MLBUILD/src/agent/mlagent" 2>/dev/null | grep -q 'libasan\|libubsan'; then
  echo "SKIP: mlagent is built with sanitizers (the netboot test runs in the normal build tree)"
  exit 77
fi
DL_NAME=netboot_e2e
lab_trap
dl_init
lab_up 1 0 0

# ---- the client OS ----
PROFILE=$DL_W/bootroot/minimal
mkdir -p "$PROFILE"
if [ -n "${NETBOOT_PROFILE:-}" ]; then
  cp "$NETBOOT_PROFILE/vmlinuz" "$NETBOOT_PROFILE/initrd.img" "$PROFILE/"
else
  dl_log "building the minimal profile (image/build.sh)"
  bash "$MLSRC/image/build.sh" --profile minimal --out "$PROFILE" --mlagent "$MLAGENT" \
    --cache "${IMAGE_CACHE:-$MLSRC/build-image/cache}" >"$DL_W/image.log" 2>&1 || { tail -20 "$DL_W/image.log"; echo "FAIL: image/build.sh"; exit 1; }
fi
check "the minimal profile has a kernel and an initramfs" test -s "$PROFILE/vmlinuz" -a -s "$PROFILE/initrd.img"

# ---- mlserver: API, TFTP, boot listener; an enrollment token for the scripts ----
mkdir -p "$DL_W/tftp"
dl_server "[server]
log_level = debug
[tftp]
enabled = yes
listen = $DL_ADDR:69
root = $DL_W/tftp
[boot]
enabled = yes
listen = $DL_ADDR:8070
root = $DL_W/bootroot
profile = minimal
cmdline = console=ttyS0"
dl_enroll_token
printf '%s\n' "$DL_ETOKEN" >"$DL_W/boot-token"
kill -TERM "$DL_SERVER_PID"
for _ in $(seq 100); do kill -0 "$DL_SERVER_PID" 2>/dev/null || break; sleep 0.1; done
printf 'enroll_token_file = %s\n' "$DL_W/boot-token" >>"$DL_W/mlserver.conf"
dl_server_start

MAC1=52:54:00:99:00:01 MAC2=52:54:00:99:00:02
dl_api POST /machines "{\"name\": \"pc1\", \"macs\": [\"$MAC1\"]}" >/dev/null
check "pc1 registered" eq "$(dl_status)" 201
dl_api POST /machines "{\"name\": \"pc2\", \"macs\": [\"$MAC2\"]}" >/dev/null
check "pc2 registered" eq "$(dl_status)" 201

# ---- dnsmasq: DHCP only ----
cat >"$DL_W/dnsmasq.conf" <<EOF
port=0
interface=eth0
bind-interfaces
dhcp-range=$LAB_NET.100,$LAB_NET.150,255.255.255.0,1h
dhcp-leasefile=$DL_W/dnsmasq.leases
dhcp-userclass=set:ipxe,iPXE
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-boot=tag:ipxe,boot.ipxe,,$DL_ADDR
dhcp-boot=tag:!ipxe,tag:efi64,snponly.efi,,$DL_ADDR
dhcp-boot=tag:!ipxe,tag:!efi64,undionly.kpxe,,$DL_ADDR
log-dhcp
EOF
dl_spawn dnsmasq srv dnsmasq --keep-in-foreground --no-resolv --no-hosts --log-facility=- \
  --conf-file="$DL_W/dnsmasq.conf" --pid-file="$DL_W/dnsmasq.pidfile"
sleep 0.5
check "dnsmasq runs" kill -0 "$DL_PID"

# ---- two QEMU machines on the switch ----
SW=$(lab_ns sw)
qemu_start() { # NAME MAC TAP bios|uefi
  local fw=() nic="virtio-net-pci,netdev=n0,mac=$2"
  if [ "$4" = uefi ]; then
    # UEFI firmware with its variables in a copy; no option ROM on the NIC,
    # so the firmware's own PXE client boots, as on most UEFI PCs.
    cp "$OVMF/OVMF_VARS_4M.fd" "$DL_W/$1.vars"
    fw=(-machine "q35,accel=tcg"
      -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF/OVMF_CODE_4M.fd"
      -drive "if=pflash,format=raw,unit=1,file=$DL_W/$1.vars")
    nic+=",romfile="
  else
    fw=(-machine "pc,accel=tcg")
  fi
  ip netns exec "$SW" ip tuntap add dev "$3" mode tap
  ip netns exec "$SW" ip link set "$3" master br0 up
  dl_spawn "qemu-$1" sw qemu-system-x86_64 "${fw[@]}" -m 512 -smp 1 \
    -display none -monitor none -serial "file:$DL_W/$1.serial" -no-reboot \
    -netdev "tap,id=n0,ifname=$3,script=no,downscript=no" -device "$nic" -boot n
}
qemu_stop() { # NAME TAP
  local pid
  pid=$(cat "$DL_W/qemu-$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ip netns exec "$SW" ip link del "$2" 2>/dev/null || true
  rm -f "$DL_W/$1.serial"
}
T0=$SECONDS
qemu_start pc1 "$MAC1" "nbt1-$$" bios
qemu_start pc2 "$MAC2" "nbt2-$$" uefi

# Each machine's time from QEMU's start to its agent online.
declare -A ONLINE=([pc1]="" [pc2]="")
end=$((SECONDS + ${NETBOOT_WAIT:-420}))
while [ -z "${ONLINE[pc1]}" ] || [ -z "${ONLINE[pc2]}" ]; do
  [ $SECONDS -lt $end ] || break
  agents=$(dl_api GET /agents)
  for m in pc1 pc2; do
    [ -n "${ONLINE[$m]}" ] && continue
    if jq -e --arg n "$m" '.items[] | select(.machine == $n and .online)' <<<"$agents" >/dev/null; then
      ONLINE[$m]=$((SECONDS - T0))
    fi
  done
  sleep 1
done
for m in pc1 pc2; do
  check "$m network-booted and its agent is online" test -n "${ONLINE[$m]:-}"
  echo "NETBOOT: $m: QEMU start to agent online: ${ONLINE[$m]:-never} s"
done

s1=$(cat "$DL_W/pc1.serial" 2>/dev/null || true)
log=$(cat "$DL_W/server.log")
check "dnsmasq offered boot.ipxe" has "$(cat "$DL_W/dnsmasq.log")" "boot.ipxe"
check "TFTP served boot.ipxe (the built-in first stage)" has "$log" "tftp: .*boot.ipxe sent"
check "pc1's script chosen by MAC" has "$log" "pc1 ($MAC1) boots microlinux"
check "pc2's script chosen by MAC" has "$log" "pc2 ($MAC2) boots microlinux"
check "pc1's console: iPXE, then the client OS" has "$s1" "microlinux: "
check "pc1's console: the agent started" has "$s1" "mlagent"
s2=$(cat "$DL_W/pc2.serial" 2>/dev/null || true)
check "dnsmasq offered snponly.efi to the UEFI firmware" has "$(cat "$DL_W/dnsmasq.log")" "snponly.efi"
check "pc2 (UEFI): its firmware's PXE client started" has "$s2" "Start PXE over IPv4"
check "pc2 (UEFI): TFTP served snponly.efi (built in)" has "$log" "tftp: .*snponly.efi sent"
check "pc2 (UEFI): iPXE fetched its script" has "$s2" "/boot/52-54-00-99-00-02... ok"
check "pc2 (UEFI): the kernel started through its EFI stub" has "$s2" "efi: EFI v"
check "pc2's console: the agent started" has "$s2" "microlinux: mlagent started"
id1=$(dl_machine_id pc1)
b1=$(dl_api GET "/machines/$id1/boot")
check "pc1's last boot recorded" eq "$(jq -r .last_boot_mode <<<"$b1")" microlinux
inv=$(dl_api GET "/agents" | jq -c '.items[] | select(.machine == "pc1")')
check "pc1 enrolled as the registered machine (by MAC)" has "$inv" '"machine":"pc1"'

# ---- a boot mode: pc2 boots its local disk after a reset ----
id2=$(dl_machine_id pc2)
dl_api PUT "/machines/$id2/boot" '{"mode": "local"}' >/dev/null
check "pc2 set to local" eq "$(dl_status)" 200
qemu_stop pc2 "nbt2-$$"
qemu_start pc2 "$MAC2" "nbt3-$$" uefi
lab_wait_file "$DL_W/server.log" 180 "pc2 \($MAC2\) boots local" || true
check "pc2's script is local now" has "$(cat "$DL_W/server.log")" "pc2 ($MAC2) boots local"
r2=$(dl_api GET "/machines/$id2/boot")
check "pc2's record: last boot local (machine setting)" \
  eq "$(jq -r '.last_boot_mode + " " + .why' <<<"$r2")" "local machine setting"
# UEFI: iPXE ends with an error, and the firmware goes on with its next boot
# entry (a success would stop in its boot menu).
left_ipxe() { sed -n '/boots its local disk/,$p' "$DL_W/pc2.serial" | grep -qa "BdsDxe: failed to start Boot"; }
lab_wait 60 left_ipxe || true
check "pc2 (UEFI): iPXE left with an error, to the firmware's next boot entry" left_ipxe

# ---- dnsmasq as proxy-DHCP beside a site DHCP server that knows nothing of PXE ----
kill -TERM "$(cat "$DL_W/dnsmasq.pid")" 2>/dev/null || true
lab_add_host dhcp "$LAB_NET.2"
cat >"$DL_W/site-dhcp.conf" <<EOF
port=0
interface=eth0
bind-interfaces
dhcp-range=$LAB_NET.160,$LAB_NET.199,255.255.255.0,1h
dhcp-leasefile=$DL_W/site-dhcp.leases
EOF
dl_spawn site-dhcp dhcp dnsmasq --keep-in-foreground --no-resolv --no-hosts --log-facility=- \
  --conf-file="$DL_W/site-dhcp.conf" --pid-file="$DL_W/site-dhcp.pidfile"
cat >"$DL_W/proxy.conf" <<EOF
port=0
interface=eth0
bind-interfaces
dhcp-range=$LAB_NET.0,proxy
dhcp-userclass=set:ipxe,iPXE
pxe-service=tag:!ipxe,x86PC,"Microlinux",undionly.kpxe,$DL_ADDR
pxe-service=tag:!ipxe,x86-64_EFI,"Microlinux",snponly.efi,$DL_ADDR
pxe-service=tag:ipxe,x86PC,"Microlinux",boot.ipxe,$DL_ADDR
pxe-service=tag:ipxe,x86-64_EFI,"Microlinux",boot.ipxe,$DL_ADDR
log-dhcp
EOF
dl_spawn proxy srv dnsmasq --keep-in-foreground --no-resolv --no-hosts --log-facility=- \
  --conf-file="$DL_W/proxy.conf" --pid-file="$DL_W/proxy.pidfile"
dl_api PUT "/machines/$id2/boot" '{"mode": null}' >/dev/null
check "pc2 back to the default mode" eq "$(dl_status)" 200
qemu_stop pc1 "nbt1-$$"
qemu_stop pc2 "nbt3-$$"
efi_sent=$(grep -c "tftp: .*snponly.efi sent" "$DL_W/server.log")
T1=$SECONDS
qemu_start pc1 "$MAC1" "nbt4-$$" bios
qemu_start pc2 "$MAC2" "nbt5-$$" uefi
for m in pc1 pc2; do
  lab_wait_file "$DL_W/$m.serial" "${NETBOOT_WAIT:-420}" "microlinux: mlagent started" || true
  echo "NETBOOT: $m through proxy-DHCP: QEMU start to its agent started: $((SECONDS - T1)) s"
  check "proxy-DHCP: $m booted again, up to its agent" has "$(cat "$DL_W/$m.serial")" "microlinux: mlagent started"
done
leases=$(cat "$DL_W/site-dhcp.leases")
check "proxy-DHCP: the site's DHCP server gave pc1 its address" has "$leases" "$MAC1"
check "proxy-DHCP: the site's DHCP server gave pc2 its address" has "$leases" "$MAC2"
check "proxy-DHCP: dnsmasq answered as a proxy" has "$(cat "$DL_W/proxy.log")" "proxy"
check "proxy-DHCP: pc2's firmware fetched snponly.efi again" \
  eq "$(grep -c "tftp: .*snponly.efi sent" "$DL_W/server.log")" $((efi_sent + 1))
check "proxy-DHCP: pc1 fetched its script a second time" \
  eq "$(grep -c "pc1 ($MAC1) boots microlinux" "$DL_W/server.log")" 2
check "proxy-DHCP: pc2 fetched its microlinux script a second time" \
  eq "$(grep -c "pc2 ($MAC2) boots microlinux" "$DL_W/server.log")" 2

dl_summary
