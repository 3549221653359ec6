"""Moments given on the command line: RFC 3339 times, or durations back from now (`10m`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from container_mapping.errors import ConfigError
from container_mapping.model import parse_time

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> timedelta:
    """`90s`, `10m`, `1h30m`, `2d`: at least one part, each a whole number but seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ConfigError(f"invalid duration {text!r}: use forms like 90s, 10m, 1h30m or 2d")
    days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_moment(text: str, now: datetime) -> datetime:
    """An RFC 3339 time, or a duration meaning that long before `now`."""
    value = text.strip()
    if value[:1].isdigit() and (
        "T" in value or "t" in value or " " in value or value.count("-") >= 2
    ):
        return parse_time(value)
    try:
        return now - parse_duration(value)
    except ConfigError:
        raise ConfigError(
            f"invalid time {text!r}: give an RFC 3339 time (2026-11-27T09:00:00Z) "
            "or a duration back from now (10m, 1h30m)"
        ) from None
