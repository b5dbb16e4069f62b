"""Recording real workloads as ssp logs (SPEC section 9).

- :mod:`.changes`: row changes to log entries (ids, values, missing columns);
- :mod:`.writer`: the log file, whole transactions at a time;
- :mod:`.wal2json`: wal2json format versions 1 and 2;
- :mod:`.postgres`: ``ssp record postgres`` (a logical slot, ``--initial``);
- :mod:`.surrealdb`: ``ssp record surrealdb`` (changefeeds, versionstamps);
- :mod:`.cluster`: a throwaway PostgreSQL cluster for tests and benchmarks.

Database drivers (psycopg, surrealdb) are optional and imported when used.
"""
