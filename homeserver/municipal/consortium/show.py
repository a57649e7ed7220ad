"""A consortium document described for people (``kairan consortium show``).  Pure."""

from __future__ import annotations

from homeserver.municipal.consortium import rules
from homeserver.municipal.consortium.document import Document


def describe(doc: Document, now_ms: int) -> str:
    good, bad = rules.valid_signers(doc)
    needed = doc.authority.threshold
    if bad:
        state = f"bad signature by {', '.join(bad)}"
    elif len(good) >= needed:
        state = "signed"
    else:
        state = "draft"
    expiry = rules.format_ts(doc.valid_until_ts)
    if doc.valid_until_ts <= now_ms:
        expiry += " (expired)"
    reading = f" ({doc.name_reading})" if doc.name_reading else ""
    lines = [
        f"consortium {doc.id}: {doc.name}{reading}",
        f"version {doc.version}, valid until {expiry}",
        f"signatures: {len(good)} of {needed} needed (admins of version "
        f"{doc.authority_version}): {state}",
        f"admins (threshold {doc.admins.threshold}):",
        *(f"  {key_id} {public}" for key_id, public in sorted(doc.admins.keys.items())),
        f"members ({len(doc.members)}):",
    ]
    for server, member in sorted(doc.members.items()):
        parts = [server]
        org = member.organisation
        if org is not None:
            parts += [p for p in (org.code, org.name) if p]
            parts += [f"({org.reading})"] if org.reading else []
        parts += [f"{k} {v}" for k, v in sorted(member.verify_keys.items())]
        lines.append("  " + "  ".join(parts))
    return "\n".join(lines)
