"""``POST /search``: server-side search of room events (homeserver/rooms/search.py).

The body is checked here, field by field: a field of the wrong type is ``M_BAD_JSON``, a
value outside what the spec lists (an order, a key, a grouping, a category) is
``M_INVALID_PARAM``, both 400."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from homeserver.client_api.common import requester, services
from homeserver.common.errors import MatrixError, bad_json
from homeserver.common.http import json_response, read_json
from homeserver.rooms.search import SEARCH_KEYS as ALL_KEYS
from homeserver.rooms.search import EventContext, SearchRequest

routes = web.RouteTableDef()

#: The filter's ``limit`` is brought down to this.
MAX_LIMIT = 100
#: ``before_limit`` and ``after_limit`` likewise.
MAX_CONTEXT = 100
#: Longer search terms are refused (each character is work for the index).
MAX_TERM_CHARS = 500


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", message)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_json(f"{where} must be an object")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad_json(f"{where} must be a list of strings")
    return tuple(value)


def _int(value: Any, where: str, default: int, minimum: int, maximum: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_json(f"{where} must be an integer")
    if value < minimum:
        raise _invalid(f"{where} must be at least {minimum}")
    return min(value, maximum)


def _bool(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_json(f"{where} must be a boolean")
    return value


def parse_room_events(criteria: Any, next_batch: str | None) -> SearchRequest:
    """``search_categories.room_events`` as a :class:`SearchRequest` (400 when malformed)."""
    where = "search_categories.room_events"
    criteria = _object(criteria, where)
    term = criteria.get("search_term")
    if term is None:
        raise bad_json(f"{where}.search_term is required")
    if not isinstance(term, str):
        raise bad_json(f"{where}.search_term must be a string")
    if len(term) > MAX_TERM_CHARS:
        raise _invalid(f"{where}.search_term is longer than {MAX_TERM_CHARS} characters")
    keys = _strings(criteria.get("keys"), f"{where}.keys")
    if keys is not None and any(k not in ALL_KEYS for k in keys):
        raise _invalid(f"{where}.keys may hold only {', '.join(ALL_KEYS)}")
    order_by = criteria.get("order_by", "rank")
    if order_by not in ("rank", "recent"):
        raise _invalid(f"{where}.order_by must be 'rank' or 'recent'")
    filt = _object(criteria.get("filter") or {}, f"{where}.filter")
    lists = {
        k: _strings(filt.get(k), f"{where}.filter.{k}")
        for k in ("rooms", "not_rooms", "types", "not_types", "senders", "not_senders")
    }
    contains_url = filt.get("contains_url")
    if contains_url is not None and not isinstance(contains_url, bool):
        raise bad_json(f"{where}.filter.contains_url must be a boolean")
    context = None
    if criteria.get("event_context") is not None:
        raw = _object(criteria["event_context"], f"{where}.event_context")
        context = EventContext(
            _int(raw.get("before_limit"), "event_context.before_limit", 5, 0, MAX_CONTEXT),
            _int(raw.get("after_limit"), "event_context.after_limit", 5, 0, MAX_CONTEXT),
            _bool(raw.get("include_profile"), "event_context.include_profile"),
        )
    groupings = _object(criteria.get("groupings") or {}, f"{where}.groupings")
    group_by = groupings.get("group_by") or []
    if not isinstance(group_by, list):
        raise bad_json(f"{where}.groupings.group_by must be a list")
    group_keys: list[str] = []
    for group in group_by:
        key = _object(group, f"{where}.groupings.group_by[]").get("key")
        if key not in ("room_id", "sender"):
            raise _invalid(f"{where}.groupings.group_by keys are 'room_id' or 'sender'")
        group_keys.append(key)
    return SearchRequest(
        search_term=term,
        keys=keys if keys is not None else ALL_KEYS,
        order_by=order_by,
        limit=_int(filt.get("limit"), f"{where}.filter.limit", 10, 1, MAX_LIMIT),
        rooms=lists["rooms"],
        not_rooms=lists["not_rooms"] or (),
        types=lists["types"],
        not_types=lists["not_types"] or (),
        senders=lists["senders"],
        not_senders=lists["not_senders"] or (),
        contains_url=contains_url,
        event_context=context,
        include_state=_bool(criteria.get("include_state"), f"{where}.include_state"),
        group_by=tuple(dict.fromkeys(group_keys)),
        next_batch=next_batch,
    )


@routes.post("/_matrix/client/v3/search")
async def search(request: web.Request) -> web.Response:
    who = await requester(request)
    body = _object(await read_json(request), "The body")
    categories = _object(body.get("search_categories"), "search_categories")
    unknown = sorted(set(categories) - {"room_events"})
    if unknown:
        raise _invalid(f"Unknown search categories: {', '.join(unknown)}")
    if "room_events" not in categories:
        raise _invalid("search_categories.room_events is required")
    req = parse_room_events(categories["room_events"], request.query.get("next_batch"))
    return json_response(await services(request).search.search(who.user_id, who.device_id, req))
