"""The reference service for ``bench_http_load``: the job lifecycle on one mutable ``jobs`` row.

The original job module's design, kept minimal: a FastAPI app whose commands read the job's row,
change it in Python and write it back, one transaction per request, with no history and no read
model. It serves the subset of the v1 contract (DESIGN section 5) the load needs, with the same
paths, camelCase bodies and status codes: ``POST /api/v1/auth/setup``, ``POST /api/v1/jobs``,
``GET /api/v1/jobs`` (``status``, ``type``, ``limit``, ``offset``; newest first, indexed),
``GET /api/v1/jobs/{id}``, ``POST /api/v1/jobs/{id}/start``, ``/progress``, ``/complete``, and
``GET /api/health``.

Same auth as jobledger: an HS256 bearer JWT whose seven claims are all required and checked, then
the caller's row is read (a disabled user or a changed role is 401). Same durability: SQLite in
WAL mode with ``synchronous=FULL``; PostgreSQL with the server's default ``synchronous_commit``.

Run it as its own process: ``python -m bench.crud_baseline --db URL --port P`` (the JWT secret
comes from ``JOBLEDGER_JWT_SECRET``).
"""
