"""Window bounds on the command line: RFC 3339 or a duration back from now."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.errors import ConfigError
from container_mapping.model import format_time, parse_time
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
