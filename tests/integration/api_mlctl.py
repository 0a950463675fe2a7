#!/usr/bin/env python3
"""mlctl against a real mlserver: the real binary, a real HTTPS server.

Covers login with fingerprint trust, the config file (mode 0600, pinned
key), every command of every noun end to end (users, tokens, audit,
images with an import from a path, an upload with its progress bar and
one from stdin, versions, verification of a sound and a damaged version,
the library, machines and their import, groups, criteria, entries,
rights, deployments with a --now run and runs), --json (always one
parsable document) and -q output, table columns with names where the API
gives ids, exit statuses (1 the server refused, with its message and
field; 2 bad usage; 3 cannot reach the server), a wrong pinned key
refused, and every --help.
"""
import json
import os
import pty
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apilib  # noqa: E402
from apilib import ADMIN_PW, check, done  # noqa: E402

MLCTL = os.path.join(apilib.BUILD, "src", "cli", "mlctl")
HOME = tempfile.mkdtemp(prefix=f"mlctl{os.getpid()}-")
CONF = os.path.join(HOME, ".config", "microlinux", "mlctl.conf")


# Sanitizer reports seen on any mlctl's stderr (UBSan does not change the exit status).
SANITIZER = []


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr
        if "runtime error" in self.err or "Sanitizer" in self.err:
            SANITIZER.append(self.err[-2000:])

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError:
            return None

    def __repr__(self):
        return f"<rc={self.rc} out={self.out[:400]!r} err={self.err[:400]!r}>"


