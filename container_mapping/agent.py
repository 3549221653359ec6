"""Talking to the Azure Pipelines agent: logging commands on standard output.

The agent reads `##vso[area.action k=v;k=v]message` lines from a task's output. Property
values escape `%` first (to `%AZP25`), then CR, LF, `]` and `;`; messages escape `%`, CR and
LF. Escaping `%` first is what makes the encoding reversible: `unescape_*` undoes it exactly,
which the tests check for every string (and which the e2e tests use to read pre-job's output).

Only commands allowed in the agent's restricted mode are used (`task.logissue`,
`task.setvariable`, `task.setsecret`, `task.complete`, `task.debug`), so the step also works
where a pipeline restricts its commands.

Plain text lines never carry `##vso[` or `##[`: the agent would take a name or an engine
message that happens to contain one for a command of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

_PROPERTY_ESCAPES = (("%", "%AZP25"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D"), (";", "%3B"))
_MESSAGE_ESCAPES = _PROPERTY_ESCAPES[:3]


def escape_property(value: str) -> str:
    for raw, escaped in _PROPERTY_ESCAPES:
        value = value.replace(raw, escaped)
    return value


def escape_message(value: str) -> str:
    for raw, escaped in _MESSAGE_ESCAPES:
        value = value.replace(raw, escaped)
    return value


def unescape_property(value: str) -> str:
    """The agent's reading of an escaped property value (`%AZP25` last, so it stays `%`)."""
    for raw, escaped in reversed(_PROPERTY_ESCAPES):
        value = value.replace(escaped, raw)
    return value


def unescape_message(value: str) -> str:
    for raw, escaped in reversed(_MESSAGE_ESCAPES):
        value = value.replace(escaped, raw)
    return value


def command(name: str, properties: Mapping[str, str] | None = None, message: str = "") -> str:
    """One logging command line, e.g. `command("task.setsecret", message=token)`."""
    props = ";".join(f"{k}={escape_property(v)}" for k, v in (properties or {}).items())
    head = f"##vso[{name} {props}]" if props else f"##vso[{name}]"
    return head + escape_message(message)


def plain(text: str) -> str:
    """A line of ordinary output: one line, and never read as a command by the agent."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text.replace("##vso[", "# #vso[").replace("##[", "# #[")


class AgentLog:
    """Writes to the agent, one flushed line at a time (a kill must not lose a mask)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self.warnings = 0
        self.errors = 0

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def set_secret(self, value: str) -> None:
        """Ask the agent to mask `value` in every later line of the job's log."""
        if value.strip():
            self._write(command("task.setsecret", message=value))

    def set_variable(self, name: str, value: str, *, secret: bool = False) -> None:
        props = {"variable": name}
        if secret:
            props["issecret"] = "true"
        self._write(command("task.setvariable", props, value))

    def warning(self, message: str) -> None:
        self.warnings += 1
        self._write(command("task.logissue", {"type": "warning"}, message))

    def error(self, message: str) -> None:
        self.errors += 1
        self._write(command("task.logissue", {"type": "error"}, message))

    def fail(self, message: str) -> None:
        """Mark the task failed (the caller has already logged the error itself)."""
        self._write(command("task.complete", {"result": "Failed"}, message))

    def debug(self, message: str) -> None:
        """Shown only when the pipeline runs with `System.Debug: true`."""
        for line in message.splitlines() or [""]:
            self._write(command("task.debug", message=line))

    def info(self, text: str) -> None:
        self._write(plain(text))
