"""The test vector of spec/consortium.md: made here from fixed keys, checked against the
file (KAIRAN_WRITE_VECTORS=1 writes it), and checked by the rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

from federation.canonical import encode_canonical_json
from homeserver.municipal.consortium import rules
from tests.homeserver.municipal.consortium.docs import ADMINS, NOW, first_version, key, next_version

VECTOR = Path(__file__).parents[4] / "spec" / "consortium" / "vectors.json"
A, B = "city-a.example.jp", "city-b.example.jp"


def make() -> dict[str, object]:
    v1 = first_version({A: key("server_a"), B: key("server_b")})
    v2 = next_version(v1, remove=(B,))
    return {
        "description": "Consortium documents (spec/consortium.md): version 1 signed by 2 of "
        "its 3 admins, version 2 (member removed) by 2 admins of version 1; valid at now_ms.",
        "now_ms": NOW,
        "admin_seeds": {k.key_id: k.seed_base64 for k in ADMINS},
        "signing_bytes_v1": encode_canonical_json(
            {k: v for k, v in v1.items() if k != "signatures"}
        ).decode("utf-8"),
        "v1": v1,
        "v2": v2,
    }


def test_the_vector_matches_the_rules() -> None:
    made = make()
    if os.environ.get("KAIRAN_WRITE_VECTORS") == "1":
        VECTOR.parent.mkdir(exist_ok=True)
        VECTOR.write_text(json.dumps(made, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    stored = json.loads(VECTOR.read_text(encoding="utf-8"))
    assert stored == made
    v1 = rules.check(stored["v1"], now_ms=stored["now_ms"])
    v2 = rules.check(stored["v2"], now_ms=stored["now_ms"], held=v1)
    assert (v1.version, v2.version, set(v2.members)) == (1, 2, {A})