def mlctl(*args, stdin="", env=None):
    """Runs mlctl with a clean environment (HOME is ours, no MLCTL_*)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("MLCTL_") and k != "XDG_CONFIG_HOME"}
    e["HOME"] = HOME
    e["TZ"] = "UTC"
    if env:
        e.update(env)
    p = subprocess.run([MLCTL] + list(args), input=stdin, capture_output=True, text=True,
                       env=e, timeout=120)
    return Result(p)


def ok(r, what):
    return check(r.rc == 0, what, repr(r))


def fails(r, rc, what, needle=None):
    good = check(r.rc == rc, what + f" (exit {rc})", repr(r))
    if needle is not None:
        good = check(needle in r.err, what + f" (message has {needle!r})", repr(r)) and good
    return good


def read_conf():
    conf = {}
    with open(CONF) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                conf[k.strip()] = v.strip()
    return conf


def header(r):
    return r.out.splitlines()[0].split() if r.out else []


def test_usage():
    r = mlctl("--help")
    ok(r, "mlctl --help")
    nouns = {"login": [], "logout": [], "whoami": [], "passwd": [], "health": [],
             "audit": [],
             "user": ["list", "show", "add", "set", "rm"],
             "token": ["list", "create", "rm"],
             "image": ["list", "show", "create", "set", "rm", "import", "upload", "versions",
                       "version", "rm-version", "verify"],
             "library": ["show", "gc"],
             "machine": ["list", "show", "add", "set", "rm", "import", "rollback"],
             "group": ["list", "show", "add", "set", "rm", "add-member", "rm-member",
                       "members", "rollback"],
             "criterion": ["list", "show", "add", "set", "rm", "machines"],
             "entry": ["list", "show", "add", "set", "rm"],
             "right": ["list", "show", "add", "set", "rm", "targets"],
             "deploy": ["list", "show", "create", "set", "rm", "run", "targets", "runs"],
             "run": ["list", "show", "watch", "cancel", "retry", "rollback"],
             "command": ["list", "show"],
             "agent": ["list", "show", "revoke"],
             "enroll-token": ["create", "list", "rm"]}
    for noun, verbs in nouns.items():
        check(f"\n  {noun}" in r.out, f"mlctl --help lists {noun}")
        r2 = mlctl(noun, "--help")
        ok(r2, f"mlctl {noun} --help")
        check(r2.out.startswith(f"usage: mlctl {noun}"), f"mlctl {noun} --help usage", repr(r2))
        for verb in verbs:
            check(f"\n  {verb}" in r2.out, f"mlctl {noun} --help lists {verb}", repr(r2))
            r3 = mlctl(noun, verb, "--help")
            ok(r3, f"mlctl {noun} {verb} --help")
            check(r3.out.startswith(f"usage: mlctl {noun} {verb}"),
                  f"mlctl {noun} {verb} --help usage", repr(r3))
            check("Example:" in r3.out, f"mlctl {noun} {verb} --help has an example")
    fails(mlctl(), 2, "no command")
    fails(mlctl("frobnicate"), 2, "unknown command", "unknown command 'frobnicate'")
    fails(mlctl("user"), 2, "noun without verb")
    fails(mlctl("user", "frob"), 2, "unknown verb", "unknown verb 'frob'")
    fails(mlctl("user", "add"), 2, "missing argument", "missing NAME")
    fails(mlctl("user", "show", "a", "b"), 2, "extra argument", "unexpected argument 'b'")
    fails(mlctl("user", "list", "--bogus"), 2, "unknown option", "unknown option --bogus")
    fails(mlctl("user", "list", "--limit", "0"), 2, "bad --limit", "--limit 0")
    fails(mlctl("user", "list", "--limit"), 2, "--limit without value", "needs a value")
    fails(mlctl("whoami"), 2, "no server configured", "no server")
    fails(mlctl("whoami", "--server", "ftp://x"), 2, "bad server URL", "only https://")
    fails(mlctl("health", "--server", "x", "--fingerprint", "12:34"), 2, "bad fingerprint")
    fails(mlctl("deploy", "create", "d", "--version", "1", "--machine", "1",
                "--server", "127.0.0.1:1"), 2, "deploy without schedule", "--now")


def test_login(srv, url, fp):
    # Not trusted, not a terminal, no --fingerprint: refused, nothing written.
    r = mlctl("login", "--server", url, "admin", stdin=ADMIN_PW + "\n")
    fails(r, 1, "login without trust", "--fingerprint " + fp)
    check(fp in r.err, "login shows the fingerprint", repr(r))
    check(not os.path.exists(CONF), "no config file after a refused login")
    # A wrong expected fingerprint: refused before the password leaves.
    r = mlctl("login", "--server", url, "--fingerprint", "ab" * 32, "admin",
              stdin=ADMIN_PW + "\n")
    fails(r, 3, "login with a wrong fingerprint", "not the given")
    check(not os.path.exists(CONF), "no config file after a wrong fingerprint")
    # Wrong password.
    r = mlctl("login", "--server", url, "--fingerprint", fp, "admin", stdin="wrong-password\n")
    fails(r, 1, "login with a wrong password", "wrong user name or password")
    # The real thing (fingerprint without colons, upper case: normalized).
    r = mlctl("login", "--server", url, "--fingerprint", fp.replace(":", "").upper(), "admin",
              stdin=ADMIN_PW + "\n")
    ok(r, "login with --fingerprint")
    check("logged in" in r.out and "admin" in r.out, "login says so", repr(r))
    check(os.path.exists(CONF), "config file written")
    if not os.path.exists(CONF):
        return False
    st = os.stat(CONF)
    check(stat.S_IMODE(st.st_mode) == 0o600, "config file mode 0600", oct(st.st_mode))
    check(stat.S_IMODE(os.stat(os.path.dirname(CONF)).st_mode) == 0o700,
          "config directory mode 0700")
    conf = read_conf()
    check(conf.get("server") == url, "config: server", conf)
    check(conf.get("user") == "admin", "config: user", conf)
    check(conf.get("token", "").startswith("mlt_"), "config: token", conf)
    check(conf.get("fingerprint") == fp, "config: fingerprint", conf)
    check(conf.get("pubkey", "").startswith("sha256//") and len(conf["pubkey"]) == 52,
          "config: pinned public key", conf)
    # The stored token works and is the admin's.
    r = srv.get("/me", token=conf["token"])
    check(r.status == 200 and r.json.get("username") == "admin", "stored token works", r)
    # A second login reuses the pin without any question.
    r = mlctl("login", stdin=ADMIN_PW + "\n")
    ok(r, "second login (server, user and pin from the file)")
    check(read_conf().get("token") != conf["token"], "second login stores a new session")
    return True


def test_session(srv, url, fp):
    r = mlctl("whoami")
    ok(r, "whoami")
    check("username:" in r.out and "admin" in r.out, "whoami shows the user", repr(r))
    check("pinned" in r.out and fp in r.out, "whoami shows the pin", repr(r))
    r = mlctl("whoami", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("username") == "admin" and j.get("role") == "admin",
          "whoami --json", repr(r))
    r = mlctl("health", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("status") == "ok" and j.get("tls_fingerprint") == fp,
          "health --json", repr(r))
    # -v shows requests on stderr without the token.
    r = mlctl("whoami", "-v", "-q")
    check(r.rc == 0 and "> GET " in r.err and "mlt_" not in r.err, "-v", repr(r))
    r = mlctl("-q", "whoami")
    check(r.rc == 0 and r.out.strip() == "1", "global option before the noun", repr(r))


def test_users(srv):
    r = mlctl("user", "add", "ops1", "--role", "operator", "--display-name", "Ops One",
              stdin="ops1-password\n")
    ok(r, "user add")
    check("username:" in r.out and "ops1" in r.out, "user add shows the user", repr(r))
    r = srv.post("/login", {"username": "ops1", "password": "ops1-password"}, token="")
    check(r.status == 200, "new user can log in with the password from stdin", r)
    r = mlctl("user", "list")
    ok(r, "user list")
    check(header(r)[:3] == ["ID", "USERNAME", "ROLE"], "user list columns", repr(r))
    check("ops1" in r.out and "Ops One" in r.out, "user list rows", repr(r))
    r = mlctl("user", "list", "--json")
    j = r.json()
    check(r.rc == 0 and j and isinstance(j.get("items"), list) and j.get("total") == 2,
          "user list --json", repr(r))
    r = mlctl("user", "list", "-q")
    check(r.rc == 0 and sorted(r.out.split()) == ["1", "2"], "user list -q", repr(r))
    r = mlctl("user", "show", "ops1", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("username") == "ops1" and j.get("role") == "operator",
          "user show by name --json", repr(r))
    uid = j["id"] if j else 0
    r = mlctl("user", "show", str(uid), "-q")
    check(r.rc == 0 and r.out.strip() == str(uid), "user show by id -q", repr(r))
    r = mlctl("user", "set", "ops1", "--role", "viewer", "--disable")
    ok(r, "user set")
    r = srv.get(f"/users/{uid}")
    check(r.json and r.json.get("role") == "viewer" and r.json.get("disabled") is True,
          "user set changed the role and disabled", r)
    r = mlctl("user", "set", "ops1")
    fails(r, 2, "user set without changes", "nothing to change")
    r = mlctl("user", "set", "ops1", "--enable", "--password", stdin="ops1-newpass\n")
    ok(r, "user set --password")
    r = srv.post("/login", {"username": "ops1", "password": "ops1-newpass"}, token="")
    check(r.status == 200, "user set --password took effect", r)
    # The server's refusals: exit 1 with its message.
    r = mlctl("user", "add", "ops2", "--role", "operator", stdin="short\n")
    fails(r, 1, "user add with a short password", "mlctl: user add: ")
    check("password" in r.err and "8" in r.err, "short password message", repr(r))
    r = mlctl("user", "add", "ops1", "--role", "viewer", stdin="long-enough-1\n")
    fails(r, 1, "user add of an existing name", "mlctl: user add: ")
    r = mlctl("user", "add", "ops3", "--role", "wizard", stdin="long-enough-1\n")
    fails(r, 1, "user add with a bad role", "role")
    check(r.err.count("\n") == 1, "an error is one line", repr(r))
    r = mlctl("user", "show", "nobody")
    fails(r, 1, "user show of an unknown name", "no user named 'nobody'")
    r = mlctl("user", "show", "99")
    fails(r, 1, "user show of an unknown id", "99")
    r = mlctl("user", "rm", "ops1")
    ok(r, "user rm")
    check(srv.get(f"/users/{uid}").status == 404, "user rm removed it")


def test_tokens(srv, url, fp):
    r = mlctl("token", "create", "ci", "--expires-days", "30", "-q")
    tok = r.out.strip()
    check(r.rc == 0 and tok.startswith("mlt_"), "token create -q prints the token", repr(r))
    r = mlctl("token", "create", "ci2", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("kind") == "api" and j.get("token", "").startswith("mlt_"),
          "token create --json", repr(r))
    r = mlctl("token", "list")
    ok(r, "token list")
    check(header(r)[:4] == ["ID", "USER", "KIND", "NAME"], "token list columns", repr(r))
    check(" ci " in r.out and " ci2 " in r.out and "session" in r.out, "token list rows",
          repr(r))
    r = mlctl("token", "list", "--all", "--json")
    j = r.json()
    check(r.rc == 0 and j and len(j["items"]) >= 3, "token list --all --json", repr(r))
    # The new token from the environment, against the server named there.
    env = {"MLCTL_SERVER": url, "MLCTL_TOKEN": tok, "MLCTL_CONFIG": os.path.join(HOME, "none"),
           "MLCTL_FINGERPRINT": fp}
    r = mlctl("whoami", "-q", env=env)
    check(r.rc == 0 and r.out.strip() == "1", "MLCTL_SERVER, MLCTL_TOKEN, MLCTL_FINGERPRINT",
          repr(r))
    r = mlctl("whoami", env={"MLCTL_SERVER": url, "MLCTL_TOKEN": tok,
                             "MLCTL_CONFIG": os.path.join(HOME, "none")})
    fails(r, 3, "MLCTL_SERVER with an unchecked certificate", "not trusted")
    r = mlctl("whoami", "-q", env={"MLCTL_SERVER": url, "MLCTL_TOKEN": tok,
                                   "MLCTL_CONFIG": os.path.join(HOME, "none"),
                                   "MLCTL_INSECURE": "1"})
    check(r.rc == 0, "MLCTL_INSECURE=1", repr(r))
    r = mlctl("whoami", env={"MLCTL_TOKEN": "two words"})
    fails(r, 2, "a malformed MLCTL_TOKEN", "MLCTL_TOKEN")
    # The file's token never goes to another server (another URL for the same one here).
    other = url.replace("127.0.0.1", "localhost")
    r = mlctl("whoami", env={"MLCTL_SERVER": other, "MLCTL_INSECURE": "1"})
    fails(r, 1, "the file's token is not sent to another server", "not logged in")
    r = mlctl("token", "rm", "ci")
    ok(r, "token rm by name")
    r = mlctl("whoami", env=env)
    fails(r, 1, "a revoked token is refused", "not valid")
    r = mlctl("token", "rm", "ci", "-q")
    fails(r, 1, "token rm of a removed name", "no token named 'ci'")


def test_enroll_tokens(srv):
    r = mlctl("enroll-token", "create", "pxe-a", "--max-uses", "3", "-q")
    tok = r.out.strip()
    check(r.rc == 0 and tok.startswith("mle_") and len(tok) == 68,
          "enroll-token create -q prints the token", repr(r))
    r = mlctl("enroll-token", "create", "pxe-b")
    check(r.rc == 0 and "ml.token=mle_" in r.out, "enroll-token create shows the kernel argument",
          repr(r))
    fails(mlctl("enroll-token", "create", "pxe-a"), 1, "a taken name",
          "an enrollment token with that name already exists")
    fails(mlctl("enroll-token", "create", "pxe-c", "--max-uses", "x"), 2, "a bad --max-uses")
    r = mlctl("enroll-token", "list")
    check(r.rc == 0 and "pxe-a" in r.out and "0/3" in r.out and tok not in r.out,
          "enroll-token list: uses, never the token", repr(r))
    # The token works for an agent's enrollment until it is removed.
    e = srv.post("/agent/enroll", {"token": tok, "name": "pc-enroll", "hostname": "x",
                                   "macs": [], "ips": []}, token="")
    check(e.status == 201 and e.json["credential"].startswith("mla_"), "the token enrolls", e)
    r = mlctl("agent", "list")
    check(r.rc == 0 and "pc-enroll" in r.out, "agent list shows the enrolled machine", repr(r))
    r = mlctl("agent", "show", "pc-enroll", "--json")
    check(r.rc == 0 and r.json() and r.json().get("machine") == "pc-enroll", "agent show",
          repr(r))
    ok(mlctl("enroll-token", "rm", "pxe-a"), "enroll-token rm")
    e = srv.post("/agent/enroll", {"token": tok, "name": "pc-enroll2", "hostname": "x",
                                   "macs": [], "ips": []}, token="")
    check(e.status == 401, "a removed token no longer enrolls", e)
    ok(mlctl("agent", "revoke", "pc-enroll"), "agent revoke")
    r = mlctl("agent", "show", "pc-enroll", "--json")
    check(r.rc == 0 and r.json() and r.json().get("enrolled") is False, "revoked agent shown",
          repr(r))
    r = mlctl("command", "list")
    ok(r, "command list (empty)")


def test_audit(srv):
    r = mlctl("audit")
    ok(r, "audit")
    check(header(r) == ["ID", "TIME", "USER", "ACTION", "OBJECT", "DETAIL"], "audit columns",
          repr(r))
    check("login" in r.out and "create" in r.out, "audit rows", repr(r))
    r = mlctl("audit", "--action", "login", "--json")
    j = r.json()
    check(r.rc == 0 and j and j["items"] and all(i["action"] == "login" for i in j["items"]),
          "audit --action --json", repr(r))
    r = mlctl("audit", "--user", "admin", "--object-type", "token", "-q")
    check(r.rc == 0 and len(r.out.split()) >= 2, "audit --user --object-type -q", repr(r))
    total = srv.get("/audit").json["total"]
    r = mlctl("audit", "--limit", "2", "--offset", "1", "--json")
    j = r.json()
    check(r.rc == 0 and j and len(j["items"]) == 2 and j["total"] == total and
          j["offset"] == 1, "audit --limit --offset", repr(r))
    r = mlctl("audit", "--json")
    j = r.json()
    check(r.rc == 0 and j and len(j["items"]) == total, "audit fetches every page", repr(r))
    # Times are shown in local time (TZ=UTC here): "YYYY-MM-DD HH:MM".
    first = r.json()["items"][0]["at"] if j else ""
    r = mlctl("audit", "--limit", "1")
    check(first[:10] + " " + first[11:16] in r.out, "audit time in local form", repr(r))
    # Viewers may not read the audit log: the server says so, exit 1.
    srv.post("/users", {"username": "view1", "password": "view1-password", "role": "viewer"})
    tok = srv.post("/login", {"username": "view1", "password": "view1-password"},
                   token="").json["token"]
    r = mlctl("audit", env={"MLCTL_TOKEN": tok})
    fails(r, 1, "audit as a viewer", "admin role")


def test_pin_and_reachability(url, fp):
    with open(CONF) as f:
        saved = f.read()
    try:
        wrong = "sha256//" + "A" * 43 + "="
        with open(CONF, "w") as f:
            f.write("".join(
                (f"pubkey = {wrong}\n" if line.startswith("pubkey") else line)
                for line in saved.splitlines(True)))
        r = mlctl("whoami")
        fails(r, 3, "a wrong pinned key is refused", "not the one trusted")
        r = mlctl("whoami", "-q", env={"MLCTL_INSECURE": "1"})
        check(r.rc == 0, "MLCTL_INSECURE=1 overrides the pin", repr(r))
        with open(CONF, "w") as f:
            f.write("server = " + url + "\ncolour = red\n")
        r = mlctl("whoami")
        fails(r, 1, "a bad config file", "colour")
    finally:
        with open(CONF, "w") as f:
            f.write(saved)
        os.chmod(CONF, 0o600)
    fails(mlctl("health", "--server", "127.0.0.1:1"), 3, "unreachable server", "cannot reach")
    fails(mlctl("whoami", "--server", "127.0.0.1:1"), 3, "unreachable server (whoami)")
    r = mlctl("whoami", "--fingerprint", "cd" * 32)
    fails(r, 3, "--fingerprint that does not match", "not the expected")
    r = mlctl("whoami", "-q", "--fingerprint", fp)
    check(r.rc == 0, "--fingerprint that matches", repr(r))


def test_cacert(srv, url):
    """A certificate checked against --cacert is not pinned; the file keeps the CA."""
    crt = os.path.join(srv.dir, "data", "tls", "server.crt")
    other = os.path.join(HOME, "ca.conf")
    env = {"MLCTL_CONFIG": other}
    r = mlctl("login", "--server", url, "--cacert", crt, "admin", stdin=ADMIN_PW + "\n",
              env=env)
    ok(r, "login --cacert")
    text = open(other).read() if os.path.exists(other) else ""
    check("cacert = " + crt in text and "pubkey" not in text, "config keeps the CA file",
          text)
    r = mlctl("whoami", "-q", env=env)
    check(r.rc == 0 and r.out.strip() == "1", "whoami with the CA file", repr(r))
    wrong = os.path.join(HOME, "wrong.pem")
    with open(wrong, "w") as f:
        f.write(WRONG_CA)
    r = mlctl("whoami", "--cacert", wrong, env=env)
    fails(r, 3, "whoami against another CA", "does not check out")


# A self-signed certificate that is not the server's.
WRONG_CA = """-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUdZwDWlwGNMvmbQwoeJLjgJVIR14wCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGbWx0ZXN0MB4XDTI2MTEyNjEzNTMyNFoXDTM2MTEyMzEzNTMy
NFowETEPMA0GA1UEAwwGbWx0ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
DdI3g4S5UYgSyOnoDjp3pZOnOPy0oNmKONXwBXTnykh2xNMMYdyif/51L0BAhptM
rus+pLGYDqGyB4PZGnkqWqNTMFEwHQYDVR0OBBYEFIAi7C0vjUC49oJxagx1Z4Se
sCAsMB8GA1UdIwQYMBaAFIAi7C0vjUC49oJxagx1Z4SesCAsMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJX4nwJddFyAkwPTBk6O9sX78w2QQEwN
w3omLlrFnYOVAiA9bQJ/eh0Y0hycNvJXUzpJKvPMFBklypo8K71k00Y3rw==
-----END CERTIFICATE-----
"""


def test_passwd_logout(srv, url, fp):
    r = mlctl("passwd", stdin=ADMIN_PW + "\nchanged-pass-99\n")
    ok(r, "passwd")
    r = srv.post("/login", {"username": "admin", "password": "changed-pass-99"}, token="")
    check(r.status == 200, "passwd took effect", r)
    r = mlctl("passwd", stdin="wrong-old-pass\nwhatever-123\n")
    fails(r, 1, "passwd with a wrong old password", "mlctl: passwd: ")
    r = mlctl("passwd", stdin="changed-pass-99\n" + ADMIN_PW + "\n")
    ok(r, "passwd back")
    r = mlctl("logout")
    ok(r, "logout")
    conf = read_conf()
    check("token" not in conf and conf.get("pubkey"), "logout forgets the token, keeps the pin",
          conf)
    fails(mlctl("whoami"), 1, "whoami after logout", "not logged in")
    r = mlctl("login", stdin=ADMIN_PW + "\n")
    ok(r, "login again after logout")


# ---- images, inventory, entries, rights, deployments and runs ----------------

def mlctl_bytes(*args, data=b""):
    """Runs mlctl with bytes on stdin (an upload from -)."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("MLCTL_") and k != "XDG_CONFIG_HOME"}
    e["HOME"] = HOME
    e["TZ"] = "UTC"
    p = subprocess.run([MLCTL] + list(args), input=data, capture_output=True, env=e,
                       timeout=300)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    return Result(p)


