"""The podman collector: what a job pushed with podman, read from podman's own event log.

Why the event log file and not `podman events` or podman's Docker-compatible socket:
- the socket exists only where `podman system service` runs, which build agents rarely do;
- running `podman` is a process start (44 ms measured here) on every job of every agent that
  has podman installed, and it is not read-only: its first run creates podman's storage and
  database with the host's default driver, which then refuses a job that uses another one
  (`--storage-driver vfs`: "database configuration mismatch");
- the file backend's log is JSON lines that podman appends as each event happens
  (`{"ID", "Name", "Status": "push", "Time", "Type": "image"}`), one file per host for every
  storage root: reading its tail costs one `stat` when podman is absent and a few
  milliseconds when it is not.

Where the log is: `events_logfile_path` in containers.conf, else `<tmp_dir>/events/events.log`
(`tmp_dir` is `/run/libpod` for root, `$XDG_RUNTIME_DIR/libpod/tmp` rootless). Only the
system's and this user's containers.conf are read (never a file a job variable names), and
the runtime directory comes from the user id, not the job's environment. With the journald
backend podman's events go to the journal, which this collector does not read yet: it says so
once, when podman is configured so and present.

A push event names the reference and the image; the digest is the registry's (podman pushes
OCI manifests, which the registry client asks for), settled by `capture`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from datetime import timezone
from pathlib import Path
from typing import Any

from container_mapping.collect.conf import podman_events_log
from container_mapping.collect.interface import Collection
from container_mapping.errors import Error
from container_mapping.model import CollectionWindow, ImageRecord, parse_time
from container_mapping.reference import DIGEST_RE, ImageReference

SOURCE = "podman"
#: The most of the log's tail read (its newest events); the default log rotates at 1 MB.
MAX_TAIL = 8 * 1024 * 1024
MAX_LINE = 64 * 1024
MAX_RECORDS = 1000
SLACK_SECONDS = 5.0  # events written out of order by concurrent podman processes
_TRANSPORT = "docker://"  # `podman manifest push … docker://ref` logs the name so


class PodmanCollector:
    """Finds podman's pushes in its event log (the file backend)."""

    name = SOURCE

    def __init__(self, log_path: Path | None, note: str | None = None) -> None:
        self.log_path = log_path
        self.note = note

    @classmethod
    def for_this_user(cls) -> PodmanCollector:
        path, note = podman_events_log(os.getuid())
        return cls(path, note)

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        warnings: tuple[str, ...] = (self.note,) if self.note else ()
        if self.log_path is None:
            return Collection((), warnings=warnings)
        lines, cut = _tail(self.log_path)
        records, oldest = _pushes(lines, window)
        if records and on_push is not None:
            on_push()
        if cut and (oldest is None or oldest > window.since.timestamp()):
            warnings += (f"read only the newest {MAX_TAIL} bytes of podman's event log",)
        return Collection(tuple(records), warnings=warnings)


def _tail(path: Path) -> tuple[list[bytes], bool]:
    """The log's newest lines (at most `MAX_TAIL` bytes), and whether older ones were cut."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(size - MAX_TAIL, 0)
            handle.seek(start)
            data = handle.read(MAX_TAIL)
    except OSError:
        return [], False
    lines = data.split(b"\n")
    if start:
        lines = lines[1:]  # the first is probably a part of a line
    return lines, start > 0


def _pushes(lines: list[bytes], window: CollectionWindow) -> tuple[list[ImageRecord], float | None]:
    """The pushes in `window`, read newest first: the log is in time order, so reading stops
    at the first event older than the window (with `SLACK_SECONDS` for writers that raced),
    and a long log of older jobs costs nothing to skip."""
    since, until = window.since.timestamp(), window.until.timestamp()
    records: dict[ImageReference, ImageRecord] = {}
    oldest = None
    for line in reversed(lines):
        event = _event(line)
        if event is None:
            continue
        at = event[2].timestamp()
        oldest = at if oldest is None else min(oldest, at)
        if at < since - SLACK_SECONDS:
            break
        if not since <= at <= until or event[0] != "push" or len(records) >= MAX_RECORDS:
            continue
        ref, image_id, when = event[1], event[3], event[2]
        if ref not in records:  # the newest push of a reference stands
            records[ref] = ImageRecord(ref, image_id, True, source=SOURCE, pushed_at=when)
    return sorted(records.values(), key=_pushed_at), oldest


def _pushed_at(record: ImageRecord) -> float:
    return record.pushed_at.timestamp() if record.pushed_at else 0.0


def _event(line: bytes) -> Any:
    """(status, reference, time, image id) of an image event, or `None` for anything else."""
    if not line.strip() or len(line) > MAX_LINE:
        return None
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("Type") != "image":
        return None
    status = raw.get("Status")
    try:
        when = parse_time(str(raw.get("Time") or "")).astimezone(timezone.utc)
        if status != "push":
            return status, None, when, None
        name = str(raw.get("Name") or "")
        ref = ImageReference.parse(name[len(_TRANSPORT) :] if name.startswith(_TRANSPORT) else name)
    except Error:
        return None
    if ref.tag is None and ref.digest is None:
        return None
    return status, ref, when, _image_id(raw)


def _image_id(raw: Mapping[str, Any]) -> str | None:
    text = str(raw.get("ID") or "")
    digest = text if text.startswith("sha256:") else f"sha256:{text}"
    return digest if DIGEST_RE.fullmatch(digest) else None
