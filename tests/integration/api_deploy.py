"""Entries, rights, deployments, runs and the scheduler against a real
mlserver over HTTPS: every endpoint's authorization, bad input and
conflicts; target resolution through groups and criteria; "now", "at" and
cron deployments turning into pending runs; manual runs; persistence of due
times across a restart; and the missed-while-down policy (docs/api.md,
"Deployments"; docs/schedules.md, "Scheduler").

Images, versions, machines, groups and criteria are made through their
APIs (seed()): a small ext4 image imported from a path, an upload held open
for a version that stays importing, and one cut short for a failed one.
SQL goes straight to the database (the sqlite3 tool) only where no API can
do what the test needs: a run in state "running" (the deployment runner
does not exist yet) and due times moved into the past while the server is
stopped (the missed-run policy).
"""
import datetime
import os
import subprocess
import sys
import time
from zoneinfo import ZoneInfo

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apilib import (MiB, Server, check, check_auth, check_error, done,  # noqa: E402
                    make_doc_image, start_upload, wait_version)

TZ = "Europe/Paris"
# The runner is off: these tests look at the runs the scheduler creates, which
# stay pending (the runs' execution is tested end to end by deploy_*.sh).
CONFIG = "[scheduler]\ntick = 200ms\ncatchup = 1h\n[runner]\nenabled = no\n"


def iso(t):
    """Unix time to the API's UTC text."""
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def unix(text):
    return int(datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())


