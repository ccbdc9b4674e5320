"""Dates and timestamps written otherwise than ISO 8601: read with a ``strptime``
format (``date_format``), and the numbers a spreadsheet writes for dates refused.

Excel stores a date as the days since 1899-12-30 (a *serial date*: 45291 is
2023-12-31; a fraction is the time of day), and a sheet saved as CSV without
formatting the column writes that number. Read as a date it would be a year in the
ninth century or an error in every database; refused here with what it likely means.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from setwise.errors import InvalidArgumentError
from setwise.shown import shown
from setwise.staging.validation import Unfit

#: Day 0 of Excel's 1900 date system, as its serials count from it after 1900-02-28
#: (Excel counts a 1900-02-29 that never was, so day 60 is no date).
EXCEL_EPOCH = dt.datetime(1899, 12, 30)

#: The largest serial Excel writes: 9999-12-31.
EXCEL_LAST = 2_958_465

_SERIAL = re.compile(r"[0-9]{1,7}(?:\.[0-9]+)?")


def excel_serial(value: Any, date_format: str | None) -> Unfit | None:
    """The refusal of ``value`` when it is a bare number, as a spreadsheet writes a date
    (an Excel serial); None for anything else. With no ``date_format`` given, the
    refusal names it (``fix``)."""
    if isinstance(value, str):
        text = value.strip()
        if not _SERIAL.fullmatch(text):
            return None
        number = Decimal(text)
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = Decimal(str(value))
    else:
        return None
    if not number.is_finite() or number < 0:
        return None
    if 61 <= number <= EXCEL_LAST:
        day = EXCEL_EPOCH + dt.timedelta(days=float(number))
        meant = day.date().isoformat() if number == int(number) else f"{day:%Y-%m-%d %H:%M}"
        guess = f"an Excel serial date? ({number} is {meant} in Excel)"
    else:
        guess = "no date a spreadsheet writes either"
    if date_format is not None:
        return Unfit(f"a number, not a date in the format {date_format!r}: {guess}")
    return Unfit(
        f"a number, not a date: {guess}; save the column as dates, or name their form",
        fix=("date_format",),
    )


def check_date_format(date_format: str | None) -> None:
    """Refuse a ``date_format`` that reads no date: one with no ``%`` code."""
    if date_format is not None and "%" not in date_format:
        raise InvalidArgumentError(
            f"the date format {date_format!r} holds no strptime code (%Y, %m, %d...); "
            "give the form of the file's dates, e.g. '%d/%m/%Y'",
            argument="date_format",
            value=date_format,
        )


def dated(date_format: str, *, timestamp: bool, aware: bool = False) -> Callable[[Any], Any]:
    """A parser of text written in ``date_format`` (``strptime`` codes) into a datetime
    (``timestamp``; converted to naive UTC unless ``aware``) or a date. A value that is
    not text (a date read from Parquet) is left for the column's check."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            if not isinstance(value, dt.date) and (unfit := excel_serial(value, date_format)):
                raise unfit
            return value
        try:
            read = dt.datetime.strptime(value.strip(), date_format)
        except ValueError:
            unfit = excel_serial(value, date_format)
            if unfit is not None:
                raise unfit from None
            raise Unfit(f"not a date in the format {date_format!r}: {shown(value)}") from None
        if timestamp:
            if read.tzinfo is not None and not aware:
                return read.astimezone(dt.UTC).replace(tzinfo=None)
            return read
        if read.time() != dt.time() or read.tzinfo is not None:
            raise Unfit(f"{shown(value)} has a time of day; the column holds dates")
        return read.date()

    return parse
