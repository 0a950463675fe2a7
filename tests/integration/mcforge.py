#!/usr/bin/env python3
"""mcforge — a hostile host for the mlcast integration tests (mcast_forged.sh).

Runs inside a lab namespace only (the test starts it with ip netns exec).
It joins the session's multicast group, waits for the real sender's ANNOUNCE
to learn the session id, the sender's address and the image geometry (from
the MANIFEST fragments sent in the clear, else assuming raw chunks), then
sends hostile packets into the group — and to the sender's feedback port —
until SIGTERM/SIGINT or --duration, and prints a JSON report of what it sent
on stdout.

Modes (--mode):
  plain  garbage, truncated packets, bad magic/version/type, zero and huge
         lengths (incl. IP-fragmented 8 KB and 60 KB datagrams), malformed
         bodies, packets with a wrong session, DATA/ANNOUNCE/MANIFEST/POLL/
         REPAIR_ADV/END with the right session from the attacker's own
         address, garbage feedback to the sender, and — with --spoof — DATA
         with the right session and garbage payloads for real chunk/block/sym
         numbers, from the sender's own IP address (raw socket, IP_HDRINCL).
  keyed  for a session authenticated with a key the attacker lacks: the
         sender's ANNOUNCE/END/POLL/REPAIR_ADV with the right session, with no
         tag or a random one, from the sender's own address (raw socket),
         plus spoofed garbage DATA and some garbage from its own address.

Python standard library only. Wire format: src/mcast/proto.h.
"""
import argparse
import json
import os
import random
import signal
import socket
import struct
import sys
import time

MAGIC = 0x4D43
VERSION = 1
SYM = 1440
MAX_K = 128
T_DATA, T_ANNOUNCE, T_MANIFEST, T_POLL, T_ADV, T_END = 1, 2, 3, 4, 5, 6
T_HELLO, T_NEED, T_NACK, T_STATUS = 16, 17, 18, 19
MF_HEADER_LEN, MF_ENTRY_LEN = 64, 45

stop = False


def on_signal(_sig, _frm):
    global stop
    stop = True


def hdr(ptype, session, seq=0, magic=MAGIC, version=VERSION):
    return struct.pack(">HBBII", magic, version, ptype, session & 0xFFFFFFFF, seq & 0xFFFFFFFF)


def data_pkt(session, seq, chunk, block, sym, payload, flags=0):
    return hdr(T_DATA, session, seq) + struct.pack(
        ">IHBBI", chunk & 0xFFFFFFFF, block & 0xFFFF, sym & 0xFF, flags, int(time.time() * 1e6) & 0xFFFFFFFF
    ) + payload


def announce_body(a, **kw):
    f = dict(a)
    f.update(kw)
    return struct.pack(
        ">BBHHHIIQI",
        f["state"], f["flags"], f["sym_size"], f["report_ms"], f["nreceivers"],
        f["rate_kbps"], f["chunk_count"], f["image_size"], f["manifest_len"],
    ) + f["digest"]


def geom(stored_len):
    """(nsym, [(first, k) per block]) as mc_geom/mc_block compute them."""
    nsym = (stored_len + SYM - 1) // SYM
    nb = (nsym + MAX_K - 1) // MAX_K
    if nb == 0:
        return 0, []
    base, extra = divmod(nsym, nb)
    blocks = []
    for b in range(nb):
        k = base + (1 if b < extra else 0)
        first = b * base + (b if b < extra else extra)
        blocks.append((first, k))
    return nsym, blocks


