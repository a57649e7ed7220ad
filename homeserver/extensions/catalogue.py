"""The features Kairan ships, by name: the one place that says what a node *can* enable.

A node enables features by name in its kairan.yaml (``features:``); each entry here is an
import path (``module:function``), so the core imports no feature.  A feature kept outside
this repository is enabled by its own import path instead of a name.
"""

from __future__ import annotations

#: name -> "package.module:register".  Filled as the municipal features land
#: (homeserver/municipal/<name>/).
CATALOGUE: dict[str, str] = {
    "consortium": "homeserver.municipal.consortium:register",
    "partners": "homeserver.municipal.partners:register",
    "directory": "homeserver.municipal.directory:register",
    "groups": "homeserver.municipal.groups:register",
}
