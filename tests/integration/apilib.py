"""Helpers for mlserver API tests: start a real mlserver on a free port in a
temporary data directory and talk to it over HTTPS with the standard library.

Each test script imports this, builds a Server, and calls check() for every
assertion; the process exits 1 when any check failed (meson counts it).
"""
import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

BUILD = os.environ.get("MLBUILD", "build")
SRC = os.environ.get("MLSRC", ".")
MLSERVER = os.path.join(BUILD, "src", "server", "mlserver")
ADMIN_PW = "admin-pass-1234"

failures = 0
checks = 0


def check(cond, what, detail=""):
    """Counts one assertion; prints it when it fails."""
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print(f"FAIL: {what} {detail}", flush=True)
    return cond


def done():
    print(f"{checks - failures}/{checks} checks passed", flush=True)
    sys.exit(1 if failures else 0)


class Response:
    def __init__(self, status, body, headers):
        self.status = status
        self.raw = body
        self.headers = headers
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def err(self):
        """The error code of an error response, or None."""
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("code")
        return None

    def field(self):
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            return self.json["error"].get("field")
        return None

    def __repr__(self):
        return f"<{self.status} {self.raw[:300]!r}>"


# Every Server made, stopped and removed at exit even when a test dies of
# an exception before its own cleanup (no mlserver is left running).
_servers = []


@atexit.register
def _cleanup_servers():
    for s in _servers:
        try:
            s.cleanup()
        except Exception as e:  # keep cleaning the others
            print(f"apilib: cleanup of {s.dir}: {e}", file=sys.stderr)


class Server:
    """A running mlserver. Use as a context manager, or call stop()."""

    def __init__(self, data_dir=None, extra_args=(), config=None, env=None):
        _servers.append(self)
        self.own_dir = data_dir is None
        self.dir = data_dir or tempfile.mkdtemp(prefix=f"mlapi{os.getpid()}-")
        self.extra_args = list(extra_args)
        self.config = config
        self.env = env
        self.proc = None
        self.port = None
        self.token = None
        self.stdout = ""
        self.start()

    def start(self, expect_ok=True):
        if self.proc and self.proc.poll() is None:
            raise RuntimeError("this server runs already (a second start would leak it)")
        pwfile = os.path.join(self.dir, "adminpw")
        with open(pwfile, "w") as f:
            f.write(ADMIN_PW + "\n")
        portfile = os.path.join(self.dir, "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        # A restart must find the new port, and a failed one none.
        self.port = None
        args = [MLSERVER, "--data-dir", os.path.join(self.dir, "data"),
                "--listen", "127.0.0.1:0", "--port-file", portfile,
                "--admin-password-file", pwfile, "--log-level", "info"]
        if self.config:
            cfg = os.path.join(self.dir, "mlserver.conf")
            with open(cfg, "w") as f:
                f.write(self.config)
            args += ["--config", cfg]
        else:
            # Never pick up the machine's /etc/microlinux/mlserver.conf.
            cfg = os.path.join(self.dir, "empty.conf")
            open(cfg, "w").close()
            args += ["--config", cfg]
        args += self.extra_args
        self.log = open(os.path.join(self.dir, "mlserver.log"), "a")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        deadline = time.time() + 60
        while time.time() < deadline:
            if os.path.exists(portfile):
                self.port = int(open(portfile).read().strip())
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if self.port is None:
            self.stop()
            if expect_ok:
                raise RuntimeError("mlserver did not start; log:\n" + self.logtext())
            return False
        self.token = None
        return True

    def logtext(self):
        try:
            return open(os.path.join(self.dir, "mlserver.log")).read()
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Stops the server; returns its exit status."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.stdout += out or ""
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def restart(self):
        self.stop()
        self.start()

    def cleanup(self):
        self.stop()
        if self.own_dir:
            subprocess.run(["rm", "-rf", self.dir])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # ---- HTTP ----
    def conn(self, timeout=60):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=ctx)

    def raw(self, method, path, body=b"", headers=None, token=None):
        """One request with a raw body; path is under /api/v1 unless it starts with //."""
        url = path[1:] if path.startswith("//") else "/api/v1" + path
        h = {"Content-Type": "application/json"}
        tok = self.token if token is None else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        if headers:
            h.update(headers)
        c = self.conn()
        try:
            try:
                c.request(method, url, body=body, headers=h)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
                # The server may answer (413, 401) and close before reading
                # the whole body; its answer is still there to read.
                pass
            r = c.getresponse()
            data = r.read().decode("utf-8", "replace")
            return Response(r.status, data, dict(r.getheaders()))
        finally:
            c.close()

    def req(self, method, path, obj=None, token=None):
        body = b"" if obj is None else json.dumps(obj).encode()
        return self.raw(method, path, body, token=token)

    def get(self, path, **kw):
        return self.req("GET", path, **kw)

    def post(self, path, obj=None, **kw):
        return self.req("POST", path, {} if obj is None else obj, **kw)

    def patch(self, path, obj, **kw):
        return self.req("PATCH", path, obj, **kw)

    def delete(self, path, **kw):
        return self.req("DELETE", path, **kw)

    def login(self, user="admin", password=ADMIN_PW):
        r = self.post("/login", {"username": user, "password": password}, token="")
        if r.status != 200:
            raise RuntimeError(f"login {user} failed: {r}")
        self.token = r.json["token"]
        return self.token

    def user_token(self, name, role):
        """Creates a user with the role (as admin) and returns a token for it."""
        r = self.post("/users", {"username": name, "password": "pw-" + name + "-123",
                                 "role": role})
        if r.status != 201:
            raise RuntimeError(f"create user {name}: {r}")
        r = self.post("/login", {"username": name, "password": "pw-" + name + "-123"},
                      token="")
        return r.json["token"]


