"""The fake's clock (real or frozen) and Salesforce's datetime formats.

Every timestamp the fake hands out comes from one Clock, so tests can freeze time, move it
forward, and see token expiry, replication windows and the API-usage window follow.
Datetimes are kept as their wire form, 'YYYY-MM-DDTHH:MM:SS.mmm+0000': always UTC with a
fixed width, so string order is time order and no conversion is needed on output.
"""

import calendar
import re
import time
from datetime import datetime, timezone

DAY_MS = 86_400_000

_DT_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?$"
)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class Clock:
    def __init__(self):
        self.frozen_ms = None

    def now_ms(self) -> int:
        if self.frozen_ms is not None:
            return self.frozen_ms
        return int(time.time() * 1000)

    def freeze(self, ms: int):
        self.frozen_ms = ms

    def advance(self, seconds: float):
        if self.frozen_ms is None:
            raise ValueError("the clock is real; freeze it with {\"now\": ...} first")
        self.frozen_ms += int(round(seconds * 1000))

    def real(self):
        self.frozen_ms = None

    def stamp(self) -> str:
        """A record timestamp: Salesforce keeps audit fields to the whole second."""
        return format_ms(self.now_ms() // 1000 * 1000)


def format_ms(ms: int) -> str:
    secs, milli = divmod(int(ms), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%03d+0000" % milli


def format_date_ms(ms: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(int(ms) // 1000))


def parse_datetime(text: str, require_zone: bool = True):
    """Epoch milliseconds for an ISO 8601 datetime, or None if it is not one.

    Accepts 'Z', '+hh:mm', '+hhmm' and '+hh' offsets and any fraction of a second
    (truncated to milliseconds)."""
    if not isinstance(text, str):
        return None
    m = _DT_RE.match(text)
    if not m:
        return None
    y, mo, d, h, mi, s, frac, zone = m.groups()
    if zone is None and require_zone:
        return None
    try:
        datetime(int(y), int(mo), int(d), int(h), int(mi), int(s))
    except ValueError:
        return None
    ms = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s))) * 1000
    if frac:
        ms += int((frac + "00")[:3])
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        if len(digits) not in (2, 4):
            return None
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        ms -= sign * (hours * 3600 + minutes * 60) * 1000
    return ms


def parse_date(text: str):
    """'YYYY-MM-DD' if text is a valid calendar date, else None."""
    if not isinstance(text, str) or not _DATE_RE.match(text):
        return None
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return None
    return text


def date_from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d")
