"""jobledger benchmarks: every figure beside a reference measured in the same run.

``python -m bench`` (``make bench``) discovers every ``bench/bench_<name>.py`` module and calls
its ``run(quick: bool) -> list[Figure]``. A figure's ``ratio`` is ``value / reference``, where the
reference is the same work done by plain sqlite3 / psycopg (or a plain CRUD service), measured
alternately with the figure so that machine noise hits both. Benchmarks create their own temporary
SQLite files and PostgreSQL databases, and skip PostgreSQL with a note when no server answers.
"""
