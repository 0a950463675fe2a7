#!/usr/bin/env python3
"""mlctl against a real mlserver: the real binary, a real HTTPS server.

Covers login with fingerprint trust, the config file (mode 0600, pinned
key), user/token/audit commands end to end, --json and -q output, table
columns, exit statuses (1 the server refused, 2 bad usage, 3 cannot reach
the server), a wrong pinned key refused, and every --help. The commands of
APIs the server does not offer yet (404 "no such API path") are skipped
with a message per resource, so this test tests more as they land.
"""
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import apilib  # noqa: E402
from apilib import ADMIN_PW, check, done  # noqa: E402

MLCTL = os.path.join(apilib.BUILD, "src", "cli", "mlctl")
HOME = tempfile.mkdtemp(prefix=f"mlctl{os.getpid()}-")
CONF = os.path.join(HOME, ".config", "microlinux", "mlctl.conf")


class Result:
    def __init__(self, p):
        self.rc = p.returncode
        self.out = p.stdout
        self.err = p.stderr

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
                       "version", "rm-version"],
             "library": ["show", "gc"],
             "machine": ["list", "show", "add", "set", "rm", "import"],
             "group": ["list", "show", "add", "set", "rm", "add-member", "rm-member",
                       "members"],
             "criterion": ["list", "show", "add", "set", "rm", "machines"],
             "entry": ["list", "show", "add", "set", "rm"],
             "right": ["list", "show", "add", "set", "rm", "targets"],
             "deploy": ["list", "show", "create", "set", "rm", "run", "targets", "runs"],
             "run": ["list", "show"]}
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


# ---- APIs that land later: each part is skipped while the server lacks it.

def available(srv, path, what):
    r = srv.get(path)
    if r.status == 404 and isinstance(r.json, dict) and \
            r.json.get("error", {}).get("message") == "no such API path":
        print(f"SKIP: {what}: the server has no {path} yet", flush=True)
        return False
    return True


def test_images(srv):
    if not available(srv, "/images", "image and library commands"):
        return None
    r = mlctl("image", "create", "img-a", "--os", "linux", "--cpus", "4", "--memory-mb", "4096",
              "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("name") == "img-a" and j.get("cpus") == 4,
          "image create --json", repr(r))
    r = mlctl("image", "create", "img-b", "--cpus", "999")
    fails(r, 1, "image create with too many CPUs", "cpus")
    r = mlctl("image", "list")
    ok(r, "image list")
    check(header(r)[:3] == ["ID", "NAME", "OS"] and "img-a" in r.out, "image list table",
          repr(r))
    r = mlctl("image", "set", "img-a", "--description", "test image", "--json")
    check(r.rc == 0 and (r.json() or {}).get("description") == "test image", "image set",
          repr(r))
    r = mlctl("image", "import", "img-a", "/nonexistent/disk.raw")
    check(r.rc == 1 and "mlctl: image import: " in r.err, "import of a missing file fails",
          repr(r))
    disk = os.path.join(HOME, "disk.raw")
    with open(disk, "wb") as f:
        for i in range(4):
            f.write(os.urandom(256 * 1024))
            f.write(b"\0" * (768 * 1024))
    r = mlctl("image", "upload", "img-a", disk, "--note", "first", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("state") == "ready" and j.get("size") == 4 << 20,
          "image upload waits until ready", repr(r))
    r = mlctl("image", "versions", "img-a")
    ok(r, "image versions")
    check(header(r)[:3] == ["ID", "NO", "STATE"] and "ready" in r.out, "versions table",
          repr(r))
    r = mlctl("image", "version", "img-a", "v1", "--json")
    check(r.rc == 0 and (r.json() or {}).get("number") == 1, "image version vN", repr(r))
    r = mlctl("image", "version", "img-a", "latest", "-q")
    check(r.rc == 0 and r.out.strip().isdigit(), "image version latest", repr(r))
    vid = r.out.strip()
    r = mlctl("library", "show", "--json")
    check(r.rc == 0 and "chunks" in (r.json() or {}), "library show", repr(r))
    r = mlctl("image", "rm", "img-a")
    fails(r, 1, "image rm with versions is refused")
    return vid


