"""The database URL a command was given, read once: as output shows it (every password
``***``), as a command printed for pasting gives it (every password left out), and the
passwords no output may carry, in every form they were written.

A password can sit in the URL's user part (``user:s3cret@``) or in its query
(``?password=s3cret``), percent-encoded or not; it comes from ``--db URL``,
``--db=URL`` or ``SETWISE_DB``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

from sqlalchemy import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from setwise.dialects import Strategy, get_strategy

#: Query parameters that carry a secret: libpq's password and sslpassword (a key file's
#: passphrase), PyMySQL's and mysqlclient's passwd, ODBC's pwd.
SECRET_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword"})

HIDDEN = "***"

Origin = Literal["--db", "SETWISE_DB", "default"]

# The password as written: after "user:" and before the "@" that ends the user part.
_WRITTEN_PASSWORD = re.compile(r"^[^:/?#]+://[^:/?#@]*:([^/?#@]*)@")
_WRITTEN_QUERY = re.compile(r"[?&]([^=&#]+)=([^&#]*)")


@dataclass(frozen=True)
class DatabaseURL:
    """A database URL as given, and what output may show of it."""

    text: str
    origin: Origin
    """Where it came from: ``--db`` (either form), ``SETWISE_DB``, or the default."""
    url: URL | None
    """The parsed URL; None when it could not be read (``problem`` says why)."""
    problem: str | None
    secrets: tuple[str, ...]
    """Every password in the URL, as written and decoded, longest first."""

    @classmethod
    def read(cls, text: str, origin: Origin) -> DatabaseURL:
        """Parse ``text``; a URL that cannot be read gives ``problem``, never an error."""
        written = [*_WRITTEN_PASSWORD.findall(text)]
        written += [v for k, v in _WRITTEN_QUERY.findall(text) if k.lower() in SECRET_KEYS]
        url, problem = None, None
        try:
            url = make_url(text)
        except ArgumentError:
            problem = "it is not a URL like dialect+driver://user@host/database"
        except ValueError:  # the port, when it is not a number
            problem = "its port is not a number"
        found = {*written, *(unquote(s) for s in written)}
        if url is not None:
            found |= {url.password or "", *(_query_secrets(url).values())}
        secrets = tuple(sorted((s for s in found if s), key=len, reverse=True))
        return cls(text, origin, url, problem, secrets)

    @property
    def shown(self) -> str:
        """The URL as output shows it, every password ``***``; one that could not be
        read is named by where it came from, never shown."""
        if self.url is None:
            return f"the {self.origin} URL"
        hidden = dict.fromkeys(_query_secrets(self.url), HIDDEN)
        rendered = self.url.update_query_dict(hidden).render_as_string(hide_password=True)
        return rendered.replace("=%2A%2A%2A", f"={HIDDEN}")

    def hide(self, text: str) -> str:
        """``text`` with every password of the URL, in any form it was written, as ``***``."""
        for secret in self.secrets:
            text = text.replace(secret, HIDDEN)
        return text

    def command(self, words: Sequence[str]) -> str:
        """``setwise`` and ``words`` as a line to paste, on this database: a URL given by
        ``--db`` is given again, without its passwords (see ``left_out``); one from
        ``SETWISE_DB`` or the default is found there again."""
        given = ["--db", self._without_secrets()] if self.origin == "--db" else []
        return shlex.join(["setwise", *words, *given])

    @property
    def left_out(self) -> str:
        """What to say under commands from ``command`` when they leave a password out,
        and where it will be read from; "" when they leave none out."""
        if self.origin != "--db" or not self.secrets:
            return ""
        where = self._password_hint()
        return (
            f"(The password is left out of the command: {where + '; or ' if where else ''}"
            "set SETWISE_DB to the whole URL and leave out --db.)"
        )

    def _without_secrets(self) -> str:
        if self.url is None:
            return self.shown
        bare = self.url.difference_update_query(list(_query_secrets(self.url)))
        return bare._replace(password=None).render_as_string(hide_password=False)

    @property
    def missing(self) -> str | None:
        """The database the URL names, when it does not exist and connecting would
        create it (a SQLite file's absolute path); None otherwise."""
        strategy = self._strategy()
        return strategy.missing_database(self.url) if strategy and self.url else None

    def _password_hint(self) -> str | None:
        strategy = self._strategy()
        return strategy.password_hint if strategy else None

    def _strategy(self) -> Strategy | None:
        if self.url is None:
            return None
        try:
            dialect = self.url.get_dialect()
        except (NoSuchModuleError, ImportError):  # a dialect this Python does not have
            return None
        return get_strategy(dialect())


def _query_secrets(url: URL) -> dict[str, str]:
    """The query parameters of ``url`` that carry a secret, and their (last) values."""
    found = {}
    for key, value in url.query.items():
        if key.lower() in SECRET_KEYS:
            found[key] = value if isinstance(value, str) else value[-1]
    return found
