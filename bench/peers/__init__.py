"""The peers benchmark's parts (``bench/bench_peers.py`` runs them).

Two kinds of module live here. ``venv``, ``monitor`` and ``systems`` are imported by the
benchmark, in the project's venv. The ``*_peer.py`` scripts, ``peer_common`` and
``jobledger_handlers`` are run as scripts (this folder first on ``sys.path``): the peers' from
``bench/out/peers-venv``, where procrastinate, PgQueuer and Oban for Python are installed (never
into the project's venv), jobledger's from the project's venv.
"""