def test_inventory(srv):
    machines = None
    if available(srv, "/machines", "machine commands"):
        r = mlctl("machine", "add", "pc-101", "--mac", "52:54:00:12:34:56", "--ip",
                  "10.1.2.101", "--subnet", "10.1.2.5/24", "--room", "B101")
        fails(r, 1, "machine add with host bits set", "mlctl: machine add: subnet")
        r = mlctl("machine", "add", "pc-101", "--mac", "52:54:00:12:34:56", "--ip",
                  "10.1.2.101", "--subnet", "10.1.2.0/24", "--room", "B101", "--tag", "win",
                  "-q")
        check(r.rc == 0 and r.out.strip().isdigit(), "machine add -q", repr(r))
        r = mlctl("machine", "add", "pc-102", "--mac", "52:54:00:12:34:57", "--room", "B102",
                  "-q")
        check(r.rc == 0, "machine add (2)", repr(r))
        r = mlctl("machine", "list", "--room", "B101")
        ok(r, "machine list --room")
        check(header(r)[:3] == ["ID", "NAME", "IP"] and "pc-101" in r.out and
              "pc-102" not in r.out, "machine list --room table", repr(r))
        r = mlctl("machine", "show", "pc-101", "--json")
        check(r.rc == 0 and (r.json() or {}).get("room") == "B101", "machine show by name",
              repr(r))
        r = mlctl("machine", "set", "pc-101", "--room", "B103", "--json")
        check(r.rc == 0 and (r.json() or {}).get("room") == "B103", "machine set", repr(r))
        hosts = os.path.join(HOME, "dhcpd.conf")
        with open(hosts, "w") as f:
            f.write("host pc-201 { hardware ethernet 52:54:00:aa:bb:01; "
                    "fixed-address 10.1.2.201; }\n")
        r = mlctl("machine", "import", hosts, "--format", "dhcpd", "--dry-run", "--json")
        j = r.json()
        check(r.rc in (0, 1) and j and "created" in j and "errors" in j,
              "machine import --dry-run --json", repr(r))
        machines = ["pc-101", "pc-102"]
    if machines and available(srv, "/groups", "group commands"):
        r = mlctl("group", "add", "lab-b", "--member", "pc-101", "--json")
        check(r.rc == 0 and (r.json() or {}).get("name") == "lab-b", "group add", repr(r))
        r = mlctl("group", "add-member", "lab-b", "pc-102")
        ok(r, "group add-member")
        r = mlctl("group", "members", "lab-b", "-q")
        check(r.rc == 0 and len(r.out.split()) == 2, "group members", repr(r))
        r = mlctl("group", "rm-member", "lab-b", "pc-102")
        ok(r, "group rm-member")
        r = mlctl("group", "list")
        check(r.rc == 0 and header(r)[:2] == ["ID", "NAME"] and "lab-b" in r.out,
              "group list", repr(r))
    if machines and available(srv, "/criteria", "criterion commands"):
        r = mlctl("criterion", "add", "pcs-1", "--name-glob", "pc-1*", "--subnet",
                  "10.1.0.0/16", "--json")
        check(r.rc == 0 and (r.json() or {}).get("name_glob") == "pc-1*", "criterion add",
              repr(r))
        r = mlctl("criterion", "machines", "pcs-1", "--json")
        j = r.json()
        names = sorted(m["name"] for m in (j or {}).get("items", []))
        check(r.rc == 0 and names == ["pc-101"], "criterion machines", repr(r))
        r = mlctl("criterion", "list")
        check(r.rc == 0 and "RULES" in header(r) and "pc-1*" in r.out, "criterion list",
              repr(r))
    return machines


def test_entries_rights(srv, machines):
    entry = None
    if available(srv, "/entries", "entry commands"):
        r = mlctl("entry", "add", "intranet", "--kind", "web", "--url",
                  "https://intranet.example.edu", "--json")
        check(r.rc == 0 and (r.json() or {}).get("kind") == "web", "entry add", repr(r))
        r = mlctl("entry", "add", "bad", "--kind", "web")
        fails(r, 1, "entry add without its url", "url")
        r = mlctl("entry", "list")
        check(r.rc == 0 and header(r)[:3] == ["ID", "NAME", "KIND"], "entry list", repr(r))
        entry = "intranet"
    if entry and machines and available(srv, "/rights", "right commands"):
        r = mlctl("right", "add", "--entry", entry, "--user", "admin", "--machine",
                  machines[0], "--window", "mon-fri 08:00-18:00", "-q")
        rid = r.out.strip()
        check(r.rc == 0 and rid.isdigit(), "right add", repr(r))
        r = mlctl("right", "targets", rid, "-q")
        check(r.rc == 0 and len(r.out.split()) == 1, "right targets", repr(r))
        r = mlctl("right", "set", rid, "--window", "", "--json")
        check(r.rc == 0 and (r.json() or {}).get("window") is None, "right set --window ''",
              repr(r))
        r = mlctl("right", "rm", rid)
        ok(r, "right rm")


def test_deployments(srv, vid, machines):
    if not vid or not machines:
        print("SKIP: deploy and run commands: need images and machines first", flush=True)
        return
    if not available(srv, "/deployments", "deploy commands"):
        return
    r = mlctl("deploy", "create", "dep-a", "--version", "img-a:latest", "--machine",
              machines[0], "--at", "+1d", "--no-wake", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("version_id") == int(vid) and
          j.get("schedule", {}).get("kind") == "at", "deploy create --at", repr(r))
    r = mlctl("deploy", "list")
    check(r.rc == 0 and "dep-a" in r.out and "NEXT" in r.out, "deploy list", repr(r))
    r = mlctl("deploy", "targets", "dep-a", "-q")
    check(r.rc == 0 and len(r.out.split()) == 1, "deploy targets", repr(r))
    r = mlctl("deploy", "set", "dep-a", "--cron", "30 6 * * 1-5", "--disable", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("enabled") is False, "deploy set", repr(r))
    r = mlctl("deploy", "run", "dep-a", "--json")
    j = r.json()
    check(r.rc == 0 and j and j.get("cause") == "manual", "deploy run", repr(r))
    if available(srv, "/runs", "run commands"):
        r = mlctl("run", "list", "--deployment", "dep-a", "-q")
        check(r.rc == 0 and len(r.out.split()) >= 1, "run list --deployment", repr(r))
        run_id = r.out.split()[0] if r.out.split() else "0"
        r = mlctl("run", "show", run_id, "--json")
        check(r.rc == 0 and (r.json() or {}).get("id") == int(run_id), "run show", repr(r))
    r = mlctl("deploy", "rm", "dep-a")
    ok(r, "deploy rm")


def main():
    if not os.path.exists(MLCTL):
        print(f"SKIP: {MLCTL} is not built")
        sys.exit(77)
    try:
        test_usage()
        with apilib.Server() as srv:
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
                vid = test_images(srv)
                machines = test_inventory(srv)
                test_entries_rights(srv, machines)
                test_deployments(srv, vid, machines)
    finally:
        shutil.rmtree(HOME, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
