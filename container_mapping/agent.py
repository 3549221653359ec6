"""Talking to the Azure Pipelines agent: logging commands on standard output.

The agent reads `##vso[area.action k=v;k=v]message` lines from a task's output. Property
values escape `%` first (to `%AZP25`), then CR, LF, `]` and `;`; messages escape `%`, CR and
LF. Escaping `%` first is what makes the encoding reversible: `unescape_*` undoes it exactly,
which the tests check for every string (and which the e2e tests use to read pre-job's output).

Only commands allowed in the agent's restricted mode are used (`task.logissue`,
`task.setvariable`, `task.setsecret`, `task.complete`, `task.debug`), so the step also works
where a pipeline restricts its commands.

Plain text lines never carry `##vso[` or `##[`: the agent would take a name or an engine
message that happens to contain one for a command of its own. Nor does any line carry a control
character (ESC, C1 controls such as NEL U+0085) or a Unicode line or paragraph separator: a
reader that splits lines on them would see a new line start mid-message, where a logging command
could be smuggled in. They are dropped from every message and value (a secret being masked
excepted: the mask must match the secret exactly).

Every secret given to `set_secret` is also scrubbed from every later line this log writes,
whole and piece by piece across its line breaks: the agent's mask cannot match a secret that a
message split or a traceback printed as `repr`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TextIO

_PROPERTY_ESCAPES = (("%", "%AZP25"), ("\r", "%0D"), ("\n", "%0A"), ("]", "%5D"), (";", "%3B"))
_MESSAGE_ESCAPES = _PROPERTY_ESCAPES[:3]
#: C0 controls but TAB, CR and LF (escaped or split instead), DEL, C1 controls, LS and PS.
_CONTROLS = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
)
MIN_SECRET_PIECE = 4  # shorter pieces of a split secret would scrub ordinary words


def strip_controls(text: str) -> str:
    """`text` without the characters that could start a line for some reader (see above)."""
    return text.translate(_CONTROLS)


def escape_property(value: str) -> str:
    value = strip_controls(value)
    for raw, escaped in _PROPERTY_ESCAPES:
        value = value.replace(raw, escaped)
    return value


def escape_message(value: str, *, raw: bool = False) -> str:
    """Escape a message; `raw` keeps control characters (for `task.setsecret` only)."""
    value = value if raw else strip_controls(value)
    for raw_text, escaped in _MESSAGE_ESCAPES:
        value = value.replace(raw_text, escaped)
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


def command(
    name: str, properties: Mapping[str, str] | None = None, message: str = "", *, raw: bool = False
) -> str:
    """One logging command line, e.g. `command("task.logissue", {"type": "warning"}, text)`."""
    props = ";".join(f"{k}={escape_property(v)}" for k, v in (properties or {}).items())
    head = f"##vso[{name} {props}]" if props else f"##vso[{name}]"
    return head + escape_message(message, raw=raw)


def plain(text: str) -> str:
    """A line of ordinary output: one line, and never read as a command by the agent."""
    text = strip_controls(text.replace("\r", " ").replace("\n", " "))
    return text.replace("##vso[", "# #vso[").replace("##[", "# #[")


class AgentLog:
    """Writes to the agent, one flushed line at a time (a kill must not lose a mask)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._secrets: list[str] = []  # whole secrets and their pieces, longest first

    def _write(self, line: str) -> None:
        for secret in self._secrets:
            line = line.replace(secret, "***")
        self._stream.write(line + "\n")
        self._stream.flush()

    def set_secret(self, value: str) -> None:
        """Ask the agent to mask `value` in every later line, and scrub it from ours."""
        if not value.strip():
            return
        self._write(command("task.setsecret", message=value, raw=True))
        pieces = [value, *value.splitlines(), *(repr(value)[1:-1], strip_controls(value))]
        for piece in pieces:
            if len(piece.strip()) >= MIN_SECRET_PIECE and piece not in self._secrets:
                self._secrets.append(piece)
        self._secrets.sort(key=len, reverse=True)

    def set_variable(self, name: str, value: str, *, readonly: bool = False) -> None:
        """Set a job variable; `readonly` so that no later step can change it."""
        props = {"variable": name}
        if readonly:
            props["isreadonly"] = "true"
        self._write(command("task.setvariable", props, value))

    def warning(self, message: str) -> None:
        self._write(command("task.logissue", {"type": "warning"}, message))

    def error(self, message: str) -> None:
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
