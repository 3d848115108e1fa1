#!/usr/bin/env python3
"""Baselines of the kontor restore benchmark (restore.sh): the bare database work of writing
the restored documents back, without kontor.

  restore_baseline.py sqlite   --source S0.db --db WORK.db   --account A [--batch 10000]
  restore_baseline.py postgres --source URL0  --url URL      --account A [--batch 10000]

Before the clock starts, the documents (id, props) of the account's contacts are read from
--source, the database as it was when the backup was taken: they are what the restore puts
back (the restore also stamps hs_lastmodifieddate, a value of the same length). Then, timed:

- sqlite: `UPDATE records SET props = ? WHERE account_id = ? AND id = ?`, one prepared
  statement (the sqlite3 module caches it), executemany() over 10k rows per transaction
  (BEGIN ... COMMIT), with kontor's settings (WAL, synchronous=NORMAL);
- postgres: `UPDATE records r SET props = u.props FROM unnest($1::bigint[], $2::text[]) AS
  u(id, props) WHERE r.account_id = $3 AND r.id = u.id`, prepared, one 10k-row batch per
  transaction (autocommit). The array parameters are encoded before the clock starts, so the
  loop is the database's work plus the transfer over the socket.

With --with-change-log each batch also appends one change-log row per record (the restored
values and the ones they replace, as a restore's entries hold), in the same transaction: the
least a restore must write under the rule that every change enters the change log. It is
reported beside the bare UPDATE, for information; the targets compare with the bare UPDATE.

Output: progress on stderr; `key=value` lines on stdout (baseline_s is the timed loop only).
"""

import argparse
import json
import sys
import time


def log(msg):
    print(f"baseline: {msg}", file=sys.stderr, flush=True)


CONTACTS = "SELECT id, props FROM records WHERE account_id = {a} AND object_type = '0-1' AND archived = 0 ORDER BY id"


RESTORED = ("city", "firstname", "lastname")


def change_entry(props):
    """The change-log payload and prior values a restore writes for one record."""
    doc = json.loads(props)
    changes = {p: doc.get(p) for p in RESTORED}
    changes["lastmodifieddate"] = doc.get("lastmodifieddate")
    prior = {p: (doc.get(p) or "") + " (changed)" for p in RESTORED}
    return json.dumps(changes, separators=(",", ":")), json.dumps(prior, separators=(",", ":"))


def run_sqlite(args):
    import sqlite3

    src = sqlite3.connect(f"file:{args.source}?mode=ro", uri=True)
    rows = src.execute(CONTACTS.format(a=int(args.account))).fetchall()
    src.close()
    params = [(props, args.account, id_) for id_, props in rows]
    entries = [change_entry(props) for _, props in rows] if args.with_change_log else None
    del rows
    chunks = [params[i : i + args.batch] for i in range(0, len(params), args.batch)]
    conn = sqlite3.connect(args.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 10000")
    sql = "UPDATE records SET props = ? WHERE account_id = ? AND id = ?"
    log(f"sqlite {sqlite3.sqlite_version}: {len(params)} rows in {len(chunks)} transactions")
    log_sql = (
        "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, at, prior) "
        "VALUES (?, ?, '0-1', ?, 'set', ?, 'RESTORE', 'baseline', 0, ?)"
    )
    logs = None
    if entries is not None:
        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = ?", (args.account,)).fetchone()[0]
        logs = [
            [(args.account, seq + 1 + i + k, p[2], *entries[i + k]) for k, p in enumerate(chunk)]
            for i, chunk in zip(range(0, len(params), args.batch), chunks)
        ]
    changed = 0
    t0 = time.perf_counter()
    for c, chunk in enumerate(chunks):
        conn.execute("BEGIN")
        cur = conn.executemany(sql, chunk)
        changed += cur.rowcount
        if logs is not None:
            conn.executemany(log_sql, logs[c])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(params), changed, elapsed, f"Python sqlite3 (SQLite {sqlite3.sqlite_version})"


def pg_array_text(values):
    """A text[] literal."""
    return "{" + ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def run_postgres(args):
    import psycopg

    with psycopg.connect(args.source) as src:
        rows = src.execute(CONTACTS.format(a=int(args.account))).fetchall()
    seq = 0
    if args.with_change_log:
        with psycopg.connect(args.url) as dst:
            seq = dst.execute("SELECT COALESCE(MAX(seq), 0) FROM changes WHERE account_id = %s", (args.account,)).fetchone()[0]
    batches = []
    for i in range(0, len(rows), args.batch):
        part = rows[i : i + args.batch]
        ids = "{" + ",".join(str(r[0]) for r in part) + "}"
        log_params = None
        if args.with_change_log:
            entries = [change_entry(r[1]) for r in part]
            seqs = "{" + ",".join(str(seq + 1 + i + k) for k in range(len(part))) + "}"
            log_params = (args.account, seqs, ids, pg_array_text([e[0] for e in entries]), pg_array_text([e[1] for e in entries]))
        batches.append((ids, pg_array_text([r[1] for r in part]), args.account, log_params))
    n = len(rows)
    del rows
    sql = (
        "UPDATE records r SET props = u.props FROM unnest(%s::bigint[], %s::text[]) AS u(id, props) "
        "WHERE r.account_id = %s AND r.id = u.id"
    )
    log_sql = (
        "INSERT INTO changes (account_id, seq, object_type, record_id, kind, props, source, source_id, at, prior) "
        "SELECT %s, u.seq, '0-1', u.id, 'set', u.c, 'RESTORE', 'baseline', 0, u.p "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS u(seq, id, c, p)"
    )
    conn = psycopg.connect(args.url, autocommit=not args.with_change_log)
    version = conn.info.server_version
    log(f"postgres {version}: {n} rows in {len(batches)} batches")
    changed = 0
    cur = conn.cursor()
    t0 = time.perf_counter()
    for ids, docs, account, log_params in batches:
        cur.execute(sql, (ids, docs, account), prepare=True)
        changed += cur.rowcount
        if log_params is not None:
            cur.execute(log_sql, log_params, prepare=True)
            conn.commit()
    elapsed = time.perf_counter() - t0
    conn.close()
    return n, changed, elapsed, f"psycopg {psycopg.__version__}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("backend", choices=["sqlite", "postgres"])
    p.add_argument("--source", required=True, help="SQLite file / PostgreSQL URL of the backed-up state")
    p.add_argument("--db", help="SQLite file to update")
    p.add_argument("--url", help="PostgreSQL URL to update")
    p.add_argument("--account", type=int, required=True)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--with-change-log", action="store_true",
                   help="also append a change-log row per record, in the same transaction")
    args = p.parse_args()
    if args.backend == "sqlite":
        if not args.db:
            p.error("--db is required for sqlite")
        n, changed, elapsed, client = run_sqlite(args)
    else:
        if not args.url:
            p.error("--url is required for postgres")
        n, changed, elapsed, client = run_postgres(args)
    log(f"{changed} rows updated in {elapsed:.2f} s ({changed / elapsed if elapsed else 0:,.0f} rows/s)")
    print(f"baseline_rows={n}")
    print(f"baseline_changed={changed}")
    print(f"baseline_s={elapsed:.3f}")
    print(f"baseline_client={client}")
    return 0 if changed == n else 1


if __name__ == "__main__":
    sys.exit(main())
