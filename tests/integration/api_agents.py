#!/usr/bin/env python3
"""The agent protocol against a real mlserver (docs/agent-protocol.md):
enrollment, credentials and their revocation, hello and inventory, the long
poll (suspended requests: many idle polls do not starve a small worker
pool, and a stop answers them), command results, the manifest, and the
admin endpoints. Commands are written into the store with Python's sqlite3
while the server runs (WAL), as nothing in the API creates them yet; the
wake-up of a push is covered by test_agentq."""
import json
import os
import sqlite3
import threading
import time

from apilib import Server, check, check_error, check_auth, done

HEX0 = "0" * 64


def db(srv):
    c = sqlite3.connect(os.path.join(srv.dir, "data", "mlserver.db"), timeout=10)
    c.execute("PRAGMA busy_timeout = 10000")
    return c


def add_command(srv, machine, kind="wol", args=None, state="queued", expires_at=None):
    c = db(srv)
    now = int(time.time())
    cur = c.execute("INSERT INTO agent_commands (machine_id, kind, args, state, created_at,"
                    " updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (machine, kind, json.dumps(args or {}), state, now, now, expires_at))
    c.commit()
    cid = cur.lastrowid
    c.close()
    return cid


def enroll(srv, token, **kw):
    body = {"token": token, "name": None, "hostname": "debian", "macs": [], "ips": [],
            "agent_version": "0.4"}
    body.update(kw)
    return srv.post("/agent/enroll", body, token="")


def new_token(srv, name, **kw):
    body = {"name": name}
    body.update(kw)
    r = srv.post("/enroll-tokens", body)
    check(r.status == 201 and r.json["token"].startswith("mle_"), "create token " + name, r)
    return r.json


def timed(fn):
    t = time.time()
    r = fn()
    return r, time.time() - t


def main():
    srv = Server(extra_args=["--set", "server.threads=4", "--set", "agents.poll_wait=5s"])
    srv.login()
    tokens = {"admin": srv.token, "viewer": srv.user_token("v", "viewer"),
              "operator": srv.user_token("o", "operator")}

    # ---- enrollment tokens (admin) ----
    check_auth(srv, "POST", "/enroll-tokens", "admin", {"name": "x"}, tokens)
    check_auth(srv, "GET", "/enroll-tokens", "admin", None, tokens)
    check_auth(srv, "DELETE", "/enroll-tokens/1", "admin", None, tokens)
    check_auth(srv, "GET", "/agents", "viewer", None, tokens)
    check_auth(srv, "DELETE", "/agents/1", "admin", None, tokens)
    check_auth(srv, "GET", "/commands", "viewer", None, tokens)
    check_error(srv.post("/enroll-tokens", {"name": ""}), 400, "bad_request", "empty name",
                "name")
    check_error(srv.post("/enroll-tokens", {"name": "a", "max_uses": 0}), 400, "bad_request",
                "max_uses 0", "max_uses")
    check_error(srv.post("/enroll-tokens", {"name": "a", "expires": "yesterday"}), 400,
                "bad_request", "bad expires", "expires")
    check_error(srv.post("/enroll-tokens", {"name": "a", "bogus": 1}), 400, "bad_request",
                "unknown key")
    check_error(srv.raw("POST", "/enroll-tokens", b"{nope"), 400, "bad_json", "malformed")
    main_tok = new_token(srv, "lab")
    check_error(srv.post("/enroll-tokens", {"name": "lab"}), 409, "conflict", "duplicate name")
    once = new_token(srv, "once", max_uses=1)
    exp = new_token(srv, "soon", expires="2100-01-01T00:00:00Z")
    r = srv.get("/enroll-tokens")
    check(r.status == 200 and r.json["total"] == 3 and
          all("token" not in t and "hash" not in t for t in r.json["items"]),
          "token list hides secrets", r)
    check(exp["expires_at"] == "2100-01-01T00:00:00Z", "expires shown", exp)

    # ---- enrollment ----
    r = srv.post("/machines", {"name": "pc-104", "macs": ["52:54:00:12:34:56"]})
    check(r.status == 201, "machine by MAC", r)
    pc104 = r.json["id"]
    r = srv.post("/machines", {"name": "pc-105", "ip": "10.9.9.9"})
    pc105 = r.json["id"]
    tok = main_tok["token"]
    r = enroll(srv, tok, macs=["52-54-00-12-34-56"])
    check(r.status == 201 and r.json["machine_id"] == pc104 and not r.json["registered"]
          and r.json["credential"].startswith("mla_") and len(r.json["credential"]) == 68,
          "enroll known by MAC", r)
    cred104 = r.json["credential"]
    check(r.json.get("fingerprint", "") != "", "enroll gives the fingerprint", r)
    r = enroll(srv, tok, name="PC-105", macs=["52:54:00:00:00:05"])
    check(r.status == 201 and r.json["machine_id"] == pc105 and r.json["machine"] == "pc-105",
          "enroll known by name", r)
    cred105 = r.json["credential"]
    r = enroll(srv, tok, hostname="debian", macs=["52:54:00:aa:bb:cc"], ips=["10.1.2.34/24"])
    check(r.status == 201 and r.json["registered"] and r.json["machine"] == "debian",
          "enroll unknown registers", r)
    newid = r.json["machine_id"]
    cred_new = r.json["credential"]
    r = srv.get(f"/machines/{newid}")
    check(r.status == 200 and r.json["source"] == "agent" and r.json["ip"] == "10.1.2.34"
          and r.json["subnet"] == "10.1.2.0/24" and r.json["macs"] == ["52:54:00:aa:bb:cc"],
          "registered machine's record", r)
    r = srv.get("/groups")
    grp = [g for g in r.json["items"] if g["name"] == "new"]
    check(len(grp) == 1, "group 'new' created", r)
    r = enroll(srv, tok, hostname="debian", macs=["52:54:00:dd:ee:ff"])
    check(r.status == 201 and r.json["machine"] == "debian-ddeeff",
          "taken hostname gets the MAC's end", r)
    # Token rules.
    check_error(enroll(srv, "mle_" + HEX0), 401, "bad_token", "unknown token")
    check_error(enroll(srv, "nope"), 401, "bad_token", "malformed token")
    check_error(enroll(srv, cred104), 401, "bad_token", "credential as token")
    r = enroll(srv, once["token"], macs=["52:54:00:12:34:56"])
    check(r.status == 201, "single-use token once", r)
    cred104_b = r.json["credential"]
    check_error(enroll(srv, once["token"], macs=["52:54:00:12:34:56"]), 401, "bad_token",
                "used-up token")
    check(srv.delete(f"/enroll-tokens/{exp['id']}").status == 204, "revoke token")
    check_error(enroll(srv, exp["token"]), 401, "bad_token", "revoked token")
    c = db(srv)
    c.execute("UPDATE enroll_tokens SET expires_at = 1 WHERE name = 'lab'")
    c.commit()
    c.close()
    check_error(enroll(srv, tok, macs=["52:54:00:12:34:56"]), 401, "bad_token",
                "expired token")
    c = db(srv)
    c.execute("UPDATE enroll_tokens SET expires_at = NULL WHERE name = 'lab'")
    c.commit()
    c.close()
    # Bad input.
    check_error(srv.raw("POST", "/agent/enroll", b"{x", token=""), 400, "bad_json",
                "enroll malformed JSON")
    check_error(srv.post("/agent/enroll", {"token": 5}, token=""), 400, "bad_request",
                "enroll token type", "token")
    check_error(enroll(srv, tok, macs="x"), 400, "bad_request", "enroll macs type", "macs")
    check_error(enroll(srv, tok, macs=["zz:zz"]), 400, "bad_request", "enroll bad MAC", "macs")
    check_error(enroll(srv, tok, hostname="-bad-", macs=["52:54:00:99:99:99"]), 400,
                "bad_request", "enroll bad hostname", "hostname")

    # ---- re-enrollment revoked the earlier credential ----
    check_error(srv.post("/agent/hello", {}, token=cred104), 401, "unauthorized",
                "re-enrolled: old credential refused")
    cred104 = cred104_b
    r = srv.post("/agent/hello", {"agent_version": "0.5"}, token=cred104)
    check(r.status == 200 and r.json["heartbeat_s"] == 60 and r.json["poll_wait_s"] == 5
          and r.json["server_time"].endswith("Z"), "hello answer", r)

    # ---- principals ----
    check_error(srv.get("/machines", token=cred104), 403, "forbidden", "agent on user route")
    check_error(srv.get("/agent/poll?wait=1", token=tokens["admin"]), 403, "forbidden",
                "user on agent route")
    check_error(srv.get("/agent/poll?wait=1", token=""), 401, "unauthorized",
                "no credential on agent route")
    check_error(srv.get("/agent/poll?wait=1", token="mla_" + HEX0), 401, "unauthorized",
                "unknown credential")
    check_error(srv.get("/agent/poll?wait=1", token="mla_xyz"), 401, "unauthorized",
                "malformed credential")

    # ---- hello: inventory, types, size, address ----
    inv = {"agent_version": "0.4", "hostname": "debian", "boot_id": "b", "uptime_s": 12,
           "macs": ["52:54:00:00:00:05"], "ips": ["fe80::1/64", "10.7.1.5/16"],
           "cpu": {"model": "Xeon", "count": 8}, "memory_bytes": 16 << 30,
           "disks": [{"name": "sda", "size_bytes": 1, "model": "m", "rotational": False}],
           "data_dir": {"path": "/var/lib/mlagent", "size_bytes": 1, "free_bytes": 1,
                        "reflink": True},
           "kvm": True, "images": [{"image_id": 3, "active": 7, "previous": None,
                                    "versions": []}], "future_key": {"x": 1}}
    r = srv.post("/agent/hello", inv, token=cred105)
    check(r.status == 200, "hello with inventory", r)
    r = srv.get(f"/agents/{pc105}", token=tokens["viewer"])
    check(r.status == 200 and r.json["inventory"]["cpu"]["count"] == 8
          and r.json["inventory"]["future_key"] == {"x": 1} and r.json["online"] is True
          and r.json["agent_version"] == "0.4" and len(r.json["credentials"]) == 1,
          "inventory shown", r)
    r = srv.get(f"/machines/{pc105}")
    check(r.json["ip"] == "10.9.9.9" and r.json["subnet"] is None and r.json["last_seen_at"],
          "recorded ip kept, subnet not forced", r)
    r = srv.post("/agent/hello", {"ips": ["10.1.200.7/22"]}, token=cred104)
    r = srv.get(f"/machines/{pc104}")
    check(r.json["ip"] == "10.1.200.7" and r.json["subnet"] == "10.1.200.0/22",
          "ip and subnet filled", r)
    for key, bad in [("cpu", 5), ("memory_bytes", "lots"), ("ips", "x"), ("macs", [1]),
                     ("kvm", "yes"), ("agent_version", 4), ("disks", {})]:
        check_error(srv.post("/agent/hello", {key: bad}, token=cred105), 400, "bad_request",
                    f"hello wrong type {key}", key)
    check_error(srv.raw("POST", "/agent/hello", b"[1", token=cred105), 400, "bad_json",
                "hello malformed")
    big = {"disks": [{"name": "d%d" % i, "model": "x" * 100} for i in range(800)]}
    check_error(srv.post("/agent/hello", big, token=cred105), 413, "payload_too_large",
                "hello oversized inventory")
    r = srv.get("/agents")
    check(r.status == 200 and r.json["total"] == 4 and
          any(a["machine_id"] == pc105 and a["inventory"]["cpus"] == 8 for a in r.json["items"]),
          "agents list with summary", r)

    # ---- long poll ----
    r, t = timed(lambda: srv.get("/agent/poll?wait=1", token=cred_new))
    check(r.status == 200 and r.json["commands"] == [] and 0.8 < t < 3,
          "idle poll times out empty", f"{r} {t:.2f}s")
    check_error(srv.get("/agent/poll?wait=0", token=cred_new), 400, "bad_request",
                "wait 0", "wait")
    check_error(srv.get("/agent/poll?wait=61", token=cred_new), 400, "bad_request",
                "wait 61", "wait")
    c1 = add_command(srv, newid, "wol", {"macs": ["52:54:00:aa:bb:cc"]})
    c2 = add_command(srv, newid, "rollback", {"image_id": 3})
    add_command(srv, newid, "rollback", {"image_id": 4}, expires_at=1)
    r, t = timed(lambda: srv.get("/agent/poll?wait=5", token=cred_new))
    check(r.status == 200 and [x["id"] for x in r.json["commands"]] == [c1, c2] and t < 1
          and r.json["commands"][0]["kind"] == "wol"
          and r.json["commands"][0]["args"]["macs"] == ["52:54:00:aa:bb:cc"]
          and r.json["commands"][0]["run_id"] is None,
          "poll answers unfinished commands at once, oldest first, not expired",
          f"{r} {t:.2f}s")
    r = srv.get(f"/commands?machine={newid}", token=tokens["viewer"])
    states = sorted(x["state"] for x in r.json["items"])
    check(states == ["expired", "sent", "sent"], "queued became sent; expired", r)
    check_error(srv.get("/commands?state=bogus"), 400, "bad_request", "commands bad state",
                "state")
    r = srv.get(f"/commands/{c1}", token=tokens["viewer"])
    check(r.status == 200 and r.json["sent_at"] is not None, "command shown", r)
    # Sent and unfinished, nothing new: a poll holds until its wait ends and
    # then lists them (no answers back to back to a busy agent) ...
    r, t = timed(lambda: srv.get("/agent/poll?wait=2", token=cred_new))
    check(r.status == 200 and [x["id"] for x in r.json["commands"]] == [c1, c2] and t >= 1.8,
          "nothing new: the poll holds, then lists the unfinished commands", f"{r} {t:.2f}s")
    # ... but the first poll after a start (all=1) has them at once.
    r, t = timed(lambda: srv.get("/agent/poll?wait=5&all=1", token=cred_new))
    check(r.status == 200 and [x["id"] for x in r.json["commands"]] == [c1, c2] and t < 1,
          "all=1: the unfinished commands at once", f"{r} {t:.2f}s")
    check_error(srv.get("/agent/poll?all=yes", token=cred_new), 400, "bad_request", "all=yes",
                "all")
    # Commands written while a poll waits come within its wait.
    for x in (c1, c2):
        srv.post(f"/agent/commands/{x}", {"state": "done", "result": {"sent": 1}},
                 token=cred_new)
    got = {}

    def waiter():
        got["r"], got["t"] = timed(lambda: srv.get("/agent/poll?wait=5", token=cred_new))
    th = threading.Thread(target=waiter)
    th.start()
    time.sleep(0.5)
    c3 = add_command(srv, newid, "wol", {})
    th.join()
    check(got["r"].status == 200 and [x["id"] for x in got["r"].json["commands"]] == [c3],
          "waiting poll gets a command written meanwhile", got)

    # ---- results ----
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "done"}, token=cred104), 404,
                "not_found", "another machine's command")
    check_error(srv.post("/agent/commands/99999", {"state": "done"}, token=cred_new), 404,
                "not_found", "no such command")
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "bogus"}, token=cred_new), 400,
                "bad_request", "bad state", "state")
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "running", "phase": "x"},
                         token=cred_new), 400, "bad_request", "bad phase", "phase")
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "done", "result": 3},
                         token=cred_new), 400, "bad_request", "result type", "result")
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "done",
                                                   "result": {"x": "y" * 70000}},
                         token=cred_new), 413, "payload_too_large", "result too large")
    check_error(srv.raw("POST", f"/agent/commands/{c3}", b"{", token=cred_new), 400,
                "bad_json", "result malformed")
    r = srv.post(f"/agent/commands/{c3}", {"state": "running", "phase": "ready"},
                 token=cred_new)
    check(r.status == 200 and r.json["state"] == "running", "running", r)
    r = srv.post(f"/agent/commands/{c3}", {"state": "failed", "result": {"reason": "r"}},
                 token=cred_new)
    check(r.status == 200 and r.json["state"] == "failed", "failed", r)
    r = srv.post(f"/agent/commands/{c3}", {"state": "failed", "result": {"reason": "other"}},
                 token=cred_new)
    check(r.status == 200, "final state again is idempotent", r)
    r = srv.get(f"/commands/{c3}")
    check(r.json["result"] == {"reason": "r"} and r.json["phase"] == "ready",
          "result and phase stored, not changed by the repeat", r)
    check_error(srv.post(f"/agent/commands/{c3}", {"state": "done"}, token=cred_new), 409,
                "conflict", "other final state")
    cc = add_command(srv, newid, "cancel", {"command": c3})
    r = srv.post(f"/agent/commands/{cc}", {"state": "running"}, token=cred_new)
    check(r.status == 200 and r.json["state"] == "done", "a cancel command ends done", r)

    # ---- manifest ----
    vdir = os.path.join(srv.dir, "data", "versions", "77")
    os.makedirs(vdir, exist_ok=True)
    blob = bytes(range(256)) * 40
    with open(os.path.join(vdir, "manifest"), "wb") as f:
        f.write(blob)
    r = srv.raw("GET", "/agent/manifest/77", token=cred_new)
    check(r.status == 404, "manifest without a receive command", r)
    rc = add_command(srv, newid, "receive", {"image_id": 1, "version_id": 77})
    conn = srv.conn()
    conn.request("GET", "/api/v1/agent/manifest/77",
                 headers={"Authorization": "Bearer " + cred_new})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    check(resp.status == 200 and data == blob and
          resp.getheader("Content-Type") == "application/octet-stream", "manifest streamed",
          resp.status)
    check(srv.raw("GET", "/agent/manifest/77", token=cred104).status == 404,
          "manifest for another machine")
    check(srv.raw("GET", "/agent/manifest/78", token=cred_new).status == 404,
          "manifest of another version")
    srv.post(f"/agent/commands/{rc}", {"state": "done"}, token=cred_new)
    check(srv.raw("GET", "/agent/manifest/77", token=cred_new).status == 404,
          "manifest after the command finished")
    rc = add_command(srv, newid, "receive", {"image_id": 1, "version_id": 77})

    # ---- revocation ----
    # A poll waiting when the credential is revoked answers 401 at once.
    srv.post(f"/agent/commands/{rc}", {"state": "done"}, token=cred_new)
    parked = {}

    def parked_poll():
        parked["r"], parked["t"] = timed(lambda: srv.get("/agent/poll?wait=20", token=cred_new))
    th = threading.Thread(target=parked_poll)
    th.start()
    time.sleep(0.5)
    check(srv.delete(f"/agents/{newid}").status == 204, "revoke agent")
    th.join()
    check(parked["r"].status == 401 and parked["t"] < 3,
          "a poll waiting at the revocation answers 401 at once", parked)
    check(srv.delete("/agents/99999").status == 404, "revoke unknown agent")
    for method, path, body in [("POST", "/agent/hello", {}), ("GET", "/agent/poll?wait=1",
                                                               None),
                               ("POST", f"/agent/commands/{rc}", {"state": "done"}),
                               ("GET", "/agent/manifest/77", None)]:
        check_error(srv.req(method, path, body, token=cred_new), 401, "unauthorized",
                    f"revoked credential: {method} {path}")
    r = srv.get(f"/agents/{newid}")
    check(r.json["enrolled"] is False and r.json["credentials"][0]["revoked_at"],
          "revocation shown", r)
    r = srv.get("/audit?limit=1000")
    actions = {(a["action"], a["object_type"]) for a in r.json["items"]}
    check({("enroll", "machine"), ("revoke", "machine"), ("create", "enroll_token"),
           ("delete", "enroll_token")} <= actions, "audit records", actions)

    # ---- many idle polls with 4 worker threads; /health stays quick ----
    creds = []
    for i in range(50):
        r = enroll(srv, tok, hostname=f"idle-{i}", macs=[f"52:54:01:00:00:{i:02x}"])
        creds.append(r.json["credential"])
    results = []

    def idle(cr):
        try:
            results.append(srv.get("/agent/poll?wait=5", token=cr).status)
        except Exception as e:  # noqa: BLE001 - counted as a failure below
            results.append(str(e))
    ths = [threading.Thread(target=idle, args=(cr,)) for cr in creds]
    for th in ths:
        th.start()
    time.sleep(1.5)
    r, t = timed(lambda: srv.get("/health", token=""))
    check(r.status == 200 and t < 1, "health answers during 50 idle polls", f"{r} {t:.2f}s")
    r = srv.get("/agents?limit=1000", token=tokens["viewer"])
    online = sum(1 for a in r.json["items"] if a["machine"].startswith("idle-") and a["online"])
    check(online == 50, "waiting agents are online", online)
    for th in ths:
        th.join()
    check(results.count(200) == 50, "all idle polls answered", results[:5])

    # ---- a second poll of a machine replaces the first ----
    first = {}

    def p1():
        first["r"], first["t"] = timed(lambda: srv.get("/agent/poll?wait=5", token=cred105))
    th = threading.Thread(target=p1)
    th.start()
    time.sleep(0.5)
    th2 = threading.Thread(target=lambda: srv.get("/agent/poll?wait=1", token=cred105))
    th2.start()
    th.join()
    th2.join()
    check(first["r"].status == 200 and first["r"].json["commands"] == [] and first["t"] < 2,
          "replaced poll answers empty at once", first)

    # ---- shutdown with polls waiting ----
    ths = [threading.Thread(target=idle, args=(cr,)) for cr in creds[:20]]
    results.clear()
    for th in ths:
        th.start()
    # Time for 20 TLS handshakes on a loaded machine (ASan, other tests),
    # well within the polls' 5 s wait.
    time.sleep(3)
    t = time.time()
    srv.stop()
    took = time.time() - t
    for th in ths:
        th.join()
    check(took < 3, "stop with waiting polls is quick", f"{took:.2f}s")
    check(results.count(200) == 20, "waiting polls answered at stop", results[:5])
    srv.cleanup()

    # ---- register_unknown off ----
    srv = Server(extra_args=["--set", "agents.register_unknown=false"])
    srv.login()
    tk = new_token(srv, "t")["token"]
    check_error(enroll(srv, tk, macs=["52:54:00:01:02:03"]), 403, "unknown_machine",
                "unknown machine refused")
    srv.post("/machines", {"name": "known", "macs": ["52:54:00:01:02:04"]})
    check(enroll(srv, tk, macs=["52:54:00:01:02:04"]).status == 201, "known still enrolls")
    srv.cleanup()
    done()


if __name__ == "__main__":
    main()