def csum16(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Spoofer:
    """UDP datagrams with a forged IPv4 source, through a raw socket."""

    def __init__(self, src_ip):
        self.src = socket.inet_aton(src_ip)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
        # Not back to our own listening socket.
        self.s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)

    def send(self, sport, dst_ip, dport, payload):
        dst = socket.inet_aton(dst_ip)
        ulen = 8 + len(payload)
        pseudo = self.src + dst + struct.pack("!BBH", 0, 17, ulen)
        uh = struct.pack("!HHHH", sport, dport, ulen, 0)
        c = csum16(pseudo + uh + payload) or 0xFFFF
        uh = struct.pack("!HHHH", sport, dport, ulen, c)
        iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, random.randrange(1, 65535), 0, 1, 17, 0, self.src, dst)
        iph = iph[:10] + struct.pack("!H", csum16(iph)) + iph[12:]
        try:
            self.s.sendto(iph + uh + payload, (dst_ip, 0))
            return True
        except OSError:
            return False


class Attack:
    def __init__(self, args):
        self.a = args
        self.sent = {}
        self.errors = 0
        self.session = None
        self.sender = None  # (ip, port)
        self.ann = None
        self.mf = {}
        self.mf_total = None
        self.stored = None  # list of stored_len per chunk, from the manifest
        self.cursor = 0
        self.last_seq = 1
        self.data_seen = 0
        # Listening socket: the group, like a receiver.
        self.rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.rx.bind((args.group, args.port))
        mreq = socket.inet_aton(args.group) + socket.inet_aton("0.0.0.0")
        self.rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        self.rx.setblocking(False)
        # Our own-address socket, for the group and the sender's port.
        self.tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self.spoof = Spoofer(args.sender_ip) if (args.spoof or args.mode == "keyed") else None

    # ---- learning
    def sniff(self, budget=256):
        for _ in range(budget):
            try:
                buf, src = self.rx.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            if src[0] != self.a.sender_ip or len(buf) < 12:
                continue
            magic, ver, ptype, sess, seq = struct.unpack(">HBBII", buf[:12])
            if magic != MAGIC or ver != VERSION:
                continue
            if ptype == T_ANNOUNCE and len(buf) >= 72 and self.session is None:
                f = struct.unpack(">BBHHHIIQI", buf[12:40])
                keys = ("state", "flags", "sym_size", "report_ms", "nreceivers", "rate_kbps",
                        "chunk_count", "image_size", "manifest_len")
                self.ann = dict(zip(keys, f))
                self.ann["digest"] = buf[40:72]
                self.session = sess
                self.sender = src
            if sess != self.session:
                continue
            if seq:
                self.last_seq = max(self.last_seq, seq)
            if ptype == T_DATA and len(buf) >= 24:
                self.cursor = struct.unpack(">I", buf[12:16])[0]
                self.data_seen += 1
            elif ptype == T_MANIFEST and len(buf) > 20 and self.stored is None:
                total, off = struct.unpack(">II", buf[12:20])
                self.mf_total = total
                self.mf[off] = buf[20:]
                self.try_manifest()

    def try_manifest(self):
        got = sum(len(v) for v in self.mf.values())
        if self.mf_total is None or got < self.mf_total:
            return
        m = b"".join(self.mf[k] for k in sorted(self.mf))[: self.mf_total]
        try:
            count = struct.unpack(">I", m[20:24])[0]
            self.stored = []
            for i in range(count):
                e = MF_HEADER_LEN + i * MF_ENTRY_LEN
                flags, stored = struct.unpack(">BI", m[e:e + 5])
                self.stored.append(0 if flags & 1 else stored)
        except struct.error:
            self.stored = None

    def stored_len(self, c):
        if self.stored and c < len(self.stored):
            return self.stored[c]
        a = self.ann
        return min(a["image_size"] // max(a["chunk_count"], 1), 16 << 20)

    # ---- sending
    def count(self, what, ok=True):
        if ok:
            self.sent[what] = self.sent.get(what, 0) + 1
        else:
            self.errors += 1

    def to_group(self, what, pkt):
        try:
            self.tx.sendto(pkt, (self.a.group, self.a.port))
            self.count(what)
        except OSError:
            self.count(what, False)

    def to_sender(self, what, pkt):
        try:
            self.tx.sendto(pkt, self.sender)
            self.count(what)
        except OSError:
            self.count(what, False)

    def spoofed(self, what, pkt):
        self.count(what, self.spoof.send(self.sender[1], self.a.group, self.a.port, pkt))

    def real_sym(self):
        """A real (chunk, block, sym, len) a little ahead of the sender's sweep."""
        n = max(self.ann["chunk_count"], 1)
        c = (self.cursor + random.randrange(0, 4)) % n
        st = self.stored_len(c)
        nsym, blocks = geom(st)
        if not blocks:
            return None
        b = random.randrange(len(blocks))
        first, k = blocks[b]
        if random.random() < 0.85:
            s = random.randrange(k)
            idx = first + s
            ln = SYM if idx < nsym - 1 else st - (nsym - 1) * SYM
        else:  # a parity symbol
            s = random.randrange(k, min(255, k + 32))
            ln = SYM
        return c, b, s, ln

    def round_plain(self):
        S, a = self.session, self.ann
        seq = self.last_seq + random.randrange(1, 50)
        rnd = os.urandom
        # Random garbage, random lengths (0 .. MTU payload).
        self.to_group("garbage", rnd(random.randrange(0, 1473)))
        # Truncated: a header cut short, a DATA header cut short, a lone magic.
        good = data_pkt(S, seq, 0, 0, 0, rnd(64))
        self.to_group("truncated", good[: random.randrange(1, 12)])
        self.to_group("truncated", good[: random.randrange(12, 24)])
        self.to_group("truncated", announce_body(a)[:10])
        # Bad magic / version / type.
        self.to_group("bad_magic", hdr(T_DATA, S, seq, magic=0x434D) + rnd(40))
        self.to_group("bad_version", hdr(T_ANNOUNCE, S, seq, version=random.choice([0, 2, 255])) + announce_body(a))
        self.to_group("bad_type", hdr(random.choice([0, 7, 15, 20, 31, 36, 99, 255]), S, seq) + rnd(32))
        # Lengths: empty datagram, zero-length DATA payload, over-long DATA,
        # datagrams over the MTU (IP fragments), a 1-byte datagram.
        self.to_group("zero_len", b"")
        self.to_group("zero_len", hdr(T_DATA, S, seq) + struct.pack(">IHBBI", 0, 0, 0, 0, 0))
        self.to_group("huge_len", data_pkt(S, seq, 0, 0, 0, rnd(1460)))  # 1484 > 1472
        self.to_group("tiny", b"\x4d")
        if random.random() < 0.05:
            self.to_group("huge_len", data_pkt(S, seq, 1, 0, 0, rnd(8000)))
        if random.random() < 0.01:
            self.to_group("huge_len", data_pkt(S, seq, 2, 0, 0, rnd(60000)))
        # Malformed bodies with the right session.
        self.to_group("malformed", hdr(T_MANIFEST, S, seq) + struct.pack(">II", 0xFFFFFFFF, 0xFFFFFF00) + rnd(100))
        self.to_group("malformed", hdr(T_MANIFEST, S, seq) + struct.pack(">II", 0, 0))
        self.to_group("malformed", hdr(T_ADV, S, seq) + struct.pack(">HH", 1, 0xFFFF) + rnd(48))
        self.to_group("malformed", hdr(T_ADV, S, seq) + struct.pack(">HH", 1, 161) + rnd(161 * 8))
        self.to_group("malformed", hdr(T_ANNOUNCE, S, seq) + announce_body(a, sym_size=9000))
        self.to_group("malformed", hdr(T_ANNOUNCE, S, seq) + announce_body(a, chunk_count=0xFFFFFFFF, manifest_len=0xFFFFFFFF))
        self.to_group("malformed", hdr(T_DATA, S, seq) + struct.pack(">IHBBI", 0, 0, 255, 0, 0) + rnd(100))
        self.to_group("malformed", hdr(T_POLL, S, seq) + rnd(3))
        self.to_group("malformed", hdr(T_END, S, seq) + rnd(40))
        # Wrong session, otherwise well formed.
        W = (S + random.randrange(1, 1 << 31)) & 0xFFFFFFFF
        self.to_group("wrong_session", data_pkt(W, seq, self.cursor, 0, 0, rnd(SYM)))
        self.to_group("wrong_session", hdr(T_ANNOUNCE, W, seq) + announce_body(a))
        self.to_group("wrong_session", hdr(T_END, W, seq) + b"\x00")
        self.to_group("wrong_session", hdr(T_POLL, W, seq) + struct.pack(">IIHH", 0, self.cursor, 0, 1))
        # The right session from our own address.
        r = self.real_sym()
        if r:
            c, b, s, ln = r
            self.to_group("own_addr_data", data_pkt(S, seq, c, b, s, rnd(ln)))
        self.to_group("own_addr_announce", hdr(T_ANNOUNCE, S, seq) + announce_body(a))
        self.to_group("own_addr_announce", hdr(T_ANNOUNCE, S, seq) + announce_body(a, digest=rnd(32), state=3))
        self.to_group("own_addr_manifest", hdr(T_MANIFEST, S, seq) + struct.pack(">II", a["manifest_len"], 0) + rnd(min(SYM, a["manifest_len"])))
        self.to_group("own_addr_end", hdr(T_END, S, seq) + b"\x00")
        self.to_group("own_addr_poll", hdr(T_POLL, S, seq) + struct.pack(">IIHH", 7, a["chunk_count"], 50, 999))
        ents = b"".join(struct.pack(">IHH", random.randrange(a["chunk_count"]), 0xFFFF, 0) for _ in range(20))
        self.to_group("own_addr_adv", hdr(T_ADV, S, seq) + struct.pack(">HH", 1, 20) + ents)
        # Feedback to the sender: garbage, wrong session, unknown receivers.
        self.to_sender("to_sender_garbage", rnd(random.randrange(1, 1473)))
        self.to_sender("to_sender_wrong_session", hdr(T_NACK, W) + struct.pack(">IHH", 1, 0, 0))
        rid = random.randrange(1, 1 << 32)
        self.to_sender("to_sender_unknown_rid", hdr(T_NACK, S) + struct.pack(">IHH", rid, 1, 1) + struct.pack(">IHH", 0, 0xFFFF, 0))
        self.to_sender("to_sender_unknown_rid", hdr(T_STATUS, S) + struct.pack(">IBBHIIQII", rid, 5, 0, 0, 1, 1, 1, 0, 1))
        self.to_sender("to_sender_malformed", hdr(T_NEED, S) + struct.pack(">IIHB", rid, 0, 65535, 0) + rnd(10))
        self.to_sender("to_sender_malformed", hdr(T_HELLO, S) + struct.pack(">IBB", 0, 0, 0))
        self.to_sender("to_sender_malformed", hdr(T_HELLO, S) + struct.pack(">IBB", rid, 0, 200) + rnd(200))
        # Spoofed source: garbage symbols for real chunk/block/sym numbers.
        if self.spoof:
            for _ in range(self.a.spoof_burst):
                r = self.real_sym()
                if r:
                    c, b, s, ln = r
                    self.spoofed("spoofed_data", data_pkt(S, random.choice([0, seq]), c, b, s, rnd(ln)))

    def round_keyed(self):
        S, a = self.session, self.ann
        seq = self.last_seq + random.randrange(1, 50)
        rnd = os.urandom
        body = announce_body(a)
        # The sender's control packets from its own address, no key: no tag,
        # a random tag, and a tag computed with a wrong key.
        for what, pkt in (
            ("spoofed_announce", hdr(T_ANNOUNCE, S, seq) + body),
            ("spoofed_announce", hdr(T_ANNOUNCE, S, seq) + announce_body(a, digest=rnd(32)) + rnd(16)),
            ("spoofed_announce", hdr(T_ANNOUNCE, S, seq) + announce_body(a, state=3) + rnd(16)),
            ("spoofed_end", hdr(T_END, S, seq) + b"\x00"),
            ("spoofed_end", hdr(T_END, S, seq) + b"\x00" + rnd(16)),
            ("spoofed_poll", hdr(T_POLL, S, seq) + struct.pack(">IIHH", 9, a["chunk_count"], 0, 777) + rnd(16)),
            ("spoofed_poll", hdr(T_POLL, S, seq) + struct.pack(">IIHH", 9, a["chunk_count"], 0, 777)),
            ("spoofed_adv", hdr(T_ADV, S, seq) + struct.pack(">HH", 5, 1) + struct.pack(">IHH", 0, 0xFFFF, 0) + rnd(16)),
        ):
            self.spoofed(what, pkt)
        for _ in range(self.a.spoof_burst):
            r = self.real_sym()
            if r:
                c, b, s, ln = r
                self.spoofed("spoofed_data", data_pkt(S, random.choice([0, seq]), c, b, s, rnd(ln)))
        # And some from our own address.
        self.to_group("garbage", rnd(random.randrange(0, 1473)))
        self.to_group("own_addr_end", hdr(T_END, S, seq) + b"\x00" + rnd(16))
        self.to_sender("to_sender_untagged", hdr(T_HELLO, S) + struct.pack(">IIBB", 12345, 777, 0, 4) + b"evil")
        self.to_sender("to_sender_badtag", hdr(T_HELLO, S) + struct.pack(">IIBB", 12345, 777, 0, 4) + b"evil" + rnd(16))

    def run(self):
        t0 = time.monotonic()
        # Learn the session from the real sender's ANNOUNCE.
        while not stop and self.session is None:
            if time.monotonic() - t0 > self.a.learn_timeout:
                return "no ANNOUNCE from %s heard" % self.a.sender_ip
            self.sniff()
            time.sleep(0.002)
        learned = time.monotonic()
        # Let the receivers lock on first; keep learning the geometry meanwhile.
        while not stop and time.monotonic() - learned < self.a.delay:
            self.sniff()
            time.sleep(0.002)
        self.attack_t0 = time.monotonic()
        period = 1.0 / self.a.rounds
        nxt = time.monotonic()
        while not stop and time.monotonic() - t0 < self.a.duration:
            self.sniff()
            if self.a.mode == "plain":
                self.round_plain()
            else:
                self.round_keyed()
            nxt += period
            d = nxt - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                nxt = time.monotonic()
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", default="239.192.77.1")
    p.add_argument("--port", type=int, default=7770)
    p.add_argument("--sender-ip", default="10.99.0.1")
    p.add_argument("--mode", choices=("plain", "keyed"), default="plain")
    p.add_argument("--spoof", action="store_true", help="also spoof DATA from the sender's IP (raw socket)")
    p.add_argument("--spoof-burst", type=int, default=4, help="spoofed DATA per round")
    p.add_argument("--rounds", type=float, default=200.0, help="attack rounds per second")
    p.add_argument("--delay", type=float, default=0.3, help="seconds between learning the session and attacking")
    p.add_argument("--duration", type=float, default=60.0, help="give up after this many seconds")
    p.add_argument("--learn-timeout", type=float, default=30.0)
    args = p.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atk = Attack(args)
    err = atk.run()
    rep = {
        "ok": err is None,
        "session": "%08x" % atk.session if atk.session is not None else None,
        "sender": "%s:%d" % atk.sender if atk.sender else None,
        "chunks": atk.ann["chunk_count"] if atk.ann else None,
        "manifest_learned": atk.stored is not None,
        "data_seen": atk.data_seen,
        "attack_s": round(time.monotonic() - getattr(atk, "attack_t0", time.monotonic()), 2),
        "sent": atk.sent,
        "sent_total": sum(atk.sent.values()),
        "send_errors": atk.errors,
    }
    if err:
        rep["reason"] = err
    print(json.dumps(rep, sort_keys=True))
    return 0 if err is None else 1


if __name__ == "__main__":
    sys.exit(main())
