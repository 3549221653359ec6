"""Logging commands: the escaping the agent undoes, and the lines the task writes."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from container_mapping import agent
from container_mapping.agent import AgentLog
from tests.e2e.shim import parse_command

TRICKY = st.text(
    alphabet=st.sampled_from(list("%;]\r\n=AZP250aDB3 é[#v")) | st.characters(), max_size=60
)


LINE_STARTERS = "\x1b\x85\u2028\u2029\x0b\x0c\x00\x7f\x9b"


@given(TRICKY)
def test_property_escaping_round_trips(value: str) -> None:
    assert agent.unescape_property(agent.escape_property(value)) == agent.strip_controls(value)


@given(TRICKY)
def test_message_escaping_round_trips(value: str) -> None:
    assert agent.unescape_message(agent.escape_message(value)) == agent.strip_controls(value)


@given(TRICKY)
def test_no_character_that_may_start_a_line_survives_escaping(value: str) -> None:
    for escaped in (agent.escape_message(value), agent.escape_property(value), agent.plain(value)):
        assert not set(escaped) & set(LINE_STARTERS + "\r\n")


def test_controls_are_dropped_not_replaced() -> None:
    assert agent.plain("a\x1b[2Kb\u2028##vso[x]\x85c") == "a[2Kb# #vso[x]c"
    assert agent.escape_message("tab\tstays") == "tab\tstays"


@given(TRICKY)
def test_escaped_property_cannot_end_the_command_or_the_line(value: str) -> None:
    escaped = agent.escape_property(value)
    assert not set(escaped) & {"\r", "\n", "]", ";"}


@given(TRICKY)
def test_escaped_message_stays_on_one_line(value: str) -> None:
    escaped = agent.escape_message(value)
    assert "\r" not in escaped and "\n" not in escaped


@given(TRICKY, TRICKY)
def test_a_command_reads_back_as_written(name: str, message: str) -> None:
    line = agent.command("task.setvariable", {"variable": name, "issecret": "false"}, message)
    parsed = parse_command(line)
    assert parsed is not None
    assert parsed.properties == {"variable": agent.strip_controls(name), "issecret": "false"}
    assert parsed.message == agent.strip_controls(message)


def test_escapes_percent_first() -> None:
    assert agent.escape_property("%0A\n;]") == "%AZP250A%0A%3B%5D"
    assert agent.escape_message("100%\r\n;]") == "100%AZP25%0D%0A;]"


@given(st.text(max_size=80))
def test_plain_text_is_never_a_command(text: str) -> None:
    line = agent.plain(text)
    assert "\n" not in line and "\r" not in line
    assert "##vso[" not in line and "##[" not in line


def _lines(write: object) -> list[str]:
    stream = io.StringIO()
    write(AgentLog(stream))  # type: ignore[operator]
    return stream.getvalue().splitlines()


def test_agent_log_lines() -> None:
    def write(log: AgentLog) -> None:
        log.set_secret("s3cr%t")
        log.set_secret("  ")  # nothing to mask: no command
        log.set_variable("ContainerMapping.JobStart", "2026-11-27T09:00:00Z")
        log.set_variable("Other", "x", readonly=True)
        log.warning("engine said: no\nsecond line")
        log.error("bad")
        log.fail("failed")
        log.debug("a\nb")
        log.info("##vso[task.complete result=Failed]sneaky")

    assert _lines(write) == [
        "##vso[task.setsecret]s3cr%AZP25t",
        "##vso[task.setvariable variable=ContainerMapping.JobStart]2026-11-27T09:00:00Z",
        "##vso[task.setvariable variable=Other;isreadonly=true]x",
        "##vso[task.logissue type=warning]engine said: no%0Asecond line",
        "##vso[task.logissue type=error]bad",
        "##vso[task.complete result=Failed]failed",
        "##vso[task.debug]a",
        "##vso[task.debug]b",
        "# #vso[task.complete result=Failed]sneaky",
    ]


def test_a_secret_is_scrubbed_from_every_later_line_whole_and_in_pieces() -> None:
    token = "eyJhbGciOi\r\nJIUzI1NiJ9.part"

    def write(log: AgentLog) -> None:
        log.set_secret(token)
        log.warning(f"header value {token!r} is not allowed")
        log.debug(f"Traceback: ValueError({token!r})\nline two: {token}")

    lines = _lines(write)
    assert lines[0] == "##vso[task.setsecret]eyJhbGciOi%0D%0AJIUzI1NiJ9.part"
    for line in lines[1:]:
        assert "eyJhbGciOi" not in line and "JIUzI1NiJ9" not in line, line
    assert "***" in lines[1]


def test_a_secret_keeps_its_control_characters_for_the_mask() -> None:
    assert _lines(lambda log: log.set_secret("ab\x1bcd")) == ["##vso[task.setsecret]ab\x1bcd"]
