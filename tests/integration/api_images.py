"""mlserver's image library through its API, against a real server over HTTPS:
image metadata, imports from a path and from streamed uploads, versions
rebuilt byte for byte with `mlcast unpack --chunks`, shared chunks, GC,
verification, every endpoint's auth and bad input, and a SIGKILL during an
import followed by a restart (the database and the chunk store must agree).

Test images are made here: an ext4 file system (mkfs.ext4 -d) holding files
copied from /usr, sparse; a copy with a few changed blocks; its qcow2
(qemu-img convert); and 512 MiB of random data mixed with zeros for the crash.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apilib import BUILD, Server, check, check_auth, check_error, done  # noqa: E402

MLCAST = os.path.join(BUILD, "src", "mcast", "mlcast")
MiB = 1 << 20
CHUNK = 1 << 20


def log(msg):
    print(f"# {msg}", flush=True)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(4 * MiB)
            if not b:
                return h.hexdigest()
            h.update(b)


def same_file(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


# ---- test images -------------------------------------------------------------

def make_ext4(tmp, path, size_mib=128, fill_mib=48):
    """An ext4 image of size_mib holding about fill_mib of /usr's files, sparse."""
    stage = os.path.join(tmp, "stage")
    os.makedirs(stage)
    total = 0
    for top in ("/usr/share", "/usr/lib", "/usr/bin"):
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                src = os.path.join(root, name)
                try:
                    st = os.lstat(src)
                except OSError:
                    continue
                if not (st.st_mode & 0o170000 == 0o100000) or st.st_size > 4 * MiB:
                    continue
                dst = os.path.join(stage, os.path.relpath(src, "/usr"))
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
        if total >= fill_mib * MiB:
            break
    r = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "mltest", "-d", stage, path,
                        f"{size_mib}M"], capture_output=True, text=True)
    shutil.rmtree(stage)
    if r.returncode != 0:
        raise RuntimeError("mkfs.ext4 -d failed: " + r.stderr)
    return total


def make_changed(src, dst, offsets):
    """A copy of src with 4 KiB of new bytes at each offset."""
    subprocess.run(["cp", "--sparse=always", src, dst], check=True)
    with open(dst, "r+b") as f:
        for off in offsets:
            f.seek(off)
            f.write(os.urandom(4096))


def make_crash_image(path, mib=512):
    """Random data mixed with zeros (sparse holes), mib MiB."""
    with open(path, "wb") as f:
        for i in range(mib):
            if i % 2 == 0:
                f.write(os.urandom(MiB))
            else:
                f.seek(MiB, os.SEEK_CUR)
        f.truncate(mib * MiB)


# ---- helpers over the API and the data directory -----------------------------

def data_dir(srv):
    return os.path.join(srv.dir, "data")


