"""What the command line says on stderr: warnings always, and with `-v` how a run went.

Only the CLI configures logging (the task prints its own lines): one handler on the package's
logger, for the length of one command, so tests can call `main` many times in one process. The
diagnostics say where the engine was found, the window, each engine call and registry question
with its time, what was read and inspected, and the total; they never carry a credential (the
modules that log them never put one in a message).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from container_mapping.capture import RegistryFactory
    from container_mapping.model import MappingReport
    from container_mapping.reference import ImageReference
    from container_mapping.registry import DigestSource

PACKAGE_LOGGER = "container_mapping"
logger = logging.getLogger("container_mapping.cli")


class _Formatter(logging.Formatter):
    """`container-mapping: warning: ...`, like the CLI's own error lines."""

    def format(self, record: logging.LogRecord) -> str:
        return f"container-mapping: {record.levelname.lower()}: {record.getMessage()}"


class _Once(logging.Filter):
    """Each message once: two modules reading the same broken file say so once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self._seen:
            return False
        self._seen.add(message)
        return True


@contextlib.contextmanager
def stderr_logging(verbose: bool) -> Iterator[None]:
    """Warnings always, diagnostics with -v, on stderr, for this package's loggers only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    handler.addFilter(_Once())
    package = logging.getLogger(PACKAGE_LOGGER)
    level = package.level
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.WARNING)
    try:
        yield
    finally:
        package.removeHandler(handler)
        package.setLevel(level)


def ms_since(started: float) -> float:
    return (time.monotonic() - started) * 1000


def timed(factory: RegistryFactory) -> RegistryFactory:
    """With -v, the registry client logs each question and how long its answer took."""
    if not logger.isEnabledFor(logging.DEBUG):
        return factory
    return lambda: _TimedRegistry(factory())


class _TimedRegistry:
    def __init__(self, client: DigestSource) -> None:
        self._client = client

    def resolve_digest(self, ref: ImageReference, deadline: float | None = None) -> str:
        started = time.monotonic()
        try:
            digest = self._client.resolve_digest(ref, deadline)
        except Exception as err:
            logger.debug("registry %s: %s after %.1f ms", ref, err, ms_since(started))
            raise
        logger.debug("registry %s: %s in %.1f ms", ref, digest, ms_since(started))
        return digest


def log_outcome(report: MappingReport, started: float) -> None:
    """The report's warnings, and with -v the registry's verdicts and the run's total."""
    for warning in report.warnings:
        logger.warning("%s", warning)
    if not logger.isEnabledFor(logging.DEBUG):
        return
    for record in report.images:
        if record.verification.value != "not-checked":
            logger.debug("registry check %s: %s", record.reference, record.verification.value)
    logger.debug(
        "captured in %.1f ms: %d pushed, %d built only, %d skipped (another run's)",
        ms_since(started), len(report.pushed), len(report.images) - len(report.pushed),
        len(report.skipped),
    )  # fmt: skip
