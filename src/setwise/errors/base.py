"""The base of every setwise error, and how an error spells the arguments it names."""

from __future__ import annotations

from setwise.messages import Spelling, as_argument


class SetwiseError(Exception):
    """Base of every error setwise raises."""

    def explain(self, spell: Spelling = as_argument) -> str:
        """The message, with every argument it asks for named by ``spell`` (the command
        line names its options); ``str(error)`` is ``explain()``."""
        return self._say(spell)

    def _say(self, spell: Spelling) -> str:
        """The message; an error that asks for an argument builds it with ``spell``."""
        return str(self)
