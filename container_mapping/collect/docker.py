"""The Docker engine collector: what a job pushed, read from the engine's own event log.

Why events and not `docker images`: the engine's image list grows with the host, and on a
shared agent it holds other jobs' images. The events inside the job's window name exactly what
was tagged and pushed, so the cost follows the job, not the host: one `/events` call and one
inspect per distinct image.

How a push becomes an exact digest: a `push` event names the reference pushed, not the image.
The latest `tag` event for that reference before the push names the image (a tag re-pushed
with new content yields both images); without one, the reference still resolves to the image it
named before the window. After a push the engine stores the manifest digest the registry
answered in the image's `RepoDigests`, one per repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from container_mapping.collect.interface import Collection, Pusher
from container_mapping.debug import debug
from container_mapping.engine import Engine
from container_mapping.errors import EngineError, EngineUnavailable, Error
from container_mapping.model import CollectionWindow, ImageRecord, parse_time
from container_mapping.reference import ImageReference

_ACTIONS = frozenset({"push", "tag"})
#: How many events moby keeps for `since` queries (measured: 256, of every type together).
ENGINE_EVENT_BUFFER = 256
MAX_RECORDED = 100_000  # events taken from the recorder's file (itself at most 4 MB)
_BUFFER_START = 1.0  # "since the beginning": 0 would mean no `since` and a live stream


@dataclass(frozen=True)
class _Event:
    action: str  # "push" or "tag"
    reference: ImageReference  # without digest
    raw_name: str  # the reference as the engine wrote it
    image_id: str | None  # known for tag events
    at: float  # Unix seconds


class EngineAbsent(EngineUnavailable):
    """No engine is configured and none answers at the default socket: a job without Docker."""


class DockerCollector:
    """Finds pushed and built images through the Docker Engine API."""

    name = "docker"

    def __init__(self, engine: Engine, recording: str | None = None) -> None:
        self.engine = engine
        self.recording = recording  # the recorder's file, when pre-job started one

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str], recording: str | None = None
    ) -> DockerCollector:
        return cls(Engine.from_environment(environ), recording)

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        self.engine.set_deadline(deadline)
        try:
            version = str(self.engine.version().get("Version") or "") or None
        except EngineUnavailable as err:
            absent = isinstance(err.__cause__, (FileNotFoundError, ConnectionRefusedError))
            if absent and self.engine.address.origin == "default":
                raise EngineAbsent(str(err)) from err.__cause__
            raise
        warnings = [self.engine.address.note] if self.engine.address.note else []
        events, pushers = self._events(window, warnings)
        if on_push is not None and any(e.action == "push" for e in events):
            on_push()
        images = _ImageCache(self.engine)
        records = _pushed(events, images, warnings) + _built_only(events, images)
        debug(__name__, "inspected %d images for %d records", len(images.seen), len(records))
        return Collection(tuple(records), version, tuple(warnings), pushers)

    def _events(
        self, window: CollectionWindow, warnings: list[str]
    ) -> tuple[list[_Event], tuple[Pusher, ...] | None]:
        """Image push and tag events in the window, oldest first.

        The engine keeps only its most recent events (256 in moby, of every type), so the
        whole buffer is read, unfiltered, and filtered here: that tells whether the buffer
        still reaches back to the window's start, at no extra call.
        """
        since, until = window.since.timestamp(), window.until.timestamp()
        parsed: list[_Event] = []
        buffered, oldest = 0, until
        invalid, first_invalid = 0, ""  # counted, not kept: a lying engine sends many
        try:
            for raw in self.engine.events(_BUFFER_START, until, {}):
                buffered, oldest = buffered + 1, min(oldest, _event_time(raw) or oldest)
                if raw.get("Type") != "image" or raw.get("Action") not in _ACTIONS:
                    continue
                event = _parse_event(raw)
                if event is None:
                    invalid, first_invalid = invalid + 1, first_invalid or _brief(raw)
                elif since <= event.at <= until:
                    parsed.append(event)
        except EngineError as err:
            if err.status_code is not None:
                raise
            warnings.append(f"{err}; kept the {len(parsed)} events read before it")
        complete, pushers = self._recorded(window, parsed, warnings)
        if invalid == 1:
            warnings.append(f"skipped an image event that is not valid: {first_invalid}")
        elif invalid:
            warnings.append(
                f"skipped {invalid} image events that are not valid ({first_invalid}, …)"
            )
        if not complete and buffered >= ENGINE_EVENT_BUFFER and oldest > since:
            warnings.append(
                f"the engine keeps only its last {ENGINE_EVENT_BUFFER} events and they start "
                f"{oldest - since:.0f}s after this job did: pushes before then may be missing"
            )
        parsed[:] = list(dict.fromkeys(parsed))  # the recorder and the buffer saw the same events
        parsed.sort(key=lambda e: e.at)
        debug(
            __name__,
            "%d events in the engine's buffer, %d push/tag in the window",
            buffered,
            len(parsed),
        )
        return parsed, pushers

    def _recorded(
        self, window: CollectionWindow, parsed: list[_Event], warnings: list[str]
    ) -> tuple[bool, tuple[Pusher, ...] | None]:
        """Add the recorder's events; whether they hold every event since the window's start.

        A recorder that is missing, stopped early or whose file is damaged is said once, and
        the engine's buffer alone stands (with its own warning when it was cut).
        """
        if self.recording is None:
            return False, None
        from container_mapping.recorder import read

        since, until = window.since.timestamp(), window.until.timestamp()
        recording = read(self.recording, since)
        for raw in recording.events[:MAX_RECORDED]:
            event = _parse_event(raw)
            if event is not None and since <= event.at <= until:
                parsed.append(event)
        if recording.problem:
            warnings.append(
                f"{recording.problem}: used the engine's own event buffer (its last "
                f"{ENGINE_EVENT_BUFFER} events) for what it missed"
            )
        pushers = tuple(p for raw in recording.pushers[:MAX_RECORDED] if (p := _pusher(raw)))
        return recording.complete, pushers


def _pusher(raw: Mapping[str, Any]) -> Pusher | None:
    """A recorded push client; its arguments that are references (flags' values are not)."""
    refs = set()
    for text in raw.get("refs") or ():
        try:
            ref = ImageReference.parse(str(text))
        except Error:
            continue
        if ref.tag is None and ref.digest is None:
            ref = ImageReference(ref.registry, ref.repository, "latest")
        refs.add(ref.with_digest(None))
    if not refs:
        return None
    return Pusher(frozenset(refs), str(raw.get("job") or ""), str(raw.get("run") or ""))


class _ImageCache:
    """One inspect per image, whatever the number of events naming it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.seen: dict[str, dict[str, Any] | None] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        if name not in self.seen:
            self.seen[name] = self._engine.inspect_image(name)
        return self.seen[name]


def _parse_event(raw: Mapping[str, Any]) -> _Event | None:
    action = raw.get("Action") or raw.get("status")
    actor = _mapping(raw.get("Actor"))
    attributes = _mapping(actor.get("Attributes"))
    at = _event_time(raw)
    try:
        if action == "push":
            name = str(actor.get("ID") or raw.get("id") or "")
            return _Event("push", _plain(name), name, None, at) if at else None
        if action == "tag":
            name, image_id = str(attributes.get("name") or ""), str(actor.get("ID") or "")
            if not image_id.startswith("sha256:"):
                return None
            return _Event("tag", _plain(name), name, image_id, at) if at else None
    except Error:
        return None
    return None


def _event_time(raw: Mapping[str, Any]) -> float:
    nano = raw.get("timeNano")
    if isinstance(nano, int) and nano > 0:
        return nano / 1e9
    seconds = raw.get("time")
    return float(seconds) if isinstance(seconds, (int, float)) else 0.0


def _plain(name: str) -> ImageReference:
    ref = ImageReference.parse(name)
    return ref.with_digest(None) if ref.digest else ref


def _pushed(events: list[_Event], images: _ImageCache, warnings: list[str]) -> list[ImageRecord]:
    records: dict[tuple[ImageReference, str | None, str | None], ImageRecord] = {}
    for event, image_id in _push_pairs(events):
        if image_id is None and _retagged_later(events, event):
            warnings.append(
                f"{event.raw_name} was pushed, then re-tagged before collection with no earlier "
                "tag in the window: its image is unknown, the registry is asked for the digest"
            )
            record = ImageRecord(event.reference, None, True, pushed_at=_utc(event.at))
        else:
            record = _record(event, image_id or event.raw_name, images, pushed=True)
        records.setdefault((record.reference, record.digest, record.image_id), record)
    return list(records.values())


def _built_only(events: list[_Event], images: _ImageCache) -> list[ImageRecord]:
    pushed = {(e.reference, i) for e, i in _push_pairs(events)}
    records: dict[tuple[ImageReference, str], ImageRecord] = {}
    for event in events:
        if event.action != "tag" or event.image_id is None:
            continue
        key = (event.reference, event.image_id)
        if key in pushed or key in records:
            continue
        if images.get(event.image_id) is not None:
            records[key] = _record(event, event.image_id, images, pushed=False)
    return list(records.values())


def _push_pairs(events: Iterable[_Event]) -> Iterable[tuple[_Event, str | None]]:
    current: dict[ImageReference, str] = {}
    for event in events:
        if event.action == "tag" and event.image_id:
            current[event.reference] = event.image_id
        elif event.action == "push":
            yield event, current.get(event.reference)


def _retagged_later(events: list[_Event], push: _Event) -> bool:
    return any(
        e.action == "tag" and e.reference == push.reference and e.at > push.at for e in events
    )


def _record(event: _Event, lookup: str, images: _ImageCache, *, pushed: bool) -> ImageRecord:
    attrs = images.get(lookup)
    ref = event.reference
    if attrs is None:
        note = "the image was removed from the engine before collection"
        image_id = lookup if lookup.startswith("sha256:") else None
        return ImageRecord(
            ref, image_id, pushed, pushed_at=_utc(event.at) if pushed else None, note=note
        )
    digests = _repo_digests(attrs, ref) if pushed else []
    several = f"the engine holds {len(digests)} digests for {ref.name}; the registry decides"
    labels = _mapping(_mapping(attrs.get("Config")).get("Labels"))
    return ImageRecord(
        reference=ref.with_digest(digests[0] if len(digests) == 1 else None),
        image_id=str(attrs.get("Id")),
        pushed=pushed,
        pushed_at=_utc(event.at) if pushed else None,
        created=_created(attrs),
        platform=_platform(attrs),
        labels={str(k): str(v) for k, v in labels.items()},
        note=several if len(digests) > 1 else None,
    )


def _mapping(value: Any) -> Mapping[str, Any]:
    """The engine's JSON as a mapping, whatever it sent (null and odd types become empty)."""
    return value if isinstance(value, dict) else {}


def _repo_digests(attrs: Mapping[str, Any], ref: ImageReference) -> list[str]:
    found = []
    for entry in attrs.get("RepoDigests") or ():
        try:
            parsed = ImageReference.parse(str(entry))
        except Error:
            continue
        if parsed.name == ref.name and parsed.digest and parsed.digest not in found:
            found.append(parsed.digest)
    return found


def _created(attrs: Mapping[str, Any]) -> datetime | None:
    try:
        return parse_time(str(attrs.get("Created") or ""))
    except Error:
        return None


def _platform(attrs: Mapping[str, Any]) -> str | None:
    parts = [str(attrs[k]) for k in ("Os", "Architecture", "Variant") if attrs.get(k)]
    return "/".join(parts) or None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def _brief(raw: Mapping[str, Any]) -> str:
    return str({k: raw.get(k) for k in ("Type", "Action", "id") if k in raw})[:200]