def mlctl_tty(*args):
    """Runs mlctl with stderr on a terminal (a pty), where it draws progress bars.
    Returns the result with err holding what the terminal got."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("MLCTL_") and k != "XDG_CONFIG_HOME"}
    e["HOME"] = HOME
    e["TZ"] = "UTC"
    master, slave = pty.openpty()
    p = subprocess.Popen([MLCTL] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=slave, env=e)
    os.close(slave)
    got = []

    def drain():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:
                return
            if not b:
                return
            got.append(b)
    t = threading.Thread(target=drain)
    t.start()
    out, _ = p.communicate(timeout=300)
    t.join(timeout=30)
    os.close(master)

    class P:
        pass
    r = P()
    r.returncode = p.returncode
    r.stdout = out.decode("utf-8", "replace")
    r.stderr = b"".join(got).decode("utf-8", "replace")
    return Result(r)


def rows(r):
    """The table's rows as lists of cells (split on runs of 2+ spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in r.out.splitlines()[1:]]


def env_token(srv, name, role):
    """MLCTL_TOKEN settings for a new user with role (the config file's server and pin)."""
    srv.login()  # the test's own session ended with 'mlctl passwd'
    return {"MLCTL_TOKEN": srv.user_token(name, role)}


def chunk_file(srv):
    """One stored chunk file of the library (every test version shares its chunks)."""
    root = os.path.join(srv.dir, "data", "chunks")
    for sub in sorted(os.listdir(root)):
        d = os.path.join(root, sub)
        if len(sub) == 2 and os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                if len(name) == 66 and not name.startswith("."):
                    return os.path.join(d, name)
    return None


