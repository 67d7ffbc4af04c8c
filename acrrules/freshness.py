"""How old a Service Tags file is: `render` warns about stale IP prefixes.

The age comes from the date in the file's name (ServiceTags_<Cloud>_<YYYYMMDD>.json,
as Microsoft publishes it), never from its modification time, which a copy or a
checkout resets. "Today" is the UTC date, or ACRRULES_TODAY=YYYY-MM-DD (read here
and nowhere else), so tests and reproducible builds control it without a clock.
"""

from __future__ import annotations

import datetime
import os

from . import catalog
from .errors import Diagnostic, InputError, UsageError
from .servicetags import date_in_name

ENV_TODAY = "ACRRULES_TODAY"


def today() -> datetime.date:
    value = os.environ.get(ENV_TODAY)
    if not value:
        return datetime.datetime.now(datetime.UTC).date()
    try:
        if len(value) != 10:  # fromisoformat would also take 20261201
            raise ValueError
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"{ENV_TODAY}={value!r} is not a date: write it as YYYY-MM-DD (e.g. 2026-12-01), "
            f"or unset {ENV_TODAY} to use today's date"
        ) from None


def _days(n: int) -> str:
    return f"{n} day{'' if n == 1 else 's'}"


def check(path: str, max_age: int | None = None) -> str | None:
    """The warning or note to print for rendering from `path`, or None when the file is recent.

    More than `max_age` days old, or of unknown age while `max_age` is given (the
    promise "no older than N days" cannot be kept then), is an InputError instead.
    """
    dated = date_in_name(path)
    if dated is None:
        if max_age is not None:
            raise InputError(
                [
                    Diagnostic(
                        path,
                        None,
                        None,
                        "cannot check the age of this Service Tags file against --max-age: its "
                        "name has no date; save it as ServiceTags_<Cloud>_<YYYYMMDD>.json (the "
                        "date it was published), or drop --max-age",
                    )
                ]
            )
        return (
            f"{path}: note: the age of this Service Tags file is unknown (its name has no "
            "ServiceTags_<Cloud>_<YYYYMMDD>.json date); make sure it is this week's"
        )
    now = today()
    age = (now - dated).days
    if age < 0:
        return (
            f"{path}: note: this Service Tags file is dated {dated.isoformat()}, {_days(-age)} after today "
            f"({now.isoformat()}): check the file name or the clock"
        )
    where = f"dated {dated.isoformat()}, today is {now.isoformat()}"
    if max_age is not None and age > max_age:
        raise InputError(
            [
                Diagnostic(
                    path,
                    None,
                    None,
                    f"this Service Tags file is {_days(age)} old ({where}), more than --max-age "
                    f"{max_age}: run `acrrules tags fetch` for this week's file and render with it",
                )
            ]
        )
    if age > catalog.SERVICETAGS_STALE_DAYS:
        return (
            f"{path}: warning: this Service Tags file is {_days(age)} old ({where}); Microsoft publishes a "
            "new one every week: run `acrrules tags fetch` and render with the new file"
        )
    return None
