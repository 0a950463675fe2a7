"""mlserver inventory API against a real server over HTTPS: machines, groups,
criteria and machine import. Every endpoint: authentication (no token, a
role too low), bad input (malformed JSON, unknown fields, bad values, unknown
ids), conflicts, criteria resolution, imports of CSV / dhcpd.conf / dnsmasq
samples, objects in use, pagination, restart persistence."""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apilib import Server, check, check_auth, check_error, done  # noqa: E402


def names(r):
    return sorted(m["name"] for m in r.json["items"]) if r.status == 200 else r


def make(srv, name, **kw):
    body = {"name": name}
    body.update(kw)
    r = srv.post("/machines", body)
    if not check(r.status == 201, f"create machine {name}", r):
        return None
    return r.json["id"]


def test_auth(srv, tokens):
    """Every endpoint refuses no token and an unknown one; writes refuse viewers."""
    routes = [
        ("GET", "/machines", "viewer", None),
        ("POST", "/machines", "operator", {"name": "auth-x"}),
        ("GET", "/machines/1", "viewer", None),
        ("PATCH", "/machines/1", "operator", {"notes": "x"}),
        ("DELETE", "/machines/1", "operator", None),
        ("POST", "/machines/import", "operator", {"format": "csv", "data": "name\nx\n"}),
        ("GET", "/groups", "viewer", None),
        ("POST", "/groups", "operator", {"name": "auth-g"}),
        ("GET", "/groups/1", "viewer", None),
        ("PATCH", "/groups/1", "operator", {"description": "x"}),
        ("DELETE", "/groups/1", "operator", None),
        ("POST", "/groups/1/members", "operator", {"machines": [1]}),
        ("DELETE", "/groups/1/members/1", "operator", None),
        ("GET", "/criteria", "viewer", None),
        ("POST", "/criteria", "operator", {"name": "auth-c", "room": "x"}),
        ("GET", "/criteria/1", "viewer", None),
        ("PATCH", "/criteria/1", "operator", {"room": "y"}),
        ("DELETE", "/criteria/1", "operator", None),
        ("GET", "/criteria/1/machines", "viewer", None),
    ]
    for method, path, role, body in routes:
        check_auth(srv, method, path, role, body, tokens=tokens)
    # Nothing was created by the refused requests.
    r = srv.get("/machines")
    check(r.status == 200 and r.json["total"] == 0, "refused requests wrote nothing", r)
    # An operator may write, a viewer read.
    r = srv.post("/machines", {"name": "op-made"}, token=tokens["operator"])
    check(r.status == 201, "operator creates a machine", r)
    r = srv.get(f"/machines/{r.json['id']}", token=tokens["viewer"])
    check(r.status == 200 and r.json["name"] == "op-made", "viewer reads a machine", r)
    r = srv.delete(f"/machines/{r.json['id']}", token=tokens["operator"])
    check(r.status == 204, "operator deletes a machine", r)
    r = srv.raw("GET", "/machines/import")
    check_error(r, 405, "method_not_allowed", "GET /machines/import")
    check(r.headers.get("Allow") == "POST", "Allow: POST", r.headers)
    r = srv.raw("PUT", "/machines/1", b"{}")
    check_error(r, 405, "method_not_allowed", "PUT /machines/1")


