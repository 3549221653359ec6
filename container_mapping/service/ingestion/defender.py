"""Defender for Cloud's wire format, read back into image records.

The body is what Microsoft's task sends (and ours on `protocol: defender`): `dockerEvents`
lines `ID=<reference pushed>` and `dockerImages` lines
`CreatedAt=<go time>::Repo=<familiar name>::Tag=<tag|<none>>::Digest=<sha256:…|<none>>`.
Microsoft's task lists every image of the host, so only images a push event names, with a
digest, are records of this job; the rest are the host's and are not stored.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from container_mapping.errors import Error
from container_mapping.model import ImageRecord
from container_mapping.reference import ImageReference
from container_mapping.service.errors import invalid

NONE = "<none>"
_GO_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}) (?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)? (?P<offset>[+-]\d{4})"
    r"(?: \S+)?"
)
_FIELDS = ("CreatedAt", "Repo", "Tag", "Digest")


def pushed_records(events: list[str], images: list[str]) -> tuple[ImageRecord, ...]:
    """The records of images a push event names; a malformed line is a 422 naming it."""
    pushed = {_event_key(line, f"dockerEvents[{i}]") for i, line in enumerate(events)}
    pushed.discard(None)
    records: dict[tuple[str, str | None, str | None], ImageRecord] = {}
    for i, line in enumerate(images):
        record = _image(line, f"dockerImages[{i}]")
        if record is None:
            continue
        ref = record.reference
        by_tag = (ref.name, ref.tag) in pushed
        by_digest = (ref.name, ref.digest) in pushed
        if by_tag or by_digest:
            records.setdefault((ref.name, ref.tag, ref.digest), record)
    return tuple(records.values())


def _event_key(line: str, field: str) -> tuple[str, str | None] | None:
    if not line.startswith("ID="):
        raise invalid("an event line must read ID=<reference>", field)
    try:
        ref = ImageReference.parse(line[3:].strip())
    except Error:
        return None  # an image id or something else that is not a pushed reference
    return (ref.name, ref.digest or ref.tag)


def _image(line: str, field: str) -> ImageRecord | None:
    """The line's record, or None for an image without a digest (never pushed)."""
    parts = dict(part.partition("=")[::2] for part in line.split("::"))
    if set(parts) != set(_FIELDS):
        raise invalid("an image line must read CreatedAt=…::Repo=…::Tag=…::Digest=…", field)
    tag = None if parts["Tag"] == NONE else parts["Tag"]
    digest = None if parts["Digest"] == NONE else parts["Digest"]
    if digest is None:
        return None
    try:
        name = ImageReference.parse(parts["Repo"])
        ref = ImageReference(name.registry, name.repository, tag, digest)
        return ImageRecord(
            reference=ref,
            image_id=None,
            pushed=True,
            source="defender",
            created=go_time(parts["CreatedAt"]),
        )
    except Error as err:
        raise invalid(str(err), field) from err


def go_time(text: str) -> datetime | None:
    """Go's default time format (`2026-11-27 09:20:59 +0000 UTC`); None if it is not one."""
    match = _GO_TIME.fullmatch(text.strip())
    if match is None:
        return None
    value = datetime.strptime(
        f"{match['date']} {match['time']} {match['offset']}", "%Y-%m-%d %H:%M:%S %z"
    )
    return value.astimezone(timezone.utc)
