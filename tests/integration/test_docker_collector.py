"""The Docker collector against the real engine and registry started by scripts/services.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from container_mapping.capture import capture, docker_collectors, registry_factory
from container_mapping.context import from_environment
from container_mapping.http import HttpClient
from container_mapping.model import Attribution, CollectionWindow, MappingReport

from .images import build, push

pytestmark = pytest.mark.docker
ROOT = Path(__file__).parents[2]
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _capture(docker_host: str, since: datetime, **env: str) -> MappingReport:
    time.sleep(0.05)  # the engine stamps events with its own clock: let `until` pass the last one
    window = CollectionWindow(since, _now())
    environ = {"DOCKER_HOST": docker_host, **env}
    return capture(
        window,
        from_environment(environ),
        collectors=docker_collectors(environ),
        registry=registry_factory(environ),
        deadline=time.monotonic() + 30,
    )


def _registry_digest(reference: str) -> str:
    registry, _, rest = reference.partition("/")
    name, tag = rest.rsplit(":", 1)
    answer = HttpClient().request(
        "HEAD", f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
    )
    assert answer.status == 200
    return answer.headers["docker-content-digest"]


def _by_tag(report: MappingReport, repo: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for record in report.images:
        if record.reference.name == repo:
            found.setdefault(record.reference.tag, []).append(record)
    return found


def test_digest_is_the_registrys(docker_client: Any, docker_host: str, unique_repo: str) -> None:
    since = _now()
    image_id = build(docker_client, f"{unique_repo}:1")
    pushed = push(docker_client, f"{unique_repo}:1")
    report = _capture(docker_host, since)
    (record,) = _by_tag(report, unique_repo)["1"]
    assert record.pushed
    assert record.digest == pushed == _registry_digest(f"{unique_repo}:1")
    assert record.image_id == image_id
    assert record.platform and record.platform.startswith("linux/")
    assert record.pushed_at is not None and since <= record.pushed_at <= _now()
    assert report.engine_version


def test_two_tags_of_one_image(docker_client: Any, docker_host: str, unique_repo: str) -> None:
    since = _now()
    image_id = build(docker_client, f"{unique_repo}:a")
    docker_client.images.get(image_id).tag(unique_repo, "b")
    digest_a, digest_b = (
        push(docker_client, f"{unique_repo}:a"),
        push(docker_client, f"{unique_repo}:b"),
    )
    tags = _by_tag(_capture(docker_host, since), unique_repo)
    assert set(tags) == {"a", "b"}
    assert tags["a"][0].digest == tags["b"][0].digest == digest_a == digest_b
    assert tags["a"][0].image_id == tags["b"][0].image_id == image_id


def test_a_tag_pushed_twice_with_new_content_yields_both(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    since = _now()
    first_id = build(docker_client, f"{unique_repo}:latest", content="one")
    first = push(docker_client, f"{unique_repo}:latest")
    second_id = build(docker_client, f"{unique_repo}:latest", content="two")
    second = push(docker_client, f"{unique_repo}:latest")
    assert first != second
    records = _by_tag(_capture(docker_host, since), unique_repo)["latest"]
    assert {(r.image_id, r.digest) for r in records} == {(first_id, first), (second_id, second)}


def test_the_same_push_twice_is_one_record(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    since = _now()
    build(docker_client, f"{unique_repo}:1")
    push(docker_client, f"{unique_repo}:1")
    push(docker_client, f"{unique_repo}:1")
    assert len(_by_tag(_capture(docker_host, since), unique_repo)["1"]) == 1


def test_pushes_before_the_window_are_excluded(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    build(docker_client, f"{unique_repo}:old")
    push(docker_client, f"{unique_repo}:old")
    time.sleep(0.05)
    since = _now()
    build(docker_client, f"{unique_repo}:new")
    push(docker_client, f"{unique_repo}:new")
    tags = _by_tag(_capture(docker_host, since), unique_repo)
    assert set(tags) == {"new"}


def test_a_push_in_the_window_of_an_image_built_before_it(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    image_id = build(docker_client, f"{unique_repo}:early")
    time.sleep(0.05)
    since = _now()
    digest = push(docker_client, f"{unique_repo}:early")
    (record,) = _by_tag(_capture(docker_host, since), unique_repo)["early"]
    assert (record.image_id, record.digest, record.pushed) == (image_id, digest, True)


def test_built_but_not_pushed_is_marked(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    since = _now()
    image_id = build(docker_client, f"{unique_repo}:local")
    (record,) = _by_tag(_capture(docker_host, since), unique_repo)["local"]
    assert record.pushed is False
    assert record.digest is None
    assert record.image_id == image_id


def test_labels_of_another_run_are_not_attributed(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    pipeline = {"SYSTEM_COLLECTIONURI": "https://dev.azure.com/contoso/", "BUILD_BUILDID": "100"}
    since = _now()
    build(
        docker_client,
        f"{unique_repo}:ours",
        labels={"com.azure.dev.image.build.builduri": "vstfs:///Build/Build/100"},
    )
    build(
        docker_client,
        f"{unique_repo}:theirs",
        labels={"com.azure.dev.image.build.builduri": "vstfs:///Build/Build/101"},
    )
    build(docker_client, f"{unique_repo}:plain")
    for tag in ("ours", "theirs", "plain"):
        push(docker_client, f"{unique_repo}:{tag}")
    report = _capture(docker_host, since, **pipeline)
    tags = _by_tag(report, unique_repo)
    assert set(tags) == {"ours", "plain"}
    assert tags["ours"][0].attribution is Attribution.MATCH
    assert tags["plain"][0].attribution is Attribution.UNKNOWN
    assert [r.reference.tag for r in report.skipped if r.reference.name == unique_repo] == [
        "theirs"
    ]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "container_mapping", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_json_report_is_schema_valid(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    since = _now() - timedelta(seconds=1)
    build(docker_client, f"{unique_repo}:cli")
    digest = push(docker_client, f"{unique_repo}:cli")
    time.sleep(0.05)
    result = _cli(
        "collect",
        "--since",
        since.isoformat(),
        "--verify",
        "--json",
        env={"DOCKER_HOST": docker_host},
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    schema = json.loads((ROOT / "docs" / "mapping-report.schema.json").read_text())
    jsonschema.validate(document, schema)
    mine = [i for i in document["images"] if i["repository"] in unique_repo and i["tag"] == "cli"]
    assert [(i["digest"], i["pushed"], i["verification"]["status"]) for i in mine] == [
        (digest, True, "verified")
    ]


def test_cli_table_names_the_pushed_image(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    build(docker_client, f"{unique_repo}:tbl")
    digest = push(docker_client, f"{unique_repo}:tbl")
    time.sleep(0.05)
    result = _cli("collect", "--since", "1m", env={"DOCKER_HOST": docker_host})
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if f"{unique_repo}:tbl" in x)
    assert digest in line and "yes" in line


def test_no_engine_is_one_clear_line_and_exit_3(tmp_path: Path) -> None:
    result = _cli(
        "collect", "--since", "5m", env={"DOCKER_HOST": f"unix://{tmp_path}/missing.sock"}
    )
    assert result.returncode == 3
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "no Docker engine reachable" in lines[0] and "DOCKER_HOST" in lines[0]
    )


def test_an_overflowed_event_buffer_is_said(
    docker_client: Any, docker_host: str, unique_repo: str
) -> None:
    from container_mapping.collect.docker import ENGINE_EVENT_BUFFER, DockerCollector
    from container_mapping.engine import Engine

    since = _now()
    image_id = build(docker_client, f"{unique_repo}:first")
    push(docker_client, f"{unique_repo}:first")
    image = docker_client.images.get(image_id)
    for index in range(ENGINE_EVENT_BUFFER + 10):
        image.tag(f"{unique_repo}-flood", str(index))
    time.sleep(0.05)
    try:
        collection = DockerCollector(Engine.from_environment({"DOCKER_HOST": docker_host})).collect(
            CollectionWindow(since, _now())
        )
    finally:
        docker_client.images.remove(image_id, force=True)
    assert any(f"only its last {ENGINE_EVENT_BUFFER} events" in w for w in collection.warnings)
    assert not [r for r in collection.records if r.reference.tag == "first"]
