"""Window bounds on the command line: RFC 3339 or a duration back from now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.errors import ConfigError
from container_mapping.model import format_time, parse_time, parse_time_portably
from container_mapping.window import parse_duration, parse_moment

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("0.5s", timedelta(seconds=0.5)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_moment(text, NOW) == NOW - delta


@pytest.mark.parametrize("text", ["", "10", "m", "10x", "1m1h", "-5m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_moment(text, NOW)


def test_rfc3339_with_docker_nanoseconds_and_offsets() -> None:
    assert parse_time("2026-11-27T09:20:59.065314807Z") == datetime(
        2026, 11, 27, 9, 20, 59, 65314, tzinfo=timezone.utc
    )
    assert parse_moment("2026-11-27T10:00:00+01:00", NOW) == datetime(
        2026, 11, 27, 9, tzinfo=timezone.utc
    )
    with pytest.raises(ConfigError, match="offset"):
        parse_time("2026-11-27T10:00:00")


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(timezone.utc),
    )
)
def test_format_and_parse_round_trip(moment: datetime) -> None:
    assert parse_time(format_time(moment)) == moment


TIMES = [
    "2026-11-27T09:20:59Z",
    "2026-11-27T09:20:59.5Z",
    "2026-11-27T09:20:59.065314807Z",
    "2026-11-27T09:20:59.0653148071234567Z",
    "2026-11-27T09:20:59.065314807+05:30",
    "2026-11-27 09:20:59-08:00",
    "2026-11-27t09:20:59Z",
    "2026-11-27T09:20:59z",
    " 2026-11-27T09:20:59Z ",
    "2026-11-27T09:20:59,5Z",
    "20261127T092059Z",
    "2026-11-27T09:20:59",
    "2026-02-30T09:20:59Z",
    "2026-11-27T24:00:00Z",
    "0000-01-01T00:00:00Z",
    "",
    "now",
]


def _outcome(parse: Callable[[str], datetime], text: str) -> object:
    try:
        return parse(text)
    except ConfigError as err:
        return str(err)


@pytest.mark.parametrize("text", TIMES)
def test_the_fast_parse_answers_as_the_portable_one(text: str) -> None:
    """On Python 3.11+ `parse_time` tries `fromisoformat` alone first: same times, same errors."""
    assert _outcome(parse_time, text) == _outcome(parse_time_portably, text)


@given(st.text(alphabet="0123456789-:.,TtZz+ ", max_size=40))
def test_the_fast_parse_agrees_on_any_text(text: str) -> None:
    assert _outcome(parse_time, text) == _outcome(parse_time_portably, text)
