"""The time index: which version of an aggregate was current at an instant.

The ledger passes one ``(originator_id, timestamp, version)`` entry per event as
``event_timestamps``, with no timestamp for the events it does not index (see ``domain.audit``);
each of our application recorders (``stores.sqlite``, ``stores.postgres``, ``stores.memory``)
writes a row for every entry with a timestamp, in the same transaction as the events, so the
index is never behind the log, and ``version_at()`` answers with one indexed lookup.
"""

INDEX_TABLE = "event_timestamps"
