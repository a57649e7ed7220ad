"""``kairan consortium``: make, edit, sign, check, show and apply consortium documents.

The command line is a contract (scripts and the interop suite rely on it; README):
``new``, ``add``, ``remove``, ``sign``, ``verify``, ``show``, ``apply``.  Failures end
with one line and exit status 1.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from federation.canonical import parse_json
from federation.errors import FederationError
from federation.signing import SigningKey, load_signing_keys
from homeserver.common.clock import Clock
from homeserver.municipal.consortium import document, rules
from homeserver.municipal.consortium.show import describe

T = TypeVar("T")
DAY_MS = 86_400_000
DOC = click.argument("doc", type=click.Path(dir_okay=False, path_type=Path))


def fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def read_doc(path: Path) -> dict[str, Any]:
    try:
        obj = parse_json(path.read_bytes())
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    except FederationError as e:
        fail(f"{path} is not JSON: {e}")
    if not isinstance(obj, dict):
        fail(f"{path} is not a JSON object")
    return obj


def write_doc(path: Path, obj: dict[str, Any]) -> None:
    text = json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_key(path: Path) -> SigningKey:
    try:
        keys = load_signing_keys(path.read_text(encoding="utf-8"))
    except OSError as e:
        fail(f"cannot read key file {path}: {e.strerror}")
    except (FederationError, UnicodeDecodeError) as e:
        fail(f"{path}: {e}")
    if not keys:
        fail(f"{path} holds no key")
    return keys[0]


def now_ms() -> int:
    return Clock().now_ms()


def checked(action: Callable[[], T]) -> T:
    try:
        return action()
    except (document.DocumentError, rules.Refused) as e:
        fail(str(e))


def edit(path: Path, change: Callable[[dict[str, Any]], dict[str, Any]], days: int | None) -> None:
    obj = read_doc(path)
    doc = checked(lambda: rules.check_stored(obj))
    signed = rules.is_signed(doc)
    draft = checked(lambda: change(document.start_edit(obj, signed)))
    if days is not None:
        draft["valid_until_ts"] = now_ms() + days * DAY_MS
    checked(lambda: document.parse(draft))
    write_doc(path, draft)
    click.echo(f"{path}: draft of version {draft['version']}, unsigned")


VALID_DAYS = click.option(
    "--valid-days", type=click.IntRange(1, 3650), default=None,
    help="Set the validity to N days from now (default: unchanged).",
)  # fmt: skip


@click.group("consortium")
def cli() -> None:
    """Consortium documents: the members a node federates with (spec/consortium.md)."""


@cli.command("new")
@click.option("--id", "doc_id", required=True, help="The consortium's id (a-z, 0-9, . _ -).")
@click.option("--name", required=True, help="Its name.")
@click.option("--name-reading", default="", help="The reading of its name (kana).")
@click.option(
    "--admin-key", "admin_keys", multiple=True, required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An admin's key file (kairan key generate); repeat for each admin.",
)  # fmt: skip
@click.option(
    "--threshold", type=int, default=None, help="Signatures needed (default: a majority)."
)
@click.option("--valid-days", type=click.IntRange(1, 3650), default=90, show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def new(
    doc_id: str, name: str, name_reading: str, admin_keys: tuple[Path, ...],
    threshold: int | None, valid_days: int, out: Path,
) -> None:  # fmt: skip
    """A new consortium: version 1, unsigned (each admin then runs sign)."""
    if out.exists():
        fail(f"{out} exists; refusing to overwrite it")
    admins: dict[str, str] = {}
    for path in admin_keys:
        key = read_key(path)
        if key.key_id in admins:
            fail(f"two admin keys have the ID {key.key_id}: give each its own version")
        admins[key.key_id] = key.public_key_base64
    k = threshold if threshold is not None else len(admins) // 2 + 1
    obj = checked(
        lambda: document.new_draft(
            doc_id, name, name_reading, admins, k, now_ms() + valid_days * DAY_MS
        )
    )
    write_doc(out, obj)
    click.echo(f"{out}: consortium {doc_id}, version 1, {k} of {len(admins)} admins to sign")


@cli.command("add")
@DOC
@click.option("--server", required=True, help="The member's server name.")
@click.option(
    "--verify-key", "verify_keys", multiple=True, required=True,
    help="'ed25519:VERSION BASE64' (kairan key show); repeat to pin several.",
)  # fmt: skip
@click.option("--org-code", default=None, help="JIS X 0402 local government code.")
@click.option("--org-name", default=None, help="The organisation's name.")
@click.option("--org-reading", default=None, help="The reading of its name (kana).")
@VALID_DAYS
def add(
    doc: Path, server: str, verify_keys: tuple[str, ...], org_code: str | None,
    org_name: str | None, org_reading: str | None, valid_days: int | None,
) -> None:  # fmt: skip
    """Add a member (or replace its pinned keys): a draft of the next version."""
    keys: dict[str, str] = {}
    for line in verify_keys:
        key_id, _, public = line.strip().partition(" ")
        checked(lambda: document.check_key(key_id, public.strip(), "--verify-key"))  # noqa: B023
        keys[key_id] = public.strip()
    fields = {"code": org_code, "name": org_name, "reading": org_reading}
    organisation = {k: v for k, v in fields.items() if v is not None}
    edit(doc, lambda d: document.with_member(d, server, keys, organisation), valid_days)


@cli.command("remove")
@DOC
@click.option("--server", required=True, help="The member's server name.")
@VALID_DAYS
def remove(doc: Path, server: str, valid_days: int | None) -> None:
    """Remove a member: a draft of the next version."""
    edit(doc, lambda d: document.without_member(d, server), valid_days)


@cli.command("renew")
@DOC
@click.option("--valid-days", type=click.IntRange(1, 3650), required=True)
def renew(doc: Path, valid_days: int) -> None:
    """The same members, valid N days from now: a draft of the next version."""
    edit(doc, lambda d: d, valid_days)


@cli.command("sign")
@DOC
@click.option(
    "--admin-key", "admin_keys", multiple=True, required=True,
    type=click.Path(dir_okay=False, path_type=Path),
)  # fmt: skip
def sign(doc: Path, admin_keys: tuple[Path, ...]) -> None:
    """Sign as an admin; with K admins' signatures the draft is a new version."""
    obj = read_doc(doc)
    for path in admin_keys:
        key = read_key(path)
        obj = checked(lambda: rules.sign(obj, key))  # noqa: B023
    write_doc(doc, obj)
    parsed = checked(lambda: rules.check_stored(obj))
    good, _ = rules.valid_signers(parsed)
    state = "signed" if rules.is_signed(parsed) else "draft"
    click.echo(
        f"{doc}: version {parsed.version}, {len(good)} of {parsed.authority.threshold} "
        f"signatures: {state}"
    )


