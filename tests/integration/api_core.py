"""mlserver core API against a real server over HTTPS: sessions, users,
tokens, audit log, request limits and error shapes, configuration checks,
restart persistence."""
import hashlib
import os
import socket
import ssl
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apilib import (ADMIN_PW, MLSERVER, Server, check, check_auth, check_error,  # noqa: E402
                    done)


def tls_fingerprint(port):
    """The SHA-256 of the certificate the server presents, as aa:bb:..."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port)) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    h = hashlib.sha256(der).hexdigest()
    return ":".join(h[i:i + 2] for i in range(0, 64, 2))


def test_config(tmp):
    """--check-config and bad settings: clear errors, exit 1; bad usage 2."""
    def run(*args):
        return subprocess.run([MLSERVER, *args], capture_output=True, text=True, timeout=30)
    good = os.path.join(tmp, "good.conf")
    with open(good, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:9999\n[api]\nmax_body = 2M\n")
    r = run("--config", good, "--check-config")
    check(r.returncode == 0, "check-config good", r.stderr)
    bad = os.path.join(tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("[server]\nthreads = lots\n")
    r = run("--config", bad, "--check-config")
    check(r.returncode == 1 and "threads" in r.stderr, "check-config bad number", r.stderr)
    with open(bad, "w") as f:
        f.write("[server]\nflavour = vanilla\n")
    r = run("--config", bad, "--check-config")
    check(r.returncode == 1 and "flavour" in r.stderr, "check-config unknown key", r.stderr)
    with open(bad, "w") as f:
        f.write("[library]\nchunk_size = 3M\n")
    r = run("--config", bad, "--check-config")
    check(r.returncode == 1 and "power of two" in r.stderr, "check-config chunk size", r.stderr)
    r = run("--config", os.path.join(tmp, "missing.conf"), "--check-config")
    check(r.returncode == 1 and "missing.conf" in r.stderr, "missing explicit config", r.stderr)
    r = run("--config", good, "--set", "library.imports_max=7", "--set", "api.max_body=2M",
            "--print-config")
    check(r.returncode == 0 and "imports_max = 7" in r.stdout and "max_body = 2097152" in r.stdout,
          "--set overrides the file", r.stdout + r.stderr)
    r = run("--config", good, "--set", "library.imports_max=700", "--check-config")
    check(r.returncode == 1 and "imports_max" in r.stderr and "too large" in r.stderr,
          "--set out of range", r.stderr)
    r = run("--config", good, "--set", "nonsense", "--check-config")
    check(r.returncode == 1 and "SECTION.KEY=VALUE" in r.stderr, "--set malformed", r.stderr)
    r = run("--config", good, "--set", "library.flavour=x", "--check-config")
    check(r.returncode == 1 and "flavour" in r.stderr, "--set unknown key", r.stderr)
    # The packaged example file holds every key, and only valid values.
    example = os.path.join(os.environ.get("MLSRC", "."), "packaging", "mlserver.conf")
    r = run("--config", example, "--check-config")
    check(r.returncode == 0, "packaging/mlserver.conf is valid", r.stderr)
    r = run("--config", example, "--print-config")
    keys = lambda text: sorted(l.split("=")[0].strip() for l in text.splitlines()
                               if "=" in l and not l.startswith("#"))
    check(keys(r.stdout) == keys(open(example).read()), "packaging/mlserver.conf has every key")
    r = run("--bogus")
    check(r.returncode == 2, "unknown option exits 2", r.stderr)
    r = run("--help")
    check(r.returncode == 0 and "--data-dir" in r.stdout, "--help")
    r = run("--config", good, "--print-config")
    check(r.returncode == 0 and "listen = 127.0.0.1:9999" in r.stdout, "--print-config")


def test_sessions(srv):
    r = srv.get("/health", token="")
    check(r.status == 200 and r.json["status"] == "ok", "health", r)
    check(r.json["tls_fingerprint"] == tls_fingerprint(srv.port), "fingerprint matches",
          f"{r.json['tls_fingerprint']} vs {tls_fingerprint(srv.port)}")
    r = srv.post("/login", {"username": "admin", "password": "wrong-password"}, token="")
    check_error(r, 401, "unauthorized", "login wrong password")
    r = srv.post("/login", {"username": "nobody", "password": "wrong-password"}, token="")
    check_error(r, 401, "unauthorized", "login unknown user")
    r = srv.post("/login", {"username": "admin"}, token="")
    check_error(r, 400, "bad_request", "login without password", field="password")
    srv.login()
    r = srv.get("/me")
    check(r.status == 200 and r.json["username"] == "admin" and r.json["role"] == "admin",
          "me", r)
    # A second session, then logout ends only that one.
    other = srv.post("/login", {"username": "admin", "password": ADMIN_PW}, token="")
    tok2 = other.json["token"]
    r = srv.post("/logout", token=tok2)
    check(r.status == 204, "logout", r)
    r = srv.get("/me", token=tok2)
    check_error(r, 401, "unauthorized", "token after logout")
    r = srv.get("/me")
    check(r.status == 200, "first session still valid", r)
    r = srv.get("/me", token="mlt_xyz")
    check_error(r, 401, "unauthorized", "malformed token")
    r = srv.raw("GET", "/me", headers={"Authorization": "Basic YWRtaW46eA=="}, token="")
    check_error(r, 401, "unauthorized", "basic auth is not a token")
    r = srv.raw("GET", "/me", headers={"Cookie": "mlsession=" + srv.token}, token="")
    check(r.status == 200, "session cookie", r)


def test_users(srv, tokens):
    check_auth(srv, "GET", "/users", "admin", tokens=tokens)
    check_auth(srv, "POST", "/users", "admin", {"username": "x1", "password": "12345678",
                                                 "role": "viewer"}, tokens=tokens)
    r = srv.post("/users", {"username": "alice", "password": "alice-pass-1",
                            "role": "operator", "display_name": "Alice A."})
    check(r.status == 201 and r.json["username"] == "alice", "create user", r)
    check("pw_hash" not in r.json and "password" not in r.json, "no hash in output", r)
    alice = r.json["id"]
    r = srv.post("/users", {"username": "alice", "password": "alice-pass-1", "role": "viewer"})
    check_error(r, 409, "conflict", "duplicate user", field="username")
    r = srv.post("/users", {"username": "Bad Name", "password": "12345678", "role": "viewer"})
    check_error(r, 400, "bad_request", "bad user name", field="username")
    r = srv.post("/users", {"username": "bob", "password": "short", "role": "viewer"})
    check_error(r, 400, "bad_request", "short password", field="password")
    r = srv.post("/users", {"username": "bob", "password": "12345678", "role": "root"})
    check_error(r, 400, "bad_request", "bad role", field="role")
    r = srv.post("/users", {"username": "bob", "password": "12345678", "role": "viewer",
                            "shoe_size": 44})
    check_error(r, 400, "bad_request", "unknown field", field="shoe_size")
    r = srv.post("/users", {"username": 7, "password": "12345678", "role": "viewer"})
    check_error(r, 400, "bad_request", "wrong type", field="username")
    r = srv.get(f"/users/{alice}")
    check(r.status == 200 and r.json["display_name"] == "Alice A.", "get user", r)
    r = srv.get("/users/999999")
    check_error(r, 404, "not_found", "unknown user id")
    r = srv.get("/users/0")
    check_error(r, 404, "not_found", "id 0")
    r = srv.get("/users/-1")
    check_error(r, 404, "not_found", "negative id")
    r = srv.get("/users/99999999999999999999999")
    check_error(r, 404, "not_found", "huge id")
    # Alice logs in; a password change ends her sessions.
    r = srv.post("/login", {"username": "alice", "password": "alice-pass-1"}, token="")
    atok = r.json["token"]
    r = srv.patch(f"/users/{alice}", {"password": "alice-pass-2"})
    check(r.status == 200, "change password", r)
    r = srv.get("/me", token=atok)
    check_error(r, 401, "unauthorized", "session ended by password change")
    r = srv.post("/login", {"username": "alice", "password": "alice-pass-2"}, token="")
    atok = r.json["token"]
    r = srv.post("/me/password", {"old_password": "nope-nope", "new_password": "alice-pass-3"},
                 token=atok)
    check_error(r, 403, "forbidden", "own password with wrong old one", field="old_password")
    r = srv.post("/me/password", {"old_password": "alice-pass-2",
                                  "new_password": "alice-pass-3"}, token=atok)
    check(r.status == 204, "own password change", r)
    r = srv.get("/me", token=atok)
    check(r.status == 200, "own session survives own password change", r)
    # Disable: login refused, sessions end.
    r = srv.patch(f"/users/{alice}", {"disabled": True})
    check(r.status == 200 and r.json["disabled"] is True, "disable user", r)
    r = srv.get("/me", token=atok)
    check_error(r, 401, "unauthorized", "disabled user's session")
    r = srv.post("/login", {"username": "alice", "password": "alice-pass-3"}, token="")
    check_error(r, 401, "unauthorized", "disabled user cannot log in")
    # The last admin can be neither demoted, disabled nor deleted.
    me = srv.get("/me").json["id"]
    r = srv.patch(f"/users/{me}", {"role": "viewer"})
    check_error(r, 409, "conflict", "demote last admin")
    r = srv.patch(f"/users/{me}", {"disabled": True})
    check_error(r, 409, "conflict", "disable last admin")
    r = srv.delete(f"/users/{me}")
    check_error(r, 409, "conflict", "delete oneself")
    r = srv.delete(f"/users/{alice}")
    check(r.status == 204, "delete user", r)
    r = srv.get(f"/users/{alice}")
    check_error(r, 404, "not_found", "deleted user")
    r = srv.get("/users?limit=1")
    check(r.status == 200 and len(r.json["items"]) == 1 and r.json["total"] >= 3,
          "pagination", r)
    r = srv.get("/users?limit=1&offset=1")
    check(r.status == 200 and r.json["offset"] == 1, "pagination offset", r)
    r = srv.get("/users?limit=5000")
    check_error(r, 400, "bad_request", "limit too big", field="limit")
    r = srv.get("/users?offset=x")
    check_error(r, 400, "bad_request", "bad offset", field="offset")


def test_tokens(srv, tokens):
    check_auth(srv, "GET", "/tokens", "viewer", tokens=tokens)
    r = srv.post("/tokens", {"name": "ci-script", "expires_days": 30}, token=tokens["viewer"])
    check(r.status == 201 and r.json["token"].startswith("mlt_"), "create API token", r)
    api_tok, tid = r.json["token"], r.json["id"]
    r = srv.get("/me", token=api_tok)
    check(r.status == 200 and r.json["role"] == "viewer", "API token works", r)
    r = srv.get("/tokens", token=api_tok)
    check(r.status == 200 and all("token" not in t for t in r.json["items"]),
          "secrets never listed", r)
    check(all(t["username"] == r.json["items"][0]["username"] for t in r.json["items"]),
          "viewer sees only own tokens", r)
    r = srv.get("/tokens?all=1", token=api_tok)
    check_error(r, 403, "forbidden", "all=1 needs admin")
    r = srv.delete(f"/tokens/{tid}", token=tokens["operator"])
    check_error(r, 404, "not_found", "cannot revoke someone else's token")
    r = srv.delete(f"/tokens/{tid}")
    check(r.status == 204, "admin revokes a token", r)
    r = srv.get("/me", token=api_tok)
    check_error(r, 401, "unauthorized", "revoked token")
    r = srv.post("/tokens", {"name": "x", "expires_days": 0})
    check_error(r, 400, "bad_request", "expires_days 0", field="expires_days")


def test_audit(srv, tokens):
    check_auth(srv, "GET", "/audit", "admin", tokens=tokens)
    r = srv.get("/audit?action=create&object_type=user")
    check(r.status == 200 and r.json["total"] >= 3, "audit filtered", r)
    check(all(e["action"] == "create" for e in r.json["items"]), "audit filter applies", r)
    r = srv.get("/audit?action=login_failed")
    check(r.status == 200 and r.json["total"] >= 2, "failed logins audited", r)
    r = srv.get("/audit?object_id=abc")
    check_error(r, 400, "bad_request", "audit bad object_id", field="object_id")


def test_limits(srv):
    big = b'{"username": "' + b"a" * (2 << 20) + b'"}'
    r = srv.raw("POST", "/users", big)
    check_error(r, 413, "payload_too_large", "huge body")
    # Chunked, so the size shows only as the body arrives: still a 413 with a body.
    c = srv.conn()
    c.request("POST", "/api/v1/users", body=iter([b'{"username": "', b"a" * (2 << 20), b'"}']),
              headers={"Authorization": "Bearer " + srv.token,
                       "Content-Type": "application/json"}, encode_chunked=True)
    resp = c.getresponse()
    body = resp.read()
    c.close()
    check(resp.status == 413 and b"payload_too_large" in body, "huge chunked body",
          (resp.status, body[:200]))
    r = srv.raw("POST", "/users", b'{"username": ')
    check_error(r, 400, "bad_json", "truncated JSON")
    r = srv.raw("POST", "/users", b'[1, 2, 3]')
    check_error(r, 400, "bad_request", "array body")
    r = srv.raw("POST", "/users", b'{"a": 1, "a": 2}')
    check_error(r, 400, "bad_json", "duplicate keys")
    r = srv.raw("POST", "/users", b'{"username": "x\\u0000y", "password": "12345678",'
                b' "role": "viewer"}')
    check_error(r, 400, "bad_json", "NUL in a string")
    r = srv.raw("POST", "/users", b'\xff\xfe\x00garbage')
    check_error(r, 400, "bad_json", "binary garbage")
    r = srv.raw("POST", "/users", b'{}', headers={"Content-Type": "text/plain"})
    check_error(r, 415, "unsupported_media_type", "wrong content type")
    r = srv.raw("PUT", "/users", b'{}')
    check_error(r, 405, "method_not_allowed", "wrong method")
    check("GET" in r.headers.get("Allow", ""), "Allow header", r.headers)
    r = srv.get("/nothing/here")
    check_error(r, 404, "not_found", "unknown path")
    r = srv.raw("GET", "//elsewhere")
    check_error(r, 404, "not_found", "outside /api/v1")
    r = srv.get("/users/" + "1/" * 50)
    check_error(r, 404, "not_found", "deep path")
    q = "&".join(f"k{i}=v" for i in range(40))
    r = srv.get("/users?" + q)
    check_error(r, 400, "bad_request", "too many query arguments")


def test_concurrency(srv):
    """Many clients at once: every request answered correctly."""
    results = []

    def worker(n):
        for i in range(10):
            r = srv.post("/tokens", {"name": f"t{n}-{i}"})
            results.append(r.status)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(results.count(201) == 80, "80 concurrent creations", str(set(results)))


def main():
    with Server() as srv:
        test_config(srv.dir)
        check("created a self-signed certificate" in srv.proc.stdout.readline(),
              "first start prints the certificate")
        test_sessions(srv)
        tokens = {"viewer": srv.user_token("vera", "viewer"),
                  "operator": srv.user_token("otto", "operator")}
        test_users(srv, tokens)
        test_tokens(srv, tokens)
        test_audit(srv, tokens)
        test_limits(srv)
        test_concurrency(srv)
        # Restart: users, tokens and the certificate persist.
        fp = tls_fingerprint(srv.port)
        tok = srv.token
        rc = srv.stop()
        check(rc == 0, "clean stop exits 0", str(rc))
        srv.start()
        srv.token = tok
        check(tls_fingerprint(srv.port) == fp, "same certificate after restart")
        r = srv.get("/me", token=tok)
        check(r.status == 200, "session survives restart", r)
        r = srv.get("/users")
        check(r.status == 200 and any(u["username"] == "vera" for u in r.json["items"]),
              "users survive restart", r)
        r = srv.get("/audit?action=login")
        check(r.status == 200 and r.json["total"] >= 3, "audit survives restart", r)
        test_generated_password(srv.dir)
    done()


def test_generated_password(tmp):
    """Without --admin-password-file the first start prints a password once."""
    data = os.path.join(tmp, "gen")
    portfile = os.path.join(tmp, "genport")
    empty = os.path.join(tmp, "empty.conf")
    args = [MLSERVER, "--data-dir", data, "--listen", "127.0.0.1:0", "--port-file", portfile,
            "--config", empty]
    for attempt in range(2):
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        lines = []
        while not os.path.exists(portfile) and p.poll() is None:
            import time
            time.sleep(0.05)
        p.terminate()
        out, _ = p.communicate(timeout=30)
        os.unlink(portfile)
        pw = [w for line in out.splitlines() if "with password" in line
              for w in line.split()[-1:]]
        if attempt == 0:
            check(len(pw) == 1 and len(pw[0]) >= 16, "password generated and printed", out)
        else:
            check(not pw, "password printed only on the first start", out)


if __name__ == "__main__":
    main()