class DB:
    """The server's database through the sqlite3 tool, for what no API can do
    (see the top of this file)."""

    def __init__(self, srv):
        self.path = os.path.join(srv.dir, "data", "mlserver.db")

    def __call__(self, sql):
        r = subprocess.run(["sqlite3", "-cmd", ".timeout 10000", self.path, sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"sqlite3: {r.stderr}")
        return r.stdout.strip()

    def val(self, sql):
        out = self(sql)
        return int(out) if out not in ("",) else None


def seed(srv):
    """Two images with versions in every state, six machines, two groups and two
    criteria, through the API. The tests below name them by id, so each id is
    checked to be the one they expect. Returns the socket of the upload that
    keeps version 2 importing (closing it fails that version)."""
    def made(r, what, want_id):
        check(r.status in (201, 202) and r.json["id"] == want_id,
              f"seed: {what} (id {want_id})", r)
        return r.json

    disk = os.path.join(srv.dir, "doc.img")
    make_doc_image(disk, size_mib=16, fill_mib=4)
    made(srv.post("/images", {"name": "win11"}), "image win11", 1)
    made(srv.post("/images", {"name": "ubuntu"}), "image ubuntu", 2)
    # 1: win11 v1, ready (a path import).
    made(srv.post("/images/1/versions", {"path": disk}), "win11 v1", 1)
    r = wait_version(srv, 1, 1)
    check(r.json["state"] == "ready", "seed: win11 v1 ready", r)
    # 2: win11 v2, importing while its upload is held open.
    held, v = start_upload(srv, 1, 64 * MiB, MiB)
    check(v["id"] == 2 and v["number"] == 2, "seed: win11 v2 uploading (id 2)", v)
    # 3: ubuntu v1, failed: an upload cut short.
    cut, v = start_upload(srv, 2, 64 * MiB, MiB)
    cut.close()
    r = wait_version(srv, 2, v["id"])
    check(v["id"] == 3 and r.json["state"] == "failed", "seed: ubuntu v1 failed (id 3)", r)
    # 4: ubuntu v2, ready.
    made(srv.post("/images/2/versions", {"path": disk}), "ubuntu v2", 4)
    r = wait_version(srv, 2, 4)
    check(r.json["state"] == "ready", "seed: ubuntu v2 ready", r)

    for i, (name, ip, room) in enumerate([
            ("pc-101", "10.1.2.101", "A"), ("pc-102", "10.1.2.102", "A"),
            ("pc-103", "10.1.3.103", "B"), ("pc-104", "10.1.3.104", "B"),
            ("pc-105", "10.1.4.105", "C"), ("pc-106", "10.1.4.106", "C")], 1):
        body = {"name": name, "ip": ip, "room": room}
        if name == "pc-106":
            body["tags"] = ["exam"]
        made(srv.post("/machines", body), "machine " + name, i)
    made(srv.post("/groups", {"name": "lab-a", "members": [1, 2]}), "group lab-a", 1)
    made(srv.post("/groups", {"name": "empty"}), "group empty", 2)
    made(srv.post("/criteria", {"name": "room b", "room": "B"}), "criterion room b", 1)
    made(srv.post("/criteria", {"name": "exam pcs", "tag": "exam"}), "criterion exam pcs", 2)
    return held


def names(r):
    return sorted(m["name"] for m in r.json["items"]) if r.status == 200 else r


def test_entries(srv, tokens):
    check_auth(srv, "GET", "/entries", "viewer", tokens=tokens)
    check_auth(srv, "POST", "/entries", "operator", {"name": "x", "kind": "web",
                                                     "url": "https://x.example/"},
               tokens=tokens)
    check_auth(srv, "GET", "/entries/1", "viewer", tokens=tokens)
    check_auth(srv, "PATCH", "/entries/1", "operator", {"description": "d"}, tokens=tokens)
    check_auth(srv, "DELETE", "/entries/1", "operator", tokens=tokens)
    op = tokens["operator"]
    r = srv.post("/entries", {"name": "Windows 11", "kind": "vm", "image_id": 1,
                              "description": "the exam image"}, token=op)
    check(r.status == 201 and r.json["kind"] == "vm" and r.json["image_id"] == 1
          and r.json["host"] is None and r.json["url"] is None, "create vm entry", r)
    vm = r.json["id"] if r.status == 201 else 0
    r = srv.post("/entries", {"name": "Terminal", "kind": "rdp", "host": "TS1.Example.EDU"},
                 token=op)
    check(r.status == 201 and r.json["port"] == 3389 and r.json["host"] == "ts1.example.edu",
          "create rdp entry, default port, host lower-cased", r)
    rdp = r.json["id"] if r.status == 201 else 0
    r = srv.post("/entries", {"name": "Spice", "kind": "spice", "host": "10.0.0.7"}, token=op)
    check(r.status == 201 and r.json["port"] == 5900 and r.json["host"] == "10.0.0.7",
          "create spice entry, default port", r)
    r = srv.post("/entries", {"name": "Moodle", "kind": "web",
                              "url": "https://moodle.example.edu:8443/course?id=3#top"},
                 token=op)
    check(r.status == 201 and r.json["url"].startswith("https://moodle"), "create web entry", r)
    web = r.json["id"] if r.status == 201 else 0
    r = srv.post("/entries", {"name": "v6", "kind": "web", "url": "http://[2001:db8::1]:80/"},
                 token=op)
    check(r.status == 201, "web entry with an IPv6 address", r)

    bad = [
        ({"name": "a", "kind": "vm"}, "image_id", "vm without image_id"),
        ({"name": "a", "kind": "vm", "image_id": 99}, "image_id", "vm with unknown image"),
        ({"name": "a", "kind": "vm", "image_id": 1, "host": "x"}, "host", "vm with host"),
        ({"name": "a", "kind": "telnet"}, "kind", "bad kind"),
        ({"name": "a", "kind": "web", "url": "https://x/", "colour": 1}, "colour",
         "unknown field"),
        ({"kind": "web", "url": "https://x/"}, "name", "missing name"),
        ({"name": "a", "kind": "rdp"}, "host", "rdp without host"),
        ({"name": "a", "kind": "rdp", "host": "h", "port": 0}, "port", "port 0"),
        ({"name": "a", "kind": "rdp", "host": "h", "port": 65536}, "port", "port 65536"),
        ({"name": "a", "kind": "rdp", "host": "h", "port": "22"}, "port", "port as string"),
        ({"name": "a", "kind": "rdp", "host": "bad_host!"}, "host", "bad host name"),
        ({"name": "a", "kind": "rdp", "host": "10.0.0.256"}, "host", "bad IPv4"),
        ({"name": "a", "kind": "spice", "host": "h", "url": "http://x/"}, "url",
         "spice with url"),
        ({"name": "a", "kind": "web"}, "url", "web without url"),
        ({"name": "a", "kind": "web", "url": "ftp://x.example/"}, "url", "ftp url"),
        ({"name": "a", "kind": "web", "url": "http://"}, "url", "url without host"),
        ({"name": "a", "kind": "web", "url": "http://a b/"}, "url", "url with space"),
        ({"name": "a", "kind": "web", "url": "https://user:pw@x.example/"}, "url",
         "url with credentials"),
        ({"name": "a", "kind": "web", "url": "http://x.example:0/"}, "url", "url port 0"),
        ({"name": "a", "kind": "web", "url": "http://x.example:99999/"}, "url",
         "url port too big"),
        ({"name": "a", "kind": "web", "url": "http://-x-/"}, "url", "url bad host"),
        ({"name": "a", "kind": "web", "url": "http://[zz::1]/"}, "url", "url bad IPv6"),
        ({"name": "a", "kind": "web", "url": "https://x.example/é"}, "url", "url not ASCII"),
        ({"name": "a", "kind": "web", "url": "https://x.example/" + "a" * 2040}, "url",
         "url too long"),
        ({"name": "", "kind": "web", "url": "https://x/"}, "name", "empty name"),
        ({"name": " a", "kind": "web", "url": "https://x/"}, "name", "name with space"),
    ]
    for body, field, what in bad:
        r = srv.post("/entries", body, token=op)
        check_error(r, 400, "bad_request", "entry: " + what, field=field)
    r = srv.raw("POST", "/entries", b'{"name": ', token=op)
    check_error(r, 400, "bad_json", "entry: malformed JSON")
    r = srv.post("/entries", {"name": "Terminal", "kind": "web", "url": "https://x/"}, token=op)
    check_error(r, 409, "conflict", "entry: duplicate name", field="name")

    r = srv.patch(f"/entries/{rdp}", {"kind": "web"}, token=op)
    check_error(r, 400, "bad_request", "entry: kind is fixed", field="kind")
    r = srv.patch(f"/entries/{rdp}", {"url": "https://x/"}, token=op)
    check_error(r, 400, "bad_request", "entry: url on rdp", field="url")
    r = srv.patch(f"/entries/{rdp}", {"host": None}, token=op)
    check_error(r, 400, "bad_request", "entry: host cannot be null", field="host")
    r = srv.patch(f"/entries/{rdp}", {"port": 3390, "description": "second"}, token=op)
    check(r.status == 200 and r.json["port"] == 3390 and r.json["description"] == "second",
          "patch port", r)
    r = srv.patch(f"/entries/{rdp}", {"port": None}, token=op)
    check(r.status == 200 and r.json["port"] == 3389, "port null: back to default", r)
    r = srv.patch(f"/entries/{vm}", {"image_id": 2}, token=op)
    check(r.status == 200 and r.json["image_id"] == 2, "patch image_id", r)
    r = srv.patch(f"/entries/{vm}", {"image_id": 77}, token=op)
    check_error(r, 400, "bad_request", "patch unknown image", field="image_id")
    r = srv.patch(f"/entries/{web}", {"url": "mailto:x@y"}, token=op)
    check_error(r, 400, "bad_request", "patch bad url", field="url")
    r = srv.patch(f"/entries/{web}", {"name": "Terminal"}, token=op)
    check_error(r, 409, "conflict", "patch to a taken name", field="name")
    r = srv.patch("/entries/999", {"name": "zz"}, token=op)
    check_error(r, 404, "not_found", "patch missing entry")
    r = srv.get("/entries/999")
    check_error(r, 404, "not_found", "get missing entry")
    r = srv.get(f"/entries/{web}", token=tokens["viewer"])
    check(r.status == 200 and r.json["name"] == "Moodle", "viewer reads an entry", r)
    r = srv.get("/entries?kind=rdp")
    check(r.status == 200 and r.json["total"] == 1 and r.json["items"][0]["id"] == rdp,
          "list ?kind=", r)
    r = srv.get("/entries?kind=telnet")
    check_error(r, 400, "bad_request", "list bad kind", field="kind")
    r = srv.get("/entries?limit=2")
    check(r.status == 200 and len(r.json["items"]) == 2 and r.json["total"] == 5,
          "list paginated", r)
    return {"vm": vm, "rdp": rdp, "web": web}


def test_rights(srv, tokens, entries):
    op = tokens["operator"]
    body = {"entry_id": entries["vm"], "users": ["alice", "bob.smith"],
            "user_groups": ["Teachers 2B"], "targets": {"groups": [1], "criteria": [1],
                                                        "machines": [5]},
            "window": "mon-fri 08:00-18:00; fri 22:00-02:00", "description": "exam"}
    check_auth(srv, "GET", "/rights", "viewer", tokens=tokens)
    check_auth(srv, "POST", "/rights", "operator", body, tokens=tokens)
    check_auth(srv, "GET", "/rights/1", "viewer", tokens=tokens)
    check_auth(srv, "PATCH", "/rights/1", "operator", {"description": "x"}, tokens=tokens)
    check_auth(srv, "DELETE", "/rights/1", "operator", tokens=tokens)
    check_auth(srv, "GET", "/rights/1/targets", "viewer", tokens=tokens)
    r = srv.post("/rights", body, token=op)
    ok = check(r.status == 201, "create right", r)
    rid = r.json["id"] if ok else 0
    if ok:
        check(r.json["window"] == "mon-thu 08:00-18:00; fri 08:00-18:00,22:00-02:00",
              "window stored canonical", r)
        check(r.json["users"] == ["alice", "bob.smith"] and
              r.json["user_groups"] == ["Teachers 2B"], "principals", r)
        check(r.json["targets"] == {"machines": [5], "groups": [1], "criteria": [1]},
              "targets as given", r)
    r = srv.get(f"/rights/{rid}/targets", token=tokens["viewer"])
    check(names(r) == ["pc-101", "pc-102", "pc-103", "pc-104", "pc-105"],
          "right resolves through machine, group and criterion", r)
    r = srv.get(f"/rights/{rid}/targets?limit=2")
    check(r.status == 200 and r.json["total"] == 5 and len(r.json["items"]) == 2,
          "right targets paginated", r)

    def bad(change, field, what, drop=()):
        b = dict(body)
        b.update(change)
        for k in drop:
            b.pop(k, None)
        r = srv.post("/rights", b, token=op)
        check_error(r, 400, "bad_request", "right: " + what, field=field)
        return r
    bad({"users": [], "user_groups": []}, "users", "no principals")
    bad({}, "users", "no principals (absent)", drop=("users", "user_groups"))
    bad({"users": ["Bob!"]}, "users", "bad user name")
    bad({"users": ["x" * 65]}, "users", "user name too long")
    bad({"user_groups": ["g" * 65]}, "user_groups", "group name too long")
    bad({"users": "alice"}, "users", "users not a list")
    r = bad({"window": "mon-fri 25:00-26:00"}, "window", "bad window")
    check("25:00" in r.raw, "bad window message quotes it", r)
    bad({"window": ""}, "window", "empty window")
    bad({"entry_id": 999}, "entry_id", "unknown entry")
    bad({}, "targets", "missing targets", drop=("targets",))
    bad({"targets": {}}, "targets", "empty targets")
    bad({"targets": {"machines": [99]}}, "targets.machines", "unknown machine")
    bad({"targets": {"groups": [99]}}, "targets.groups", "unknown group")
    bad({"targets": {"criteria": [99]}}, "targets.criteria", "unknown criterion")
    bad({"targets": {"rooms": [1]}}, "rooms", "unknown targets key")
    bad({"colour": "red"}, "colour", "unknown field")

    r = srv.patch(f"/rights/{rid}", {"window": None, "users": ["carol"]}, token=op)
    check(r.status == 200 and r.json["window"] is None and r.json["users"] == ["carol"]
          and r.json["user_groups"] == ["Teachers 2B"], "patch: window null, users replaced", r)
    r = srv.patch(f"/rights/{rid}", {"users": [], "user_groups": None}, token=op)
    check_error(r, 400, "bad_request", "patch leaving no principals")
    r = srv.get(f"/rights/{rid}")
    check(r.status == 200 and r.json["users"] == ["carol"], "failed patch changed nothing", r)
    r = srv.patch(f"/rights/{rid}", {"targets": {"criteria": [2]}, "window": "sat 9:00-12:00"},
                  token=op)
    check(r.status == 200 and r.json["window"] == "sat 09:00-12:00", "patch window", r)
    r = srv.get(f"/rights/{rid}/targets")
    check(names(r) == ["pc-106"], "patched targets resolve by tag criterion", r)
    r = srv.patch(f"/rights/{rid}", {"targets": None}, token=op)
    check_error(r, 400, "bad_request", "patch targets null", field="targets")
    r = srv.patch(f"/rights/{rid}", {"entry_id": 12345}, token=op)
    check_error(r, 400, "bad_request", "patch unknown entry", field="entry_id")
    r = srv.patch("/rights/999", {"description": "x"}, token=op)
    check_error(r, 404, "not_found", "patch missing right")
    r = srv.get("/rights/999/targets")
    check_error(r, 404, "not_found", "targets of missing right")

    r = srv.post("/rights", dict(body, entry_id=entries["web"]), token=op)
    other = r.json["id"] if check(r.status == 201, "second right", r) else 0
    r = srv.get(f"/rights?entry={entries['web']}")
    check(r.status == 200 and [x["id"] for x in r.json["items"]] == [other], "list ?entry=", r)
    r = srv.get("/rights?entry=abc")
    check_error(r, 400, "bad_request", "list bad ?entry=", field="entry")
    r = srv.get("/rights")
    check(r.status == 200 and r.json["total"] == 2, "list all rights", r)
    # A group or criterion used by a right cannot go (RESTRICT), the store says so.
    r = srv.delete("/groups/1", token=op)
    check_error(r, 409, "conflict", "delete a group a right targets")
    r = srv.delete("/criteria/1", token=op)
    check_error(r, 409, "conflict", "delete a criterion a right uses")
    r = srv.delete(f"/rights/{other}", token=op)
    check(r.status == 204, "delete right", r)
    r = srv.get(f"/rights/{other}")
    check_error(r, 404, "not_found", "deleted right is gone")
    r = srv.delete(f"/rights/{other}", token=op)
    check_error(r, 404, "not_found", "delete twice")
    # Deleting an entry takes its rights along.
    r = srv.delete(f"/entries/{entries['vm']}", token=op)
    check(r.status == 204, "delete entry", r)
    r = srv.get(f"/rights/{rid}")
    check_error(r, 404, "not_found", "entry's rights deleted with it")


def runs_of(srv, dep):
    r = srv.get(f"/runs?deployment={dep}")
    return r.json["items"] if r.status == 200 else []


def wait_runs(srv, dep, n, timeout=5.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = runs_of(srv, dep)
        if len(runs) >= n:
            return runs
        time.sleep(0.1)
    return runs_of(srv, dep)


def dep_body(name, **kw):
    b = {"name": name, "version_id": 1, "targets": {"groups": [1], "criteria": [1]},
         "schedule": {"kind": "cron", "cron": "30 6 * * 1-5"},
         "options": {"rate_mbps": 800, "wake": True, "wait_s": 300,
                     "report_to": ["it@example.edu"]}}
    b.update(kw)
    return b


def next_weekday_0630(now):
    """The next 06:30 on a weekday in TZ after now, as unix time (the cron of dep_body)."""
    tz = ZoneInfo(TZ)
    local = datetime.datetime.fromtimestamp(now, tz)
    for d in range(0, 8):
        day = (local + datetime.timedelta(days=d)).date()
        cand = datetime.datetime(day.year, day.month, day.day, 6, 30, tzinfo=tz)
        if cand.weekday() < 5 and cand.timestamp() > now:
            return int(cand.timestamp())
    return None


def test_deployments(srv, tokens, db):
    op = tokens["operator"]
    check_auth(srv, "GET", "/deployments", "viewer", tokens=tokens)
    check_auth(srv, "POST", "/deployments", "operator", dep_body("auth"), tokens=tokens)
    check_auth(srv, "GET", "/deployments/1", "viewer", tokens=tokens)
    check_auth(srv, "PATCH", "/deployments/1", "operator", {"enabled": False}, tokens=tokens)
    check_auth(srv, "DELETE", "/deployments/1", "operator", tokens=tokens)
    check_auth(srv, "GET", "/deployments/1/targets", "viewer", tokens=tokens)
    check_auth(srv, "POST", "/deployments/1/run", "operator", {}, tokens=tokens)
    check_auth(srv, "GET", "/runs", "viewer", tokens=tokens)
    check_auth(srv, "GET", "/runs/1", "viewer", tokens=tokens)

    # A recurring deployment: canonical cron and the right next due time.
    before = time.time()
    r = srv.post("/deployments", dep_body("lab-a-win11", schedule={
        "kind": "cron", "cron": "30 06 * * mon-fri"}), token=op)
    ok = check(r.status == 201, "create cron deployment", r)
    cron_id = r.json["id"] if ok else 0
    if ok:
        d = r.json
        check(d["schedule"] == {"kind": "cron", "cron": "30 6 * * 1-5"}, "cron canonical", d)
        check(d["image_id"] == 1 and d["version_id"] == 1, "image_id joined", d)
        check(d["options"] == {"rate_mbps": 800, "wake": True, "wait_s": 300, "boot_mode": None,
                               "report_to": ["it@example.edu"]}, "options", d)
        check(d["enabled"] is True and d["last_due"] is None, "enabled, never due", d)
        check(d["targets"] == {"machines": [], "groups": [1], "criteria": [1]}, "targets", d)
        want = next_weekday_0630(before)
        check(d["next_due"] == iso(want), "next_due is the next weekday 06:30 in " + TZ,
              f"{d['next_due']} vs {iso(want)}")
        check(d["created_by"] == "olga" and isinstance(d["created_by_id"], int), "created_by", d)
    r = srv.get(f"/deployments/{cron_id}/targets", token=tokens["viewer"])
    check(names(r) == ["pc-101", "pc-102", "pc-103", "pc-104"],
          "deployment resolves through group and criterion", r)
    r = srv.get("/deployments/999/targets")
    check_error(r, 404, "not_found", "targets of a missing deployment")

    def bad(change, status, field, what, drop=(), code=None):
        b = dep_body("bad-one")
        b.update(change)
        for k in drop:
            b.pop(k, None)
        r = srv.post("/deployments", b, token=op)
        check_error(r, status, code or ("conflict" if status == 409 else "bad_request"),
                    "deployment: " + what, field=field)
        return r
    bad({"version_id": 99}, 400, "version_id", "unknown version")
    r = bad({"version_id": 2}, 409, "version_id", "version still importing")
    check("importing" in r.raw, "importing message", r)
    r = bad({"version_id": 3}, 400, "version_id", "failed version")
    check("failed" in r.raw, "failed message", r)
    bad({}, 400, "version_id", "missing version_id", drop=("version_id",))
    bad({}, 400, "targets", "missing targets", drop=("targets",))
    bad({}, 400, "schedule", "missing schedule", drop=("schedule",))
    bad({"targets": {"machines": [42]}}, 400, "targets.machines", "unknown machine")
    bad({"targets": {"groups": [42]}}, 400, "targets.groups", "unknown group")
    bad({"targets": {"criteria": [42]}}, 400, "targets.criteria", "unknown criterion")
    bad({"schedule": {"kind": "weekly"}}, 400, "schedule.kind", "bad schedule kind")
    bad({"schedule": {"kind": "cron"}}, 400, "schedule.cron", "cron missing")
    r = bad({"schedule": {"kind": "cron", "cron": "61 * * * *"}}, 400, "schedule.cron",
            "bad cron")
    check(r.json and r.json["error"]["message"] ==
          "schedule.cron: minute: '61' is out of range 0-59", "bad cron message", r)
    r = bad({"schedule": {"kind": "cron", "cron": "0 0 30 2 *"}}, 400, "schedule.cron",
            "cron that never fires")
    check("never fires" in r.raw, "never-fires message", r)
    r = bad({"schedule": {"kind": "at", "at": "2020-01-01T00:00:00Z"}}, 400, "schedule.at",
            "at in the past")
    check("at is in the past" in r.raw, "past message", r)
    bad({"schedule": {"kind": "at", "at": "tomorrow"}}, 400, "schedule.at", "bad at text")
    bad({"schedule": {"kind": "at"}}, 400, "schedule.at", "at missing")
    bad({"schedule": {"kind": "now", "at": "2030-01-01T00:00:00Z"}}, 400, "schedule.at",
        "at with kind now")
    bad({"schedule": {"kind": "at", "at": "2030-01-01T00:00:00Z", "cron": "* * * * *"}}, 400,
        "schedule.cron", "cron with kind at")
    bad({"schedule": {"kind": "now", "when": 1}}, 400, "when", "unknown schedule key")
    bad({"options": {"rate_mbps": 0}}, 400, "options.rate_mbps", "rate 0")
    bad({"options": {"rate_mbps": 100001}}, 400, "options.rate_mbps", "rate too high")
    bad({"options": {"wait_s": 86401}}, 400, "options.wait_s", "wait too long")
    bad({"options": {"wake": "yes"}}, 400, "options.wake", "wake not bool")
    bad({"options": {"speed": 1}}, 400, "speed", "unknown option")
    for addr in ["not-an-email", "a@b_c.example", "@example.edu", "a..b@example.edu",
                 "a@", "x" * 65 + "@example.edu", "a b@example.edu", "a@-x.example"]:
        bad({"options": {"report_to": [addr]}}, 400, "options.report_to", f"e-mail {addr!r}")
    bad({"options": {"report_to": [f"u{i}@example.edu" for i in range(51)]}}, 400,
        "options.report_to", "51 recipients")
    bad({"options": {"report_to": "it@example.edu"}}, 400, "options.report_to",
        "report_to not a list")
    bad({"enabled": 1}, 400, "enabled", "enabled not bool")
    bad({"name": "x" * 101}, 400, "name", "name too long")
    bad({"priority": 1}, 400, "priority", "unknown field")
    r = srv.post("/deployments", dep_body("lab-a-win11"), token=op)
    check_error(r, 409, "conflict", "duplicate deployment name", field="name")

    # "now": exactly one pending run within a few ticks.
    r = srv.post("/deployments", dep_body("now-1", schedule={"kind": "now"},
                                          targets={"machines": [5]}, options=None), token=op)
    ok = check(r.status == 201, "create now deployment", r)
    now_id = r.json["id"] if ok else 0
    if ok:
        check(r.json["options"] == {"rate_mbps": None, "wake": True, "wait_s": 300, "boot_mode": None,
                                    "report_to": []}, "default options", r)
    runs = wait_runs(srv, now_id, 1, 3.0)
    time.sleep(0.8)  # four more ticks: still one
    runs = runs_of(srv, now_id)
    check(len(runs) == 1, "now: exactly one run", runs)
    if runs:
        run = runs[0]
        check(run["state"] == "pending" and run["cause"] == "schedule" and
              run["version_id"] == 1 and run["image_id"] == 1 and
              run["deployment_name"] == "now-1", "now: the run", run)
        r = srv.get(f"/runs/{run['id']}", token=tokens["viewer"])
        # One run shows its machines too; the list shows the run alone.
        check(r.status == 200 and {k: v for k, v in r.json.items()
                                   if k not in ("targets", "totals", "rate_bps")} == run and
              r.json["targets"] == [] and r.json["totals"]["machines"] == 0 and
              r.json["rate_bps"] == 0, "GET /runs/:id", r)
    r = srv.get(f"/deployments/{now_id}")
    check(r.status == 200 and r.json["next_due"] is None and r.json["last_due"] is not None,
          "now: done, next_due null", r)
    r = srv.get(f"/audit?action=run&object_type=deployment&object_id={now_id}")
    check(r.status == 200 and r.json["total"] == 1 and
          r.json["items"][0]["username"] == "mlserver", "now: audit 'run' by mlserver", r)

    # "at" two seconds ahead: nothing before, one run after.
    at = int(time.time()) + 2
    r = srv.post("/deployments", dep_body("at-1", schedule={"kind": "at", "at": iso(at)}),
                 token=op)
    ok = check(r.status == 201 and r.json["next_due"] == iso(at) and
               r.json["schedule"] == {"kind": "at", "at": iso(at)}, "create at deployment", r)
    at_id = r.json["id"] if ok else 0
    check(runs_of(srv, at_id) == [], "at: no run before its time")
    runs = wait_runs(srv, at_id, 1, 6.0)
    time.sleep(0.6)
    runs = runs_of(srv, at_id)
    check(len(runs) == 1 and runs[0]["cause"] == "schedule" and
          runs[0]["due_at"] == iso(at), "at: exactly one run at its time", runs)
    check(time.time() >= at, "at: not early")
    # The at time in local time, with an offset, is accepted too.
    local = datetime.datetime.fromtimestamp(at + 3600, ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S")
    r = srv.patch(f"/deployments/{at_id}", {"schedule": {"kind": "at", "at": local}}, token=op)
    check(r.status == 200 and r.json["next_due"] == iso(at + 3600),
          "at given in server local time", r)

    # Manual run.
    r = srv.post(f"/deployments/{cron_id}/run", token=op)
    ok = check(r.status == 201 and r.json["cause"] == "manual" and
               r.json["state"] == "pending" and r.json["deployment_id"] == cron_id,
               "manual run", r)
    manual = r.json["id"] if ok else 0
    r = srv.post(f"/deployments/{cron_id}/run", {"force": True}, token=op)
    check_error(r, 400, "bad_request", "run with unknown field")
    r = srv.post("/deployments/999/run", token=op)
    check_error(r, 404, "not_found", "run of missing deployment")
    r = srv.get(f"/deployments/{cron_id}")
    check(r.status == 200 and r.json["last_due"] is None, "manual run leaves last_due", r)

    # Runs: filters and order.
    r = srv.get("/runs")
    ids = [x["id"] for x in r.json["items"]] if r.status == 200 else []
    check(ids == sorted(ids, reverse=True) and len(ids) == 3, "runs newest first", r)
    r = srv.get("/runs?state=pending&deployment=%d" % cron_id)
    check(r.status == 200 and [x["id"] for x in r.json["items"]] == [manual],
          "runs ?state= and ?deployment=", r)
    r = srv.get("/runs?state=done")
    check(r.status == 200 and r.json["total"] == 0, "runs ?state=done", r)
    r = srv.get("/runs?state=exploded")
    check_error(r, 400, "bad_request", "runs bad ?state=", field="state")
    r = srv.get("/runs?deployment=0")
    check_error(r, 400, "bad_request", "runs bad ?deployment=", field="deployment")
    r = srv.get("/runs/999")
    check_error(r, 404, "not_found", "missing run")

    # PATCH: enabled and schedule recompute next_due; other fields do not.
    r = srv.patch(f"/deployments/{cron_id}", {"enabled": False}, token=op)
    check(r.status == 200 and r.json["enabled"] is False and r.json["next_due"] is None,
          "disable: no next_due", r)
    r = srv.patch(f"/deployments/{cron_id}", {"enabled": True}, token=op)
    check(r.status == 200 and r.json["next_due"] == iso(next_weekday_0630(time.time())),
          "enable: next_due back", r)
    r = srv.patch(f"/deployments/{cron_id}", {"schedule": {"kind": "cron", "cron": "@daily"},
                                               "options": {"rate_mbps": None, "wait_s": 60,
                                                           "report_to": ["a@x.example",
                                                                         "b@x.example"]},
                                               "version_id": 4, "name": "renamed"}, token=op)
    ok = check(r.status == 200, "patch schedule, options, version, name", r)
    if ok:
        d = r.json
        tz = ZoneInfo(TZ)
        tomorrow = (datetime.datetime.now(tz) + datetime.timedelta(days=1)).date()
        midnight = datetime.datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=tz)
        check(d["schedule"] == {"kind": "cron", "cron": "0 0 * * *"} and
              d["next_due"] == iso(midnight.timestamp()), "@daily: next local midnight", d)
        check(d["options"] == {"rate_mbps": None, "wake": True, "wait_s": 60, "boot_mode": None,
                               "report_to": ["a@x.example", "b@x.example"]},
              "options patched, wake kept", d)
        check(d["version_id"] == 4 and d["image_id"] == 2 and d["name"] == "renamed",
              "version and name patched", d)
    r = srv.patch(f"/deployments/{cron_id}", {"version_id": 2}, token=op)
    check_error(r, 409, "conflict", "patch to an importing version", field="version_id")
    r = srv.patch(f"/deployments/{cron_id}", {"name": "at-1"}, token=op)
    check_error(r, 409, "conflict", "patch to a taken name", field="name")
    r = srv.patch(f"/deployments/{cron_id}", {"schedule": {"kind": "at",
                                                           "at": "2001-01-01 00:00"}}, token=op)
    check_error(r, 400, "bad_request", "patch at in the past", field="schedule.at")
    r = srv.patch(f"/deployments/{cron_id}", {"targets": {"machines": [6]}}, token=op)
    check(r.status == 200 and r.json["targets"]["machines"] == [6], "patch targets", r)
    r = srv.patch("/deployments/999", {"enabled": True}, token=op)
    check_error(r, 404, "not_found", "patch missing deployment")
    # An "at" whose time passed without a run cannot be enabled without a new time.
    soon = int(time.time()) + 1
    r = srv.post("/deployments", dep_body("at-off", schedule={"kind": "at", "at": iso(soon)},
                                          enabled=False), token=op)
    off_id = r.json["id"] if check(r.status == 201 and r.json["next_due"] is None,
                                   "disabled at: no next_due", r) else 0
    time.sleep(2.2)
    check(runs_of(srv, off_id) == [], "disabled: no run")
    r = srv.patch(f"/deployments/{off_id}", {"enabled": True}, token=op)
    check_error(r, 400, "bad_request", "enable an at that passed", field="enabled")
    r = srv.get("/deployments")
    check(r.status == 200 and r.json["total"] == 4, "list deployments", r)

    # DELETE keeps the runs; pending ones are cancelled.
    r = srv.delete(f"/deployments/{now_id}", token=op)
    check(r.status == 204, "delete deployment", r)
    r = srv.get(f"/deployments/{now_id}")
    check_error(r, 404, "not_found", "deleted deployment is gone")
    r = srv.get("/runs?state=cancelled")
    ok = check(r.status == 200 and r.json["total"] == 1, "its pending run cancelled", r)
    if ok:
        run = r.json["items"][0]
        check(run["deployment_id"] is None and run["deployment_name"] == "now-1" and
              run["error"] == "the deployment was deleted" and run["finished_at"],
              "the run keeps its name, loses the link", run)
    r = srv.delete(f"/deployments/{now_id}", token=op)
    check_error(r, 404, "not_found", "delete twice")
    # A running run blocks deletion (the runner owns it). No API moves a run
    # to "running" (that is the deployment runner's, not written yet): SQL.
    db(f"UPDATE runs SET state = 'running' WHERE id = {manual}")
    r = srv.delete(f"/deployments/{cron_id}", token=op)
    check_error(r, 409, "conflict", "delete with a run in progress")
    db(f"UPDATE runs SET state = 'done' WHERE id = {manual}")
    return {"cron": cron_id, "at": at_id}


def test_links(srv, tokens, deps):
    """What the other APIs refuse or do because of entries, deployments and runs."""
    op = tokens["operator"]
    r = srv.delete("/groups/1", token=op)
    check_error(r, 409, "conflict", "delete a group a deployment targets")
    r = srv.delete("/criteria/1", token=op)
    check_error(r, 409, "conflict", "delete a criterion a deployment uses")
    r = srv.delete("/images/1/versions/1", token=op)
    check_error(r, 409, "conflict", "delete a version deployments and runs use")
    r = srv.delete("/images/2/versions/4", token=op)
    check_error(r, 409, "conflict", "delete a version a deployment uses")
    r = srv.delete("/images/1/versions/2", token=op)
    check_error(r, 409, "conflict", "delete a version still importing")
    r = srv.delete("/images/2/versions/3", token=op)
    check(r.status == 204, "delete a failed version nobody uses", r)
    r = srv.delete("/images/1", token=op)
    check_error(r, 409, "conflict", "delete an image with versions")
    # An image an entry uses cannot go, even without versions.
    r = srv.post("/images", {"name": "bare"}, token=op)
    bare = r.json["id"] if check(r.status == 201, "image without versions", r) else 0
    r = srv.post("/entries", {"name": "Bare VM", "kind": "vm", "image_id": bare}, token=op)
    entry = r.json["id"] if check(r.status == 201, "vm entry on it", r) else 0
    r = srv.delete(f"/images/{bare}", token=op)
    check_error(r, 409, "conflict", "delete an image an entry uses")
    check(srv.delete(f"/entries/{entry}", token=op).status == 204, "delete that entry")
    r = srv.delete(f"/images/{bare}", token=op)
    check(r.status == 204, "then the image goes", r)
    # A deleted machine leaves the target lists.
    r = srv.get(f"/deployments/{deps['cron']}")
    check(r.status == 200 and r.json["targets"]["machines"] == [6], "cron targets pc-106", r)
    r = srv.delete("/machines/6", token=op)
    check(r.status == 204, "delete a machine a deployment targets", r)
    r = srv.get(f"/deployments/{deps['cron']}")
    check(r.status == 200 and r.json["targets"]["machines"] == [], "it left the targets", r)
    r = srv.get(f"/deployments/{deps['cron']}/targets")
    check(r.status == 200 and r.json["total"] == 0, "nothing to resolve", r)


def test_persistence(srv, deps):
    r = srv.get(f"/deployments/{deps['cron']}")
    before = r.json["next_due"] if r.status == 200 else None
    tok = srv.token
    srv.restart()
    srv.token = tok
    r = srv.get(f"/deployments/{deps['cron']}")
    check(r.status == 200 and r.json["next_due"] == before and before,
          "next_due survives a restart", r)


def occurrence_minutes_ago(minutes):
    """(minute, hour, unix) of the local wall-clock minute `minutes` ago."""
    tz = ZoneInfo(TZ)
    t = datetime.datetime.now(tz).replace(second=0, microsecond=0) - \
        datetime.timedelta(minutes=minutes)
    return t.minute, t.hour, int(t.timestamp())


def test_missed(srv, db):
    """Stop, move due times into the past, start: the missed-run policy."""
    op_tok = srv.token
    future = iso(int(time.time()) + 7200)

    def create(name, schedule):
        r = srv.post("/deployments", dep_body(name, schedule=schedule))
        check(r.status == 201, "create " + name, r)
        return r.json["id"] if r.status == 201 else 0
    m10, h10, t10 = occurrence_minutes_ago(10)
    m180, h180, t180 = occurrence_minutes_ago(180)
    hourly = create("missed-hourly", {"kind": "cron", "cron": f"{m10} * * * *"})
    daily = create("missed-daily", {"kind": "cron", "cron": f"{m180} {h180} * * *"})
    oneshot = create("missed-at", {"kind": "at", "at": future})
    nowish = create("missed-now", {"kind": "at", "at": future})
    srv.stop()
    # Only SQL can move due times into the past while the server is down (no
    # API sets next_due, and the server must not be running to miss them).
    # Hourly: missed three times, the latest ten minutes ago (within catchup = 1h).
    db(f"UPDATE deployments SET next_due = {t10 - 7200} WHERE id = {hourly}")
    # Daily: missed once, three hours ago (beyond catchup).
    db(f"UPDATE deployments SET next_due = {t180} WHERE id = {daily}")
    # One-shots that fell due while down: two days ago, and a minute ago.
    past = int(time.time()) - 2 * 86400
    db(f"UPDATE deployments SET next_due = {past}, at_time = {past} WHERE id = {oneshot}")
    db(f"UPDATE deployments SET next_due = {past + 2 * 86400 - 60},"
       f" at_time = {past + 2 * 86400 - 60} WHERE id = {nowish}")
    srv.start()
    srv.token = op_tok
    wait_runs(srv, oneshot, 1, 5.0)
    wait_runs(srv, nowish, 1, 5.0)
    runs = wait_runs(srv, hourly, 1, 5.0)
    time.sleep(0.6)
    runs = runs_of(srv, hourly)
    check(len(runs) == 1 and runs[0]["cause"] == "late" and runs[0]["due_at"] == iso(t10),
          "recurring within catchup: one late run for the latest missed time", runs)
    r = srv.get(f"/deployments/{hourly}")
    check(r.status == 200 and r.json["next_due"] == iso(t10 + 3600) and
          r.json["last_due"] == iso(t10), "hourly: next_due after now", r)
    r = srv.get(f"/audit?action=run&object_id={hourly}")
    check(r.status == 200 and r.json["total"] == 1 and
          "2 earlier occurrence(s) missed" in r.json["items"][0]["detail"],
          "audit says how many were missed", r)
    check(runs_of(srv, daily) == [], "recurring beyond catchup: no run")
    r = srv.get(f"/audit?action=skipped&object_id={daily}")
    ok = check(r.status == 200 and r.json["total"] == 1, "audit 'skipped'", r)
    if ok:
        detail = r.json["items"][0]["detail"]
        check("missed 1 occurrence(s)" in detail and iso(t180) in detail, "skipped detail",
              detail)
    r = srv.get(f"/deployments/{daily}")
    check(r.status == 200 and r.json["next_due"] == iso(t180 + 86400),
          "daily: skipped to its next occurrence", r)
    for dep, what in ((oneshot, "two days"), (nowish, "a minute")):
        runs = runs_of(srv, dep)
        check(len(runs) == 1 and runs[0]["cause"] == "late", f"one-shot {what} late: one run",
              runs)
        r = srv.get(f"/deployments/{dep}")
        check(r.status == 200 and r.json["next_due"] is None, "one-shot done", r)
    # Another restart adds nothing.
    srv.restart()
    srv.token = op_tok
    time.sleep(1.0)
    for dep in (hourly, daily, oneshot, nowish):
        check(len(runs_of(srv, dep)) == (0 if dep == daily else 1),
              f"no new runs after a second restart ({dep})")


def main():
    with Server(config=CONFIG, env={"TZ": TZ}) as srv:
        srv.login()
        db = DB(srv)
        held = seed(srv)
        tokens = {"viewer": srv.user_token("vera", "viewer"),
                  "operator": srv.user_token("olga", "operator")}
        try:
            entries = test_entries(srv, tokens)
            test_rights(srv, tokens, entries)
            deps = test_deployments(srv, tokens, db)
            test_links(srv, tokens, deps)
        finally:
            held.close()
        r = wait_version(srv, 1, 2)
        check(r.json["state"] == "failed" and "upload aborted" in r.json["error"],
              "the held upload fails once closed", r)
        test_persistence(srv, deps)
        test_missed(srv, db)
        log = srv.logtext()
        check("ERROR" not in log and "runtime error" not in log, "no sanitizer reports",
              log[-2000:])
    done()


if __name__ == "__main__":
    main()
