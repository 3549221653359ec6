"""Records checked against the registry: verified, mismatched, unavailable, or left alone."""

from __future__ import annotations

from container_mapping.model import ImageRecord, Verification
from container_mapping.reference import ImageReference
from container_mapping.registry.verify import verify_records
from tests.unit.registry.fake import FakeRegistry, make_client, ref_for

IMAGE_ID = "sha256:" + "1" * 64
OTHER_DIGEST = "sha256:" + "2" * 64


def record(ref: ImageReference, digest: str | None, pushed: bool = True) -> ImageRecord:
    return ImageRecord(reference=ref.with_digest(digest), image_id=IMAGE_ID, pushed=pushed)


def test_verify_records_sets_each_status(fake: FakeRegistry, environ: dict[str, str]) -> None:
    good = fake.add("team/app", "v1", b'{"a":1}')
    fresh = fake.add("team/app", "v2", b'{"a":2}')
    verified = record(ref_for(fake, tag="v1"), good)
    moved = record(ref_for(fake, tag="v1"), OTHER_DIGEST)
    missing = record(ref_for(fake, tag="gone"), OTHER_DIGEST)
    undigested = record(ref_for(fake, tag="v2"), None)

    out = verify_records([verified, moved, missing, undigested], make_client(environ))

    assert out[0].verification is Verification.VERIFIED and out[0].registry_digest == good
    assert out[1].verification is Verification.MISMATCH
    assert out[1].registry_digest == good and out[1].digest == OTHER_DIGEST
    assert out[1].note and good in out[1].note
    assert out[2].verification is Verification.UNAVAILABLE
    assert out[2].note and "HTTP 404" in out[2].note and out[2].digest == OTHER_DIGEST
    assert out[3].verification is Verification.VERIFIED
    assert out[3].digest == fresh and out[3].registry_digest == fresh
    assert out[3].note and "from the registry" in out[3].note


def test_verify_records_asks_once_per_reference(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    digest = fake.add("team/app", "v1", b"{}")
    records = [
        record(ref_for(fake), digest),
        record(ref_for(fake), None),
        record(ref_for(fake), digest),
    ]
    out = verify_records(records, make_client(environ))
    assert [r.verification for r in out] == [Verification.VERIFIED] * 3
    assert len(fake.seen) == 1


def test_verify_records_leaves_unpushed_and_untagged_records(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    local = record(ref_for(fake), None, pushed=False)
    by_digest = ImageRecord(
        ImageReference(fake.addr, "team/app", None, OTHER_DIGEST), IMAGE_ID, pushed=True
    )
    assert verify_records([local, by_digest], make_client(environ)) == (local, by_digest)
    assert fake.seen == []


def test_verify_records_keeps_an_earlier_note_and_never_raises(environ: dict[str, str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ref = ImageReference(f"127.0.0.1:{port}", "team/app", "v1")
    original = ImageRecord(ref.with_digest(OTHER_DIGEST), IMAGE_ID, pushed=True, note="earlier")
    (out,) = verify_records([original], make_client(environ))
    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None and out.note.startswith("earlier; could not reach registry")


def test_verify_records_after_the_deadline_marks_unavailable(
    fake: FakeRegistry, environ: dict[str, str]
) -> None:
    digest = fake.add("team/app", "v1", b"{}")
    (out,) = verify_records([record(ref_for(fake), digest)], make_client(environ), deadline=0.0)
    assert out.verification is Verification.UNAVAILABLE
    assert out.note is not None and "time budget" in out.note
    assert fake.seen == []
