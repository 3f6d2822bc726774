"""The worker SDK: run Python handlers for jobs claimed from a jobledger API over HTTP.

An HTTP client of the API only (httpx and the standard library): it imports nothing of the
server's packages, so it runs on any machine that can reach the API.
"""

from worker.context import Discard, JobContext
from worker.runner import Worker

__all__ = ["Discard", "JobContext", "Worker"]
