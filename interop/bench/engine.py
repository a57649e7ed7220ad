"""Engine benchmark: ``python -m interop.bench.engine`` or ``kairan bench engine``.

Prints, in one run: raw ed25519 verifications per second on this machine, full PDU
verifications per second (strict parse, format checks, redaction, signature, event ID,
content hash), event creation and signing per second, and state resolution time for a
10,000-member room with a 100-event conflicting fork.  Figures only: nothing here asserts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from federation import events, signing
from federation.canonical import encode_canonical_json

SERVER = "bench.kairan.test"


def _rate(func: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``func``, run repeatedly for about ``seconds``."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            func()
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def _sample_event(key: signing.SigningKey) -> dict[str, Any]:
    _, pdu = events.build_event(
        "12",
        event_type="m.room.message",
        sender=f"@yamada.taro:{SERVER}",
        content={
            "msgtype": "m.text",
            "body": "本日15時より防災訓練を実施します。各課の参加者は庁舎前に集合してください。",
        },
        room_id="!" + "A" * 43,
        prev_events=["$" + "B" * 43],
        auth_events=["$" + "C" * 43, "$" + "D" * 43, "$" + "E" * 43],
        depth=1234,
        origin_server_ts=1_763_800_000_000,
        server_name=SERVER,
        key=key,
    )
    return pdu


def measure(seconds: float = 1.0, stateres_repeat: int = 5) -> dict[str, float]:
    """Run every measurement and return the figures by name."""
    key = signing.generate_signing_key("bench")
    pdu = _sample_event(key)
    data = encode_canonical_json(pdu)
    public_key = key.public_key_base64

    def lookup(server: str, key_id: str, ts: int) -> str | None:
        return public_key if server == SERVER else None

    redacted = events.redact(pdu, "12")
    message = signing.signing_bytes(redacted)
    signature = signing.get_signature(redacted, SERVER, key.key_id)
    verify_key = key.verify_key
    figures: dict[str, float] = {
        "pdu_bytes": float(len(data)),
        "raw_ed25519_verify_per_s": _rate(lambda: verify_key.verify(message, signature), seconds),
        "pdu_verify_per_s": _rate(lambda: events.verify_pdu(data, "12", lookup), seconds),
    }
    figures["pdu_verify_vs_raw"] = figures["pdu_verify_per_s"] / figures["raw_ed25519_verify_per_s"]
    counter = iter(range(10**9))
    figures["event_create_sign_per_s"] = _rate(
        lambda: events.build_event(
            "12",
            event_type="m.room.message",
            sender=f"@yamada.taro:{SERVER}",
            content={"msgtype": "m.text", "body": f"message {next(counter)}"},
            room_id="!" + "A" * 43,
            prev_events=["$" + "B" * 43],
            auth_events=["$" + "C" * 43, "$" + "D" * 43],
            depth=10,
            origin_server_ts=1_763_800_000_000,
            server_name=SERVER,
            key=key,
        ),
        seconds,
    )
    figures.update(_stateres(stateres_repeat))
    return figures


def _stateres(repeat: int) -> dict[str, float]:
    from interop.bench import stateres

    return {f"stateres_{name}": value for name, value in stateres.run(repeat=repeat).items()}


def report(figures: dict[str, float]) -> str:
    lines = [
        "Kairan protocol engine benchmark",
        f"  raw ed25519 verify             {figures['raw_ed25519_verify_per_s']:>10,.0f} /s",
        f"  full PDU verification          {figures['pdu_verify_per_s']:>10,.0f} /s"
        f"  ({figures['pdu_verify_vs_raw']:.0%} of raw verify; target >= 60%;"
        f" {figures['pdu_bytes']:.0f}-byte event)",
        f"  event creation and signing     {figures['event_create_sign_per_s']:>10,.0f} /s",
    ]
    for version in ("11", "12"):
        value = figures.get(f"stateres_v{version}_ms")
        if value is not None:
            lines.append(
                f"  state resolution, room {version}      {value:>10,.1f} ms"
                "  (10,000 members, 100-event conflicting fork; target < 200 ms)"
            )
    return "\n".join(lines)


def main(seconds: float = 1.0, stateres_repeat: int = 5) -> None:
    print(report(measure(seconds, stateres_repeat)))


if __name__ == "__main__":
    main()
