"""Fixtures shared by the federation tests.

``synapse_oracle``: one Synapse oracle process for the whole session.  If Synapse cannot
be installed or started the fixture fails (an error, never a skip): the cross-checks must
not pass silently without their oracle.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.oracle.client import SynapseOracle


@pytest.fixture(scope="session")
def synapse_oracle() -> Iterator[SynapseOracle]:
    try:
        oracle = SynapseOracle()
    except Exception as e:
        pytest.fail(f"the Synapse oracle could not be started: {e}", pytrace=False)
    try:
        yield oracle
    finally:
        oracle.close()
