"""Recording throughput from PostgreSQL: changes per second of ``ssp record postgres``.

Starts a throwaway cluster (circuit.record.cluster), writes N changes in
transactions of 100 (inserts, updates, deletes over two tables), then times
one recording of the slot, replays the log strictly and verifies it against
PostgreSQL. Run it under the bench lock::

    flock /tmp/ssp-bench.lock .venv/bin/python benchmarks/record_throughput.py --changes 100000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from circuit.record.cluster import start_cluster
from circuit.record.postgres import PostgresRecording, connect, record_postgres


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssp-record-bench-"))
    with start_cluster() as cluster:
        conn = connect(cluster.dsn)
        conn.execute("CREATE TABLE author (k int PRIMARY KEY, name text, score numeric(10,2))")
        conn.execute("CREATE TABLE post (k int PRIMARY KEY, author int, body text, meta jsonb)")
        conn.execute("SELECT pg_create_logical_replication_slot('bench', 'wal2json')")
        t0 = time.perf_counter()
        n = 0
        step = 0
        while n < args.changes:
            with conn.transaction():
                base = step * 40
                conn.execute(
                    "INSERT INTO author SELECT g, 'a' || g, g / 7.0 FROM generate_series(%s::int, %s::int) g",
                    (base, base + 19),
                )
                conn.execute(
                    "INSERT INTO post SELECT g, g %% 20 + %s, repeat('x', 50), "
                    "jsonb_build_object('n', g) FROM generate_series(%s::int, %s::int) g",
                    (base, base, base + 39),
                )
                conn.execute(
                    "UPDATE post SET body = 'edited' WHERE k BETWEEN %s AND %s", (base, base + 29)
                )
                conn.execute("DELETE FROM post WHERE k BETWEEN %s AND %s", (base, base + 9))
            n += 100
            step += 1
        write_s = time.perf_counter() - t0
        log = work / "log.jsonl"
        job = PostgresRecording(
            dsn=cluster.dsn, tables=["author", "post"], log=str(log), slot="bench"
        )
        t1 = time.perf_counter()
        stats = record_postgres(job)
        record_s = time.perf_counter() - t1
        print(f"wrote {n} changes in {write_s:.1f} s")
        print(
            f"recorded {stats.changes} changes, {stats.transactions} transactions in "
            f"{record_s:.2f} s: {stats.changes / record_s:,.0f} changes/s"
        )
        views = work / "views.sql"
        views.write_text(
            "CREATE VIEW edited AS SELECT author, body FROM post WHERE body = 'edited';\n"
            "CREATE VIEW per_author AS SELECT a.name, COUNT(*) AS n FROM post p "
            "JOIN author a ON a.k = p.author GROUP BY a.name;\n"
        )
        ssp = str(Path(sys.executable).with_name("ssp"))
        report = work / "report.json"
        for cmd in (
            [ssp, "replay", str(views), str(log), "--strict", "--quiet", "--report", str(report)],
            [ssp, "verify", str(views), str(log), "--oracle", "postgres", "--dsn", cluster.dsn],
        ):
            t2 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            print(
                f"{' '.join(cmd[1:2])}: exit {done.returncode} in {time.perf_counter() - t2:.1f} s"
            )
            print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr)
            if cmd[1] == "replay":
                errors = json.loads(report.read_text())["errors"]
                anomalies = sum(errors["anomalies"].values())
                print(
                    f"replay: {anomalies} anomalies {errors['anomalies']}, "
                    f"{errors['rejected']} rejected"
                )


if __name__ == "__main__":
    main()
