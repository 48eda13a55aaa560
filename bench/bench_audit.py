"""Audit log at scale: history/log query times at 1,000,000 events on PostgreSQL, and `verify` speed.

    .venv/bin/python -m bench.bench_audit [--events 1000000] [--sqlite-events 200000] [--people 5000]

A chain of synthetic but valid events (each hash over the previous one, exactly as `audit.append` makes them)
is bulk-loaded (COPY on PostgreSQL) over people, their kits and documents (4 objects per person: ~20,000 for
5,000 people) and 30 actors, plus a few number exports. Then, through pipeline.track.queries and audit.verify:
history of 200 random objects (p50/p95), log queries with filters, and verify events/s. SQLite is measured too,
with the stored JSON in canonical form (what the program writes) and, for chains written before that, in
Python's default JSON form (verify re-encodes those).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, insert, select, update
from sqlalchemy.pool import NullPool

from bench.common import SITES, SURNAMES, table
from pipeline import config, db
from pipeline.track import audit, queries
from pipeline.track.models import ChainHead, Document, Event, Kit, Person

ACTORS = [f"{SURNAMES[i % len(SURNAMES)]}{i:02d}" for i in range(30)]
KIT_ACTIONS = ["kit.printed", "kit.sent", "kit.received", "page.received", "number.accepted", "kit.complete",
               "kit.transferred", "kit.transfer_received", "kit.reminded", "number.review"]
DOC_ACTIONS = ["document.received", "document.checked", "document.stored", "document.moved",
               "document.disposal_due"]
PERSON_ACTIONS = ["person.created", "person.updated", "person.left", "number.revealed"]
DOCUMENTS = ["provision_form", "id_copy"]


def _details(rng: random.Random, object_type: str, object_id: str, person_id: str, kit: str) -> dict:
    if object_type == "kit":
        return {"person_id": person_id, "file": f"scan-{rng.randint(1, 9999):04d}.pdf", "page": rng.randint(0, 40),
                "document": rng.choice(DOCUMENTS), "doc_page": 1, "consent": rng.random() < 0.9}
    if object_type == "document":
        return {"kit": kit, "location": f"CAB-{rng.choice(SITES)}-{rng.randint(1, 9)}", "kind": "cabinet"}
    return {"source": "roster.csv", "line": rng.randint(2, 15000), "reason": "年末調整の確認"}


def synthetic_events(count: int, people: list[tuple[str, str, list[str]]], start_seq: int, start_hash: str,
                     start_at: dt.datetime, seed: int = 7, canonical_json: bool = True):
    """Yield (seq, at, actor, action, object_type, object_id, site, details_text, prev_hash, hash) forming a valid
    continuation of the chain whose head is (start_seq, start_hash, start_at), about 30 s apart (1,000,000 events
span a year). people: (person_id, kit code, doc codes)."""
    rng = random.Random(seed)
    at = start_at
    prev = start_hash
    exports_every = max(1, count // 20)
    person_ids = [p for p, _, _ in people]
    for i in range(count):
        seq = start_seq + 1 + i
        at += dt.timedelta(microseconds=rng.randint(1, 60_000_000))
        person_id, kit, docs = people[rng.randrange(len(people))]
        roll = rng.random()
        if i % exports_every == exports_every - 1:
            object_type, object_id, action = "export", f"numbers-{seq}.csv", "numbers.exported"
            details = {"reason": "給与システム取込", "count": 1000, "people": sorted(rng.sample(person_ids, 1000))}
        elif roll < 0.55:
            object_type, object_id, action = "kit", kit, rng.choice(KIT_ACTIONS)
            details = _details(rng, "kit", kit, person_id, kit)
        elif roll < 0.85:
            object_type, object_id, action = "document", rng.choice(docs), rng.choice(DOC_ACTIONS)
            details = _details(rng, "document", object_id, person_id, kit)
        else:
            object_type, object_id, action = "person", person_id, rng.choice(PERSON_ACTIONS)
            details = _details(rng, "person", object_id, person_id, kit)
        actor, site = rng.choice(ACTORS), rng.choice(SITES)
        at_iso = at.isoformat(timespec="microseconds")
        canonical = audit.details_json(details)
        digest = audit.chain_hash(prev, audit.canonical_text(seq, at_iso, actor, action, object_type, object_id,
                                                             site, canonical))
        stored = canonical if canonical_json else json.dumps(details)
        yield seq, at, actor, action, object_type, object_id, site, stored, prev, digest
        prev = digest


def _make_people(session, count: int, seed: int = 3) -> list[tuple[str, str, list[str]]]:
    rng = random.Random(seed)
    now = dt.datetime(2025, 1, 5)
    session.execute(insert(Person), [
        {"person_id": f"B{i:06d}", "name": f"{rng.choice(SURNAMES)} 太郎", "postal_code": "100-0001",
         "address": "東京都千代田区千代田1-1", "site": rng.choice(SITES), "kind": "employee",
         "created_at": now, "updated_at": now} for i in range(count)])
    ids = dict(session.execute(select(Person.person_id, Person.id).where(Person.person_id.like("B%"))).all())
    session.execute(insert(Kit), [
        {"code": f"K{i + 1:07d}", "person_id": ids[f"B{i:06d}"], "kind": "employee", "site": rng.choice(SITES),
         "state": "sent", "printed_at": now, "missing": []} for i in range(count)])
    kit_ids = dict(session.execute(select(Kit.code, Kit.id)).all())
    session.execute(insert(Document), [
        {"code": f"D{2 * i + j + 1:07d}", "kit_id": kit_ids[f"K{i + 1:07d}"], "document": DOCUMENTS[j],
         "doc_page": 1, "state": "stored", "received_at": now} for i in range(count) for j in range(2)])
    return [(f"B{i:06d}", f"K{i + 1:07d}", [f"D{2 * i + 1:07d}", f"D{2 * i + 2:07d}"]) for i in range(count)]


def _chain_head(session) -> tuple[int, str, dt.datetime]:
    head = audit.head(session)
    return head.seq, head.hash, head.at or dt.datetime(2025, 1, 6)


def load(settings: config.Settings, events: int, people: int, *, canonical_json: bool = True) -> tuple[list, float]:
    """People, kits, documents and `events` chained events; returns (people, seconds to load the events)."""
    with db.session_scope(settings.db_url) as session:
        roster = _make_people(session, people)
        seq, digest, at = _chain_head(session)
    started = time.perf_counter()
    rows = synthetic_events(events, roster, seq, digest, at, canonical_json=canonical_json)
    engine = db.engine_for(settings.db_url)
    last = None
    if engine.dialect.name == "postgresql":
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cur:
                with cur.copy("COPY events (seq, at, actor, action, object_type, object_id, site, details, "
                              "prev_hash, hash) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                        last = row
            raw.commit()
        finally:
            raw.close()
    else:
        columns = ["seq", "at", "actor", "action", "object_type", "object_id", "site", "details", "prev_hash", "hash"]
        with engine.begin() as conn:
            raw = conn.connection.dbapi_connection
            batch = []
            for row in rows:
                batch.append((row[0], row[1].isoformat(sep=" ", timespec="microseconds"), *row[2:]))
                last = row
                if len(batch) == 20000:
                    raw.executemany(f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * 10)})", batch)
                    batch = []
            if batch:
                raw.executemany(f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * 10)})", batch)
    with db.session_scope(settings.db_url) as session:
        session.execute(update(ChainHead).where(ChainHead.id == 1).values(seq=last[0], hash=last[9]))
    seconds = time.perf_counter() - started
    # What autovacuum would have done by the time anyone asks: statistics for the planner, hint bits set.
    maintenance = create_engine(settings.db_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with maintenance.connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    maintenance.dispose()
    return roster, seconds


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    return statistics.median(samples), p95


def measure_history(settings, roster, runs: int = 200, seed: int = 11) -> dict:
    rng = random.Random(seed)
    objects = [o for person_id, kit, docs in roster for o in (person_id, kit, *docs)]
    keys = rng.sample(objects, runs)
    times, counts = [], []
    for key in keys[:10]:   # warm the caches the way a working server has them
        with db.session_scope(settings.db_url) as session:
            queries.history(session, key)
    for key in keys:
        started = time.perf_counter()
        with db.session_scope(settings.db_url) as session:
            _, rows = queries.history(session, key)
        times.append((time.perf_counter() - started) * 1000)
        counts.append(len(rows))
    p50, p95 = _percentiles(times)
    return {"p50": p50, "p95": p95, "rows": statistics.mean(counts)}


def measure_log(settings, runs: int = 20, seed: int = 13) -> dict[str, dict]:
    rng = random.Random(seed)
    with db.session_scope(settings.db_url) as session:
        first, last = session.execute(select(Event.at).order_by(Event.seq).limit(1)).scalar(), \
            session.execute(select(Event.at).order_by(Event.seq.desc()).limit(1)).scalar()
    span = (last - first).total_seconds()

    def window(days: int) -> dict:
        start = first + dt.timedelta(seconds=rng.uniform(0, span - days * 86400))
        return {"start": start, "end": start + dt.timedelta(days=days)}

    cases = {
        "log: one actor, 7 days": lambda: dict(actors=[rng.choice(ACTORS)], **window(7)),
        "log: action prefix kit., 1 day": lambda: dict(actions=["kit."], **window(1)),
        "log: one action + one actor, 30 days": lambda: dict(actions=["document.stored"],
                                                            actors=[rng.choice(ACTORS)], **window(30)),
    }
    out = {}
    for name, make in cases.items():
        times, counts = [], []
        for _ in range(runs):
            kwargs = make()
            started = time.perf_counter()
            with db.session_scope(settings.db_url) as session:
                n = sum(1 for _ in queries.log(session, **kwargs))
            times.append((time.perf_counter() - started) * 1000)
            counts.append(n)
        p50, p95 = _percentiles(times)
        out[name] = {"p50": p50, "p95": p95, "rows": statistics.mean(counts)}
    return out


def measure_access(settings, roster, runs: int = 50, seed: int = 17) -> dict:
    rng = random.Random(seed)
    times = []
    for person_id, _, _ in rng.sample(roster, runs):
        started = time.perf_counter()
        with db.session_scope(settings.db_url) as session:
            queries.access(session, person=person_id)
        times.append((time.perf_counter() - started) * 1000)
    p50, p95 = _percentiles(times)
    return {"p50": p50, "p95": p95}


def _server_cpu(port: int | None) -> float:
    """CPU seconds used so far by the PostgreSQL server listening on `port`: the postmaster, the backends it
    has reaped (cutime) and those still running. 0 when unknown (SQLite, or a server we cannot see)."""
    if port is None:
        return 0.0
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry.name)] = (cmdline, int(fields[1]), [int(v) for v in fields[11:15]])
    postmaster = next((pid for pid, (cmd, _, _) in stats.items() if "postgres" in cmd and f"-p {port} " in cmd), None)
    if postmaster is None:
        return 0.0
    total = sum(stats[postmaster][2])
    total += sum(sum(t[:2]) for pid, (_, ppid, t) in stats.items() if ppid == postmaster)
    return total / tick


def measure_verify(settings, port: int | None = None) -> tuple[int, float, float, float]:
    """(events, wall seconds, this process's CPU seconds (all threads), the database server's CPU seconds)."""
    started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu(port)
    with db.session_scope(settings.db_url) as session:
        result = audit.verify(session)
    seconds, cpu, server = time.perf_counter() - started, time.process_time() - cpu, _server_cpu(port) - server
    if not result.ok:
        raise SystemExit(f"synthetic chain did not verify: {result.problem}")
    return result.events, seconds, cpu, server


def _home(tmp: Path, name: str, url: str | None):
    from pipeline.commands.init import initialise
    os.environ["MYNUMBER_HOME"] = str(tmp / name)
    if url:
        os.environ["MYNUMBER_DB_URL"] = url
    else:
        os.environ.pop("MYNUMBER_DB_URL", None)
    settings = config.load()
    initialise(settings, "bench")
    return settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events on PostgreSQL")
    ap.add_argument("--sqlite-events", type=int, default=200_000)
    ap.add_argument("--people", type=int, default=5000, help="people (x4 objects: person, kit, 2 documents)")
    ap.add_argument("--skip-pg", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mynumber-bench-audit-") as tmpdir:
        tmp = Path(tmpdir)
        if not args.skip_pg:
            from tests import pg
            if not pg.available():
                print("PostgreSQL is not installed: skipping the PostgreSQL part", file=sys.stderr)
            else:
                url = pg.fresh_database()
                try:
                    settings = _home(tmp, "pg", url)
                    roster, load_s = load(settings, args.events, args.people)
                    n = args.events
                    rows.append(["PostgreSQL", f"load {n:,} events (COPY, hashes computed)", f"{load_s:.1f} s",
                                 f"{n / load_s:,.0f} events/s"])
                    h = measure_history(settings, roster)
                    rows.append(["PostgreSQL", f"history, 200 random objects (avg {h['rows']:.0f} events)",
                                 f"p50 {h['p50']:.1f} ms", f"p95 {h['p95']:.1f} ms"])
                    for name, r in measure_log(settings).items():
                        rows.append(["PostgreSQL", f"{name} (avg {r['rows']:.0f} rows)", f"p50 {r['p50']:.1f} ms",
                                     f"p95 {r['p95']:.1f} ms"])
                    a = measure_access(settings, roster)
                    rows.append(["PostgreSQL", "access for one person (50 people)", f"p50 {a['p50']:.1f} ms",
                                 f"p95 {a['p95']:.1f} ms"])
                    from sqlalchemy.engine import make_url
                    events, seconds, cpu, server = measure_verify(settings, make_url(url).port)
                    per_cpu = f", {events / (cpu + server):,.0f} events/CPU-s" if server else ""
                    rows.append(["PostgreSQL", f"verify {events:,} events (CPU: client {cpu:.1f} s + server "
                                               f"{server:.1f} s{per_cpu})",
                                 f"{seconds:.2f} s", f"{events / seconds:,.0f} events/s"])
                finally:
                    db.engine_for(url).dispose()
                    pg.drop_database(url)
        for label, canonical_json in (("SQLite", True), ("SQLite (legacy JSON text)", False)):
            settings = _home(tmp, f"sqlite-{canonical_json}", None)
            _, load_s = load(settings, args.sqlite_events, max(100, args.people // 5), canonical_json=canonical_json)
            events, seconds, cpu, _ = measure_verify(settings)
            rows.append([label, f"verify {events:,} events (CPU {cpu:.1f} s, {events / cpu:,.0f} events/CPU-s)",
                         f"{seconds:.2f} s", f"{events / seconds:,.0f} events/s"])
            db.engine_for(settings.db_url).dispose()
    averages = os.getloadavg()
    print(table("Audit log", ["database", "what", "time", "rate / p95"], rows))
    print(f"\n{os.cpu_count()} CPUs; load average at the end {averages[0]:.1f} / {averages[1]:.1f} / {averages[2]:.1f} "
          "(other work on the machine slows every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
