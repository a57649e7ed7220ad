"""What a URL preview takes from a page (pure: no I/O): its OpenGraph tags, with the
``<title>`` and the description ``<meta>`` when the page has no ``og:title`` or
``og:description`` (as Synapse does).  Read with the standard library's ``html.parser``,
which never fails on broken markup."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

#: At most this many tags, and this many characters of each value, are kept.
MAX_TAGS = 50
MAX_VALUE = 500
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([a-zA-Z0-9_:.-]+)""", re.IGNORECASE)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.og: dict[str, str] = {}
        self.title: str | None = None
        self.description: str | None = None
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self._in_title = True
        elif tag == "meta":
            found = {k.lower(): v for k, v in attrs if v is not None}
            key = found.get("property") or found.get("name") or ""
            content = found.get("content")
            if content is None:
                return
            key = key.strip()
            if key.lower().startswith("og:") and len(self.og) < MAX_TAGS:
                self.og.setdefault(key, content.strip()[:MAX_VALUE])
            elif key.lower() == "description" and self.description is None:
                self.description = content.strip()[:MAX_VALUE]

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self._in_title:
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split())[:MAX_VALUE]

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)


def page_charset(body: bytes, header_charset: str | None) -> str:
    """The page's encoding: the Content-Type's, else a ``<meta charset>``'s, else UTF-8."""
    for candidate in (header_charset, _meta_charset(body)):
        if candidate:
            try:
                "".encode(candidate)
                return candidate
            except LookupError:
                continue
    return "utf-8"


def _meta_charset(body: bytes) -> str | None:
    found = _CHARSET.search(body[:4096])
    return found.group(1).decode("ascii") if found else None


def open_graph(body: bytes, header_charset: str | None = None) -> dict[str, Any]:
    """The OpenGraph tags of an HTML page (possibly cut short), with fallbacks."""
    parser = _PageParser()
    text = body.decode(page_charset(body, header_charset), errors="replace")
    parser.feed(text)
    parser.close()
    if parser._in_title and parser.title is None:  # cut inside <title>
        parser.title = " ".join("".join(parser._title_parts).split())[:MAX_VALUE]
    og: dict[str, Any] = dict(parser.og)
    if "og:title" not in og and parser.title:
        og["og:title"] = parser.title
    if "og:description" not in og and parser.description:
        og["og:description"] = parser.description
    return og
