#!/usr/bin/env bash
# mlcast receive --manifest-sha256 (mc_recv_opts.manifest_sha256): two
# senders of different images share one group and port (S1 from c3, S2 from
# srv); receiver A asks for S2's manifest and C for S1's, and each must end
# with its own image whichever ANNOUNCE it hears first. Receiver B asks for
# a manifest nobody sends: it must time out, saying that it heard (and
# ignored) a session with another manifest.
# Env: MLBUILD, MLSRC. Exit 0 pass, 1 fail, 77 skip (not root).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/integration/mcast_lib.sh
source "$here/mcast_lib.sh"
mc_init_lab mcast_manifest

lab_up 3 1gbit 0 || die "lab_up"
for s in 1 2; do
  mc_image "$MC_W/img$s" 16 || die "cannot make image $s"
  mc_prepare "$MC_W/img$s" "$MC_W/store$s"
done
M1=$(sha256sum "$MC_W/store1/manifest" | cut -d' ' -f1)
M2=$(sha256sum "$MC_W/store2/manifest" | cut -d' ' -f1)
NONE=$(printf 'no such manifest' | sha256sum | cut -d' ' -f1)

mc_rx_start A c1 --timeout 60 --manifest-sha256 "$M2"
mc_rx_start C c2 --timeout 60 --manifest-sha256 "$M1"
mc_rx_start B c1 --timeout 4 --manifest-sha256 "$NONE"
mc_send_start snd1 c3 "$MC_W/store1" -r 300M -n 1 -w 60
mc_send_start snd2 srv "$MC_W/store2" -r 300M -n 1 -w 60
for t in snd1 snd2 A C B; do mc_wait "$t" 120; done

mc_send_ok snd1 1
mc_send_ok snd2 1
mc_rx_ok A "$MC_W/img2"
mc_rx_ok C "$MC_W/img1"
check "B failed (exit ${MC_RC[B]:-?})" test "${MC_RC[B]:-0}" = 1
reason=$(mc_json "$MC_W/B.json" 'r.get("reason", "")')
check "B's reason names the ignored session ($reason)" \
  grep -q "another manifest was heard and ignored" <<<"$reason"
bad_m=$("$MLCAST" receive --manifest-sha256 abc -o /dev/null 2>&1)
check "a bad --manifest-sha256 is refused ($bad_m)" grep -q "64 hex digits" <<<"$bad_m"
mc_finish
