"""Names setwise derives for its own tables and columns, within a database's limit."""

from __future__ import annotations

import hashlib
from typing import Literal

IdentifierUnits = Literal["bytes", "characters"]
"""What an identifier limit counts: bytes of UTF-8, or characters."""

#: The longest name setwise derives where it knows no other limit: PostgreSQL keeps 63
#: bytes of a name (NAMEDATALEN - 1) and cuts the rest silently; MySQL takes 64
#: characters. A name of 63 bytes fits both, and every database setwise knows.
MAX_IDENTIFIER = 63

#: Hex digits of the hash that ends a shortened name: 8 (32 bits) keep apart the few
#: long names one table can have, and leave most of the name readable.
_HASH_DIGITS = 8


def shorten(name: str, limit: int = MAX_IDENTIFIER, units: IdentifierUnits = "bytes") -> str:
    """``name`` if it is at most ``limit`` ``units`` long; else as much of its start as
    fits with "_" and a hash of the whole name, so that two long names that start alike
    stay two names. Never cuts a character in half.

    For ASCII names, and counting characters, this is the rule setwise has always
    followed: a journal table an earlier version created keeps its name."""
    size = len(name.encode()) if units == "bytes" else len(name)
    if size <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:_HASH_DIGITS]
    room = limit - _HASH_DIGITS - 1
    # Cut by bytes, a character cut in half is left out whole.
    head = name.encode()[:room].decode(errors="ignore") if units == "bytes" else name[:room]
    return f"{head}_{digest}"