@cli.command("verify")
@DOC
def verify(doc: Path) -> None:
    """Exit 0 if DOC is a valid version, else exit 1 with one line saying why."""
    obj = read_doc(doc)
    parsed = checked(lambda: rules.check(obj, now_ms=now_ms()))
    click.echo(
        f"valid: consortium {parsed.id} version {parsed.version}, "
        f"{len(parsed.members)} members, until {rules.format_ts(parsed.valid_until_ts)}"
    )


@cli.command("show")
@click.argument("doc", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path))
def show(doc: Path | None, directory: Path | None) -> None:
    """Describe DOC, or the documents a node holds (--dir NODEDIR)."""
    if (doc is None) == (directory is None):
        fail("give DOC or --dir NODEDIR")
    if doc is not None:
        parsed = checked(lambda: rules.check_stored(read_doc(doc)))
        click.echo(describe(parsed, now_ms()))
        return
    assert directory is not None
    texts = run_on_node(directory, _held)
    if not texts:
        click.echo("no consortium documents")
    for text in texts:
        click.echo(describe(rules.check_stored(json.loads(text)), now_ms()))


@cli.command("apply")
@DOC
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False, path_type=Path))
def apply(doc: Path, directory: Path) -> None:
    """Store DOC in the node's database; a running node puts it in force within seconds."""
    from homeserver.municipal.consortium.service import store_if_valid

    obj = read_doc(doc)

    async def store(db: Any) -> Any:
        return await store_if_valid(db, obj, now_ms(), "cli")

    parsed = run_on_node(directory, store)
    click.echo(f"consortium {parsed.id} version {parsed.version} applied")


async def _held(db: Any) -> list[str]:
    from homeserver.municipal.consortium import storage

    async with db.read() as conn:
        versions = await storage.latest_versions(conn)
        return [t for i in sorted(versions) if (t := await storage.get(conn, i)) is not None]


def run_on_node(directory: Path, action: Callable[[Any], Awaitable[T]]) -> T:
    """Open the node's database (its migrations and this feature's run first)."""
    from homeserver.node.commands import run_with_database

    return run_with_database(
        directory,
        action,
        feature="consortium",
        migrations=Path(__file__).parent / "migrations",
        also=(rules.Refused,),
    )
