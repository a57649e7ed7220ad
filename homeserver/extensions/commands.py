"""What a feature adds to the ``kairan`` command's core commands (``kairan user add``...).

A feature's command group (its module's ``cli``) holds commands of its own.  To add options
to a core command and act before and after it, a feature module defines
``command_extensions``, a sequence of :class:`CommandExtension`; the ``kairan`` command
finds them through the catalogue, as it finds the groups, so the core never imports a
feature.  The extensible commands are those whose callbacks take the extension values
(``kairan user add`` and ``kairan user list``; spec/extensions.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

#: ``before(services, values)``: the node's services (``NodeServices``) and the values of
#: every option the features added to the command (by parameter name).
Before = Callable[[Any, Mapping[str, Any]], Awaitable[None]]
#: ``after(services, values, result)``: ``result`` is what the core command made (the new
#: user ID for ``user add``, the list of user entries for ``user list``, which it may amend).
After = Callable[[Any, Mapping[str, Any], Any], Awaitable[None]]


@dataclass(frozen=True)
class CommandExtension:
    #: The core command, by its words after ``kairan`` ("user add").
    command: str
    #: Options added to it (their help should name the feature).
    options: Sequence[click.Option] = ()
    #: Run first, in the same session as the command (check the values; raise
    #: ``click.ClickException`` to stop before anything is done).
    before: Before | None = None
    #: Run once the core command's work is done, in the same session.
    after: After | None = None
