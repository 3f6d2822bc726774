"""Examples: handlers a newcomer runs with ``jobledger worker`` (see the README)."""