def test_machines(srv):
    r = srv.post("/machines", {"name": "PC-101.Lab.Example.EDU.",
                               "macs": ["52-54-00-AA-00-01", "5254.00aa.0002"],
                               "ip": "10.1.2.11", "subnet": "10.1.2.0/24", "room": "B 1.01",
                               "tags": ["lab", "win11", "lab"], "notes": "by the window\n2nd row"})
    check(r.status == 201, "create machine", r)
    m = r.json
    pc101 = m["id"]
    check(m["name"] == "pc-101.lab.example.edu", "name canonical", m)
    check(m["macs"] == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"], "MACs canonical", m)
    check(m["ip"] == "10.1.2.11" and m["subnet"] == "10.1.2.0/24", "ip and subnet", m)
    check(m["room"] == "B 1.01" and m["tags"] == ["lab", "win11"], "room and tags", m)
    check(m["notes"] == "by the window\n2nd row" and m["source"] == "manual", "notes, source", m)
    check(m["groups"] == [] and m["last_seen_at"] is None and m["created_at"].endswith("Z"),
          "groups, times", m)
    r = srv.post("/machines", {"name": "pc-102"})
    check(r.status == 201 and r.json["ip"] is None and r.json["macs"] == [] and
          r.json["room"] is None and r.json["subnet"] is None, "minimal machine", r)
    pc102 = r.json["id"]

    # Bad input, each naming its field.
    bad = [
        ({"macs": ["52:54:00:aa:00:09"]}, "name", "name missing"),
        ({"name": None}, "name", "name null"),
        ({"name": 12}, "name", "name not a string"),
        ({"name": "bad_name!"}, "name", "bad host name"),
        ({"name": "a" * 64 + ".example"}, "name", "label too long"),
        ({"name": "10.1.2.3"}, "name", "name that is an address"),
        ({"name": "x1", "macs": ["52:54:00:aa:00:09", "zz:zz"]}, "macs", "bad MAC"),
        ({"name": "x1", "macs": "52:54:00:aa:00:09"}, "macs", "macs not an array"),
        ({"name": "x1", "macs": [5]}, "macs", "MAC not a string"),
        ({"name": "x1", "macs": ["52:54:00:aa:00:09", "52-54-00-AA-00-09"]}, "macs",
         "MAC twice"),
        ({"name": "x1", "macs": [f"52:54:00:aa:01:{i:02x}" for i in range(9)]}, "macs",
         "nine MACs"),
        ({"name": "x1", "macs": ["00:00:00:00:00:00"]}, "macs", "zero MAC"),
        ({"name": "x1", "ip": "010.1.2.3"}, "ip", "IP with leading zero"),
        ({"name": "x1", "ip": "10.1.2.256"}, "ip", "IP out of range"),
        ({"name": "x1", "subnet": "10.1.2.0/33"}, "subnet", "prefix out of range"),
        ({"name": "x1", "subnet": "10.1.2.0"}, "subnet", "subnet without prefix"),
        ({"name": "x1", "ip": "10.1.3.5", "subnet": "10.1.2.0/24"}, "ip", "IP outside subnet"),
        ({"name": "x1", "room": "B,1"}, "room", "room with a comma"),
        ({"name": "x1", "room": "a" * 65}, "room", "room too long"),
        ({"name": "x1", "tags": ["two words"]}, "tags", "tag with a space"),
        ({"name": "x1", "tags": ["a,b"]}, "tags", "tag with a comma"),
        ({"name": "x1", "tags": [f"t{i}" for i in range(33)]}, "tags", "33 tags"),
        ({"name": "x1", "notes": "x" * 4097}, "notes", "notes too long"),
        ({"name": "x1", "notes": "bell\u0007"}, "notes", "control char in notes"),
        ({"name": "x1", "colour": "red"}, "colour", "unknown field"),
        ({"name": "x1", "source": "agent"}, "source", "source is not writable"),
    ]
    for body, field, what in bad:
        r = srv.post("/machines", body)
        check_error(r, 400, "bad_request", "machine: " + what, field=field)
    r = srv.post("/machines", {"name": " pc-104 ", "room": " B1 ", "ip": " 10.1.2.4"})
    check(r.status == 201 and r.json["name"] == "pc-104" and r.json["room"] == "B1" and
          r.json["ip"] == "10.1.2.4", "white space around values is ignored", r)
    srv.delete(f"/machines/{r.json['id']}")
    r = srv.post("/machines", {"name": "x1", "subnet": "10.1.2.5/24"})
    check_error(r, 400, "bad_request", "subnet host bits", field="subnet")
    check("did you mean 10.1.2.0/24" in r.raw, "subnet message suggests the network", r)
    r = srv.post("/machines", {"name": "x1", "macs": ["52:54:00:aa:00:09", "zz"]})
    check("macs[1]" in r.raw, "bad MAC message names the item", r)
    r = srv.raw("POST", "/machines", b'{"name": "x1",')
    check_error(r, 400, "bad_json", "malformed JSON")
    r = srv.raw("POST", "/machines", b'{"name": "x\\\xef\xbb\xbf"}')
    check_error(r, 400, "bad_json", "bad escape before a non-ASCII byte (error text is UTF-8)")
    r = srv.raw("POST", "/machines", b'["x1"]')
    check_error(r, 400, "bad_request", "body not an object")
    r = srv.raw("POST", "/machines", b'{"name": "x1", "name": "x2"}')
    check_error(r, 400, "bad_json", "duplicate key")
    r = srv.raw("POST", "/machines", b"")
    check_error(r, 400, "bad_request", "no body")
    r = srv.raw("POST", "/machines", b'{"name": "x1", "notes": "' + b"x" * (2 << 20) + b'"}')
    check_error(r, 413, "payload_too_large", "huge body")

    # Conflicts: name and MAC, saying whose.
    r = srv.post("/machines", {"name": "PC-101.lab.example.edu"})
    check_error(r, 409, "conflict", "duplicate name", field="name")
    r = srv.post("/machines", {"name": "pc-103", "macs": ["52:54:00:AA:00:02"]})
    check_error(r, 409, "conflict", "MAC of another machine", field="macs")
    check("pc-101.lab.example.edu" in r.raw and f"id {pc101}" in r.raw,
          "MAC conflict names the owner", r)

    # GET one, unknown ids.
    r = srv.get(f"/machines/{pc101}")
    check(r.status == 200 and r.json["name"] == "pc-101.lab.example.edu", "get machine", r)
    for path in ("/machines/999999", "/machines/0", "/machines/-3", "/machines/abc",
                 "/machines/99999999999999999999"):
        check_error(srv.get(path), 404, "not_found", "GET " + path)
    check_error(srv.patch("/machines/999999", {"notes": "x"}), 404, "not_found", "PATCH unknown")
    check_error(srv.delete("/machines/999999"), 404, "not_found", "DELETE unknown")

    # PATCH: lists replaced whole, null clears, absent stays.
    r = srv.patch(f"/machines/{pc101}", {"macs": ["52:54:00:aa:00:03"], "tags": ["exam"]})
    check(r.status == 200 and r.json["macs"] == ["52:54:00:aa:00:03"] and
          r.json["tags"] == ["exam"] and r.json["room"] == "B 1.01", "patch lists", r)
    r = srv.patch(f"/machines/{pc101}", {"room": None, "notes": None, "tags": []})
    check(r.status == 200 and r.json["room"] is None and r.json["notes"] == "" and
          r.json["tags"] == [] and r.json["ip"] == "10.1.2.11", "patch clears", r)
    r = srv.post("/machines", {"name": "pc-103", "macs": ["52:54:00:aa:00:01"]})
    check(r.status == 201, "a freed MAC can be reused", r)
    pc103 = r.json["id"]
    r = srv.patch(f"/machines/{pc101}", {"ip": "10.1.9.1"})
    check_error(r, 400, "bad_request", "patch IP outside stored subnet", field="ip")
    r = srv.patch(f"/machines/{pc101}", {"ip": "10.1.9.1", "subnet": "10.1.0.0/16"})
    check(r.status == 200 and r.json["subnet"] == "10.1.0.0/16", "patch ip and subnet", r)
    r = srv.patch(f"/machines/{pc101}", {"name": "pc-103"})
    check_error(r, 409, "conflict", "patch to a taken name", field="name")
    r = srv.patch(f"/machines/{pc101}", {"macs": ["52:54:00:aa:00:01"]})
    check_error(r, 409, "conflict", "patch to another's MAC", field="macs")
    r = srv.patch(f"/machines/{pc101}", {"macs": ["52:54:00:aa:00:03"], "name": "PC-101"})
    check(r.status == 200 and r.json["name"] == "pc-101", "patch keeps own MAC, renames", r)
    r = srv.patch(f"/machines/{pc101}", {"name": None})
    check_error(r, 400, "bad_request", "patch name to null", field="name")
    r = srv.patch(f"/machines/{pc101}", {"shoe": 1})
    check_error(r, 400, "bad_request", "patch unknown field", field="shoe")
    r = srv.raw("PATCH", f"/machines/{pc101}", b"{not json")
    check_error(r, 400, "bad_json", "patch malformed JSON")
    r = srv.get(f"/machines/{pc101}")
    check(r.json["name"] == "pc-101" and r.json["ip"] == "10.1.9.1", "failed patches changed nothing",
          r)
    # DELETE frees the name and the MACs.
    check(srv.delete(f"/machines/{pc103}").status == 204, "delete machine")
    check_error(srv.get(f"/machines/{pc103}"), 404, "not_found", "deleted machine is gone")
    r = srv.post("/machines", {"name": "pc-103", "macs": ["52:54:00:aa:00:01"]})
    check(r.status == 201, "name and MAC free after delete", r)
    for i in (pc101, pc102, r.json["id"]):
        srv.delete(f"/machines/{i}")
    r = srv.get("/audit?object_type=machine&action=create")
    check(r.status == 200 and r.json["total"] >= 3, "machine changes are audited", r)


def test_list_filters(srv):
    ids = {}
    for name, room, tags, ip, macs in [
            ("lf-a1", "A", ["lab", "win"], "10.5.0.1", ["52:54:00:bb:00:01"]),
            ("lf-a2", "A", ["lab"], "10.5.0.2", ["52:54:00:bb:00:02"]),
            ("lf-b1", "B", ["win"], "10.6.0.1", ["52:54:00:bb:00:03"]),
            ("other", None, [], None, [])]:
        body = {"tags": tags, "macs": macs}
        if room:
            body["room"] = room
        if ip:
            body["ip"] = ip
        ids[name] = make(srv, name, **body)
    check(names(srv.get("/machines?room=A")) == ["lf-a1", "lf-a2"], "filter room")
    check(names(srv.get("/machines?tag=win")) == ["lf-a1", "lf-b1"], "filter tag")
    check(names(srv.get("/machines?room=A&tag=win")) == ["lf-a1"], "filter room and tag")
    check(names(srv.get("/machines?q=LF-")) == ["lf-a1", "lf-a2", "lf-b1"], "q on name")
    check(names(srv.get("/machines?q=bb:00:03")) == ["lf-b1"], "q on a MAC")
    check(names(srv.get("/machines?q=10.5.")) == ["lf-a1", "lf-a2"], "q on the IP")
    check(names(srv.get("/machines?q=%25")) == [], "q '%' is literal")
    check(names(srv.get("/machines?q=lf_a")) == [], "q '_' is literal")
    check(names(srv.get("/machines?room=Nowhere")) == [], "filter room without matches")
    r = srv.post("/groups", {"name": "lf-group", "members": [ids["lf-a2"], ids["other"]]})
    gid = r.json["id"]
    check(names(srv.get(f"/machines?group={gid}")) == ["lf-a2", "other"], "filter group")
    check(names(srv.get(f"/machines?group={gid}&room=A")) == ["lf-a2"], "filter group and room")
    check_error(srv.get("/machines?group=abc"), 400, "bad_request", "group not a number",
                field="group")
    check_error(srv.get("/machines?group=999999"), 400, "bad_request", "unknown group",
                field="group")
    check_error(srv.get("/machines?room=%20A"), 400, "bad_request", "bad room filter",
                field="room")
    check_error(srv.get("/machines?tag=a%20b"), 400, "bad_request", "bad tag filter",
                field="tag")
    check_error(srv.get("/machines?q="), 400, "bad_request", "empty q", field="q")
    check_error(srv.get("/machines?limit=0"), 400, "bad_request", "limit 0", field="limit")
    check_error(srv.get("/machines?limit=1001"), 400, "bad_request", "limit 1001", field="limit")
    check_error(srv.get("/machines?offset=-1"), 400, "bad_request", "negative offset",
                field="offset")
    r = srv.get("/machines/" + str(ids["lf-a2"]))
    check(r.json["groups"] == [gid], "machine shows its groups", r)
    srv.delete(f"/groups/{gid}")
    for i in ids.values():
        srv.delete(f"/machines/{i}")


def test_groups(srv):
    m1, m2, m3 = (make(srv, f"grp-m{i}") for i in (1, 2, 3))
    r = srv.post("/groups", {"name": "Room B", "description": "all of B", "members": [m1, m2, m1]})
    check(r.status == 201 and r.json["members"] == [m1, m2] and r.json["member_count"] == 2,
          "create group", r)
    gid = r.json["id"]
    r = srv.post("/groups", {"name": "Room B"})
    check_error(r, 409, "conflict", "duplicate group name", field="name")
    r = srv.post("/groups", {"name": "bad-members", "members": [m1, 987654]})
    check_error(r, 400, "bad_request", "unknown member", field="members")
    check("987654" in r.raw, "unknown member named", r)
    check(srv.get("/groups?limit=1000").json["total"] == 1, "failed create wrote nothing")
    for body, field, what in [({}, "name", "group without name"),
                              ({"name": ""}, "name", "empty group name"),
                              ({"name": " x"}, "name", "group name with a space"),
                              ({"name": "x" * 65}, "name", "group name too long"),
                              ({"name": "g", "members": "1"}, "members", "members not a list"),
                              ({"name": "g", "members": [0]}, "members", "member id 0"),
                              ({"name": "g", "members": ["1"]}, "members", "member id string"),
                              ({"name": "g", "owner": "me"}, "owner", "unknown group field")]:
        check_error(srv.post("/groups", body), 400, "bad_request", what, field=field)
    check_error(srv.raw("POST", "/groups", b"{'name': 1}"), 400, "bad_json", "group bad JSON")
    r = srv.get("/groups")
    check(r.status == 200 and r.json["items"][0]["member_count"] == 2 and
          "members" not in r.json["items"][0], "group list has counts", r)
    r = srv.get(f"/groups/{gid}")
    check(r.status == 200 and r.json["members"] == [m1, m2], "get group", r)
    check_error(srv.get("/groups/424242"), 404, "not_found", "unknown group")
    check_error(srv.patch("/groups/424242", {"name": "z"}), 404, "not_found", "patch unknown")
    check_error(srv.delete("/groups/424242"), 404, "not_found", "delete unknown group")
    r = srv.patch(f"/groups/{gid}", {"members": [m3], "description": "now C"})
    check(r.status == 200 and r.json["members"] == [m3] and r.json["description"] == "now C",
          "patch group members replaced", r)
    r = srv.patch(f"/groups/{gid}", {"members": [m3, 99999]})
    check_error(r, 400, "bad_request", "patch unknown member", field="members")
    check(srv.get(f"/groups/{gid}").json["members"] == [m3], "failed patch changed nothing")
    r = srv.post("/groups/" + str(gid) + "/members", {"machines": [m1, m3]})
    check(r.status == 200 and r.json["members"] == [m1, m3], "add members", r)
    r = srv.post(f"/groups/{gid}/members", {"machines": [55555]})
    check_error(r, 400, "bad_request", "add unknown member", field="machines")
    r = srv.post(f"/groups/{gid}/members", {"machines": []})
    check_error(r, 400, "bad_request", "add no members", field="machines")
    r = srv.post(f"/groups/{gid}/members", {"members": [m1]})
    check_error(r, 400, "bad_request", "add members wrong key", field="members")
    r = srv.post("/groups/424242/members", {"machines": [m1]})
    check_error(r, 404, "not_found", "add to unknown group")
    check(srv.delete(f"/groups/{gid}/members/{m1}").status == 204, "remove member")
    check_error(srv.delete(f"/groups/{gid}/members/{m1}"), 404, "not_found",
                "remove non-member")
    check_error(srv.delete(f"/groups/424242/members/{m1}"), 404, "not_found",
                "remove from unknown group")
    r = srv.post("/groups", {"name": "other"})
    check_error(srv.patch(f"/groups/{gid}", {"name": "other"}), 409, "conflict",
                "rename group to a taken name", field="name")
    r = srv.patch(f"/groups/{gid}", {"name": "Room C"})
    check(r.status == 200 and r.json["name"] == "Room C", "rename group", r)
    # A deleted machine leaves its groups.
    srv.delete(f"/machines/{m3}")
    check(srv.get(f"/groups/{gid}").json["members"] == [], "deleted machine leaves the group")
    r = srv.patch(f"/groups/{gid}", {"members": None})
    check(r.status == 200 and r.json["members"] == [], "members null empties", r)
    return gid, m1, m2


def test_criteria(srv):
    # Machines for the rules.
    lab = {}
    for name, ip, subnet, room, tags in [
            ("pc-101.lab.example.edu", "10.1.1.1", "10.1.1.0/24", "101", ["win"]),
            ("pc-102.lab.example.edu", "10.1.1.2", "10.1.1.0/24", "101", ["linux"]),
            ("pc-201.lab.example.edu", "10.1.2.1", "10.1.2.0/24", "201", ["win"]),
            ("pc-201.xlab.example.edu", "10.2.0.1", None, "201", ["win"]),
            ("printer.lab.example.edu", None, None, "101", [])]:
        body = {"room": room, "tags": tags}
        if ip:
            body["ip"] = ip
        if subnet:
            body["subnet"] = subnet
        lab[name] = make(srv, name, **body)

    def crit(name, **rules):
        body = {"name": name}
        body.update(rules)
        r = srv.post("/criteria", body)
        check(r.status == 201, f"create criterion {name}", r)
        return r.json["id"] if r.status == 201 else 0

    def resolve(cid):
        r = srv.get(f"/criteria/{cid}/machines")
        return names(r)

    c_glob = crit("glob", name_glob="PC-1??.*")
    c_dom = crit("domain", domain=".Lab.Example.EDU.")
    c_sub = crit("subnet", subnet="10.1.0.0/16")
    c_room = crit("room", room="201")
    c_tag = crit("tag", tag="win")
    c_and = crit("and", domain="lab.example.edu", tag="win", room="201")
    c_none = crit("none", subnet="192.168.0.0/24")
    check(resolve(c_glob) == ["pc-101.lab.example.edu", "pc-102.lab.example.edu"], "glob")
    check(resolve(c_dom) == ["pc-101.lab.example.edu", "pc-102.lab.example.edu",
                             "pc-201.lab.example.edu", "printer.lab.example.edu"],
          "domain on label boundaries", resolve(c_dom))
    check(resolve(c_sub) == ["pc-101.lab.example.edu", "pc-102.lab.example.edu",
                             "pc-201.lab.example.edu"], "subnet on the IP", resolve(c_sub))
    check(resolve(c_room) == ["pc-201.lab.example.edu", "pc-201.xlab.example.edu"], "room")
    check(resolve(c_tag) == ["pc-101.lab.example.edu", "pc-201.lab.example.edu",
                             "pc-201.xlab.example.edu"], "tag")
    check(resolve(c_and) == ["pc-201.lab.example.edu"], "rules combine with AND")
    check(resolve(c_none) == [], "no match")
    r = srv.get(f"/criteria/{c_dom}")
    check(r.status == 200 and r.json["domain"] == "lab.example.edu" and r.json["room"] is None,
          "domain stored canonical", r)
    r = srv.get(f"/criteria/{c_tag}/machines?limit=2&offset=1")
    check(r.status == 200 and r.json["total"] == 3 and len(r.json["items"]) == 2 and
          r.json["items"][0]["name"] == "pc-201.lab.example.edu" and
          r.json["items"][0]["tags"] == ["win"], "criterion machines paginated, full shape", r)
    # A machine that moves room moves between criteria.
    srv.patch(f"/machines/{lab['pc-101.lab.example.edu']}", {"room": "201"})
    check(resolve(c_room) == ["pc-101.lab.example.edu", "pc-201.lab.example.edu",
                              "pc-201.xlab.example.edu"], "machine moved into the room")
    check(resolve(c_and) == ["pc-101.lab.example.edu", "pc-201.lab.example.edu"],
          "machine moved into the combined rule")
    srv.patch(f"/machines/{lab['pc-101.lab.example.edu']}", {"ip": "10.3.0.1", "subnet": None})
    check("pc-101.lab.example.edu" not in resolve(c_sub), "machine left the subnet")

    # Validation.
    for body, field, what in [
            ({"name": "x"}, None, "no rule"),
            ({"name": "x", "room": None}, None, "only a null rule"),
            ({"name": "x", "name_glob": "pc-[12"}, "name_glob", "unterminated class"),
            ({"name": "x", "name_glob": "pc\\"}, "name_glob", "trailing backslash"),
            ({"name": "x", "name_glob": ""}, "name_glob", "empty glob"),
            ({"name": "x", "name_glob": "x" * 256}, "name_glob", "glob too long"),
            ({"name": "x", "domain": "-lab.example.edu"}, "domain", "bad domain"),
            ({"name": "x", "domain": "lab..edu"}, "domain", "empty label"),
            ({"name": "x", "subnet": "10.1.0.0/33"}, "subnet", "prefix 33"),
            ({"name": "x", "subnet": "10.1.0.0"}, "subnet", "no prefix"),
            ({"name": "x", "subnet": 24}, "subnet", "subnet not a string"),
            ({"name": "x", "room": "a,b"}, "room", "room with comma"),
            ({"name": "x", "tag": "a b"}, "tag", "tag with space"),
            ({"name": "x", "room": "A", "vlan": 5}, "vlan", "unknown criterion field"),
            ({"room": "A"}, "name", "criterion without name"),
            ({"name": " x", "room": "A"}, "name", "criterion name with space")]:
        check_error(srv.post("/criteria", body), 400, "bad_request", "criterion: " + what,
                    field=field)
    r = srv.post("/criteria", {"name": "x", "subnet": "10.1.2.5/16"})
    check_error(r, 400, "bad_request", "criterion subnet host bits", field="subnet")
    check("did you mean 10.1.0.0/16" in r.raw, "criterion subnet message", r)
    check_error(srv.raw("POST", "/criteria", b'{"name": "x", "room": }'), 400, "bad_json",
                "criterion bad JSON")
    check_error(srv.post("/criteria", {"name": "glob", "room": "A"}), 409, "conflict",
                "duplicate criterion", field="name")
    # PATCH: null clears a rule; clearing the last is refused.
    r = srv.patch(f"/criteria/{c_and}", {"room": None, "tag": None, "description": "lab"})
    check(r.status == 200 and r.json["room"] is None and r.json["tag"] is None and
          r.json["domain"] == "lab.example.edu" and r.json["description"] == "lab",
          "patch clears rules", r)
    r = srv.patch(f"/criteria/{c_and}", {"domain": None})
    check_error(r, 400, "bad_request", "patch clears the last rule")
    check(srv.get(f"/criteria/{c_and}").json["domain"] == "lab.example.edu",
          "refused patch changed nothing")
    r = srv.patch(f"/criteria/{c_and}", {"subnet": "10.1.2.0/24", "domain": None})
    check(r.status == 200 and r.json["subnet"] == "10.1.2.0/24", "swap rules", r)
    check(resolve(c_and) == ["pc-201.lab.example.edu"], "patched rule resolves")
    check_error(srv.patch(f"/criteria/{c_and}", {"subnet": "10.1.2.1/24"}), 400, "bad_request",
                "patch bad subnet", field="subnet")
    check_error(srv.patch(f"/criteria/{c_and}", {"name": "glob"}), 409, "conflict",
                "patch to taken criterion name", field="name")
    check_error(srv.patch("/criteria/424242", {"room": "x"}), 404, "not_found",
                "patch unknown criterion")
    check_error(srv.get("/criteria/424242"), 404, "not_found", "get unknown criterion")
    check_error(srv.get("/criteria/424242/machines"), 404, "not_found",
                "machines of unknown criterion")
    check_error(srv.delete("/criteria/424242"), 404, "not_found", "delete unknown criterion")
    r = srv.get("/criteria?limit=3")
    check(r.status == 200 and r.json["total"] == 7 and len(r.json["items"]) == 3, "list criteria",
          r)
    check(srv.delete(f"/criteria/{c_none}").status == 204, "delete criterion")
    for i in lab.values():
        srv.delete(f"/machines/{i}")
    return c_glob


CSV = """\ufeffName,MAC,IP,Subnet,Room,Tags,Notes
imp-1,52:54:00:cc:00:01,10.9.0.1,10.9.0.0/24,R1,lab win,first
imp-2,"52:54:00:cc:00:02;52:54:00:cc:00:12",10.9.0.2,10.9.0.0/24,R1,lab,
imp-3,zz:zz,10.9.0.3,,R1,,
imp-4,52:54:00:cc:00:04,10.9.1.4,10.9.0.0/24,R1,,
imp-5,,,,R2,,"two
lines"
"""

DHCPD = """# lab hosts
option domain-name "lab.example.edu";
subnet 10.8.0.0 netmask 255.255.255.0 {
  option routers 10.8.0.254;
  host dh-1 { hardware ethernet 52:54:00:dd:00:01; fixed-address 10.8.0.1; }
  host dh-2 {
    hardware ethernet 52:54:00:dd:00:02;
    fixed-address 10.8.0.2;
    option host-name "dh-2.lab.example.edu";
  }
  host dh-bad { hardware ethernet 52:54:00:dd:00; fixed-address 10.8.0.3; }
}
host dh-3 { hardware ethernet 52:54:00:dd:00:03; }
"""

DNSMASQ = """# dnsmasq.conf
domain=lab.example.edu
dhcp-host=52:54:00:ee:00:01,dm-1,10.7.0.1
dhcp-host=52:54:00:ee:00:02,52:54:00:ee:00:12,dm-2,10.7.0.2,infinite
dhcp-host=52:54:00:ee:00:03,dm-bad,10.7.0.300
dhcp-host=52:54:00:ee:00:04,id:*,set:lab,dm-4
"""


def count(srv):
    return srv.get("/machines?limit=1").json["total"]


def test_import(srv):
    before = count(srv)
    # Dry run first: the same answer, nothing written.
    r = srv.post("/machines/import", {"format": "csv", "data": CSV, "dry_run": True})
    check(r.status == 200 and r.json["dry_run"] is True and r.json["created"] == 3 and
          r.json["error_count"] == 2, "CSV dry run counts", r)
    dry = r.json
    check(count(srv) == before, "dry run writes nothing")
    r = srv.post("/machines/import", {"format": "csv", "data": CSV})
    check(r.status == 200 and r.json["format"] == "csv" and r.json["created"] == 3 and
          r.json["updated"] == 0 and r.json["skipped"] == 0, "CSV import counts", r)
    check({k: v for k, v in r.json.items() if k != "dry_run"} ==
          {k: v for k, v in dry.items() if k != "dry_run"}, "dry run answered the same", r)
    lines = sorted(e["line"] for e in r.json["errors"])
    check(lines == [4, 5], "CSV errors per line", r.json["errors"])
    check(any("zz:zz" in e["message"] for e in r.json["errors"]), "bad MAC message", r)
    check(any("10.9.1.4" in e["message"] for e in r.json["errors"]), "IP outside subnet message",
          r)
    check(count(srv) == before + 3, "CSV machines written")
    r = srv.get("/machines?q=imp-2")
    m = r.json["items"][0]
    check(m["macs"] == ["52:54:00:cc:00:02", "52:54:00:cc:00:12"] and m["source"] == "import" and
          m["room"] == "R1" and m["tags"] == ["lab"], "imported machine", m)
    r = srv.get("/machines?q=imp-5")
    check(r.json["items"][0]["notes"] == "two\nlines", "quoted multi-line notes", r)
    # The same file again: all skipped; with update: unchanged.
    r = srv.post("/machines/import", {"format": "csv", "data": CSV})
    check(r.status == 200 and r.json["created"] == 0 and r.json["skipped"] == 3, "re-import skips",
          r)
    r = srv.post("/machines/import", {"format": "csv", "data": CSV, "update": True})
    check(r.status == 200 and r.json["unchanged"] == 3 and r.json["updated"] == 0,
          "re-import with update: unchanged", r)
    # Update by name and by MAC; values given replace, lists are added to.
    upd = ("name,mac,room,tags\nimp-1,,R9,exam\n"
           "imp-2-renamed,52:54:00:cc:00:12,,\nimp-6,52:54:00:cc:00:06,R2,\n")
    r = srv.post("/machines/import", {"format": "csv", "data": upd, "dry_run": True,
                                      "update": True})
    check(r.status == 200 and r.json["updated"] == 2 and r.json["created"] == 1,
          "update dry run", r)
    check(names(srv.get("/machines?q=imp-2")) == ["imp-2"], "update dry run wrote nothing")
    r = srv.post("/machines/import", {"format": "csv", "data": upd})
    check(r.status == 200 and r.json["skipped"] == 2 and r.json["created"] == 1,
          "without update existing are skipped", r)
    r = srv.post("/machines/import", {"format": "csv", "data": upd, "update": True})
    check(r.status == 200 and r.json["updated"] == 2 and r.json["unchanged"] == 1,
          "update counts", r)
    m = srv.get("/machines?q=imp-1").json["items"][0]
    check(m["room"] == "R9" and m["tags"] == ["exam", "lab", "win"] and m["ip"] == "10.9.0.1",
          "update by name merges", m)
    r = srv.get("/machines?q=imp-2")
    check(names(r) == ["imp-2-renamed"] and r.json["items"][0]["macs"] ==
          ["52:54:00:cc:00:02", "52:54:00:cc:00:12"], "update by MAC renames", r)
    # A record whose name and MAC point at different machines is an error.
    clash = "name,mac\nimp-1,52:54:00:cc:00:06\n"
    r = srv.post("/machines/import", {"format": "csv", "data": clash, "update": True})
    check(r.status == 200 and r.json["error_count"] == 1 and "imp-6" in r.raw,
          "name/MAC clash is a line error", r)

    # dhcpd.conf, by name and detected.
    r = srv.post("/machines/import", {"format": "dhcpd", "data": DHCPD})
    check(r.status == 200 and r.json["created"] == 3 and r.json["error_count"] == 1 and
          r.json["errors"][0]["line"] == 11, "dhcpd import", r)
    r = srv.get("/machines?q=dh-2")
    m = r.json["items"][0]
    check(m["name"] == "dh-2.lab.example.edu" and m["ip"] == "10.8.0.2" and
          m["subnet"] == "10.8.0.0/24" and m["macs"] == ["52:54:00:dd:00:02"],
          "dhcpd host with host-name and subnet", m)
    r = srv.post("/machines/import", {"data": DHCPD, "update": True})
    check(r.status == 200 and r.json["format"] == "dhcpd" and r.json["unchanged"] == 3,
          "dhcpd detected", r)
    # dnsmasq, by name and detected.
    r = srv.post("/machines/import", {"format": "dnsmasq", "data": DNSMASQ})
    check(r.status == 200 and r.json["created"] == 3 and r.json["error_count"] == 1 and
          r.json["errors"][0]["line"] == 5, "dnsmasq import", r)
    m = srv.get("/machines?q=dm-2").json["items"][0]
    check(m["macs"] == ["52:54:00:ee:00:02", "52:54:00:ee:00:12"] and m["ip"] == "10.7.0.2",
          "dnsmasq host with two MACs", m)
    r = srv.post("/machines/import", {"format": "auto", "data": DNSMASQ})
    check(r.status == 200 and r.json["format"] == "dnsmasq" and r.json["skipped"] == 3,
          "dnsmasq detected", r)
    r = srv.post("/machines/import", {"data": "52:54:00:ee:00:09,dm-9,10.7.0.9\n"})
    check(r.status == 200 and r.json["format"] == "dnsmasq" and r.json["created"] == 1,
          "dnsmasq hosts file detected", r)

    # Refused imports write nothing.
    n = count(srv)
    bad = [
        ({"format": "csv", "data": "name,colour\nx,red\n"}, "data", "unknown CSV column"),
        ({"format": "csv", "data": "mac\n52:54:00:cc:00:99\n"}, "data", "CSV without name"),
        ({"data": "# only a comment\n"}, "format", "format cannot be told"),
        ({"format": "xml", "data": "<x/>"}, "format", "unknown format"),
        ({"format": "csv"}, "data", "no data"),
        ({"format": "csv", "data": ""}, "data", "empty data"),
        ({"format": "csv", "data": 5}, "data", "data not a string"),
        ({"format": "csv", "data": "name\nx\n", "update": "yes"}, "update", "update not bool"),
        ({"format": "csv", "data": "name\nx\n", "dry_run": 1}, "dry_run", "dry_run not bool"),
        ({"format": "csv", "data": "name\nx\n", "mode": "merge"}, "mode", "unknown field"),
    ]
    for body, field, what in bad:
        check_error(srv.post("/machines/import", body), 400, "bad_request", "import: " + what,
                    field=field)
    check_error(srv.raw("POST", "/machines/import", b'{"data": "x'), 400, "bad_json",
                "import bad JSON")
    big = "name\n" + "".join(f"h{i}\n" for i in range(300000))
    r = srv.post("/machines/import", {"format": "csv", "data": big})
    check_error(r, 413, "payload_too_large", "import over max_body")
    check(count(srv) == n, "refused imports wrote nothing")
    r = srv.get("/audit?action=import")
    check(r.status == 200 and r.json["total"] >= 5, "imports are audited (not dry runs)", r)


def sql(srv, statements):
    """Runs SQL on the live database with the sqlite3 CLI (rows no API makes yet)."""
    db = os.path.join(srv.dir, "data", "mlserver.db")
    p = subprocess.run(["sqlite3", "-bail", db],
                       input=".timeout 10000\nPRAGMA foreign_keys = ON;\n" + statements,
                       capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "sqlite3 " + statements.splitlines()[0], p.stderr)


def test_in_use(srv, gid, cid):
    """A group or criterion that a right or deployment targets cannot be deleted."""
    if not shutil.which("sqlite3"):
        print("note: sqlite3 CLI missing; skipping the in-use deletion checks", flush=True)
        return
    sql(srv, "INSERT INTO entries (id, name, kind, host, created_at, updated_at)"
             " VALUES (9001, 'inuse-entry', 'rdp', 'h', 0, 0);\n"
             "INSERT INTO rights (id, entry_id, created_at, updated_at) VALUES (9001, 9001, 0, 0);\n"
             f"INSERT INTO right_targets (right_id, group_id) VALUES (9001, {gid});\n"
             f"INSERT INTO right_targets (right_id, criterion_id) VALUES (9001, {cid});\n")
    r = srv.delete(f"/groups/{gid}")
    check_error(r, 409, "conflict", "delete group in use")
    check("1 right" in r.raw, "in-use message counts the rights", r)
    r = srv.delete(f"/criteria/{cid}")
    check_error(r, 409, "conflict", "delete criterion in use")
    check(srv.get(f"/groups/{gid}").status == 200, "group in use still there")
    check(srv.get(f"/criteria/{cid}").status == 200, "criterion in use still there")
    sql(srv, "DELETE FROM rights WHERE id = 9001;\nDELETE FROM entries WHERE id = 9001;\n")
    check(srv.delete(f"/groups/{gid}").status == 204, "delete group no longer in use")
    check(srv.delete(f"/criteria/{cid}").status == 204, "delete criterion no longer in use")


def test_pagination(srv):
    data = "name,room\n" + "".join(f"page-{i:03d},P\n" for i in range(250))
    r = srv.post("/machines/import", {"format": "csv", "data": data})
    check(r.status == 200 and r.json["created"] == 250, "import 250 machines", r)
    seen = []
    for off in (0, 100, 200):
        r = srv.get(f"/machines?room=P&limit=100&offset={off}")
        check(r.status == 200 and r.json["total"] == 250 and r.json["offset"] == off,
              f"page at {off}", r)
        seen += [m["name"] for m in r.json["items"]]
    check(len(seen) == 250 and seen == sorted(seen) and len(set(seen)) == 250,
          "pages cover all, in name order, no overlap", len(seen))
    check(seen[0] == "page-000" and seen[-1] == "page-249", "first and last", seen[:1])
    r = srv.get("/machines?room=P&limit=100&offset=300")
    check(r.status == 200 and r.json["items"] == [] and r.json["total"] == 250, "past the end", r)
    r = srv.get("/machines?room=P&limit=1000")
    check(r.status == 200 and len(r.json["items"]) == 250, "one big page", r)
    check(all(isinstance(m["macs"], list) and isinstance(m["tags"], list)
              for m in r.json["items"]), "each item has its lists")


def main():
    with Server() as srv:
        srv.login()
        tokens = {"viewer": srv.user_token("vera", "viewer"),
                  "operator": srv.user_token("otto", "operator"),
                  "admin": srv.token}
        test_auth(srv, tokens)
        test_machines(srv)
        test_list_filters(srv)
        gid, m1, m2 = test_groups(srv)
        cid = test_criteria(srv)
        test_import(srv)
        test_pagination(srv)
        # Restart: everything is still there.
        total = count(srv)
        group = srv.get(f"/groups/{gid}").json
        crit = srv.get(f"/criteria/{cid}/machines").json
        srv.restart()
        srv.login()
        check(count(srv) == total, "machines survive restart")
        check(srv.get(f"/groups/{gid}").json == group, "group survives restart")
        check(srv.get(f"/criteria/{cid}/machines").json == crit, "criterion survives restart")
        r = srv.get("/machines?q=dh-2")
        check(r.status == 200 and r.json["items"][0]["subnet"] == "10.8.0.0/24",
              "imported machine survives restart", r)
        test_in_use(srv, gid, cid)
    done()


if __name__ == "__main__":
    main()
