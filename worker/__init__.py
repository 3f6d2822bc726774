"""The worker SDK: run Python handlers for jobs claimed from a jobledger API over HTTP."""
