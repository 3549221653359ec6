"""Defender's ingestion body: Docker's own `events` and `images` line formats."""

from __future__ import annotations

import re
from datetime import timedelta, timezone

from container_mapping.defender import ingest
from tests.unit.samples import DIGEST, WHEN, record, report


def test_body_lists_only_pushed_images_in_docker_formats() -> None:
    sent = report(
        record(f"127.0.0.1:5000/app:1@{DIGEST}"),
        record(f"nginx:1@{DIGEST}"),
        record("127.0.0.1:5000/built-only:1", pushed=False),
    )
    assert ingest.body(sent) == {
        "dockerVersion": "27.3.1",
        "dockerEvents": ["ID=127.0.0.1:5000/app:1", "ID=nginx:1"],
        "dockerImages": [
            "CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=127.0.0.1:5000/app::Tag=1"
            f"::Digest={DIGEST}",
            f"CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=nginx::Tag=1::Digest={DIGEST}",
        ],
    }


def test_lines_for_a_digest_only_push_and_a_missing_digest() -> None:
    by_digest = record(f"docker.io/team/api@{DIGEST}", created=None)
    assert ingest.event_line(by_digest) == f"ID=team/api@{DIGEST}"
    line = ingest.image_line(by_digest, WHEN)
    assert (
        line
        == f"CreatedAt=2026-11-27 09:20:59 +0000 UTC::Repo=team/api::Tag=<none>::Digest={DIGEST}"
    )
    assert ingest.image_line(record("r.example/a:2"), WHEN).endswith("::Tag=2::Digest=<none>")


def test_go_time_is_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert re.fullmatch(r"2026-11-27 09:20:59 \+0000 UTC", ingest.go_time(local))
