"""An aiosmtpd handler for tests: saves each message raw (N.eml) with its
envelope and TLS state (N.json) in a directory, and refuses recipients
nobody@... with 550. Run it with Debian's python3-aiosmtpd:

    PYTHONPATH=tests/integration /usr/bin/python3 -m aiosmtpd -n \\
        -l 127.0.0.1:2525 -c smtp_sink.SaveRaw DIRECTORY
"""
import json, os

class SaveRaw:
    def __init__(self, directory):
        self.dir = directory
        self.n = 0

    @classmethod
    def from_cli(cls, parser, *args):
        return cls(args[0])

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 <%s>: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.dir, "%d-%d" % (os.getpid(), self.n))
        tls = server.transport.get_extra_info("ssl_object")
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                "tls": tls is not None, "tls_version": tls.version() if tls else None,
                "ehlo": session.host_name}
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content)
        os.rename(base + ".tmp", base + ".eml")
        return "250 OK: saved"
