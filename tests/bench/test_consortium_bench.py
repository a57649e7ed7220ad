"""``kairan bench consortium`` measures what it says, on a small run."""

from __future__ import annotations

from interop.bench import consortium


def test_the_peer_policy_cost_is_measured_for_members_and_others() -> None:
    costs = consortium.policy_cost(members=10, calls=1000)
    assert set(costs) == {"member", "non-member", "pinned keys"}
    assert all(0 < micro < 1000 for micro in costs.values())


async def test_a_new_version_reaches_four_nodes() -> None:
    times = await consortium.propagation(rounds=1)
    assert len(times["service"]) == len(times["cli"]) == 1
    assert times["service"][0] < 10 and times["cli"][0] < 10
