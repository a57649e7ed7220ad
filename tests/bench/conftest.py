"""The benchmarks' smoke tests run against test nodes on both databases, as the node's tests."""

from tests.homeserver.conftest import db_url, node

__all__ = ["db_url", "node"]
