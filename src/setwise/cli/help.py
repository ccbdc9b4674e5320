"""How ``setwise --help`` shows a command: a flag bare (``--yes``, not ``--yes <bool>``),
a value by its metavar (``--where EXPR``, ``TABLE``), never a Python type (``<str>``,
``<list[str]>``) or a brace (``{table}``); a paragraph unbroken, examples as written.

Typer derives those placeholders from the annotations; the command line names each value
with a ``metavar`` instead, and these classes (``cls=`` of the app and of each command)
show only that.
"""

from __future__ import annotations

import inspect
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    """An argument shown by its metavar alone: ``TABLE``, ``[TABLE]...``."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def display_type(self, ctx: Any) -> str:
        return ""

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.metavar or (self.name or "").upper()
        if not self.required:
            name = f"[{name}]"
        return [f"{name}..." if self.nargs != 1 else name]


def reflowed(text: str | None) -> str | None:
    """A docstring as help: each paragraph of prose on one line, for the terminal to wrap
    (Rich keeps the source's line breaks, which would break a sentence mid-way);
    indented lines (the examples) as they are."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith(" ") else " ".join(p.split()) for p in paragraphs)


def _tidy(params: list[Any]) -> None:
    for param in params:
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument  # same state, shown by its metavar
        elif getattr(param, "is_flag", False):
            param.metavar = ""


class _Tidy:
    """Tidies the parameters a command or the group was built with, and its help option."""

    params: list[Any]
    help: str | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tidy(self.params)
        self.help = reflowed(self.help)

    def get_help_option(self, ctx: Any) -> TyperOption | None:
        option: TyperOption | None = super().get_help_option(ctx)  # type: ignore[misc]
        _tidy([option] if option is not None else [])
        return option


class Command(_Tidy, TyperCommand):
    """A command whose help shows flags bare and values by their metavar."""


class Group(_Tidy, TyperGroup):
    """The ``setwise`` group, whose own options (``--db``, ``--version``) show as a
    command's do."""