def wait_version(srv, iid, vid, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = srv.get(f"/images/{iid}/versions/{vid}")
        if r.status != 200 or r.json["state"] != "importing":
            return r
        time.sleep(0.1)
    return srv.get(f"/images/{iid}/versions/{vid}")


def unpack(srv, vid, out):
    """Rebuilds version vid from the chunk store; returns (ok, message)."""
    d = data_dir(srv)
    r = subprocess.run([MLCAST, "unpack", "--quiet", "--chunks", os.path.join(d, "chunks"),
                        os.path.join(d, "versions", str(vid)), out],
                       capture_output=True, text=True)
    return r.returncode == 0, r.stderr.strip()


def manifest_chunks(srv, vid):
    """{sha256: stored_len} of version vid's non-zero chunks (mlcast info)."""
    r = subprocess.run([MLCAST, "info", "--json", "--chunks",
                        os.path.join(data_dir(srv), "versions", str(vid))],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("mlcast info: " + r.stderr)
    return {c["sha256"]: c["stored_len"] for c in json.loads(r.stdout)["chunk_list"]
            if c["kind"] != "zero"}


def chunk_files(srv):
    """{sha256: size} of every chunk file in the store, and the temp files."""
    root = os.path.join(data_dir(srv), "chunks")
    found, temps = {}, []
    for sub in sorted(os.listdir(root)):
        p = os.path.join(root, sub)
        if len(sub) != 2 or not os.path.isdir(p):
            continue
        for name in os.listdir(p):
            if name.startswith(".tmp."):
                temps.append(name)
            elif len(name) == 66:
                found[name[:64]] = os.path.getsize(os.path.join(p, name))
    return found, temps


def upload(srv, iid, body, length=None, note=None, chunked=False, token=None):
    """PUT an upload; body is bytes, a file object or an iterable of bytes."""
    path = f"/api/v1/images/{iid}/versions/upload" + (f"?note={note}" if note else "")
    h = {"Authorization": "Bearer " + (token or srv.token),
         "Content-Type": "application/octet-stream"}
    if length is not None:
        h["Content-Length"] = str(length)
    c = srv.conn(timeout=300)
    try:
        try:
            c.request("PUT", path, body=body, headers=h, encode_chunked=chunked)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            pass  # refused before the body was read: the answer is still there
        r = c.getresponse()
        data = r.read().decode()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def file_pieces(path, piece=3 * MiB + 17):
    with open(path, "rb") as f:
        while True:
            b = f.read(piece)
            if not b:
                return
            yield b


def raw_tls(srv):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return ctx.wrap_socket(s)


# ---- the tests -----------------------------------------------------------------

def test_images_crud(srv, tokens):
    log("image metadata")
    good = {"name": "lab-debian_12.x", "description": "Debian for room B",
            "os_type": "linux", "cpus": 4, "memory_mb": 4096, "nic_model": "e1000",
            "vlan": 20, "display": "spice", "firmware": "uefi", "offline": True}
    check_auth(srv, "POST", "/images", "operator", {"name": "x"}, tokens)
    check_auth(srv, "GET", "/images", "viewer", None, tokens)
    r = srv.post("/images", good)
    check(r.status == 201, "create image", r)
    img = r.json
    for k, v in good.items():
        check(img.get(k) == v, f"created image {k}", r)
    check(img["latest_version"] is None and img["versions"] == 0, "new image: no versions", r)
    r = srv.post("/images", {"name": "defaults"})
    check(r.status == 201 and r.json["os_type"] == "other" and r.json["cpus"] == 2
          and r.json["memory_mb"] == 2048 and r.json["nic_model"] == "virtio"
          and r.json["vlan"] is None and r.json["display"] == "local"
          and r.json["firmware"] == "bios" and r.json["offline"] is False,
          "defaults of a new image", r)
    dflt = r.json["id"]
    bad = [
        ({"name": "a b"}, "name"), ({"name": ""}, "name"), ({"name": "x" * 65}, "name"),
        ({"name": "ok", "colour": "red"}, "colour"), ({"description": "no name"}, "name"),
        ({"name": "ok", "os_type": "beos"}, "os_type"), ({"name": "ok", "cpus": 0}, "cpus"),
        ({"name": "ok", "cpus": 257}, "cpus"), ({"name": "ok", "cpus": "4"}, "cpus"),
        ({"name": "ok", "memory_mb": 63}, "memory_mb"),
        ({"name": "ok", "memory_mb": 1048577}, "memory_mb"),
        ({"name": "ok", "nic_model": "ne2000"}, "nic_model"), ({"name": "ok", "vlan": 0}, "vlan"),
        ({"name": "ok", "vlan": 4095}, "vlan"), ({"name": "ok", "display": "vnc"}, "display"),
        ({"name": "ok", "firmware": "coreboot"}, "firmware"),
        ({"name": "ok", "offline": "yes"}, "offline"),
        ({"name": "ok", "description": "x" * 1001}, "description"),
    ]
    for body, field in bad:
        check_error(srv.post("/images", body), 400, "bad_request", f"create image {body}", field)
    check_error(srv.post("/images", {"name": good["name"]}), 409, "conflict", "duplicate name",
                "name")
    r = srv.raw("POST", "/images", b'{"name": "x",', token=None)
    check_error(r, 400, "bad_json", "malformed JSON")

    iid = img["id"]
    check_auth(srv, "PATCH", f"/images/{iid}", "operator", {"cpus": 2}, tokens)
    r = srv.patch(f"/images/{iid}", {"cpus": 8, "vlan": None, "description": ""})
    check(r.status == 200 and r.json["cpus"] == 8 and r.json["vlan"] is None
          and r.json["description"] == "" and r.json["memory_mb"] == 4096, "patch image", r)
    check_error(srv.patch(f"/images/{iid}", {"name": "defaults"}), 409, "conflict",
                "rename onto a taken name", "name")
    check_error(srv.patch(f"/images/{iid}", {"firmware": "efi"}), 400, "bad_request",
                "patch bad enum", "firmware")
    check_error(srv.patch(f"/images/{iid}", {"id": 3}), 400, "bad_request",
                "patch unknown field", "id")
    check_error(srv.patch("/images/999999", {"cpus": 2}), 404, "not_found", "patch unknown id")
    r = srv.patch(f"/images/{iid}", {"name": "lab-debian"})
    check(r.status == 200 and r.json["name"] == "lab-debian", "rename image", r)
    r = srv.get(f"/images/{iid}", token=tokens["viewer"])
    check(r.status == 200 and r.json["name"] == "lab-debian", "viewer reads an image", r)
    check_error(srv.get("/images/999999"), 404, "not_found", "get unknown image")
    check_error(srv.get("/images/0"), 404, "not_found", "image id 0")
    r = srv.get("/images?limit=1")
    check(r.status == 200 and r.json["total"] == 2 and len(r.json["items"]) == 1,
          "list images paginated", r)
    check_error(srv.get("/images?limit=0"), 400, "bad_request", "list limit 0", "limit")
    check_auth(srv, "DELETE", f"/images/{dflt}", "operator", None, tokens)
    check(srv.delete(f"/images/{dflt}").status == 204, "delete an image without versions")
    check_error(srv.delete(f"/images/{dflt}"), 404, "not_found", "delete it again")
    return iid


def test_import_errors(srv, tokens, iid, tmp):
    log("import and upload refusals")
    path = os.path.join(tmp, "small.img")
    with open(path, "wb") as f:
        f.write(os.urandom(MiB))
    check_auth(srv, "POST", f"/images/{iid}/versions", "operator", {"path": path}, tokens)
    outside = os.path.join(os.path.dirname(tmp), "outside.img")
    shutil.copyfile(path, outside)
    link = os.path.join(tmp, "escape.img")
    os.symlink(outside, link)
    os.mkdir(os.path.join(tmp, "adir"))
    backed = os.path.join(tmp, "backed.qcow2")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", path, "-F", "raw", backed],
                   check=True)
    cases = [
        ({"path": "small.img"}, "absolute"),
        ({"path": os.path.join(tmp, "missing.img")}, "no such file"),
        ({"path": os.path.join(tmp, "adir")}, "directory"),
        ({"path": outside}, "outside"),
        ({"path": link}, "outside"),
        ({"path": "/dev/null"}, "outside"),
        ({"path": backed}, "backing file"),
    ]
    for body, words in cases:
        r = srv.post(f"/images/{iid}/versions", body)
        check_error(r, 400, "bad_request", f"import {body['path']}", "path")
        check(words in (r.json or {}).get("error", {}).get("message", ""),
              f"import {body['path']}: message says '{words}'", r)
    check_error(srv.post(f"/images/{iid}/versions", {"path": path, "size": 1}), 400,
                "bad_request", "import unknown field", "size")
    check_error(srv.post(f"/images/{iid}/versions", {}), 400, "bad_request", "import no path",
                "path")
    check_error(srv.post(f"/images/{iid}/versions", {"path": path, "note": "n" * 1001}), 400,
                "bad_request", "import note too long", "note")
    check_error(srv.post("/images/999999/versions", {"path": path}), 404, "not_found",
                "import into unknown image")
    r = srv.get(f"/images/{iid}/versions")
    check(r.status == 200 and r.json["total"] == 0, "refused imports leave no version", r)

    # Uploads refused before a byte of the body is read.
    st, body = upload(srv, iid, b"", length=0)
    check(st == 400, "empty upload refused", body)
    st, body = upload(srv, 999999, b"abc", length=3)
    check(st == 404, "upload into unknown image", body)
    st, body = upload(srv, iid, b"abc", length=3, note="bad%01note")
    check(st == 400 and body["error"]["field"] == "note", "upload note with a control char",
          body)
    st, body = upload(srv, iid, b"abc", length=3, token=tokens["viewer"])
    check(st == 403, "viewer may not upload", body)
    # Content-Length above [api] upload_max: 413 at once, no body sent at all.
    c = srv.conn()
    c.putrequest("PUT", f"/api/v1/images/{iid}/versions/upload")
    c.putheader("Authorization", "Bearer " + srv.token)
    c.putheader("Content-Length", str((1 << 40) + 1))
    c.endheaders()
    t0 = time.time()
    r = c.getresponse()
    data = json.loads(r.read() or b"null")
    c.close()
    check(r.status == 413 and data["error"]["code"] == "payload_too_large",
          "upload above upload_max: 413", (r.status, data))
    check(time.time() - t0 < 10, "413 without reading the body")
    # Content-Length above the free space: 507, no row.
    vfs = os.statvfs(data_dir(srv))
    free = vfs.f_bavail * vfs.f_frsize
    if free + (10 << 30) < (1 << 40):
        c = srv.conn()
        c.putrequest("PUT", f"/api/v1/images/{iid}/versions/upload")
        c.putheader("Authorization", "Bearer " + srv.token)
        c.putheader("Content-Length", str(free + (10 << 30)))
        c.endheaders()
        r = c.getresponse()
        data = json.loads(r.read() or b"null")
        c.close()
        check(r.status == 507 and data["error"]["code"] == "insufficient_storage",
              "upload above the free space: 507", (r.status, data))
    r = srv.get(f"/images/{iid}/versions")
    check(r.status == 200 and r.json["total"] == 0, "refused uploads leave no version", r)
    check(os.listdir(os.path.join(data_dir(srv), "uploads")) == [], "uploads/ is empty")


def test_imports(srv, tokens, iid, tmp, raw):
    """Path import, changed version, qcow2, uploads; returns {name: (vid, file)}."""
    vers = {}
    log("import from a path")
    r = srv.post(f"/images/{iid}/versions", {"path": raw, "note": "first"})
    check(r.status == 202 and r.json["state"] == "importing" and r.json["number"] == 1
          and r.json["source"] == raw and r.json["note"] == "first"
          and r.json["created_by"] == "admin" and 0 <= r.json["progress"] <= 1,
          "import answers 202 importing", r)
    v1 = r.json["id"]
    r = wait_version(srv, iid, v1)
    v = r.json
    check(v["state"] == "ready" and v["error"] is None, "version 1 ready", r)
    check(v["size"] == os.path.getsize(raw), "size is the image's", r)
    check(v["sha256"] == sha256_file(raw), "sha256 is the image's", r)
    check(v["chunk_size"] == CHUNK and v["chunk_count"] == (v["size"] + CHUNK - 1) // CHUNK,
          "chunk geometry", r)
    # A chunk that occurs twice in the image is stored once: new_bytes
    # counts it once, stored_size at each occurrence (docs/api.md).
    check(0 < v["new_bytes"] <= v["stored_size"] < v["size"],
          "stored and new bytes of a first version", r)
    check(v["progress"] == 1 and v["phase"] is None and v["finished_at"], "finished", r)
    out = os.path.join(tmp, "out.img")
    ok, msg = unpack(srv, v1, out)
    check(ok and same_file(raw, out), "unpack --chunks rebuilds version 1 byte for byte", msg)
    vers["v1"] = (v1, raw)

    log("a second version with a few changed blocks")
    changed = os.path.join(tmp, "changed.img")
    offs = [3 * MiB + 4096, 17 * MiB, 40 * MiB + 12288, 77 * MiB + 500 * 1024, 100 * MiB]
    make_changed(raw, changed, offs)
    r = srv.post(f"/images/{iid}/versions", {"path": changed})
    v2 = r.json["id"]
    check(r.status == 202 and r.json["number"] == 2, "second import", r)
    r = wait_version(srv, iid, v2)
    check(r.json["state"] == "ready", "version 2 ready", r)
    nb = r.json["new_bytes"]
    check(0 < nb <= len(offs) * (CHUNK + 1024),
          f"new_bytes {nb} covers only the {len(offs)} changed chunks", r)
    ok, msg = unpack(srv, v2, out)
    check(ok and same_file(changed, out), "version 2 rebuilt byte for byte", msg)
    vers["v2"] = (v2, changed)

    log("qcow2 import")
    qcow = os.path.join(tmp, "disk.qcow2")
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow], check=True)
    r = srv.post(f"/images/{iid}/versions", {"path": qcow})
    v3 = r.json["id"]
    r = wait_version(srv, iid, v3)
    check(r.json["state"] == "ready" and r.json["sha256"] == vers_sha(srv, iid, v1),
          "qcow2 version has the raw image's sha256", r)
    check(r.json["new_bytes"] == 0, "qcow2 of a stored image adds no chunk", r)
    vers["v3"] = (v3, raw)

    log("upload, chunked")
    st, body = upload(srv, iid, file_pieces(raw), note="up%20load", chunked=True)
    check(st == 202 and body["state"] == "importing" and body["source"] == "upload"
          and body["note"] == "up load", "chunked upload answers 202", (st, body))
    v4 = body["id"]
    r = wait_version(srv, iid, v4)
    check(r.json["state"] == "ready" and r.json["sha256"] == vers_sha(srv, iid, v1)
          and r.json["new_bytes"] == 0, "uploaded version ready, same image", r)
    ok, msg = unpack(srv, v4, out)
    check(ok and same_file(raw, out), "uploaded version rebuilt byte for byte", msg)
    vers["v4"] = (v4, raw)

    log("upload of a qcow2 with Content-Length")
    with open(qcow, "rb") as f:
        st, body = upload(srv, iid, f, length=os.path.getsize(qcow))
    check(st == 202, "qcow2 upload answers 202", (st, body))
    v5 = body["id"]
    r = wait_version(srv, iid, v5)
    check(r.json["state"] == "ready" and r.json["sha256"] == vers_sha(srv, iid, v1),
          "uploaded qcow2 has the raw image's sha256", r)
    vers["v5"] = (v5, raw)
    check(os.listdir(os.path.join(data_dir(srv), "uploads")) == [],
          "no upload file left after imports")

    r = srv.get(f"/images/{iid}/versions", token=tokens["viewer"])
    nums = [x["number"] for x in r.json["items"]]
    check(r.status == 200 and nums == sorted(nums, reverse=True) and len(nums) == 5,
          "versions listed newest first", r)
    r = srv.get(f"/images/{iid}")
    check(r.json["latest_version"] == v5 and r.json["versions"] == 5,
          "image shows its latest version", r)
    return vers


