"""Check pushed records against the digest the registry holds for their tag (`--verify`).

The engine's `RepoDigests` says what *this* engine pushed; the mapping service links by what
the registry holds. A tag pushed again by another job, a push that never finished, or a
registry that rewrote the manifest show only when the registry itself is asked. A registry
that cannot be asked marks the record unavailable; it never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Protocol

from container_mapping.errors import RegistryError
from container_mapping.http import TransportError
from container_mapping.model import ImageRecord, Verification
from container_mapping.reference import ImageReference

log = logging.getLogger(__name__)


class DigestSource(Protocol):
    def resolve_digest(self, ref: ImageReference, deadline: float | None = None) -> str: ...


def verify_records(
    records: Iterable[ImageRecord], client: DigestSource, deadline: float | None = None
) -> tuple[ImageRecord, ...]:
    """Each pushed, tagged record with the registry's verdict; never raises for a registry.

    One registry call per distinct `registry/repository:tag`: a job that pushes one tag from
    several collectors' points of view asks once.
    """
    answers: dict[ImageReference, str | Exception] = {}
    return tuple(_verify_one(record, client, deadline, answers) for record in records)


def _verify_one(
    record: ImageRecord,
    client: DigestSource,
    deadline: float | None,
    answers: dict[ImageReference, str | Exception],
) -> ImageRecord:
    if not record.pushed or record.reference.tag is None:
        return record
    key = record.reference.with_digest(None)
    if key not in answers:
        answers[key] = _ask(client, key, deadline)
    answer = answers[key]
    if isinstance(answer, Exception):
        return replace(
            record, verification=Verification.UNAVAILABLE, note=_add_note(record.note, str(answer))
        )
    return _compare(record, answer)


def _ask(client: DigestSource, ref: ImageReference, deadline: float | None) -> str | Exception:
    try:
        return client.resolve_digest(ref, deadline)
    except (RegistryError, TransportError) as err:
        log.warning("could not verify %s: %s", ref, err)
        return err


def _compare(record: ImageRecord, registry_digest: str) -> ImageRecord:
    if record.digest is None:
        return replace(
            record,
            reference=record.reference.with_digest(registry_digest),
            verification=Verification.VERIFIED,
            registry_digest=registry_digest,
            note=_add_note(record.note, "digest read from the registry; the engine had none"),
        )
    if record.digest == registry_digest:
        return replace(record, verification=Verification.VERIFIED, registry_digest=registry_digest)
    note = (
        f"the registry holds {registry_digest} for tag {record.reference.tag}, not the "
        "pushed digest: the tag was probably pushed again since"
    )
    return replace(
        record,
        verification=Verification.MISMATCH,
        registry_digest=registry_digest,
        note=_add_note(record.note, note),
    )


def _add_note(old: str | None, new: str) -> str:
    return f"{old}; {new}" if old else new
