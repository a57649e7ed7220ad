"""``synapse_oracle.py`` imports Synapse and runs only in Synapse's own virtualenv."""

from __future__ import annotations

collect_ignore = ["synapse_oracle.py"]