def vers_sha(srv, iid, vid):
    return srv.get(f"/images/{iid}/versions/{vid}").json["sha256"]


def test_upload_interrupted(srv, iid, raw):
    log("upload cut short")
    before = srv.get(f"/images/{iid}/versions").json["total"]
    s = raw_tls(srv)
    size = os.path.getsize(raw)
    s.sendall((f"PUT /api/v1/images/{iid}/versions/upload HTTP/1.1\r\n"
               f"Host: 127.0.0.1\r\nAuthorization: Bearer {srv.token}\r\n"
               f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n")
              .encode())
    sent = 0
    with open(raw, "rb") as f:
        while sent < size // 3:
            b = f.read(MiB)
            s.sendall(b)
            sent += len(b)
    # Wait until the server shows the upload in progress, then hang up.
    vid, seen = None, None
    deadline = time.time() + 30
    while time.time() < deadline:
        items = srv.get(f"/images/{iid}/versions?limit=1").json["items"]
        if items and items[0]["state"] == "importing" and items[0]["phase"] == "uploading" \
                and items[0]["progress"] > 0:
            vid, seen = items[0]["id"], items[0]
            break
        time.sleep(0.05)
    check(vid is not None, "an upload in progress shows as importing/uploading", seen)
    parts = os.listdir(os.path.join(data_dir(srv), "uploads"))
    check(parts == [f"{vid}.part"], "the upload is written to uploads/ID.part", parts)
    s.close()
    deadline = time.time() + 30
    r = None
    while time.time() < deadline:
        r = srv.get(f"/images/{iid}/versions/{vid}")
        if r.json["state"] != "importing":
            break
        time.sleep(0.05)
    check(r.json["state"] == "failed" and "upload aborted" in r.json["error"],
          "an interrupted upload fails its version", r)
    check(os.listdir(os.path.join(data_dir(srv), "uploads")) == [],
          "an interrupted upload leaves no file")
    check(not os.path.exists(os.path.join(data_dir(srv), "versions", str(vid))),
          "an interrupted upload leaves no version directory")
    r = srv.get(f"/images/{iid}/versions")
    check(r.json["total"] == before + 1
          and sum(1 for x in r.json["items"] if x["state"] == "ready") == before,
          "no new ready version", r)
    return vid


def test_two_at_once(srv, iid, tmp, raw):
    log("two imports at once")
    other = os.path.join(tmp, "other.img")
    make_changed(raw, other, [i * 9 * MiB for i in range(1, 12)])
    r = srv.post("/images", {"name": "second-image"})
    iid2 = r.json["id"]
    a = srv.post(f"/images/{iid}/versions", {"path": other, "note": "a"}).json["id"]
    b = srv.post(f"/images/{iid2}/versions", {"path": raw, "note": "b"}).json["id"]
    most = 0
    while True:
        lib = srv.get("/library").json
        most = max(most, lib["imports_running"])
        ra, rb = srv.get(f"/images/{iid}/versions/{a}"), srv.get(f"/images/{iid2}/versions/{b}")
        if ra.json["state"] != "importing" and rb.json["state"] != "importing":
            break
        time.sleep(0.05)
    log(f"  at most {most} imports seen running together")
    check(ra.json["state"] == "ready" and rb.json["state"] == "ready", "both imports ready",
          (ra, rb))
    for ii, vid in ((iid, a), (iid2, b)):
        r = srv.post(f"/images/{ii}/versions/{vid}/verify")
        check(r.status == 200 and r.json["ok"] is True and r.json["bad_chunks"] == []
              and r.json["image_hash_ok"] is True
              and r.json["chunks_checked"] == srv.get(f"/images/{ii}/versions/{vid}")
              .json["chunk_count"], f"version {vid} verifies", r)
    check(rb.json["sha256"] == sha256_file(raw) and ra.json["sha256"] == sha256_file(other),
          "both hashes right")
    return iid2, a, b, other


def test_version_errors(srv, tokens, iid, iid2, vid, failed_vid):
    log("version endpoints: auth and bad ids")
    check_auth(srv, "GET", f"/images/{iid}/versions", "viewer", None, tokens)
    check_auth(srv, "GET", f"/images/{iid}/versions/{vid}", "viewer", None, tokens)
    check_auth(srv, "DELETE", f"/images/{iid}/versions/{vid}", "operator", None, tokens)
    check_auth(srv, "POST", f"/images/{iid}/versions/{vid}/verify", "operator", {}, tokens)
    check_auth(srv, "POST", "/library/gc", "admin", {}, tokens)
    check_auth(srv, "GET", "/library", "viewer", None, tokens)
    check_auth(srv, "PUT", f"/images/{iid}/versions/upload", "operator", None, tokens)
    check_error(srv.get("/images/999999/versions"), 404, "not_found", "versions of unknown image")
    check_error(srv.get(f"/images/{iid}/versions/999999"), 404, "not_found", "unknown version")
    check_error(srv.get(f"/images/{iid2}/versions/{vid}"), 404, "not_found",
                "a version of another image is 404")
    check_error(srv.delete(f"/images/{iid2}/versions/{vid}"), 404, "not_found",
                "delete a version through another image")
    check_error(srv.post(f"/images/{iid2}/versions/{vid}/verify"), 404, "not_found",
                "verify a version through another image")
    check_error(srv.post(f"/images/{iid}/versions/{failed_vid}/verify"), 409, "conflict",
                "verify a failed version")
    check_error(srv.post(f"/images/{iid}/versions/{vid}/verify", {"deep": True}), 400,
                "bad_request", "verify with an unknown field", "deep")
    check_error(srv.post("/library/gc", {"force": True}), 400, "bad_request",
                "gc with an unknown field", "force")
    check_error(srv.get(f"/images/{iid}/versions/upload"), 405, "method_not_allowed",
                "GET on the upload path")
    check_error(srv.delete(f"/images/{iid}"), 409, "conflict", "delete an image with versions")
    # A deployment that names a version keeps it (the foreign key is RESTRICT).
    db = sqlite3.connect(os.path.join(data_dir(srv), "mlserver.db"), timeout=30)
    db.execute("INSERT INTO deployments (name, version_id, schedule_kind, created_at,"
               " updated_at) VALUES ('keep', ?, 'now', 0, 0)", (vid,))
    db.commit()
    r = srv.delete(f"/images/{iid}/versions/{vid}")
    check_error(r, 409, "conflict", "delete a version a deployment uses")
    check("deployment" in r.json["error"]["message"], "the 409 names the deployment", r)
    db.execute("DELETE FROM deployments WHERE name = 'keep'")
    db.commit()
    db.close()
    check(srv.get(f"/images/{iid}/versions/{vid}").json["state"] == "ready",
          "the refused delete kept the version")


def test_delete_gc(srv, iid, vers, tmp):
    log("delete a version, GC frees its own chunks only")
    v2, changed = vers["v2"]
    everyone = {}
    for name, (vid, _) in vers.items():
        everyone[name] = manifest_chunks(srv, vid)
    others = set()
    for name, chunks in everyone.items():
        if name != "v2":
            others |= set(chunks)
    own = {h: n for h, n in everyone["v2"].items() if h not in others}
    check(0 < len(own) <= 5, f"version 2 has {len(own)} chunks of its own", own)
    r = srv.delete(f"/images/{iid}/versions/{v2}")
    check(r.status == 204, "delete version 2", r)
    check(not os.path.exists(os.path.join(data_dir(srv), "versions", str(v2))),
          "its directory is gone")
    check_error(srv.get(f"/images/{iid}/versions/{v2}"), 404, "not_found", "deleted version")
    files_before, _ = chunk_files(srv)
    r = srv.post("/library/gc")
    check(r.status == 200 and r.json["chunks_removed"] == len(own)
          and r.json["bytes_freed"] == sum(own.values()),
          f"GC removed exactly version 2's {len(own)} own chunks", r)
    files_after, _ = chunk_files(srv)
    check(set(files_before) - set(files_after) == set(own), "the right files went")
    check(r.json["chunks_kept"] == len(files_after), "chunks_kept counts what is left", r)
    out = os.path.join(tmp, "out.img")
    v1, raw = vers["v1"]
    ok, msg = unpack(srv, v1, out)
    check(ok and same_file(raw, out), "version 1 still rebuilds byte for byte after GC", msg)
    r = srv.post(f"/images/{iid}/versions/{v1}/verify")
    check(r.status == 200 and r.json["ok"], "version 1 verifies after GC", r)
    r = srv.post("/library/gc")
    check(r.status == 200 and r.json["chunks_removed"] == 0, "a second GC removes nothing", r)
    del vers["v2"]
    lib = srv.get("/library").json
    check(lib["chunks"] == len(files_after) and lib["stored_bytes"] == sum(files_after.values())
          and lib["versions_ready"] >= 4 and lib["imports_running"] == 0,
          "GET /library counts", lib)


def test_corrupt_chunk(srv, iid, vers):
    log("verify finds a rotten chunk")
    v1, _ = vers["v1"]
    chunks = manifest_chunks(srv, v1)
    r = subprocess.run([MLCAST, "info", "--json", "--chunks",
                        os.path.join(data_dir(srv), "versions", str(v1))],
                       capture_output=True, text=True)
    lst = json.loads(r.stdout)["chunk_list"]
    # A chunk used only once in version 1, so exactly one index is reported.
    counts = {}
    for c in lst:
        counts[c["sha256"]] = counts.get(c["sha256"], 0) + 1
    victim = next(c for c in lst if c["kind"] != "zero" and counts[c["sha256"]] == 1)
    h = victim["sha256"]
    suffix = "z" if victim["kind"] == "zstd" else "r"
    path = os.path.join(data_dir(srv), "chunks", h[:2], f"{h}.{suffix}")
    good = open(path, "rb").read()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x55
    open(path, "wb").write(bytes(bad))
    r = srv.post(f"/images/{iid}/versions/{v1}/verify")
    check(r.status == 200 and r.json["ok"] is False and r.json["image_hash_ok"] is False
          and victim["index"] in r.json["bad_chunks"], "verify names the bad chunk", r)
    open(path, "wb").write(good)
    r = srv.post(f"/images/{iid}/versions/{v1}/verify")
    check(r.status == 200 and r.json["ok"] is True, "verify is clean again", r)
    check(len(chunks) > 0, "version 1 has stored chunks")


def test_crash(srv, iid, tmp):
    log("SIGKILL during an import, restart, check")
    big = os.path.join(tmp, "crash.img")
    make_crash_image(big)
    r = srv.post(f"/images/{iid}/versions", {"path": big, "note": "crash"})
    check(r.status == 202, "start the big import", r)
    vid = r.json["id"]
    seen = None
    deadline = time.time() + 120
    while time.time() < deadline:
        v = srv.get(f"/images/{iid}/versions/{vid}").json
        if v["state"] != "importing":
            break
        if v["progress"] > 0:
            seen = v
            break
        time.sleep(0.02)
    check(seen is not None, "the import shows progress > 0 while importing", v)
    # While it runs: no delete, no GC, no verify.
    check_error(srv.delete(f"/images/{iid}/versions/{vid}"), 409, "conflict",
                "delete an importing version")
    check_error(srv.post("/library/gc"), 409, "conflict", "GC while an import runs")
    check_error(srv.post(f"/images/{iid}/versions/{vid}/verify"), 409, "conflict",
                "verify an importing version")
    lib = srv.get("/library").json
    check(lib["imports_running"] == 1, "GET /library shows the running import", lib)
    srv.stop(sig=signal.SIGKILL)
    vdir = os.path.join(data_dir(srv), "versions", str(vid))
    log(f"  killed at progress {seen and seen['progress']:.2f}; dir left: "
        f"{os.path.exists(vdir)}; temp chunk files: {len(chunk_files(srv)[1])}")
    srv.start()
    srv.login()
    r = srv.get(f"/images/{iid}/versions/{vid}")
    check(r.json["state"] == "failed" and "interrupted" in r.json["error"]
          and r.json["finished_at"], "after the crash the version is failed, interrupted", r)
    check(not os.path.exists(vdir), "its directory is gone after the restart")
    files, temps = chunk_files(srv)
    check(temps == [], "no temp chunk files after the restart", temps)
    text = srv.logtext()
    check(f"version {vid} was importing when the server stopped; marked failed" in text
          and f"versions/{vid}: no ready version owns it" in text,
          "the recovery is in the log", text[-1500:])
    r = srv.get(f"/audit?object_type=version&object_id={vid}")
    check(any("interrupted" in a["detail"] and a["username"] == "mlserver"
              for a in r.json["items"]), "the recovery is in the audit log", r)
    r = srv.post("/library/gc")
    check(r.status == 200 and r.json["chunks_removed"] > 0,
          "GC after the crash removes the dead import's chunks", r)
    # Exactly the chunks of the ready versions remain.
    live = set()
    items = []
    for img in srv.get("/images").json["items"]:
        items += srv.get(f"/images/{img['id']}/versions?limit=1000").json["items"]
    ready = [x["id"] for x in items if x["state"] == "ready"]
    for v in ready:
        live |= set(manifest_chunks(srv, v))
    files, _ = chunk_files(srv)
    check(set(files) == live, f"chunk files ({len(files)}) == union of the {len(ready)} ready "
          f"versions' chunks ({len(live)})")
    r = srv.post(f"/images/{iid}/versions", {"path": big, "note": "again"})
    vid2 = r.json["id"]
    r = wait_version(srv, iid, vid2)
    check(r.json["state"] == "ready" and r.json["sha256"] == sha256_file(big),
          "a fresh import of the same file after the crash is ready", r)
    r = srv.post(f"/images/{iid}/versions/{vid2}/verify")
    check(r.status == 200 and r.json["ok"] is True, "and verifies", r)
    return big


def test_clean_stop(srv, iid, big):
    log("SIGTERM during an import marks it failed, interrupted")
    vid = srv.post(f"/images/{iid}/versions", {"path": big}).json["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        v = srv.get(f"/images/{iid}/versions/{vid}").json
        if v["state"] != "importing" or v["progress"] > 0:
            break
        time.sleep(0.02)
    rc = srv.stop()
    check(rc == 0, "clean stop exits 0", rc)
    db = sqlite3.connect(os.path.join(data_dir(srv), "mlserver.db"))
    state, error = db.execute("SELECT state, error FROM image_versions WHERE id = ?",
                              (vid,)).fetchone()
    db.close()
    check(state == "failed" and error == "interrupted: the server stopped during the import",
          "a clean stop records the interrupted import", (state, error))
    check(not os.path.exists(os.path.join(data_dir(srv), "versions", str(vid))),
          "and removes its directory")
    srv.start()
    srv.login()
    os.unlink(big)


def test_upload_limit(roots):
    """A chunked upload that grows past [api] upload_max is cut off at once."""
    log("chunked upload past upload_max, on a server with upload_max = 1M")
    srv = Server(config=f"[library]\nimport_roots = {roots}\n[api]\nupload_max = 1M\n")
    try:
        srv.login()
        iid = srv.post("/images", {"name": "small"}).json["id"]
        seen = []

        def pieces():
            for i in range(8):
                if i == 4:
                    # Past the limit: the upload's row fails and its file goes
                    # while the server still reads (and drops) the rest.
                    deadline = time.time() + 20
                    while time.time() < deadline:
                        items = srv.get(f"/images/{iid}/versions").json["items"]
                        if items and items[0]["state"] == "failed":
                            break
                        time.sleep(0.05)
                    seen.append(items)
                    seen.append(os.listdir(os.path.join(data_dir(srv), "uploads")))
                yield os.urandom(MiB)
        st, body = upload(srv, iid, pieces(), chunked=True)
        check(st == 413 and body["error"]["code"] == "payload_too_large"
              and "upload_max" in body["error"]["message"], "413 once past upload_max",
              (st, body))
        check(len(seen) == 2 and seen[0] and seen[0][0]["state"] == "failed" and seen[1] == [],
              "refused at the limit: version failed and file removed before the body ended",
              seen)
        items = srv.get(f"/images/{iid}/versions").json["items"]
        check(len(items) == 1 and items[0]["state"] == "failed"
              and "upload_max" in items[0]["error"], "its version failed, saying why", items)
        check(os.listdir(os.path.join(data_dir(srv), "uploads")) == [], "no upload file left")
        st, body = upload(srv, iid, os.urandom(MiB // 2), length=MiB // 2)
        check(st == 202, "an upload under the limit is taken", (st, body))
        r = wait_version(srv, iid, body["id"])
        check(r.json["state"] == "ready" and r.json["size"] == MiB // 2, "and imported", r)
    finally:
        srv.cleanup()


def main():
    for tool in ("mkfs.ext4", "qemu-img", "cmp"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} is missing")
            sys.exit(77)
    tmp = tempfile.mkdtemp(prefix=f"mlimg{os.getpid()}-")
    roots = os.path.join(tmp, "images")
    os.mkdir(roots)
    srv = Server(config=f"[library]\nimport_roots = {roots}, /nonexistent-root\n"
                        "chunk_size = 1M\nimports_max = 2\nthreads = 2\n")
    try:
        srv.login()
        tokens = {"admin": srv.token}
        for role in ("viewer", "operator"):
            tokens[role] = srv.user_token("u" + role, role)
        raw = os.path.join(roots, "ext4.img")
        used = make_ext4(roots, raw)
        log(f"ext4 image: 128 MiB holding {used >> 20} MiB of /usr files")
        iid = test_images_crud(srv, tokens)
        test_import_errors(srv, tokens, iid, roots)
        vers = test_imports(srv, tokens, iid, roots, raw)
        failed = test_upload_interrupted(srv, iid, raw)
        iid2, a, b, other = test_two_at_once(srv, iid, roots, raw)
        vers["a"] = (a, other)
        test_version_errors(srv, tokens, iid, iid2, vers["v1"][0], failed)
        test_corrupt_chunk(srv, iid, vers)
        test_delete_gc(srv, iid, vers, roots)
        big = test_crash(srv, iid, roots)
        test_clean_stop(srv, iid, big)
        test_upload_limit(roots)
        rc = srv.stop()
        check(rc == 0, "the last clean stop exits 0", rc)
        log("the log has no errors, and no sanitizer reports")
        bad = [ln for ln in srv.logtext().splitlines()
               if " error: " in ln or "runtime error" in ln or "Sanitizer" in ln]
        check(bad == [], "no unexpected errors in the log", bad[:5])
    finally:
        srv.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    done()


if __name__ == "__main__":
    main()
