"""mlserver's mail against a real SMTP server: `mlserver --send-test-mail`
talks to aiosmtpd (Debian's python3-aiosmtpd, run by /usr/bin/python3, as
the python3 on PATH may lack it) whose handler saves each message raw, with
its envelope and whether TLS carried it.

Cases: a plain server (headers, RFC 2047 sender name, the report table, the
envelope with a refused recipient left out); STARTTLS required by the
server (starttls=off fails with its reply, try uses it, the certificate is
verified against ca_file, insecure skips that); starttls=require against a
server without STARTTLS; SMTPS; nothing listening; bad settings.
"""
import email
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apilib import MLSERVER, check, done  # noqa: E402

SYS_PYTHON = "/usr/bin/python3"

# The sink's handler is tests/integration/smtp_sink.py (SaveRaw): it saves each
# message raw (NAME.eml) with its envelope and TLS state (NAME.json), and
# refuses recipients nobody@... with 550.

# The example report of the test message: its table is fixed.
TABLE = [
    "Machine  State                Data    Time  Reason",
    "pc-104   failed            1.2 GiB   5m01s  disk full",
    "pc-103   missing                 -       -  no agent after 300 s",
    "pc-101   done             42.0 GiB  38m12s",
    "pc-102   already current       0 B      1s",
    "",
    "Total                     43.2 GiB  41m13s",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """aiosmtpd on a free port, saving into its own directory."""

    def __init__(self, tmp, name, *tls_args):
        self.dir = os.path.join(tmp, name)
        os.mkdir(self.dir)
        self.port = free_port()
        env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
        self.log = open(os.path.join(tmp, name + ".log"), "w")
        self.proc = subprocess.Popen(
            [SYS_PYTHON, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "smtp_sink.SaveRaw", *tls_args, self.dir],
            env=env, stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > end:
                    raise RuntimeError(f"the SMTP sink {name} did not start; see {self.log.name}")
                time.sleep(0.1)

    def messages(self):
        """[(raw bytes, envelope dict)] of the messages saved so far, oldest first."""
        out = []
        names = sorted((f for f in os.listdir(self.dir) if f.endswith(".eml")),
                       key=lambda f: int(f.split("-")[1].split(".")[0]))
        for f in names:
            with open(os.path.join(self.dir, f), "rb") as m:
                raw = m.read()
            with open(os.path.join(self.dir, f[:-4] + ".json")) as j:
                out.append((raw, json.load(j)))
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def send(conf, to, *sets):
    """Runs mlserver --send-test-mail; returns the CompletedProcess."""
    args = [MLSERVER, "--config", conf]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args + ["--send-test-mail", to], capture_output=True, text=True,
                          timeout=60)


def test_plain(tmp, conf):
    """A server without STARTTLS: the message, its headers and table, the envelope."""
    sink = Sink(tmp, "plain")
    try:
        url = f"mail.url=smtp://127.0.0.1:{sink.port}/mlserver.example.edu"
        r = send(conf, "a@example.edu, b@example.edu,nobody@example.edu", url)
        check(r.returncode == 0, "plain: sent", r.stderr)
        check("test message sent to" in r.stdout, "plain: says so", r.stdout)
        msgs = sink.messages()
        if not check(len(msgs) == 1, "plain: one message arrived", str(len(msgs))):
            return
        raw, env = msgs[0]
        check(env["mail_from"] == "ml@example.edu", "plain: envelope sender", str(env))
        check(env["rcpt_tos"] == ["a@example.edu", "b@example.edu"],
              "plain: the refused recipient is left out, the others get it", str(env))
        check(env["tls"] is False, "plain: no TLS (none offered)", str(env))
        check(env["ehlo"] == "mlserver.example.edu", "plain: EHLO name from the URL path",
              str(env))
        # The raw text: CRLF only, short lines, 7bit headers.
        lines = raw.split(b"\r\n")
        check(all(b"\n" not in ln and b"\r" not in ln for ln in lines), "plain: CRLF only")
        check(max(len(ln) for ln in lines) <= 78, "plain: lines of at most 78 bytes")
        check(all(b < 0x80 for b in raw), "plain: the message is 7-bit ASCII")
        check(raw.startswith(b"Date: "), "plain: Date first", raw[:80])
        check(b"\r\nFrom: =?UTF-8?B?" in raw, "plain: the sender's name is encoded", raw[:400])
        m = email.message_from_bytes(raw, policy=email.policy.default)
        check(str(m["From"]) == "Salle Émile <ml@example.edu>", "plain: From decodes",
              str(m["From"]))
        check(str(m["To"]) == "a@example.edu, b@example.edu, nobody@example.edu",
              "plain: To lists every address given", str(m["To"]))
        check(str(m["Subject"]) == "[Microlinux] test message from mlserver", "plain: Subject",
              str(m["Subject"]))
        check(re.fullmatch(r"<\d{14}\.[0-9a-f]{16}@example\.edu>", str(m["Message-ID"]))
              is not None, "plain: Message-ID", str(m["Message-ID"]))
        check(m["Date"] is not None and m["Date"].datetime is not None
              and abs(m["Date"].datetime.timestamp() - time.time()) < 120, "plain: Date is now",
              str(m["Date"]))
        check(m["MIME-Version"] == "1.0", "plain: MIME-Version")
        check(m.get_content_type() == "text/plain" and m.get_content_charset() == "utf-8",
              "plain: text/plain; charset=utf-8", str(m["Content-Type"]))
        check(m["Auto-Submitted"] == "auto-generated", "plain: Auto-Submitted")
        body = m.get_content()
        check(f"url       smtp://127.0.0.1:{sink.port}/mlserver.example.edu" in body,
              "plain: the body names the URL", body[:400])
        got = body.splitlines()
        i = got.index(TABLE[0]) if TABLE[0] in got else -1
        check(i >= 0 and got[i:i + len(TABLE)] == TABLE, "plain: the report table",
              "\n".join(got[i:i + len(TABLE)]))
        check("Result      4 machines: 1 done, 1 already current, 1 missing, 1 failed" in body,
              "plain: the report's result line", body)

        # starttls=require against a server that does not offer it.
        r = send(conf, "a@example.edu", url, "mail.starttls=require")
        check(r.returncode == 1, "require without STARTTLS: fails", r.stdout)
        check("STARTTLS" in r.stderr and r.stderr.startswith("mlserver: mail via smtp://"),
              "require without STARTTLS: says why", r.stderr)
        # Every recipient refused: an error with the server's reply.
        r = send(conf, "nobody@example.edu", url)
        check(r.returncode == 1 and "the server said: 550 5.1.1 <nobody@example.edu>: no such user"
              in r.stderr, "all recipients refused: the server's reply", r.stderr)
        check(len(sink.messages()) == 1, "plain: no more messages arrived")
    finally:
        sink.stop()


def test_starttls(tmp, conf, cert, key):
    """A server that requires STARTTLS: off fails, try uses it, certificates are checked."""
    sink = Sink(tmp, "starttls", "--tlscert", cert, "--tlskey", key)
    try:
        url = f"mail.url=smtp://127.0.0.1:{sink.port}"
        r = send(conf, "a@example.edu", url, "mail.starttls=off")
        check(r.returncode == 1 and "the server said: 530 Must issue a STARTTLS command first"
              in r.stderr, "starttls=off: the server's 530 (STARTTLS first)", r.stderr)
        r = send(conf, "a@example.edu", url)
        check(r.returncode == 1 and ("certificate" in r.stderr or "SSL" in r.stderr),
              "try, no CA: the self-signed certificate is refused", r.stderr)
        check(sink.messages() == [], "nothing arrived without TLS or with a bad certificate")
        r = send(conf, "a@example.edu", url, f"mail.ca_file={cert}")
        check(r.returncode == 0, "try with ca_file: sent", r.stderr)
        r = send(conf, "b@example.edu", url, "mail.starttls=require", "mail.insecure=yes")
        check(r.returncode == 0, "require, insecure: sent", r.stderr)
        msgs = sink.messages()
        check(len(msgs) == 2, "starttls: two messages arrived", str(len(msgs)))
        for raw, env in msgs:
            check(env["tls"] is True and env["tls_version"] in ("TLSv1.2", "TLSv1.3"),
                  "starttls: the message came over TLS", str(env))
        check([env["rcpt_tos"] for _, env in msgs] == [["a@example.edu"], ["b@example.edu"]],
              "starttls: recipients", str([env for _, env in msgs]))
    finally:
        sink.stop()


def test_smtps(tmp, conf, cert, key):
    """SMTPS: TLS from the first byte, verified against ca_file."""
    sink = Sink(tmp, "smtps", "--smtpscert", cert, "--smtpskey", key)
    try:
        r = send(conf, "a@example.edu", f"mail.url=smtps://127.0.0.1:{sink.port}",
                 f"mail.ca_file={cert}")
        check(r.returncode == 0, "smtps: sent", r.stderr)
        msgs = sink.messages()
        check(len(msgs) == 1 and msgs[0][1]["tls"] is True, "smtps: arrived over TLS",
              str([e for _, e in msgs]))
    finally:
        sink.stop()


def test_failures(tmp, conf):
    """Nothing listening, and settings that cannot work: clear errors, exit 1."""
    port = free_port()
    t0 = time.monotonic()
    r = send(conf, "a@example.edu", f"mail.url=smtp://127.0.0.1:{port}")
    check(r.returncode == 1, "nothing listening: exit 1", r.stdout)
    check(r.stderr.strip() == f"mlserver: mail via smtp://127.0.0.1:{port} to a@example.edu: "
          f"Failed to connect to 127.0.0.1 port {port} after 0 ms: Couldn't connect to server"
          or (f"127.0.0.1 port {port}" in r.stderr and "connect" in r.stderr.lower()),
          "nothing listening: a clear error", r.stderr)
    check(len(r.stderr.strip().splitlines()) == 1, "nothing listening: one line", r.stderr)
    check(time.monotonic() - t0 < 20, "nothing listening: fails fast")
    r = send(conf, "not-an-address", "mail.url=smtp://127.0.0.1:1")
    check(r.returncode == 1 and "not-an-address" in r.stderr, "bad recipient named", r.stderr)
    r = subprocess.run([MLSERVER, "--config", conf, "--set", "mail.from=", "--check-config"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "[mail] from must be set" in r.stderr, "url without from",
          r.stderr)
    r = subprocess.run([MLSERVER, "--config", conf, "--set", "mail.starttls=sometimes",
                        "--check-config"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "[mail] starttls" in r.stderr, "bad starttls", r.stderr)
    empty = os.path.join(tmp, "empty.conf")
    open(empty, "w").close()
    r = subprocess.run([MLSERVER, "--config", empty, "--send-test-mail", "a@example.edu"],
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "[mail] url is empty" in r.stderr, "no mail settings",
          r.stderr)


def main():
    if not os.path.exists(SYS_PYTHON) or subprocess.run(
            [SYS_PYTHON, "-c", "import aiosmtpd"], capture_output=True).returncode != 0:
        print("SKIP: needs /usr/bin/python3 with aiosmtpd (Debian: python3-aiosmtpd)")
        sys.exit(77)
    if not shutil.which("openssl"):
        print("SKIP: needs openssl to make a test certificate")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix=f"mlmail{os.getpid()}-")
    try:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        conf = os.path.join(tmp, "mlserver.conf")
        with open(conf, "w") as f:
            f.write("[mail]\nurl = smtp://127.0.0.1:1\n"
                    "from = Salle Émile <ml@example.edu>\ntimeout = 20s\n")
        test_plain(tmp, conf)
        test_starttls(tmp, conf, cert, key)
        test_smtps(tmp, conf, cert, key)
        test_failures(tmp, conf)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
