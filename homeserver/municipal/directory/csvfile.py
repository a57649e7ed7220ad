"""Reading the staff CSV that IT teams keep (pure: bytes in, rows and errors out).

The format is in spec/directory.md: UTF-8 (with or without a BOM) or Shift_JIS (Windows'
cp932), a header row naming the columns in Japanese or English, one staff member a row.
Every problem is reported with its line number; a file with any error imports nothing.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from homeserver.municipal.directory import rules

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_ROWS = 100_000
MAX_FIELD_CHARS = 200
MAX_DEPTH = 10

#: Column -> the header names that mean it (compared after NFKC and case folding).
COLUMNS: dict[str, tuple[str, ...]] = {
    "org_code": ("団体コード", "org_code", "地方公共団体コード", "lg_code"),
    "org_name": ("団体名", "org_name", "組織名", "organisation", "organization"),
    "org_reading": ("団体名よみ", "org_reading", "組織名よみ"),
    "department": ("部署", "department", "所属"),
    "name": ("氏名", "name", "名前"),
    "reading": ("よみ", "reading", "ふりがな", "フリガナ", "氏名よみ"),
    "title": ("役職", "title"),
    "extension": ("内線", "extension", "内線番号"),
    "user_id": ("matrix id", "matrix_id", "user_id", "localpart", "ユーザid"),
}
REQUIRED = ("org_code", "org_name", "name")
_HEADERS = {
    unicodedata.normalize("NFKC", alias).casefold(): column
    for column, aliases in COLUMNS.items()
    for alias in aliases
}
_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+$")
_EXTENSION = re.compile(r"^[0-9#*+\-() ]*$")


@dataclass(frozen=True)
class StaffRow:
    line: int
    org_code: str
    org_name: str
    org_reading: str
    department: tuple[str, ...]
    name: str
    reading: str
    title: str
    extension: str
    user_id: str | None

    @property
    def key(self) -> str:
        """Who the row is, for telling changes from additions: the Matrix ID when given,
        else the name within the department."""
        if self.user_id:
            return self.user_id
        return f"{self.name}@{rules.join_department(self.department)}"

    @property
    def org(self) -> tuple[str, str]:
        return (self.org_code, self.org_name)


@dataclass
class ParsedFile:
    rows: list[StaffRow] = field(default_factory=list)
    #: "line N: message", in line order.
    errors: list[str] = field(default_factory=list)


def decode(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), else Shift_JIS (cp932); ValueError for anything else."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp932")
    except UnicodeDecodeError as e:
        raise ValueError(f"the file is neither UTF-8 nor Shift_JIS (byte {e.start})") from None


def parse(data: bytes, server_name: str) -> ParsedFile:
    """The rows of a staff CSV and every error in it (with line numbers)."""
    result = ParsedFile()
    if len(data) > MAX_FILE_BYTES:
        result.errors.append(f"line 1: the file is larger than {MAX_FILE_BYTES} bytes")
        return result
    try:
        text = decode(data)
    except ValueError as e:
        result.errors.append(f"line 1: {e}")
        return result
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            result.errors.append("line 1: the file is empty (a header row is needed)")
            return result
        columns = _columns(header, result.errors)
        if columns is None:
            return result
        _read_rows(reader, columns, server_name, result)
    except csv.Error as e:
        result.errors.append(f"line {reader.line_num}: not valid CSV: {e}")
    return result


def _columns(header: Sequence[str], errors: list[str]) -> dict[str, int] | None:
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = unicodedata.normalize("NFKC", name).strip().casefold()
        column = _HEADERS.get(key)
        if column is None:
            continue  # other columns (備考...) are left alone
        if column in columns:
            errors.append(f"line 1: the column {column} appears twice")
            return None
        columns[column] = index
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        names = ", ".join(f"{COLUMNS[c][0]}/{c}" for c in missing)
        errors.append(f"line 1: missing column(s): {names}")
        return None
    return columns


def _read_rows(
    reader: Any,
    columns: dict[str, int],
    server_name: str,
    result: ParsedFile,
) -> None:
    seen_keys: dict[tuple[tuple[str, str], str], int] = {}
    seen_users: dict[str, int] = {}
    line = reader.line_num + 1
    for record in reader:
        start = line
        line = reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if len(result.rows) >= MAX_ROWS:
            result.errors.append(f"line {start}: more than {MAX_ROWS} staff in one file")
            return
        errors: list[str] = []
        row = _row(record, columns, start, server_name, errors)
        if errors or row is None:
            result.errors.extend(f"line {start}: {e}" for e in errors)
            continue
        previous = seen_keys.get((row.org, row.key))
        if previous is not None:
            result.errors.append(f"line {start}: {row.key} is already on line {previous}")
            continue
        if row.user_id is not None and row.user_id in seen_users:
            other = seen_users[row.user_id]
            result.errors.append(f"line {start}: {row.user_id} is already on line {other}")
            continue
        seen_keys[(row.org, row.key)] = start
        if row.user_id is not None:
            seen_users[row.user_id] = start
        result.rows.append(row)


def _row(
    record: Sequence[str],
    columns: dict[str, int],
    line: int,
    server_name: str,
    errors: list[str],
) -> StaffRow | None:
    cells = {c: record[i] for c, i in columns.items() if i < len(record)}
    return check_row(cells, line, server_name, errors)


def check_row(
    cells: Mapping[str, str], line: int, server_name: str, errors: list[str]
) -> StaffRow | None:
    """One staff row from its cells (column -> text), or None with ``errors`` added: the
    import's checks, also used for the admin API's changes to a staff entry."""

    def cell(column: str) -> str:
        value = cells.get(column, "").strip()
        if len(value) > MAX_FIELD_CHARS:
            errors.append(f"{COLUMNS[column][0]}/{column} is longer than {MAX_FIELD_CHARS}")
            return ""
        if "\x00" in value:
            errors.append(f"{COLUMNS[column][0]}/{column} contains a NUL character")
            return ""
        return value

    org_code = unicodedata.normalize("NFKC", cell("org_code"))
    org_name, name = cell("org_name"), cell("name")
    for column, value in (("org_name", org_name), ("name", name)):
        if not value:
            errors.append(f"{COLUMNS[column][0]}/{column} is empty")
    code_error = rules.org_code_error(org_code)
    if code_error:
        errors.append(code_error)
    reading = _reading(cell("reading"), "reading", errors)
    org_reading = _reading(cell("org_reading"), "org_reading", errors)
    department = rules.split_department(cell("department"))
    if len(department) > MAX_DEPTH:
        errors.append(f"部署/department is nested deeper than {MAX_DEPTH}")
    extension = unicodedata.normalize("NFKC", cell("extension"))
    if not _EXTENSION.match(extension):
        errors.append(f"内線/extension {extension!r} may hold only digits, -, +, #, * and ()")
    user_id = _user_id(cell("user_id"), server_name, errors)
    if errors:
        return None
    return StaffRow(
        line=line,
        org_code=org_code,
        org_name=org_name,
        org_reading=org_reading,
        department=department,
        name=name,
        reading=reading,
        title=cell("title"),
        extension=extension,
        user_id=user_id,
    )


def _reading(value: str, column: str, errors: list[str]) -> str:
    if not value:
        return ""
    normalised = rules.normalise(value)
    if not rules.is_kana(normalised):
        errors.append(f"{COLUMNS[column][0]}/{column} {value!r} must be kana")
    return normalised


def _user_id(value: str, server_name: str, errors: list[str]) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        localpart, sep, server = value[1:].partition(":")
        if not sep:
            errors.append(f"Matrix ID {value!r} has no server name")
            return None
        if server != server_name:
            errors.append(f"Matrix ID {value} is not on this server ({server_name})")
            return None
    else:
        localpart = value
    if not _LOCALPART.match(localpart):
        errors.append(f"Matrix ID localpart {localpart!r} is not valid")
        return None
    return f"@{localpart}:{server_name}"
