"""podman, buildah, build metadata files and image indexes, with the real tools and registry.

Each job here has its own directory (what pre-job records as `ContainerMapping.JobDirectories`)
and its own podman/buildah storage inside it. Digests are checked against what the registry
answers itself, not against what the code under test read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from container_mapping.capture import all_collectors, capture, registry_factory
from container_mapping.collect.files import JobFiles
from container_mapping.collect.metadata import MetadataCollector
from container_mapping.collect.podman import PodmanCollector
from container_mapping.context import from_environment
from container_mapping.model import CollectionWindow, MappingReport

from .tools import Tools

pytestmark = pytest.mark.docker
SCHEMA = json.loads((Path(__file__).parents[2] / "docs/mapping-report.schema.json").read_text())
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = f"{INDEX}, application/vnd.oci.image.manifest.v1+json"


def _registry_answer(reference: str, accept: str = MANIFESTS) -> tuple[str, bytes, str]:
    """(digest header, body, content type) as the registry answers GET for `reference`."""
    host, _, rest = reference.partition("/")
    name, _, target = rest.rpartition("@") if "@" in rest else rest.rpartition(":")
    request = urllib.request.Request(
        f"http://{host}/v2/{name}/manifests/{target}", headers={"Accept": accept}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
        return answer.headers["Docker-Content-Digest"], body, answer.headers["Content-Type"]


class Job:
    """One job: its directory, its storage, its window and its environment."""

    def __init__(self, root: Path, docker_host: str, registry: str) -> None:
        self.dir = root
        self.tools = Tools(root)
        self.repo = f"{registry}/cmtest/{uuid.uuid4().hex[:12]}"
        self.since = datetime.now(timezone.utc) - timedelta(seconds=1)
        self.environ = {
            "DOCKER_HOST": docker_host,
            "CONTAINERMAPPING_JOBDIRECTORIES": str(root),
            "CONTAINERMAPPING_STORAGEROOTS": str(root / "storage"),
        }

    def capture(self, collectors: list[object] | None = None) -> MappingReport:
        registry = registry_factory(self.environ)
        chosen = collectors if collectors is not None else all_collectors(self.environ, registry)
        report = capture(
            CollectionWindow(self.since, datetime.now(timezone.utc)),
            from_environment(self.environ),
            collectors=chosen,  # type: ignore[arg-type]
            registry=registry,
            deadline=time.monotonic() + 60,
        )
        document = json.loads(json.dumps(report.to_dict()))
        jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
        return report

    def podman_push(self, tag: str, digest_file: Path | None = None) -> str:
        reference = f"{self.repo}:{tag}"
        self.tools.podman_image(reference)
        out = digest_file or self.dir.parent / f"{self.dir.name}-{tag}.digest"  # outside the job
        self.tools.podman("push", "--tls-verify=false", "--digestfile", str(out), reference)
        return out.read_text().strip()


@pytest.fixture
def job(tmp_path: Path, docker_host: str, registry_addr: str) -> Iterator[Job]:
    (tmp_path / "job").mkdir()
    made = Job(tmp_path / "job", docker_host, registry_addr)
    yield made
    made.tools.close()


def _by_reference(report: MappingReport, job: Job) -> dict[str, object]:
    """This job's pushes (podman's event log is the host's: other tests' pushes are in it)."""
    return {
        f"{r.reference.name}:{r.reference.tag}": r
        for r in report.pushed
        if r.reference.name == job.repo
    }


def test_a_podman_push_is_reported_with_the_registrys_oci_digest(job: Job) -> None:
    written = job.podman_push("p1")
    report = job.capture([PodmanCollector.for_this_user()])
    (record,) = [r for r in report.pushed if r.reference.repository == job.repo.split("/", 1)[1]]
    held, _, media_type = _registry_answer(f"{job.repo}:p1")
    assert record.digest == held == written
    assert media_type == "application/vnd.oci.image.manifest.v1+json"
    assert record.seen_by == ("podman",) and record.reference.tag == "p1"


def test_a_buildah_push_is_reported_through_its_digest_file(job: Job) -> None:
    reference = f"{job.repo}:b1"
    job.tools.buildah_image(reference)
    digest_file = job.dir / "buildah.digest"
    job.tools.buildah("push", "--tls-verify=false", "--digestfile", str(digest_file), reference)
    report = job.capture()
    records = _by_reference(report, job)
    assert list(records) == [reference]
    held, _, _ = _registry_answer(reference)
    record = records[reference]
    assert record.digest == held == digest_file.read_text().strip()  # type: ignore[attr-defined]
    assert record.seen_by == ("digest-file",)  # type: ignore[attr-defined]


def test_a_tag_in_storage_without_a_digest_file_is_no_push(job: Job) -> None:
    reference = f"{job.repo}:b2"
    job.tools.buildah_image(reference)
    job.tools.buildah("push", "--tls-verify=false", reference)  # pushed, but no evidence left
    job.tools.buildah_image(f"{job.repo}:never-pushed")
    (job.dir / "unrelated.digest").write_text("sha256:" + "e" * 64)
    assert _by_reference(job.capture(), job) == {}


def test_podman_push_with_a_digest_file_is_one_record_seen_by_both(job: Job) -> None:
    written = job.podman_push("p2", digest_file=job.dir / "p2.digest")
    report = job.capture()
    mine = [r for r in report.pushed if r.reference.name == job.repo]
    assert len(mine) == 1
    assert mine[0].digest == written and mine[0].seen_by == ("podman", "digest-file")


def test_a_buildkit_metadata_file_from_the_job_is_reported_and_one_from_before_is_not(
    job: Job,
) -> None:
    new_digest = job.podman_push("new")
    old_digest = job.podman_push("old")
    metadata = {
        "containerimage.config.digest": "sha256:" + "c" * 64,
        "containerimage.digest": new_digest,
        "image.name": f"{job.repo}:new,{job.repo}:also",  # :also was never pushed
    }
    (job.dir / "nested" / "deeper").mkdir(parents=True)
    (job.dir / "nested" / "deeper" / "build.json").write_text(json.dumps(metadata))
    old = job.dir / "old-metadata.json"
    old.write_text(
        json.dumps({"containerimage.digest": old_digest, "image.name": f"{job.repo}:old"})
    )
    before = job.since.timestamp() - 60
    os.utime(old, (before, before))
    report = job.capture(
        [MetadataCollector(JobFiles.from_environment(job.environ), registry_factory(job.environ))]
    )
    records = _by_reference(report, job)
    # :also names the same manifest in the same repository: the registry holds it by digest
    assert set(records) == {f"{job.repo}:new", f"{job.repo}:also"}
    assert {r.digest for r in records.values()} == {new_digest}  # type: ignore[attr-defined]
    assert _registry_answer(f"{job.repo}:new")[0] == new_digest


def test_a_metadata_file_claiming_a_manifest_the_registry_lacks_is_left_out(job: Job) -> None:
    lie = {"containerimage.digest": "sha256:" + "f" * 64, "image.name": f"{job.repo}:lie"}
    (job.dir / "metadata.json").write_text(json.dumps(lie))
    (job.dir / "kaniko-names").write_text(f"{job.repo}:k@sha256:{'f' * 64}\n")
    report = job.capture(
        [MetadataCollector(JobFiles.from_environment(job.environ), registry_factory(job.environ))]
    )
    assert report.pushed == ()


def test_kanikos_name_with_digest_file_is_reported(job: Job) -> None:
    digest = job.podman_push("kaniko")
    (job.dir / "image-name-with-digest").write_text(f"{job.repo}:kaniko@{digest}\n")
    report = job.capture(
        [MetadataCollector(JobFiles.from_environment(job.environ), registry_factory(job.environ))]
    )
    assert [(str(r.reference), r.seen_by) for r in report.pushed] == [
        (f"{job.repo}:kaniko@{digest}", ("metadata-file",))
    ]


def test_an_index_of_two_platforms_is_reported_with_each_platform_digest(job: Job) -> None:
    index_ref = f"{job.repo}:multi"
    tools = job.tools
    tools.podman("manifest", "create", index_ref)
    for platform in ("linux/amd64", "linux/arm64"):
        arch = platform.split("/")[1]
        context = job.dir.parent / f"ctx-{arch}"
        context.mkdir()
        (context / "payload").write_text(arch)
        (context / "Containerfile").write_text("FROM scratch\nCOPY payload /payload\n")
        tools.podman(
            "build", "-q", "--platform", platform, "-t", f"{job.repo}:{arch}", str(context)
        )
        tools.podman("manifest", "add", index_ref, f"containers-storage:{job.repo}:{arch}")
    digest_file = job.dir / "index.digest"
    tools.podman(
        "manifest",
        "push",
        "--all",
        "--tls-verify=false",
        "--digestfile",
        str(digest_file),
        index_ref,
        f"docker://{index_ref}",
    )
    report = job.capture()
    records = _by_reference(report, job)
    record = records[index_ref]
    held, body, media_type = _registry_answer(index_ref, INDEX)
    assert media_type == INDEX and record.digest == held  # type: ignore[attr-defined]
    assert "sha256:" + hashlib.sha256(body).hexdigest() == held
    listed = {m["platform"]["architecture"]: m["digest"] for m in json.loads(body)["manifests"]}
    got = {m.platform: m.digest for m in record.manifests}  # type: ignore[attr-defined]
    assert got == {"linux/amd64": listed["amd64"], "linux/arm64": listed["arm64"]}
    for digest in got.values():
        assert _registry_answer(f"{job.repo}@{digest}")[0] == digest
    assert "podman" in record.seen_by  # type: ignore[attr-defined]