def test_images(srv):
    r = mlctl("image", "create", "img-a", "--os", "linux", "--cpus", "4", "--memory-mb", "4096",
              "--display", "spice", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("name") == "img-a" and j.get("cpus") == 4 and
          j.get("os_type") == "linux" and j.get("display") == "spice" and
          j.get("latest_version") is None and j.get("versions") == 0,
          "image create --json", repr(r))
    fails(mlctl("image", "create", "img-b", "--cpus", "999"), 1, "image create, 999 CPUs",
          "mlctl: image create: cpus")
    fails(mlctl("image", "create", "img-b", "--os", "beos"), 1, "image create, bad OS",
          "os_type")
    fails(mlctl("image", "create", "img-a"), 1, "image create, a taken name", "name")
    fails(mlctl("image", "create"), 2, "image create without a name", "missing NAME")
    fails(mlctl("image", "create", "img-b", "--cpus", "four"), 2, "image create, --cpus four",
          "--cpus four")
    r = mlctl("image", "list")
    ok(r, "image list")
    check(header(r)[:4] == ["ID", "NAME", "OS", "CPUS"] and "VERSIONS" in header(r) and
          "VLAN" in header(r), "image list columns", repr(r))
    check(rows(r) and rows(r)[0][:6] == ["1", "img-a", "linux", "4", "4.0 GiB", "bios"],
          "image list row", repr(r))
    r = mlctl("image", "show", "img-a")
    check(r.rc == 0 and "memory_mb:" in r.out and "latest_version: -" in r.out,
          "image show", repr(r))
    r = mlctl("image", "set", "img-a", "--description", "test image", "--vlan", "20",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("description") == "test image" and j.get("vlan") == 20,
          "image set", repr(r))
    r = mlctl("image", "set", "img-a", "--vlan", "", "--json")
    check(r.rc == 0 and (r.json() or {}).get("vlan", 0) is None, "image set --vlan ''",
          repr(r))
    fails(mlctl("image", "set", "img-a"), 2, "image set without changes", "nothing to change")
    fails(mlctl("image", "set", "img-a", "--vlan", "5000"), 1, "image set, VLAN 5000", "vlan")

    # Import from a path on the server: a real ext4 disk of /usr/share/doc files.
    disk = os.path.join(HOME, "doc.img")
    apilib.make_doc_image(disk, size_mib=48, fill_mib=16)
    size = os.path.getsize(disk)
    r = mlctl("image", "import", "img-a", disk, "--note", "from a path", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("state") == "ready" and j.get("size") == size and
          j.get("source") == disk and j.get("note") == "from a path" and
          j.get("created_by") == "admin" and j.get("created_by_id") == 1 and
          j.get("progress") == 1 and j.get("phase") is None and j.get("new_bytes", 0) > 0,
          "image import waits until ready", repr(r))
    sha = (j or {}).get("sha256")
    fails(mlctl("image", "import", "img-a", "/nonexistent/disk.raw"), 1,
          "import of a missing file", "mlctl: image import: path")
    fails(mlctl("image", "import", "img-a", "doc.img"), 1, "import of a relative path", "path")
    empty = os.path.join(HOME, "empty.img")
    open(empty, "w").close()
    fails(mlctl("image", "import", "img-a", empty), 1, "import of an empty file", "path")
    fails(mlctl("image", "import", "img-a"), 2, "import without a path", "missing")
    fails(mlctl("image", "import", "nosuch", disk), 1, "import into an unknown image",
          "no image named 'nosuch'")
    # --no-wait answers at once with the version importing, then it gets ready.
    r = mlctl("image", "import", "img-a", disk, "--no-wait", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("state") == "importing" and
          j.get("phase") in ("queued", "importing") and j.get("number") == 2,
          "image import --no-wait", repr(r))
    deadline = time.time() + 60
    while time.time() < deadline:
        r = mlctl("image", "version", "img-a", "v2", "--json")
        if (r.json() or {}).get("state") != "importing":
            break
        time.sleep(0.2)
    j = r.json()
    check(r.rc == 0 and j and j.get("state") == "ready" and j.get("new_bytes") == 0 and
          j.get("sha256") == sha, "the --no-wait import gets ready, sharing every chunk",
          repr(r))

    # Upload from here with a progress bar (stderr on a terminal), then wait.
    r = mlctl_tty("image", "upload", "img-a", disk, "--note", "from my laptop", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("state") == "ready" and j.get("source") == "upload" and
          j.get("note") == "from my laptop" and j.get("sha256") == sha and
          j.get("size") == size, "image upload waits until ready", repr(r))
    check("upload" in r.err and "100%" in r.err and "\r" in r.err,
          "image upload draws a progress bar on a terminal", repr(r))
    # From stdin: chunked, no length known.
    with open(disk, "rb") as f:
        data = f.read()
    r = mlctl_bytes("image", "upload", "img-a", "-", "--note", "stdin", "-q", data=data)
    check(r.rc == 0 and r.out.strip() == "4", "image upload from stdin -q", repr(r))
    fails(mlctl("image", "upload", "img-a", os.path.join(HOME, "nope.img")), 1,
          "upload of a missing local file", "nope.img")
    fails(mlctl("image", "upload", "img-a", HOME), 1, "upload of a directory",
          "not a regular file")
    fails(mlctl("image", "upload", "img-a", empty), 1, "upload of an empty file",
          "mlctl: image upload: ")

    r = mlctl("image", "versions", "img-a")
    ok(r, "image versions")
    check(header(r)[:3] == ["ID", "NO", "STATE"] and "SOURCE" in header(r) and
          "BY" in header(r), "versions columns", repr(r))
    rs = rows(r)
    check([x[1] for x in rs] == ["4", "3", "2", "1"] and all(x[2] == "ready" for x in rs),
          "versions newest first, all ready", repr(r))
    check("upload" in r.out and disk in r.out and "admin" in r.out and "stdin" in r.out,
          "versions show source, user and note", repr(r))
    r = mlctl("image", "versions", "img-a", "--json", "--limit", "2")
    j = r.json()
    check(r.rc == 0 and j and len(j["items"]) == 2 and j["total"] == 4,
          "image versions --json --limit", repr(r))
    r = mlctl("image", "version", "img-a", "v1", "--json")
    check(r.rc == 0 and (r.json() or {}).get("number") == 1, "image version vN", repr(r))
    r = mlctl("image", "version", "img-a", "latest", "-q")
    check(r.rc == 0 and r.out.strip() == "4", "image version latest", repr(r))
    r = mlctl("image", "version", "img-a", "3")
    check(r.rc == 0 and "source:" in r.out and "upload" in r.out and "(48.0 MiB)" in r.out,
          "image version by id, sizes in human form", repr(r))
    fails(mlctl("image", "version", "img-a", "x3"), 2, "image version x3", "not a version")
    fails(mlctl("image", "version", "img-a", "v99"), 1, "image version v99",
          "image img-a has no version v99")
    fails(mlctl("image", "version", "img-a", "99"), 1, "image version of an unknown id",
          "99")

    # Verify: clean, then with a rotten chunk (exit 1), then clean again.
    r = mlctl("image", "verify", "img-a", "v1")
    check(r.rc == 0 and "ok:" in r.out and "yes" in r.out and "chunks_checked:" in r.out,
          "image verify", repr(r))
    r = mlctl("image", "verify", "img-a", "latest", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("ok") is True and j.get("bad_chunks") == [] and
          j.get("chunks_checked") == 48, "image verify --json", repr(r))
    victim = chunk_file(srv)
    if check(victim is not None, "the library has chunk files"):
        good = open(victim, "rb").read()
        bad = bytearray(good)
        bad[len(bad) // 2] ^= 0x55
        open(victim, "wb").write(bytes(bad))
        r = mlctl("image", "verify", "img-a", "v1")
        fails(r, 1, "image verify of a damaged version", "is damaged: 1 bad chunk")
        check("ok:" in r.out and "bad_chunks:" in r.out, "the damage is shown", repr(r))
        r = mlctl("image", "verify", "img-a", "v1", "--json")
        j = r.json()
        check(r.rc == 1 and j and j.get("ok") is False and len(j.get("bad_chunks")) == 1,
              "image verify --json of a damaged version", repr(r))
        open(victim, "wb").write(good)
        ok(mlctl("image", "verify", "img-a", "v1", "-q"), "image verify once repaired")
    fails(mlctl("image", "verify", "img-a"), 2, "image verify without a version", "missing")

    r = mlctl("library", "show", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("images") == 1 and j.get("versions_ready") == 4 and
          j.get("versions_bytes") == 4 * size and j.get("chunks", 0) > 0,
          "library show --json", repr(r))
    r = mlctl("library", "show")
    check(r.rc == 0 and "versions_bytes:" in r.out and "(192.0 MiB)" in r.out and
          "free_bytes:" in r.out, "library show, sizes in human form", repr(r))
    ok(mlctl("image", "rm-version", "img-a", "v3"), "image rm-version")
    r = mlctl("image", "versions", "img-a", "-q")
    check(r.rc == 0 and r.out.split() == ["4", "2", "1"], "the version is gone", repr(r))
    fails(mlctl("image", "rm-version", "img-a", "v3"), 1, "rm-version twice",
          "no version v3")
    r = mlctl("library", "gc", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("chunks_removed") == 0 and j.get("chunks_kept", 0) > 0,
          "library gc --json (every chunk still used)", repr(r))
    r = mlctl("library", "gc", env=env_token(srv, "ops-img", "operator"))
    fails(r, 1, "library gc as an operator", "admin")
    fails(mlctl("image", "rm", "img-a"), 1, "image rm with versions is refused", "versions")
    r = mlctl("image", "create", "img-tmp", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "image create -q", repr(r))
    r = mlctl("image", "rm", "img-tmp")
    check(r.rc == 0 and "removed image" in r.out, "image rm", repr(r))
    fails(mlctl("image", "rm", "img-tmp"), 1, "image rm twice", "no image named 'img-tmp'")


def test_inventory(srv):
    r = mlctl("machine", "add", "pc-101", "--mac", "52:54:00:12:34:56", "--ip", "10.1.2.101",
              "--subnet", "10.1.2.5/24", "--room", "B101")
    fails(r, 1, "machine add with host bits set", "mlctl: machine add: subnet")
    check("did you mean 10.1.2.0/24" in r.err, "the server's whole message", repr(r))
    r = mlctl("machine", "add", "pc-101", "--mac", "52:54:00:12:34:56", "--ip", "10.1.2.101",
              "--subnet", "10.1.2.0/24", "--room", "B101", "--tag", "win", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "machine add -q", repr(r))
    r = mlctl("machine", "add", "pc-102", "--mac", "52:54:00:12:34:57", "--room", "B102",
              "--tag", "win", "--tag", "lab", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("tags") == ["lab", "win"], "machine add --json", repr(r))
    fails(mlctl("machine", "add", "pc-103", "--mac", "52:54:00:12:34:57"), 1,
          "machine add with a MAC in use", "macs")
    fails(mlctl("machine", "add", "pc-103", "--mac", "zz"), 1, "machine add with a bad MAC",
          "macs")
    fails(mlctl("machine", "add"), 2, "machine add without a name", "missing NAME")
    r = mlctl("machine", "list", "--room", "B101")
    ok(r, "machine list --room")
    check(header(r)[:3] == ["ID", "NAME", "IP"] and "pc-101" in r.out and
          "pc-102" not in r.out, "machine list --room table", repr(r))
    r = mlctl("machine", "list", "--tag", "lab", "-q")
    check(r.rc == 0 and r.out.split() == ["2"], "machine list --tag", repr(r))
    r = mlctl("machine", "list", "--search", "12:34:56", "-q")
    check(r.rc == 0 and r.out.split() == ["1"], "machine list --search (a MAC)", repr(r))
    r = mlctl("machine", "show", "PC-101", "--json")
    check(r.rc == 0 and (r.json() or {}).get("room") == "B101",
          "machine show by name, any case", repr(r))
    r = mlctl("machine", "set", "pc-101", "--room", "B103", "--notes", "by the window",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("room") == "B103" and j.get("notes") == "by the window",
          "machine set", repr(r))
    r = mlctl("machine", "set", "pc-101", "--room", "", "--json")
    check(r.rc == 0 and (r.json() or {}).get("room", 0) is None, "machine set --room ''",
          repr(r))
    ok(mlctl("machine", "set", "pc-101", "--room", "B101", "-q"), "machine set back")
    fails(mlctl("machine", "set", "pc-101", "--ip", "10.9.9.9"), 1,
          "machine set, IP outside its subnet", "ip")
    # Import: a dry run, the real thing (a bad line: exit 1), then --update.
    hosts = os.path.join(HOME, "hosts.csv")
    with open(hosts, "w") as f:
        f.write("name,mac,ip,room\n"
                "pc-201,52:54:00:aa:bb:01,10.1.2.201,B201\n"
                "pc-202,zz,10.1.2.202,B201\n"
                "pc-102,52:54:00:12:34:57,,B102\n")
    r = mlctl("machine", "import", hosts, "--dry-run")
    fails(r, 1, "machine import --dry-run with a bad line", "1 line had errors")
    check(r.out.strip() == "csv, dry run (nothing changed): 1 created, 0 updated, "
          "0 unchanged, 1 skipped, 1 error", "import summary", repr(r))
    check(f"{hosts}:3: bad MAC address" in r.err, "the bad line as FILE:LINE", repr(r))
    check(mlctl("machine", "show", "pc-201").rc == 1, "a dry run creates nothing")
    r = mlctl("machine", "import", hosts, "--json")
    j = r.json()
    check(r.rc == 1 and j and j.get("created") == 1 and j.get("skipped") == 1 and
          j.get("error_count") == 1 and j.get("errors")[0]["line"] == 3,
          "machine import --json", repr(r))
    r = mlctl("machine", "import", hosts, "--update", "--format", "csv")
    check(r.rc == 1 and "0 created, 0 updated, 2 unchanged, 0 skipped, 1 error" in r.out,
          "machine import --update: unchanged", repr(r))
    fails(mlctl("machine", "import", hosts, "--format", "xml"), 1, "import, bad format",
          "format")
    fails(mlctl("machine", "import", os.path.join(HOME, "nope.csv")), 1,
          "import of a missing file", "nope.csv")
    ok(mlctl("machine", "rm", "pc-201"), "machine rm")
    fails(mlctl("machine", "rm", "pc-201"), 1, "machine rm twice", "no machine named")

    # Groups.
    r = mlctl("group", "add", "lab-b", "--description", "Lab B", "--member", "pc-101",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("name") == "lab-b" and j.get("members") == [1] and
          j.get("member_count") == 1, "group add", repr(r))
    r = mlctl("group", "add-member", "lab-b", "pc-102", "--json")
    check(r.rc == 0 and (r.json() or {}).get("member_count") == 2, "group add-member",
          repr(r))
    r = mlctl("group", "members", "lab-b", "-q")
    check(r.rc == 0 and r.out.split() == ["1", "2"], "group members", repr(r))
    r = mlctl("group", "list")
    check(r.rc == 0 and header(r) == ["ID", "NAME", "MEMBERS", "DESCRIPTION"] and
          rows(r) == [["1", "lab-b", "2", "Lab B"]], "group list shows member counts",
          repr(r))
    r = mlctl("group", "rm-member", "lab-b", "pc-102")
    check(r.rc == 0 and "removed machine" in r.out, "group rm-member", repr(r))
    fails(mlctl("group", "rm-member", "lab-b", "pc-102"), 1, "group rm-member of a non-member",
          "not a member")
    r = mlctl("group", "show", "lab-b")
    check(r.rc == 0 and "member_count: 1" in r.out, "group show", repr(r))
    fails(mlctl("group", "add", "lab-b"), 1, "group add, a taken name", "name")
    fails(mlctl("group", "add", "lab-x", "--member", "99"), 1, "group add, unknown machine",
          "members: no machine with id 99")
    fails(mlctl("group", "add", "lab-x", "--member", "pc-999"), 1,
          "group add, unknown machine name", "no machine named 'pc-999'")
    ok(mlctl("group", "add", "tmp", "--member", "pc-101,pc-102", "-q"), "group add a,b")
    r = mlctl("group", "set", "tmp", "--member", "", "--name", "tmp2", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("member_count") == 0 and j.get("name") == "tmp2",
          "group set --member '' --name", repr(r))
    ok(mlctl("group", "rm", "tmp2"), "group rm")
    r = mlctl("machine", "list", "--group", "lab-b", "-q")
    check(r.rc == 0 and r.out.split() == ["1"], "machine list --group NAME", repr(r))
    fails(mlctl("machine", "list", "--group", "nosuch"), 1, "machine list, unknown group",
          "no group named 'nosuch'")

    # Criteria.
    r = mlctl("criterion", "add", "pcs-1", "--name-glob", "pc-1*", "--subnet", "10.1.0.0/16",
              "--description", "floor 1", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("name_glob") == "pc-1*" and j.get("room") is None,
          "criterion add", repr(r))
    r = mlctl("criterion", "machines", "pcs-1", "--json")
    j = r.json()
    names = sorted(m["name"] for m in (j or {}).get("items", []))
    check(r.rc == 0 and names == ["pc-101"], "criterion machines (pc-102 has no IP)", repr(r))
    r = mlctl("criterion", "list")
    check(r.rc == 0 and "RULES" in header(r) and
          "name_glob=pc-1* subnet=10.1.0.0/16" in r.out, "criterion list", repr(r))
    r = mlctl("criterion", "set", "pcs-1", "--subnet", "", "--room", "B102", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("subnet") is None and j.get("room") == "B102",
          "criterion set", repr(r))
    r = mlctl("criterion", "machines", "pcs-1", "-q")
    check(r.rc == 0 and r.out.split() == ["2"], "criterion machines after set", repr(r))
    r = mlctl("criterion", "show", "pcs-1")
    check(r.rc == 0 and "name_glob:   pc-1*" in r.out, "criterion show", repr(r))
    fails(mlctl("criterion", "add", "bad", "--subnet", "10.1.2.5/24"), 1,
          "criterion add with host bits set", "subnet: 10.1.2.5/24 has host bits set")
    fails(mlctl("criterion", "add", "bad"), 1, "criterion add without rules", "at least one")
    fails(mlctl("criterion", "add", "bad", "--name-glob", "pc-[1"), 1,
          "criterion add, bad glob", "name_glob")
    fails(mlctl("criterion", "set", "pcs-1", "--name-glob", "", "--room", ""), 1,
          "criterion set clearing every rule", "at least one")
    ok(mlctl("criterion", "add", "tmp", "--tag", "win", "-q"), "criterion add -q")
    ok(mlctl("criterion", "rm", "tmp"), "criterion rm")
    return ["pc-101", "pc-102"]


def test_entries_rights(srv):
    r = mlctl("entry", "add", "win-desktop", "--kind", "vm", "--image", "img-a", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("kind") == "vm" and j.get("image_id") == 1 and
          j.get("url") is None, "entry add vm", repr(r))
    r = mlctl("entry", "add", "terminal", "--kind", "rdp", "--host", "TS1.example.edu",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("host") == "ts1.example.edu" and j.get("port") == 3389,
          "entry add rdp (default port)", repr(r))
    r = mlctl("entry", "add", "console", "--kind", "spice", "--host", "10.0.0.5", "--port",
              "5901", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "entry add spice", repr(r))
    r = mlctl("entry", "add", "intranet", "--kind", "web", "--url",
              "https://intranet.example.edu/", "--description", "the intranet", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "entry add web", repr(r))
    r = mlctl("entry", "list")
    ok(r, "entry list")
    check(header(r) == ["ID", "NAME", "KIND", "TARGET", "DESCRIPTION"], "entry list columns",
          repr(r))
    check(["1", "win-desktop", "vm", "image img-a", "-"] in rows(r) and
          ["2", "terminal", "rdp", "ts1.example.edu:3389", "-"] in rows(r) and
          ["3", "console", "spice", "10.0.0.5:5901", "-"] in rows(r) and
          ["4", "intranet", "web", "https://intranet.example.edu/", "the intranet"] in rows(r),
          "entry list rows (an image by name)", repr(r))
    r = mlctl("entry", "list", "--kind", "rdp", "--json")
    j = r.json()
    check(r.rc == 0 and j and [e["name"] for e in j["items"]] == ["terminal"],
          "entry list --kind", repr(r))
    r = mlctl("entry", "show", "terminal")
    check(r.rc == 0 and "host:        ts1.example.edu" in r.out, "entry show", repr(r))
    r = mlctl("entry", "set", "terminal", "--port", "3390", "--json")
    check(r.rc == 0 and (r.json() or {}).get("port") == 3390, "entry set --port", repr(r))
    r = mlctl("entry", "set", "terminal", "--port", "", "--json")
    check(r.rc == 0 and (r.json() or {}).get("port") == 3389,
          "entry set --port '': the default again", repr(r))
    fails(mlctl("entry", "set", "terminal", "--url", "https://x.example/"), 1,
          "entry set, a field of another kind", "url applies only to web entries")
    fails(mlctl("entry", "add", "bad", "--kind", "web"), 1, "entry add web without url", "url")
    fails(mlctl("entry", "add", "bad", "--kind", "telnet", "--host", "x"), 1,
          "entry add, bad kind", "kind")
    fails(mlctl("entry", "add", "terminal", "--kind", "rdp", "--host", "x"), 1,
          "entry add, a taken name", "name")
    fails(mlctl("entry", "add", "bad", "--kind", "vm", "--image", "nosuch"), 1,
          "entry add, unknown image", "no image named 'nosuch'")
    fails(mlctl("entry", "list", "--kind"), 2, "entry list --kind without a value",
          "needs a value")
    ok(mlctl("entry", "rm", "console"), "entry rm")

    # Rights.
    r = mlctl("right", "add", "--entry", "win-desktop", "--user", "alice", "--user-group",
              "Teachers 2B", "--machine", "pc-102", "--group", "lab-b", "--criterion",
              "pcs-1", "--window", "mon-fri 08:00-18:00; fri 22:00-02:00", "--description",
              "lessons", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("entry_id") == 1 and j.get("users") == ["alice"] and
          j.get("user_groups") == ["Teachers 2B"] and
          j.get("targets") == {"machines": [2], "groups": [1], "criteria": [1]} and
          j.get("window") == "mon-thu 08:00-18:00; fri 08:00-18:00,22:00-02:00",
          "right add", repr(r))
    rid = str((j or {}).get("id", 0))
    r = mlctl("right", "list")
    ok(r, "right list")
    check(header(r) == ["ID", "ENTRY", "WHO", "TARGETS", "WINDOW", "DESCRIPTION"],
          "right list columns", repr(r))
    check(rows(r) == [[rid, "win-desktop", "alice, @Teachers 2B",
                       "machines pc-102; groups lab-b; criteria pcs-1",
                       "mon-thu 08:00-18:00; fri 08:00-18:00,22:00-02:00", "lessons"]],
          "right list row: names, not ids", repr(r))
    r = mlctl("right", "list", "--entry", "terminal", "-q")
    check(r.rc == 0 and r.out.strip() == "", "right list --entry (none)", repr(r))
    r = mlctl("right", "list", "--entry", "win-desktop", "-q")
    check(r.rc == 0 and r.out.split() == [rid], "right list --entry", repr(r))
    r = mlctl("right", "show", rid)
    check(r.rc == 0 and "user_groups:      Teachers 2B" in r.out and
          "targets.groups:   1" in r.out, "right show", repr(r))
    r = mlctl("right", "targets", rid)
    check(r.rc == 0 and header(r)[:2] == ["ID", "NAME"] and
          [x[1] for x in rows(r)] == ["pc-101", "pc-102"], "right targets", repr(r))
    r = mlctl("right", "set", rid, "--window", "", "--user", "bob", "--user", "alice",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("window", 0) is None and j.get("users") == ["alice", "bob"],
          "right set --window '' --user", repr(r))
    r = mlctl("right", "list")
    check(r.rc == 0 and rows(r) and rows(r)[0][4] == "always", "a right without window: always",
          repr(r))
    r = mlctl("right", "set", rid, "--group", "lab-b", "--json")
    check(r.rc == 0 and (r.json() or {}).get("targets") ==
          {"machines": [], "groups": [1], "criteria": []}, "right set: targets replaced",
          repr(r))
    fails(mlctl("right", "add", "--entry", "terminal", "--user", "alice"), 1,
          "right add without targets", "targets")
    fails(mlctl("right", "add", "--entry", "terminal", "--machine", "pc-101"), 1,
          "right add without principals", "users")
    r = mlctl("right", "add", "--entry", "terminal", "--user", "alice", "--machine", "pc-101",
              "--window", "mon-fri 25:00-26:00")
    fails(r, 1, "right add, bad window", "window: ")
    check("25:00" in r.err, "the window message quotes the bad part", repr(r))
    fails(mlctl("right", "add", "--entry", "nosuch", "--user", "a", "--machine", "1"), 1,
          "right add, unknown entry", "no entry named 'nosuch'")
    fails(mlctl("right", "show", "abc"), 2, "right show abc", "not a right id")
    fails(mlctl("right", "show", "999"), 1, "right show 999", "no right with id 999")
    fails(mlctl("group", "rm", "lab-b"), 1, "group rm while a right targets it", "mlctl: group rm:")
    r = mlctl("right", "add", "--entry", "intranet", "--user-group", "staff", "--machine",
              "pc-101", "-q")
    tmp = r.out.strip()
    check(r.rc == 0 and tmp.isdigit(), "right add -q", repr(r))
    r = mlctl("right", "rm", tmp)
    check(r.rc == 0 and f"removed right {tmp}" in r.out, "right rm", repr(r))
    fails(mlctl("right", "rm", tmp), 1, "right rm twice", f"no right with id {tmp}")


def test_deployments(srv):
    r = mlctl("deploy", "create", "dep-a", "--version", "img-a:latest", "--machine", "pc-102",
              "--group", "lab-b", "--at", "+1d", "--no-wake", "--rate-mbps", "800", "--wait",
              "120", "--report-to", "it@example.edu", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("version_id") == 4 and j.get("image_id") == 1 and
          j.get("schedule", {}).get("kind") == "at" and j.get("next_due") and
          j.get("options") == {"rate_mbps": 800, "wake": False, "wait_s": 120, "boot_mode": None,
                               "report_to": ["it@example.edu"]} and
          j.get("targets") == {"machines": [2], "groups": [1], "criteria": []} and
          j.get("created_by") == "admin", "deploy create --at", repr(r))
    r = mlctl("deploy", "list")
    ok(r, "deploy list")
    check(header(r)[:4] == ["ID", "NAME", "VERSION", "TARGETS"] and "NEXT" in header(r),
          "deploy list columns", repr(r))
    row = rows(r)[0] if rows(r) else []
    check(row[:4] == ["1", "dep-a", "img-a:v4", "machines pc-102; groups lab-b"] and
          row[4].startswith("at ") and row[5] == "yes", "deploy list row", repr(r))
    r = mlctl("deploy", "show", "dep-a")
    check(r.rc == 0 and "schedule.kind:     at" in r.out and
          "options.report_to: it@example.edu" in r.out, "deploy show", repr(r))
    r = mlctl("deploy", "targets", "dep-a", "-q")
    check(r.rc == 0 and r.out.split() == ["1", "2"], "deploy targets", repr(r))
    r = mlctl("deploy", "set", "dep-a", "--cron", "30 06 * * mon-fri", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("schedule") == {"kind": "cron", "cron": "30 6 * * 1-5"}
          and j.get("next_due"), "deploy set --cron (canonical)", repr(r))
    r = mlctl("deploy", "set", "dep-a", "--disable", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("enabled") is False and j.get("next_due") is None,
          "deploy set --disable", repr(r))
    r = mlctl("deploy", "set", "dep-a", "--enable", "--wait", "600", "--version", "img-a:v1",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("enabled") is True and j.get("next_due") and
          j.get("version_id") == 1 and j.get("options", {}).get("wait_s") == 600 and
          j.get("options", {}).get("rate_mbps") == 800,
          "deploy set --enable --wait --version (other options kept)", repr(r))
    r = mlctl("deploy", "run", "dep-a", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("cause") == "manual" and j.get("state") == "pending" and
          j.get("deployment_name") == "dep-a" and j.get("version_id") == 1,
          "deploy run", repr(r))
    manual = (j or {}).get("id")

    # --now: the scheduler makes a pending run at once.
    r = mlctl("deploy", "create", "dep-now", "--version", "img-a", "--criterion", "pcs-1",
              "--now", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "deploy create --now -q", repr(r))
    runs = []
    deadline = time.time() + 20
    while time.time() < deadline:
        r = mlctl("run", "list", "--deployment", "dep-now", "--json")
        runs = (r.json() or {}).get("items", [])
        if runs:
            break
        time.sleep(0.2)
    check(len(runs) == 1 and runs[0]["state"] == "pending" and
          runs[0]["cause"] == "schedule" and runs[0]["deployment_name"] == "dep-now" and
          runs[0]["version_id"] == 4, "deploy --now: a pending run", runs)
    r = mlctl("run", "list")
    ok(r, "run list")
    check(header(r)[:5] == ["ID", "DEPLOYMENT", "VERSION", "STATE", "CAUSE"],
          "run list columns", repr(r))
    check(rows(r) and rows(r)[0][:5] == [str(runs[0]["id"]) if runs else "?", "dep-now",
                                         "img-a:v4", "pending", "schedule"] and
          rows(r)[1][:5] == [str(manual), "dep-a", "img-a:v1", "pending", "manual"],
          "run list rows: newest first, names", repr(r))
    r = mlctl("run", "list", "--state", "pending", "-q")
    check(r.rc == 0 and len(r.out.split()) == 2, "run list --state", repr(r))
    r = mlctl("deploy", "runs", "dep-a", "-q")
    check(r.rc == 0 and r.out.split() == [str(manual)], "deploy runs", repr(r))
    r = mlctl("run", "show", str(manual))
    check(r.rc == 0 and re.search(r"^deployment:\s+dep-a$", r.out, re.M) and
          re.search(r"^cause:\s+manual$", r.out, re.M) and
          re.search(r"^state:\s+pending$", r.out, re.M) and
          re.search(r"^version:\s+img-a:v1$", r.out, re.M), "run show (summary)", repr(r))
    r = mlctl("run", "show", str(manual), "--json")
    check(r.rc == 0 and (r.json() or {}).get("id") == manual, "run show --json", repr(r))

    # Refusals: the server's message (and field), or usage.
    base = ["deploy", "create", "bad", "--version", "img-a", "--machine", "pc-101"]
    fails(mlctl(*base, "--cron", "61 * * * *"), 1, "deploy create, bad cron",
          "schedule.cron: minute: '61' is out of range 0-59")
    fails(mlctl(*base, "--at", "2020-01-01 10:00"), 1, "deploy create, at in the past",
          "schedule.at: at is in the past")
    fails(mlctl(*base, "--now", "--report-to", "not-an-address"), 1,
          "deploy create, bad e-mail", "options.report_to")
    fails(mlctl(*base, "--now", "--rate-mbps", "0"), 1, "deploy create, rate 0",
          "options.rate_mbps")
    fails(mlctl("deploy", "create", "bad", "--version", "img-a", "--now"), 1,
          "deploy create without targets", "targets")
    fails(mlctl("deploy", "create", "dep-a", "--version", "img-a", "--machine", "1", "--now"),
          1, "deploy create, a taken name", "name")
    fails(mlctl(*base[:4], "img-a:v99", "--machine", "1", "--now"), 1,
          "deploy create, unknown version", "no version v99")
    fails(mlctl(*base, "--now", "--cron", "* * * * *"), 2, "deploy create, two schedules",
          "one of --now")
    fails(mlctl(*base, "--at", "garbage"), 2, "deploy create, bad --at", "--at garbage")
    fails(mlctl(*base, "--now", "--wait", "soon"), 2, "deploy create, bad --wait",
          "--wait soon")
    fails(mlctl("deploy", "create", "bad", "--machine", "1", "--now"), 2,
          "deploy create without --version", "--version is required")
    fails(mlctl("deploy", "set", "dep-a", "--now", "--at", "+1h"), 2,
          "deploy set, two schedules", "at most one")
    fails(mlctl("deploy", "show", "nosuch"), 1, "deploy show, unknown", "no deployment named")
    fails(mlctl("run", "list", "--state", "exploded"), 1, "run list, bad state", "state")
    fails(mlctl("run", "show", "abc"), 2, "run show abc", "not a run id")
    fails(mlctl("run", "show", "999"), 1, "run show 999", "no run with id 999")
    # run watch, the rollbacks and deploy run --watch: what fails before or at the server.
    fails(mlctl("run", "watch", "abc"), 2, "run watch abc", "not a run id")
    fails(mlctl("run", "watch", "999"), 1, "run watch 999", "no run with id 999")
    fails(mlctl("run", "watch", str(manual), "--interval", "0"), 2, "run watch --interval 0",
          "--interval 0")
    fails(mlctl("run", "watch", str(manual), "--interval", "soon"), 2,
          "run watch --interval soon", "--interval soon")
    fails(mlctl("run", "watch", str(manual), "--interval"), 2, "run watch --interval alone",
          "needs a value")
    fails(mlctl("deploy", "run", "dep-a", "--watch", "--interval", "99999"), 2,
          "deploy run --watch --interval 99999", "--interval 99999")
    r = mlctl("deploy", "runs", "dep-a", "-q")
    check(r.rc == 0 and r.out.split() == [str(manual)],
          "a refused deploy run --watch started no run", repr(r))
    fails(mlctl("machine", "rollback", "pc-102"), 2, "machine rollback without --image",
          "--image is required")
    fails(mlctl("group", "rollback", "lab-b", "--wait"), 2, "group rollback without --image",
          "--image is required")
    fails(mlctl("machine", "rollback", "pc-102", "--image", "img-a", "--interval", "0"), 2,
          "machine rollback --interval 0", "--interval 0")
    fails(mlctl("machine", "rollback", "nosuch", "--image", "img-a"), 1,
          "machine rollback of an unknown machine", "no machine named 'nosuch'")
    fails(mlctl("group", "rollback", "lab-b", "--image", "nosuch"), 1,
          "group rollback of an unknown image", "no image named 'nosuch'")
    fails(mlctl("run", "rollback", "abc"), 2, "run rollback abc", "not a run id")
    fails(mlctl("command", "show", "abc"), 2, "command show abc", "not a command id")
    fails(mlctl("agent", "show", "nosuch"), 1, "agent show of an unknown machine",
          "no machine named 'nosuch'")
    # What deployments and runs hold on to.
    fails(mlctl("image", "rm-version", "img-a", "v1"), 1, "rm-version of a deployed version",
          "mlctl: image rm-version: ")
    fails(mlctl("criterion", "rm", "pcs-1"), 1, "criterion rm while a deployment uses it",
          "mlctl: criterion rm: ")

    # Deleting a deployment cancels its pending run; the run keeps the name.
    r = mlctl("deploy", "rm", "dep-now")
    check(r.rc == 0 and "removed deployment" in r.out, "deploy rm", repr(r))
    r = mlctl("run", "list", "--state", "cancelled", "--json")
    j = r.json()
    items = (j or {}).get("items", [])
    check(r.rc == 0 and len(items) == 1 and items[0]["deployment_id"] is None and
          items[0]["deployment_name"] == "dep-now" and
          items[0]["error"] == "the deployment was deleted", "its run is cancelled", repr(r))
    r = mlctl("run", "list", "--state", "cancelled")
    check(r.rc == 0 and rows(r) and rows(r)[0][1:4] == ["dep-now", "img-a:v4", "cancelled"],
          "a cancelled run still shows its deployment's name", repr(r))
    fails(mlctl("deploy", "rm", "dep-now"), 1, "deploy rm twice", "no deployment named")
    r = mlctl("deploy", "create", "dep-off", "--version", "1", "--machine", "pc-102",
              "--cron", "@daily", "--disabled", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("enabled") is False and j.get("next_due") is None,
          "deploy create --disabled", repr(r))
    ok(mlctl("deploy", "rm", "dep-off", "dep-a"), "deploy rm of two")
    r = mlctl("deploy", "list", "-q")
    check(r.rc == 0 and r.out.strip() == "", "no deployments left", repr(r))


def main():
    if not os.path.exists(MLCTL):
        print(f"SKIP: {MLCTL} is not built")
        sys.exit(77)
    try:
        test_usage()
        # The runner is off, so runs stay as the verbs left them; runs that
        # execute are driven through mlctl in deploy_e2e.sh.
        with apilib.Server(extra_args=["--set", "runner.enabled=no"]) as srv:
            srv.login()
            fp = srv.get("/health").json["tls_fingerprint"]
            url = f"https://127.0.0.1:{srv.port}"
            if test_login(srv, url, fp):
                test_session(srv, url, fp)
                test_users(srv)
                test_tokens(srv, url, fp)
                test_audit(srv)
                test_pin_and_reachability(url, fp)
                test_cacert(srv, url)
                test_passwd_logout(srv, url, fp)
                test_images(srv)
                test_inventory(srv)
                test_entries_rights(srv)
                test_deployments(srv)
                test_enroll_tokens(srv)  # last: enrolling adds a machine and a group
            log = srv.logtext()
            check("runtime error" not in log and "Sanitizer" not in log,
                  "no sanitizer reports in the server's log", log[-2000:])
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
    check(not SANITIZER, "no sanitizer reports from mlctl", SANITIZER[:3])
    done()


if __name__ == "__main__":
    main()
