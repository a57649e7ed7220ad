"""Federated directory search: this node's staff and its peers', merged.

Each peer (the service's peer provider: the ``search_peers`` setting, or the members of
the node's consortia) is asked ``POST /_matrix/federation/unstable/jp.kairan/directory/search``
at the same time, each within the search timeout; a peer answers with its own staff only,
never asking further.  A peer that is down, slow, refuses, or answers with something that is
not a result list is named in ``unreachable`` (and the answer marked ``partial``); what a
peer says is checked field by field, capped in size and count, and labelled with the peer's
own server name (a peer cannot speak for another server or its users).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeserver.common.errors import MatrixError
from homeserver.municipal.directory import csvfile, rules
from homeserver.municipal.directory.service import MAX_LIMIT, DirectoryService

log = logging.getLogger(__name__)

PATH = "/_matrix/federation/unstable/jp.kairan/directory/search"
#: Largest answer read from a peer: 50 results of a few hundred bytes each, with room.
MAX_PEER_RESPONSE_BYTES = 256 * 1024
_TEXT_FIELDS = ("name", "reading", "department", "title", "extension")


class FederatedSearch:
    def __init__(self, service: DirectoryService) -> None:
        self.service = service

    def peers(self) -> list[str]:
        own = self.service.server_name
        return [p for p in dict.fromkeys(self.service.peer_servers()) if p != own]

    async def search(self, term: str, limit: int) -> dict[str, Any]:
        """Local and peer results for a client (``partial``/``unreachable`` when a peer
        did not answer)."""
        limit = max(1, min(limit, MAX_LIMIT))
        # The local search checks the query first (a bad one is refused before any peer
        # is asked).
        results, limited = await self.service.search_local(term, limit)
        peers = self.peers()
        unreachable: list[str] = []
        if peers and rules.query_terms(term):
            answers = await asyncio.gather(*(self.ask(peer, term, limit) for peer in peers))
            for peer, answer in zip(peers, answers, strict=True):
                if answer is None:
                    unreachable.append(peer)
                else:
                    results.extend(answer[0])
                    limited = limited or answer[1]
        results.sort(key=lambda r: (r["reading"], r["org"]["server"], r["name"]))
        response: dict[str, Any] = {
            "results": results[:limit],
            "limited": limited or len(results) > limit,
        }
        if unreachable:
            response["partial"] = True
            response["unreachable"] = unreachable
        return response

    async def search_users(self, requester: str, term: str, limit: int) -> list[dict[str, Any]]:
        """The staff with an account (here and on the peers) for ``/user_directory/search``
        (homeserver.rooms.ports.UserDirectorySource), so Element finds them too."""
        try:
            found = await self.search(term, limit)
        except MatrixError:
            return []  # a query the directory refuses (too long...) finds no staff
        return [
            {"user_id": r["user_id"], "display_name": r["name"]}
            for r in found["results"]
            if "user_id" in r
        ]

    async def ask(
        self, peer: str, term: str, limit: int
    ) -> tuple[list[dict[str, Any]], bool] | None:
        """A peer's results (checked) and whether it had more; None when it could not be
        had."""
        node = self.service.node
        if node is None:
            return None
        try:
            answer = await asyncio.wait_for(
                node.federation_request(
                    peer, "POST", PATH, {"search_term": term, "limit": limit},
                    timeout_s=self.service.timeout_s, max_bytes=MAX_PEER_RESPONSE_BYTES,
                ),
                self.service.timeout_s,
            )  # fmt: skip
        except Exception as e:  # down, slow, refused, an error status, too large: all alike
            log.info("directory search: %s did not answer: %s", peer, e)
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
            log.info("directory search: %s answered without a result list", peer)
            return None
        checked = [checked_result(item, peer) for item in answer["results"][:limit]]
        more = answer.get("limited") is True or len(answer["results"]) > limit
        return [r for r in checked if r is not None], more


def checked_result(item: Any, peer: str) -> dict[str, Any] | None:
    """A peer's result as this node passes it on, or None when it is malformed."""
    if not isinstance(item, dict):
        return None
    result: dict[str, Any] = {}
    for field in _TEXT_FIELDS:
        value = item.get(field, "")
        if not isinstance(value, str) or len(value) > csvfile.MAX_FIELD_CHARS * 2:
            return None
        result[field] = value
    if not result["name"]:
        return None
    user_id = item.get("user_id")
    if user_id is not None:
        if (
            not isinstance(user_id, str)
            or len(user_id) > 255
            or not user_id.startswith("@")
            or not user_id.endswith(":" + peer)
        ):
            return None
        result["user_id"] = user_id
    org = item.get("org")
    if not isinstance(org, dict):
        return None
    code, name, reading = org.get("code"), org.get("name"), org.get("reading", "")
    if not isinstance(code, str) or rules.org_code_error(code) is not None:
        return None
    if not isinstance(name, str) or not name or len(name) > csvfile.MAX_FIELD_CHARS:
        return None
    if not isinstance(reading, str) or len(reading) > csvfile.MAX_FIELD_CHARS * 2:
        return None
    result["org"] = {"code": code, "name": name, "reading": reading, "server": peer}
    return result
