"""``--where`` / ``--set`` text read by sqlglot in the database's dialect, refused with
a caret (``SQLTextError``) where it cannot be read or goes past a limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NoReturn

from sqlglot import Dialect as SqlglotDialect
from sqlglot import Token, TokenType, exp
from sqlglot.errors import ParseError, TokenError

from setwise.dialects import Strategy
from setwise.errors import SQLTextError
from setwise.sqltext.allowed import STATEMENT_TOKENS
from setwise.sqltext.limits import Overrun, nesting_overrun, tree_overrun
from setwise.sqltext.nodes import describe, span


class TextReader:
    """One text: parsed into one sqlglot expression, and every refusal of it."""

    def __init__(self, text: str, strategy: Strategy, label: str) -> None:
        self.text = text
        self.strategy = strategy
        self.label = label

    # -- parsing ---------------------------------------------------------------

    def parse(self) -> exp.Expr:
        """The one expression in the text, or a SQLTextError."""
        if "\x00" in self.text:
            at = self.text.index("\x00")
            self.error("a NUL character (\\x00) is not allowed", at, at)
        reader = SqlglotDialect.get_or_raise(self.strategy.sqlglot_dialect or None)
        tokenizer = reader.tokenizer()
        try:
            tokens = tokenizer.tokenize(self.text)
        except TokenError:
            self._unreadable(tokenizer.tokens)
        if not tokens:
            self.error("empty: give an expression", 0, len(self.text) - 1)
        for token in tokens:
            if token.token_type == TokenType.SEMICOLON:
                self.error(
                    "';' would start a second statement; give one expression",
                    token.start,
                    token.end,
                )
            if token.token_type in (TokenType.PLACEHOLDER, TokenType.PARAMETER):
                self.error(
                    "parameters are not allowed: write the value itself", token.start, token.end
                )
            if token.token_type in STATEMENT_TOKENS:
                self.error(
                    f"{token.text.upper()} is not allowed: {self.label} takes an "
                    "expression, not a statement",
                    token.start,
                    token.end,
                )
        parser = reader.parser()
        self.overrun(nesting_overrun(tokens, {TokenType.NOT, *parser.UNARY_PARSERS}))
        try:
            parsed = parser.parse_into(exp.Condition, tokens, self.text)
        except ParseError as exc:
            self._misread(exc)
        node = parsed[0] if len(parsed) == 1 else None
        if node is None:
            self.error("empty: give an expression", 0, len(self.text) - 1)
        self.overrun(tree_overrun(node))
        return node

    def overrun(self, found: Overrun | None) -> None:
        """Refuse the text past a limit of ``sqllimits``, if ``found``."""
        if found is None:
            return
        if found.node is not None:
            self.fail(found.node, found.reason)
        token = found.token
        start, end = (token.start, token.end) if token is not None else (0, len(self.text) - 1)
        self.error(found.reason, start, end)

    def _unreadable(self, read: Sequence[Token]) -> NoReturn:
        start = read[-1].end + 1 if read else 0
        while start < len(self.text) and self.text[start].isspace():
            start += 1
        rest = self.text[start:]
        if rest[:1] in ("'", '"', "`"):
            reason = f"unterminated {rest[0]} quote: it is never closed"
        else:
            reason = "cannot read the text from here"
        self.error(reason, start, len(self.text) - 1)

    def _misread(self, exc: ParseError) -> NoReturn:
        found = exc.errors[0] if exc.errors else {}
        highlight = str(found.get("highlight") or "")
        line, col = int(found.get("line") or 1), int(found.get("col") or 1)
        offset = sum(len(part) + 1 for part in self.text.split("\n")[: line - 1])
        start = offset + col - len(highlight)
        description = str(found.get("description") or "not a valid expression")
        self.error(f"cannot read this: {description}", start, start + len(highlight) - 1)

    # -- errors ----------------------------------------------------------------

    def error(self, reason: str, start: int, end: int, suggestion: str | None = None) -> NoReturn:
        raise SQLTextError(
            self.text, reason, position=start, end=end, label=self.label, suggestion=suggestion
        )

    def fail(self, node: exp.Expr, reason: str, suggestion: str | None = None) -> NoReturn:
        """Refuse ``node``, with the caret under the text it was read from."""
        start, end = span(node) or (0, len(self.text) - 1)
        self.error(reason, start, end, suggestion)

    def allow(self, node: exp.Expr, *allowed: str, ignored: Sequence[str] = ()) -> None:
        """Refuse ``node`` if it carries a part not in ``allowed`` (or ``ignored``)."""
        for name, value in node.args.items():
            if value and name not in allowed and name not in ignored:
                part = value if isinstance(value, exp.Expr) else node
                self.fail(part, f"{name.upper()} is not supported in {describe(node)}")
