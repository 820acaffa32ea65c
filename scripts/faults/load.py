#!/usr/bin/env python3
"""Load generator of the fault suite (scripts/faults.sh). Standard library only.

  load.py create --api URL --key KEY --records N --out IDS
      creates N `counter` records (one Idempotency-Key each), ids to IDS.
  load.py bump --api URL --key KEY --ids IDS --threads T --seconds S --acks ACKS
      T threads bump their own records for S seconds. A request is retried with
      the same Idempotency-Key until it is acknowledged (the daemon may be
      killed, restarted, or its database restarted meanwhile), so every
      request ends acknowledged exactly once. ACKS gets one line per
      acknowledged request: record id, revision, key. Prints a JSON summary.
  load.py verify --acks ACKS --ids IDS --db URL
      checks the acknowledgement log against the database: for every record,
      the acknowledged revisions are exactly 2..R where R is the stored
      revision (nothing lost, nothing doubled, no gap), and the field `n`
      equals R - 1 (every bump applied once). Prints a JSON verdict.
  load.py pings --api URL --key KEY --records N --spread S --out IDS
      creates N `ping` records due over the next S seconds.
  load.py verify-pings --ids IDS --db URL
      every ping fired exactly once: state `done`, revision 2, one outbox row.
"""
import argparse
import http.client
import json
import os
import random
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

RETRYABLE = {408, 429, 500, 502, 503, 504}


