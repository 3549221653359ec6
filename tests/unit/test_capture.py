"""capture(): attribution splits the records, and only our own are taken to the registry."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler

from container_mapping.capture import capture, registry_factory
from container_mapping.collect.interface import Collection
from container_mapping.context import from_environment
from container_mapping.model import CollectionWindow, ImageRecord, Verification
from container_mapping.reference import ImageReference
from tests.servers import serve

DIGEST = "sha256:" + "d" * 64
NOW = datetime.now(timezone.utc)
WINDOW = CollectionWindow(NOW - timedelta(minutes=5), NOW)
PIPELINE = {"SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/", "BUILD_BUILDID": "7"}


class _Registry(BaseHTTPRequestHandler):
    asked: list[str] = []

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_HEAD(self) -> None:  # noqa: N802
        type(self).asked.append(self.path)
        self.send_response(200)
        self.send_header("Docker-Content-Digest", DIGEST)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Fixed:
    """A collector at our own seam: it returns the records it was given."""

    name = "fixed"

    def __init__(self, *records: ImageRecord) -> None:
        self.records = records

    def collect(
        self,
        window: CollectionWindow,
        deadline: float | None = None,
        on_push: Callable[[], None] | None = None,
    ) -> Collection:
        if on_push is not None and any(r.pushed for r in self.records):
            on_push()
        return Collection(self.records, engine_version="test", warnings=("noticed",))


def _record(registry: str, tag: str, run: str) -> ImageRecord:
    labels = {"com.azure.dev.image.build.builduri": f"vstfs:///Build/Build/{run}"}
    reference = ImageReference(registry, "team/app", tag)
    return ImageRecord(reference, None, pushed=True, labels=labels)


def test_only_our_records_without_a_digest_go_to_the_registry() -> None:
    handler = type("Handler", (_Registry,), {"asked": []})
    with serve(handler) as server:
        registry = f"127.0.0.1:{server.server_address[1]}"
        collector = _Fixed(_record(registry, "ours", "7"), _record(registry, "theirs", "8"))
        pushes: list[bool] = []
        report = capture(
            WINDOW,
            from_environment(PIPELINE),
            collectors=[collector],
            registry=registry_factory(PIPELINE),
            on_push=lambda: pushes.append(True),
        )
    assert pushes == [True]
    assert report.warnings == ("noticed",)
    assert handler.asked == ["/v2/team/app/manifests/ours"]
    (ours,) = report.images
    assert (ours.reference.tag, ours.digest, ours.verification) == (
        "ours",
        DIGEST,
        Verification.VERIFIED,
    )
    assert [r.reference.tag for r in report.skipped] == ["theirs"]
    assert report.skipped[0].digest is None
