#!/usr/bin/env python3
"""Network boot against a real mlserver (docs/netboot.md): the boot
listener's first stage, the per-machine iPXE scripts and the mode that
applies (unknown MAC, default, group, machine, temporary), the files with
Range and HEAD, refusals (paths out of the root, symbolic links, methods,
bad MACs and Host headers), the boot API and its roles, a deployment's
boot mode, the install task's mode removed by the agent's report, and
start-up refusals of bad [boot] settings."""
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import time

import apilib

from apilib import Server, check, check_error, check_auth, done


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def boot_get(port, path, headers=None, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        c.request(method, path, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        c.close()


def script(port, mac):
    st, body, _ = boot_get(port, "/boot/" + mac)
    return st, body.decode()


def kernel_line(text):
    return next((line for line in text.splitlines() if line.startswith("kernel ")), "")


def db(srv):
    c = sqlite3.connect(os.path.join(srv.dir, "data", "mlserver.db"), timeout=10)
    c.execute("PRAGMA busy_timeout = 10000")
    return c


def main():
    port, tport = free_port(), free_port()
    srv = Server(config=None, extra_args=["--set", "boot.enabled=yes", "--set",
                                          f"boot.listen=127.0.0.1:{port}", "--set",
                                          "boot.cmdline=console=ttyS0 quiet",
                                          "--set", "tftp.enabled=yes",
                                          "--set", f"tftp.listen=127.0.0.1:{tport}"])
    root_dir = os.path.join(srv.dir, "data", "boot")
    full = os.path.join(root_dir, "full")
    os.makedirs(full)
    kernel = os.urandom(300000)
    with open(os.path.join(full, "vmlinuz"), "wb") as f:
        f.write(kernel)
    with open(os.path.join(full, "initrd.img"), "wb") as f:
        f.write(os.urandom(1000))
    with open(os.path.join(srv.dir, "secret"), "w") as f:
        f.write("secret\n")
    os.symlink(os.path.join(srv.dir, "secret"), os.path.join(full, "out"))
    os.makedirs(os.path.join(full, "sub"))
    srv.login()
    check("boot: serving" in srv.logtext(), "the boot listener logs its start", srv.logtext())

    # ---- first stage and an unknown machine ----
    st, body, hdr = boot_get(port, "/boot.ipxe")
    text = body.decode()
    check(st == 200 and text.startswith("#!ipxe\n")
          and f"chain http://127.0.0.1:{port}/boot/${{netX/mac:hexhyp}}" in text,
          "first stage chains the machine's script", text)
    check(hdr.get("Content-Type", "").startswith("text/plain"), "scripts are text/plain", hdr)
    st, text = script(port, "52-54-00-00-00-09")
    k = kernel_line(text)
    check(st == 200 and text.startswith("#!ipxe\n")
          and f"kernel http://127.0.0.1:{port}/files/full/vmlinuz initrd=initrd.img" in k
          and f"ml.server=https://127.0.0.1:{srv.port}" in k and " ml.fp=" in k
          and k.endswith("console=ttyS0 quiet || goto failed") and "boot=live" not in k
          and "ml.token" not in k and "unknown machine" in text,
          "unknown MAC: Microlinux, no squashfs, the API URL and fingerprint", text)
    # A squashfs in the profile adds live-boot's fetch=.
    with open(os.path.join(full, "filesystem.squashfs"), "wb") as f:
        f.write(b"hsqs" + os.urandom(5000))
    st, text = script(port, "52:54:00:00:00:09")
    check(f"boot=live fetch=http://127.0.0.1:{port}/files/full/filesystem.squashfs"
          in kernel_line(text), "squashfs: boot=live fetch=", text)

    # ---- TFTP's built-in first stage and iPXE loaders ----
    def tftp(name):
        p = subprocess.run(["curl", "-s", "--max-time", "20", f"tftp://127.0.0.1:{tport}/{name}"],
                           capture_output=True)
        return p.returncode, p.stdout
    rc, data = tftp("boot.ipxe")
    check(rc == 0 and data.startswith(b"#!ipxe\n")
          and f"chain http://${{mlboot}}:{port}/boot/${{netX/mac:hexhyp}}".encode() in data
          and b"set mlboot ${proxydhcp/next-server}" in data
          and b"set mlboot ${next-server}" in data and b"set mlboot ${pxebs/next-server}" in data,
          "TFTP boot.ipxe: the first stage at the (proxy) DHCP's next-server", (rc, data))
    for name in ("undionly.kpxe", "ipxe.efi", "snponly.efi"):
        rc, data = tftp(name)
        with open("/usr/lib/ipxe/" + name, "rb") as f:
            want = f.read()
        check(rc == 0 and data == want, "TFTP built-in " + name, (rc, len(data), len(want)))
    with open(os.path.join(srv.dir, "data", "tftp", "boot.ipxe"), "w") as f:
        f.write("#!ipxe\necho own\n")
    rc, data = tftp("boot.ipxe")
    check(rc == 0 and data == b"#!ipxe\necho own\n", "the root's own boot.ipxe wins", data)
    rc, data = tftp("nothing.kpxe")
    check(rc != 0, "other names are not built in", rc)

    # ---- files, Range, HEAD, refusals ----
    st, body, hdr = boot_get(port, "/files/full/vmlinuz")
    check(st == 200 and body == kernel and hdr.get("Accept-Ranges") == "bytes",
          "whole kernel", (st, len(body), hdr))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", {"Range": "bytes=1000-1999"})
    check(st == 206 and body == kernel[1000:2000]
          and hdr.get("Content-Range") == "bytes 1000-1999/300000", "range 1000-1999",
          (st, len(body), hdr))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", {"Range": "bytes=-100"})
    check(st == 206 and body == kernel[-100:], "suffix range", (st, len(body)))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", {"Range": "bytes=299990-"})
    check(st == 206 and body == kernel[299990:], "open range", (st, len(body)))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", {"Range": "bytes=300000-"})
    check(st == 416 and hdr.get("Content-Range") == "bytes */300000", "unsatisfiable range",
          (st, hdr))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", {"Range": "bytes=0-1,5-6"})
    check(st == 200 and body == kernel, "several ranges: the whole file", (st, len(body)))
    st, body, hdr = boot_get(port, "/files/full/vmlinuz", method="HEAD")
    check(st == 200 and body == b"" and hdr.get("Content-Length") == "300000", "HEAD",
          (st, hdr))
    st, body, _ = boot_get(port, "/files/full/nope")
    check(st == 404, "missing file 404", st)
    st, body, _ = boot_get(port, "/files/full/../../secret")
    check(st == 403 and b"secret" not in body, "'..' refused", (st, body))
    st, body, _ = boot_get(port, "/files/full/out")
    check(st == 403 and b"secret" not in body, "symbolic link out of the root refused",
          (st, body))
    st, body, _ = boot_get(port, "/files/full/sub")
    check(st == 403, "directory refused", st)
    st, body, _ = boot_get(port, "/boot.ipxe", method="POST")
    check(st == 405, "POST refused", st)
    st, body, _ = boot_get(port, "/api/v1/machines")
    check(st == 404, "no API on the boot listener", st)
    st, body, _ = boot_get(port, "/boot/zz-zz")
    check(st == 400 and b"MAC" in body, "bad MAC", (st, body))
    st, body, _ = boot_get(port, "/boot/52-54-00-00-00-09", {"Host": "evil\"host"})
    check(st == 400, "bad Host header", (st, body))

    # ---- modes: default, group, machine, temporary ----
    r = srv.post("/machines", {"name": "pc1", "macs": ["52:54:00:00:00:01"]})
    check(r.status == 201, "create pc1", r)
    m1 = r.json["id"]
    r = srv.post("/machines", {"name": "pc2", "macs": ["52:54:00:00:00:02"]})
    m2 = r.json["id"]
    r = srv.post("/groups", {"name": "lab", "members": [m1, m2]})
    check(r.status == 201, "create group", r)
    g = r.json["id"]
    st, text = script(port, "52-54-00-00-00-01")
    check("ml.name=pc1" in kernel_line(text) and "[boot] default_mode" in text,
          "known machine: default mode and its name", text)
    r = srv.get(f"/machines/{m1}/boot")
    check(r.status == 200 and r.json["mode"] == "microlinux" and r.json["own"] is None
          and r.json["temporary"] is None and r.json["last_boot_mode"] == "microlinux"
          and r.json["last_boot_at"], "GET boot: default and the last boot", r)
    r = srv.req("PUT", f"/groups/{g}/boot", {"mode": "local"})
    check(r.status == 200 and r.json["mode"] == "local", "group mode local", r)
    st, text = script(port, "52-54-00-00-00-02")
    check("sanboot" in text and "kernel" not in text and "group lab" in text,
          "group's local mode", text)
    r = srv.req("PUT", f"/machines/{m2}/boot", {"mode": "shell"})
    check(r.status == 200 and r.json["mode"] == "shell" and r.json["own"] == "shell"
          and r.json["why"] == "machine setting", "machine mode shell", r)
    st, text = script(port, "52-54-00-00-00-02")
    check(" ml.shell=1" in kernel_line(text), "shell mode's script", text)
    r = srv.req("PUT", f"/machines/{m2}/boot", {"mode": None})
    check(r.status == 200 and r.json["mode"] == "local" and r.json["own"] is None,
          "machine mode cleared: the group's again", r)
    r = srv.req("PUT", f"/machines/{m2}/boot/temporary",
                {"mode": "microlinux", "reason": "repair", "expires_in_s": 3600})
    check(r.status == 200 and r.json["mode"] == "microlinux"
          and r.json["temporary"]["reason"] == "repair" and r.json["temporary"]["expires_at"]
          and r.json["temporary"]["created_by"] == "admin", "temporary mode", r)
    check(srv.delete(f"/machines/{m2}/boot/temporary").status == 204, "temporary removed")
    r = srv.get(f"/machines/{m2}/boot")
    check(r.json["mode"] == "local" and r.json["temporary"] is None, "back to local", r)
    r = srv.req("PUT", f"/groups/{g}/boot/temporary", {"mode": "microlinux"})
    check(r.status == 200 and r.json["machines"] == 2, "group temporary", r)
    r = srv.get(f"/machines/{m1}/boot")
    check(r.json["mode"] == "microlinux" and r.json["why"] == "temporary", "member temporary",
          r)
    r = srv.delete(f"/groups/{g}/boot/temporary")
    check(r.status == 200 and r.json["machines"] == 2, "group temporary removed", r)
    r = srv.get(f"/groups/{g}/boot")
    check(r.status == 200 and r.json["mode"] == "local" and r.json["name"] == "lab",
          "GET group boot", r)

    # ---- API errors and roles ----
    check_error(srv.req("PUT", f"/machines/{m1}/boot", {"mode": "pxe"}), 400, "bad_request",
                "bad mode", "mode")
    check_error(srv.req("PUT", f"/machines/{m1}/boot", {}), 400, "bad_request", "no mode",
                "mode")
    check_error(srv.req("PUT", f"/machines/{m1}/boot", {"mode": "local", "x": 1}), 400,
                "bad_request", "unknown field")
    check_error(srv.req("PUT", f"/machines/{m1}/boot/temporary", {"mode": None}), 400,
                "bad_request", "temporary needs a mode", "mode")
    check_error(srv.req("PUT", f"/machines/{m1}/boot/temporary",
                        {"mode": "local", "expires_in_s": 5}), 400, "bad_request",
                "expiry too short", "expires_in_s")
    check_error(srv.req("PUT", "/machines/999/boot", {"mode": "local"}), 404, "not_found",
                "unknown machine")
    check_error(srv.get("/machines/999/boot"), 404, "not_found", "GET unknown machine")
    check_error(srv.req("PUT", "/groups/999/boot/temporary", {"mode": "local"}), 404,
                "not_found", "unknown group")
    tokens = {role: srv.user_token("u" + role, role) for role in ("viewer", "operator")}
    tokens["admin"] = srv.token
    check_auth(srv, "GET", f"/machines/{m1}/boot", "viewer", None, tokens)
    check_auth(srv, "PUT", f"/machines/{m1}/boot", "operator", {"mode": "local"}, tokens)
    check_auth(srv, "PUT", f"/groups/{g}/boot/temporary", "operator", {"mode": "local"},
               tokens)

    # ---- a deployment's boot mode ----
    c = db(srv)
    now = int(time.time())
    img = c.execute("INSERT INTO images (name, created_at, updated_at) VALUES ('win', ?, ?)",
                    (now, now)).lastrowid
    ver = c.execute("INSERT INTO image_versions (image_id, number, state, created_at)"
                    " VALUES (?, 1, 'ready', ?)", (img, now)).lastrowid
    c.commit()
    c.close()
    dep = {"name": "d1", "version_id": ver, "targets": {"groups": [g]},
           "schedule": {"kind": "at", "at": "2099-01-01T00:00:00Z"},
           "options": {"boot_mode": "microlinux"}}
    r = srv.post("/deployments", dep)
    check(r.status == 201 and r.json["options"]["boot_mode"] == "microlinux",
          "deployment with a boot mode", r)
    did = r.json["id"]
    r = srv.patch(f"/deployments/{did}", {"options": {"boot_mode": None}})
    check(r.status == 200 and r.json["options"]["boot_mode"] is None, "boot mode cleared", r)
    dep["name"] = "d2"
    dep["options"] = {"boot_mode": "pxe"}
    check_error(srv.post("/deployments", dep), 400, "bad_request", "bad deployment boot mode",
                "options.boot_mode")

    # ---- install: the agent's report removes the temporary install mode ----
    r = srv.post("/enroll-tokens", {"name": "lab"})
    tok = r.json["token"]
    r = srv.post("/agent/enroll", {"token": tok, "name": None, "hostname": "pc1",
                                   "macs": ["52:54:00:00:00:01"], "ips": [],
                                   "agent_version": "t"}, token="")
    check(r.status == 201 and r.json["machine_id"] == m1, "pc1 enrolls", r)
    cred = r.json["credential"]
    r = srv.req("PUT", f"/machines/{m1}/boot/temporary", {"mode": "install"})
    check(r.status == 200 and r.json["mode"] == "install", "install mode", r)
    time.sleep(1.1)
    install_done = {"install": {"state": "done", "disk": "/dev/vda", "at": now}}
    r = srv.post("/agent/hello", install_done, token=cred)
    check(r.status == 200 and srv.get(f"/machines/{m1}/boot").json["mode"] == "install",
          "an old install report before the install boot keeps the mode", r)
    st, text = script(port, "52-54-00-00-00-01")
    check(" ml.install=1" in kernel_line(text), "install mode's script", text)
    r = srv.post("/agent/hello", {"install": {"state": "failed", "reason": "x"}}, token=cred)
    check(srv.get(f"/machines/{m1}/boot").json["mode"] == "install",
          "a failed install keeps the mode", r)
    r = srv.post("/agent/hello", install_done, token=cred)
    r = srv.get(f"/machines/{m1}/boot")
    check(r.json["mode"] == "local" and r.json["temporary"] is None,
          "a finished install removes the mode: the group's local again", r)
    check_error(srv.post("/agent/hello", {"install": "done"}, token=cred), 400, "bad_request",
                "install must be an object", "install")

    # ---- mlctl machine boot / group boot / deploy --boot ----
    test_mlctl(srv, m1, g)

    # ---- the enrollment token in scripts, and bad settings ----
    srv.stop()
    tokfile = os.path.join(srv.dir, "boot-token")
    with open(tokfile, "w") as f:
        f.write(tok + "\n")
    srv.extra_args += ["--set", f"boot.enroll_token_file={tokfile}"]
    srv.start()
    st, text = script(port, "52-54-00-00-00-07")
    check(f" ml.token={tok}" in kernel_line(text), "enroll token in the script", text)
    test_token_reload(srv, port, tokfile, tok)
    srv.stop()
    bad = [
        (["--set", "boot.profile=../x"], "[boot] profile"),
        (["--set", "boot.default_mode=pxe"], "default_mode: 'pxe'"),
        (["--set", "boot.cmdline=a\"b"], "[boot] cmdline"),
        (["--set", "boot.server_url=ftp://x"], "[boot] server_url"),
    ]
    base_args = list(srv.extra_args)
    for args, msg in bad:
        srv.extra_args = base_args + args
        ok = srv.start(expect_ok=False)
        check(not ok and msg in srv.logtext() + srv.stdout, "refused: " + msg,
              srv.logtext()[-300:])
        srv.stop()
    with open(tokfile, "w") as f:
        f.write("not-a-token\n")
    srv.extra_args = base_args
    ok = srv.start(expect_ok=False)
    check(not ok and "not an enrollment token" in srv.logtext() + srv.stdout,
          "a bad token file refused", srv.logtext()[-300:])
    srv.stop()
    srv.cleanup()
    done()


def test_token_reload(srv, port, tokfile, tok):
    """A changed enroll_token_file is read again; a bad or missing one keeps the last token."""
    def put(text):  # as an editor or mlctl ... > file.new && mv would
        with open(tokfile + ".new", "w") as f:
            f.write(text)
        os.replace(tokfile + ".new", tokfile)

    def token_given():
        st, text = script(port, "52-54-00-00-00-07")
        return next((a[9:] for a in kernel_line(text).split() if a.startswith("ml.token=")), "")

    srv.login()
    r = srv.post("/enroll-tokens", {"name": "lab2"})
    check(r.status == 201, "a second enrollment token", r)
    tok2 = r.json.get("token", "")
    put(tok2 + "\n")
    check(token_given() == tok2, "a new token file is read at the next boot")
    check("a new enrollment token read from" in srv.logtext(), "the new token is logged")
    put("not-a-token\n")
    check(token_given() == tok2, "a bad token file keeps the last token")
    check("not an enrollment token (mle_ and 64 hex digits; mlctl enroll-token create); "
          "machines keep getting the token read before" in srv.logtext(),
          "a bad token file is logged", srv.logtext()[-400:])
    os.unlink(tokfile)
    check(token_given() == tok2 and token_given() == tok2, "a removed token file keeps the last token")
    check(srv.logtext().count("No such file or directory; machines keep getting") == 1,
          "a removed token file is logged once", srv.logtext()[-400:])
    with open(tokfile, "w") as f:
        f.write(tok + "\n")
    check(token_given() == tok, "the token file written in place is read again")


def test_mlctl(srv, m1, g):
    home = tempfile.mkdtemp(prefix="mlboot-home-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCTL_")}
    env.update({"HOME": home, "TZ": "UTC", "MLCTL_SERVER": f"https://127.0.0.1:{srv.port}",
                "MLCTL_TOKEN": srv.token,
                "MLCTL_FINGERPRINT": srv.get("/health").json["tls_fingerprint"],
                "MLCTL_CONFIG": os.path.join(home, "none")})
    mlctl = os.path.join(apilib.BUILD, "src", "cli", "mlctl")

    def run(*args):
        return subprocess.run([mlctl] + list(args), capture_output=True, text=True, env=env,
                              timeout=60)

    r = run("machine", "boot", "pc1")
    check(r.returncode == 0 and r.stdout.startswith("pc1 boots local (group lab)")
          and "own mode:   -" in r.stdout and "last boot:" in r.stdout,
          "mlctl machine boot shows", (r.stdout, r.stderr))
    r = run("machine", "boot", "pc1", "shell")
    check(r.returncode == 0 and "pc1 boots shell (machine setting)" in r.stdout,
          "mlctl machine boot sets", (r.stdout, r.stderr))
    r = run("machine", "boot", "pc1", "install", "--temporary", "--reason", "new disk",
            "--hours", "2")
    check(r.returncode == 0 and "temporary:  install, new disk, until" in r.stdout,
          "mlctl machine boot --temporary", (r.stdout, r.stderr))
    r = run("--json", "machine", "boot", "pc1")
    check(r.returncode == 0 and json.loads(r.stdout)["temporary"]["mode"] == "install",
          "mlctl --json machine boot", (r.stdout, r.stderr))
    r = run("machine", "boot", "pc1", "--clear-temporary")
    check(r.returncode == 0 and "removed" in r.stdout, "mlctl --clear-temporary",
          (r.stdout, r.stderr))
    r = run("machine", "boot", "pc1", "default")
    check(r.returncode == 0 and "pc1 boots local (group lab)" in r.stdout,
          "mlctl machine boot default", (r.stdout, r.stderr))
    r = run("group", "boot", "lab", "microlinux", "--temporary")
    check(r.returncode == 0 and "2 machines boot microlinux" in r.stdout,
          "mlctl group boot --temporary", (r.stdout, r.stderr))
    r = run("group", "boot", "lab", "--clear-temporary")
    check(r.returncode == 0, "mlctl group boot --clear-temporary", (r.stdout, r.stderr))
    r = run("group", "boot", "lab")
    check(r.returncode == 0 and r.stdout.strip() == "group lab: local",
          "mlctl group boot shows", (r.stdout, r.stderr))
    for args, needle in ((["machine", "boot", "pc1", "pxe"], "not a boot mode"),
                         (["machine", "boot", "pc1", "--temporary"], "needs a MODE"),
                         (["machine", "boot", "pc1", "local", "--hours", "2"],
                          "go with --temporary"),
                         (["machine", "boot", "pc1", "local", "--temporary", "--hours", "0"],
                          "--hours"),
                         (["machine", "boot", "pc1", "local", "--clear-temporary"],
                          "--clear-temporary")):
        r = run(*args)
        check(r.returncode == 2 and needle in r.stderr, "mlctl refuses " + " ".join(args),
              (r.returncode, r.stderr))
    r = run("machine", "boot", "nosuch")
    check(r.returncode != 0 and "nosuch" in r.stderr, "mlctl unknown machine",
          (r.returncode, r.stderr))
    r = run("deploy", "set", "d1", "--boot", "install")
    check(r.returncode == 0, "mlctl deploy set --boot", (r.stdout, r.stderr))
    r = run("--json", "deploy", "show", "d1")
    check(r.returncode == 0 and json.loads(r.stdout)["options"]["boot_mode"] == "install",
          "deploy --boot stored", (r.stdout, r.stderr))
    subprocess.run(["rm", "-rf", home])


if __name__ == "__main__":
    main()