class Client:
    def __init__(self, api, key, timeout=10.0):
        u = urllib.parse.urlparse(api)
        self.host, self.port = u.hostname, u.port or 80
        self.key = key
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        """One attempt. Returns (status, json or None); raises OSError and
        http.client errors on connection trouble."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        h = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        data = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            raw = r.read()
        except Exception:
            self.close()
            raise
        if r.getheader("connection", "").lower() == "close":
            self.close()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def until_acked(client, method, path, body, key, deadline, stats):
    """Retry one request with the same idempotency key until a final answer."""
    while True:
        try:
            status, doc = client.request(method, path, body, {"Idempotency-Key": key})
        except (OSError, http.client.HTTPException):
            stats["conn_errors"] += 1
            status, doc = None, None
        if status is not None:
            stats["status"][str(status)] = stats["status"].get(str(status), 0) + 1
            if status not in RETRYABLE:
                return status, doc
        if time.monotonic() > deadline:
            return None, None
        stats["retries"] += 1
        time.sleep(0.05)


def new_stats():
    return {"conn_errors": 0, "retries": 0, "status": {}}


def merge(into, s):
    into["conn_errors"] += s["conn_errors"]
    into["retries"] += s["retries"]
    for k, v in s["status"].items():
        into["status"][k] = into["status"].get(k, 0) + v


def cmd_create(a):
    c = Client(a.api, a.key)
    stats = new_stats()
    run = a.run or f"{os.getpid()}-{int(time.time())}"
    ids = []
    deadline = time.monotonic() + 120
    for i in range(a.records):
        st, doc = until_acked(c, "POST", "/v1/records", {"workflow": "counter", "fields": {}},
                              f"create-{run}-{i}", deadline, stats)
        if st != 201 and st != 200:
            sys.exit(f"create failed: {st} {doc}")
        ids.append(doc["id"])
    with open(a.out, "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")


def cmd_pings(a):
    c = Client(a.api, a.key)
    stats = new_stats()
    ids = []
    deadline = time.monotonic() + 120
    start = datetime.now(timezone.utc) + timedelta(seconds=a.delay)
    for i in range(a.records):
        due = start + timedelta(seconds=a.spread * i / max(1, a.records))
        body = {"workflow": "ping", "fields": {"due": due.isoformat().replace("+00:00", "Z")}}
        st, doc = until_acked(c, "POST", "/v1/records", body, f"ping-{os.getpid()}-{i}", deadline, stats)
        if st not in (200, 201):
            sys.exit(f"create failed: {st} {doc}")
        ids.append(doc["id"])
    with open(a.out, "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")
    # When the timers fall due, so the caller can kill a daemon mid-firing.
    print(json.dumps({"window_start": start.timestamp(), "window_end": start.timestamp() + a.spread,
                      "created_by": time.time()}))


def cmd_bump(a):
    ids = [int(x) for x in open(a.ids).read().split()]
    run = a.run or f"{os.getpid()}-{int(time.time())}"
    stop_at = time.monotonic() + a.seconds
    lock = threading.Lock()
    acks, lat, total = [], [], new_stats()
    unresolved = [0]
    unexpected = []

    def worker(t):
        mine = ids[t:: a.threads]
        c = Client(a.api, a.key, timeout=a.timeout)
        s, my_acks, my_lat, seq = new_stats(), [], [], 0
        while time.monotonic() < stop_at and mine:
            rid = random.choice(mine)
            key = f"bump-{run}-{t}-{seq}"
            seq += 1
            t0 = time.monotonic()
            # Once started, a request is retried until acknowledged (grace
            # period after the end of the run), so none is left in doubt.
            st, doc = until_acked(c, "POST", f"/v1/records/{rid}/transitions/bump",
                                  {"input": {}}, key, max(stop_at, time.monotonic()) + a.grace, s)
            if st == 200:
                my_acks.append((rid, doc["revision"], key))
                my_lat.append(time.monotonic() - t0)
            elif st is None:
                with lock:
                    unresolved[0] += 1
            else:
                with lock:
                    unexpected.append((st, doc))
        c.close()
        with lock:
            acks.extend(my_acks)
            lat.extend(my_lat)
            merge(total, s)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(a.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    with open(a.acks, "a") as f:
        for rid, rev, key in acks:
            f.write(f"{rid} {rev} {key}\n")
    lat.sort()
    pct = lambda p: round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1) if lat else None
    print(json.dumps({"acked": len(acks), "unresolved": unresolved[0], "unexpected": len(unexpected),
                      "unexpected_sample": unexpected[:3], "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                      "max_ms": pct(1.0), **total}))


def db_rows(db, sql_pg, sql_lite):
    if db.startswith("postgres"):
        out = subprocess.run(["psql", db, "-qAtF", "\t", "-c", sql_pg], check=True,
                             capture_output=True, text=True).stdout
        return [line.split("\t") for line in out.splitlines() if line]
    path = db.split(":", 1)[1]
    con = sqlite3.connect(path)
    try:
        return [[str(v) for v in r] for r in con.execute(sql_lite)]
    finally:
        con.close()


def cmd_verify(a):
    ids = [int(x) for x in open(a.ids).read().split()]
    acked = {}
    for line in open(a.acks):
        rid, rev, _ = line.split()
        acked.setdefault(int(rid), []).append(int(rev))
    rows = db_rows(a.db,
                   "SELECT id, revision, fields->>'n' FROM records WHERE workflow = 'counter'",
                   "SELECT id, revision, json_extract(fields, '$.n') FROM records WHERE workflow = 'counter'")
    stored = {int(r[0]): (int(r[1]), int(r[2] or 0)) for r in rows}
    lost = doubled = gaps = bad_n = missing = 0
    total = 0
    for rid in ids:
        if rid not in stored:
            missing += 1
            continue
        rev, n = stored[rid]
        revs = sorted(acked.get(rid, []))
        total += len(revs)
        doubled += len(revs) - len(set(revs))
        want = set(range(2, rev + 1))
        got = set(revs)
        lost += len(got - want)          # acknowledged but not in the store
        gaps += len(want - got)          # stored but never acknowledged
        bad_n += n != rev - 1
    ok = lost == doubled == gaps == bad_n == missing == 0
    print(json.dumps({"records": len(ids), "acked": total, "lost": lost, "doubled": doubled,
                      "gaps": gaps, "bad_n": bad_n, "missing": missing, "ok": ok}))
    sys.exit(0 if ok else 1)


def cmd_verify_pings(a):
    ids = [int(x) for x in open(a.ids).read().split()]
    rows = db_rows(
        a.db,
        "SELECT r.id, r.state, r.revision, (SELECT count(*) FROM outbox o WHERE o.tenant_id = r.tenant_id"
        " AND o.record_id = r.id) FROM records r WHERE r.workflow = 'ping'",
        "SELECT r.id, r.state, r.revision, (SELECT count(*) FROM outbox o WHERE o.tenant_id = r.tenant_id"
        " AND o.record_id = r.id) FROM records r WHERE r.workflow = 'ping'")
    by_id = {int(r[0]): r for r in rows}
    fired = twice = unfired = 0
    for rid in ids:
        r = by_id.get(rid)
        if r is None or r[1] != "done":
            unfired += 1
        elif int(r[2]) != 2 or int(r[3]) != 1:
            twice += 1
        else:
            fired += 1
    ok = unfired == 0 and twice == 0
    print(json.dumps({"timers": len(ids), "fired_once": fired, "fired_twice": twice,
                      "unfired": unfired, "ok": ok}))
    sys.exit(0 if ok else 1)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--api"), c.add_argument("--key"), c.add_argument("--records", type=int)
    c.add_argument("--out"), c.add_argument("--run")
    b = sub.add_parser("bump")
    b.add_argument("--api"), b.add_argument("--key"), b.add_argument("--ids"), b.add_argument("--acks")
    b.add_argument("--threads", type=int, default=16), b.add_argument("--seconds", type=float, default=10)
    b.add_argument("--grace", type=float, default=60), b.add_argument("--timeout", type=float, default=10)
    b.add_argument("--run")
    v = sub.add_parser("verify")
    v.add_argument("--acks"), v.add_argument("--ids"), v.add_argument("--db")
    pi = sub.add_parser("pings")
    pi.add_argument("--api"), pi.add_argument("--key"), pi.add_argument("--records", type=int)
    pi.add_argument("--spread", type=float, default=10), pi.add_argument("--delay", type=float, default=2)
    pi.add_argument("--out")
    vp = sub.add_parser("verify-pings")
    vp.add_argument("--ids"), vp.add_argument("--db")
    a = p.parse_args()
    {"create": cmd_create, "bump": cmd_bump, "verify": cmd_verify, "pings": cmd_pings,
     "verify-pings": cmd_verify_pings}[a.cmd](a)


if __name__ == "__main__":
    main()