def check_error(r, status, code, what, field=None):
    """Checks an error response: status, error code, and optionally field."""
    ok = check(r.status == status, what, f"want {status}, got {r}")
    ok = check(r.err() == code, what + " (code)", f"want {code}, got {r}") and ok
    if field is not None:
        ok = check(r.field() == field, what + " (field)", f"want {field}, got {r}") and ok
    msg = (r.json or {}).get("error", {}).get("message", "") if isinstance(r.json, dict) else ""
    ok = check(len(msg) > 5, what + " (message)", f"got {r}") and ok
    return ok


def check_auth(srv, method, path, role_needed, body=None, tokens=None):
    """Checks that path refuses no token (401) and roles below role_needed (403)."""
    r = srv.req(method, path, body, token="")
    check_error(r, 401, "unauthorized", f"{method} {path} without token")
    r = srv.req(method, path, body, token="mlt_" + "0" * 64)
    check_error(r, 401, "unauthorized", f"{method} {path} with unknown token")
    order = ["viewer", "operator", "admin"]
    for role in order[:order.index(role_needed)]:
        r = srv.req(method, path, body, token=tokens[role])
        check_error(r, 403, "forbidden", f"{method} {path} as {role}")


# ---- images for tests ----------------------------------------------------------

MiB = 1 << 20


def make_doc_image(path, size_mib=40, fill_mib=12):
    """A raw ext4 disk image of size_mib holding about fill_mib of /usr/share/doc
    (text, compressed changelogs, HTML: realistic for chunking and
    compression), made with mkfs.ext4 -d; the unused part stays sparse.
    Returns the bytes of files copied in."""
    stage = path + ".d"
    os.makedirs(stage)
    total = 0
    for root, dirs, files in os.walk("/usr/share/doc"):
        dirs.sort()
        for name in sorted(files):
            src = os.path.join(root, name)
            try:
                st = os.lstat(src)
            except OSError:
                continue
            if st.st_mode & 0o170000 != 0o100000 or st.st_size > 2 * MiB:
                continue
            dst = os.path.join(stage, os.path.relpath(src, "/usr/share/doc"))
            try:
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copyfile(src, dst)
            except OSError:
                continue
            total += st.st_size
            if total >= fill_mib * MiB:
                break
        if total >= fill_mib * MiB:
            break
    r = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "mltest", "-d", stage, path,
                        f"{size_mib}M"], capture_output=True, text=True)
    shutil.rmtree(stage)
    if r.returncode != 0:
        raise RuntimeError("mkfs.ext4 -d failed: " + r.stderr)
    return total


def wait_version(srv, iid, vid, timeout=120, token=None):
    """Polls a version until it is no longer importing; returns the last answer."""
    deadline = time.time() + timeout
    while True:
        r = srv.get(f"/images/{iid}/versions/{vid}", token=token)
        if r.status != 200 or r.json["state"] != "importing" or time.time() > deadline:
            return r
        time.sleep(0.1)


def raw_tls(srv):
    """A TLS socket to the server, for requests http.client cannot make (a body cut short)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return ctx.wrap_socket(s)


def start_upload(srv, iid, size, sent, token=None):
    """Starts PUT .../versions/upload announcing size bytes and sends the first
    sent of them (zeros), then waits until the server shows the version
    uploading. Returns (socket, version): the version stays importing while
    the socket is open, and fails (upload aborted) once it is closed."""
    s = raw_tls(srv)
    s.sendall((f"PUT /api/v1/images/{iid}/versions/upload HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer {token or srv.token}\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n")
              .encode())
    s.sendall(b"\0" * sent)
    deadline = time.time() + 30
    while time.time() < deadline:
        items = srv.get(f"/images/{iid}/versions?limit=1").json["items"]
        if items and items[0]["state"] == "importing" and items[0]["phase"] == "uploading" \
                and items[0]["progress"] > 0:
            return s, items[0]
        time.sleep(0.05)
    s.close()
    raise RuntimeError("the upload did not show as uploading")
