"""Moments given on the command line: RFC 3339 times, or durations back from now (`10m`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from container_mapping.errors import ConfigError
from container_mapping.model import parse_time

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


class _BadForm(ConfigError):
    """Not a duration at all (as opposed to one too long to count back)."""


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `1h30m`, `2d`: at least one part, each a whole number but seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise _BadForm(f"invalid duration {text!r}: use forms like 90s, 10m, 1h30m or 2d")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    try:
        return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ConfigError(_too_long(text)) from None


def parse_moment(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or a duration meaning that long before `now`."""
    value = text.strip()
    if value[:1].isdigit() and (
        "T" in value or "t" in value or " " in value or value.count("-") >= 2
    ):
        try:
            return parse_time(value).astimezone(timezone.utc)
        except OverflowError:  # 0001-01-01T00:00:00+14:00 is in the year 0 in UTC
            raise ConfigError(
                f"time {text!r} is outside the years 1 to 9999 in UTC: give a real time"
            ) from None
    try:
        return now - parse_duration(value)
    except _BadForm:
        raise ConfigError(
            f"invalid time {text!r}: give an RFC 3339 time (2026-11-27T09:00:00Z) "
            "or a duration back from now (10m, 1h30m)"
        ) from None
    except OverflowError:
        raise ConfigError(_too_long(text)) from None


def _too_long(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    return f"duration {shown!r} reaches back before the year 1: give a shorter one (10m, 2d)"
