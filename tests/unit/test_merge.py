"""Collectors combine into one report: one record per push, naming every source that saw it.

Also the 1.1 fields on the wire (sources, attribution basis, platform manifests): valid against
the published schema, round-tripped, and a 1.0 document still read.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema

from container_mapping.capture import _by_process, merge
from container_mapping.collect.interface import Pusher
from container_mapping.defender import ingest
from container_mapping.model import (
    Attribution,
    Basis,
    CollectionWindow,
    ImageRecord,
    MappingReport,
    PipelineContext,
    PlatformManifest,
)
from container_mapping.reference import ImageReference
from container_mapping.task import summary

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "mapping-report.schema.json").read_text())
D1, D2, D3 = ("sha256:" + c * 64 for c in "123")
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
APP = ImageReference("r.example", "team/app", "1")


def _rec(source: str, digest: str | None = None, **kw: object) -> ImageRecord:
    kw.setdefault("image_id", None)
    return ImageRecord(APP.with_digest(digest), pushed=True, source=source, **kw)  # type: ignore[arg-type]


def test_one_push_seen_by_three_sources_is_one_record_naming_all_three() -> None:
    merged = merge(
        [
            _rec("docker", D1, image_id=D3, labels={"a": "b"}),
            _rec("metadata-file", D1, platform="linux/amd64"),
            _rec("podman"),  # no digest yet: the registry settles it, it is the same push
        ]
    )
    assert len(merged) == 1
    (one,) = merged
    assert one.seen_by == ("docker", "metadata-file", "podman")
    assert (one.digest, one.image_id, one.platform, one.labels) == (
        D1,
        D3,
        "linux/amd64",
        {"a": "b"},
    )


def test_a_tag_pushed_twice_with_two_contents_stays_two_records() -> None:
    merged = merge([_rec("docker", D1), _rec("podman", D2), _rec("metadata-file", D2)])
    assert [(r.digest, r.seen_by) for r in merged] == [
        (D1, ("docker",)),
        (D2, ("podman", "metadata-file")),
    ]


def test_built_and_pushed_of_one_reference_do_not_merge() -> None:
    built = ImageRecord(APP, D3, False, source="docker")
    assert len(merge([built, _rec("podman", D1)])) == 2


def test_the_stronger_basis_stands_when_two_sources_disagree() -> None:
    (one,) = merge(
        [_rec("docker", D1, basis=Basis.AMBIGUOUS), _rec("recorder", D1, basis=Basis.PROCESS)]
    )
    assert one.basis is Basis.PROCESS


def _report(*images: ImageRecord) -> MappingReport:
    return MappingReport(
        CollectionWindow(T0, T0 + timedelta(minutes=1)),
        PipelineContext(organization_url="https://dev.azure.com/o/", run_id="7"),
        images=images,
        generated_at=T0 + timedelta(minutes=1),
    )


def test_schema_1_1_fields_validate_and_round_trip() -> None:
    index = _rec(
        "docker",
        D1,
        basis=Basis.PROCESS,
        seen_by=("docker", "podman"),
        manifests=(PlatformManifest(D2, "linux/amd64"), PlatformManifest(D3, "linux/arm64/v8")),
    )
    report = _report(index, _rec("metadata-file", D2, basis=Basis.AMBIGUOUS))
    document = json.loads(json.dumps(report.to_dict()))
    assert document["schemaVersion"] == "1.1"
    assert document["images"][0]["sources"] == ["docker", "podman"]
    assert document["images"][0]["attribution"]["basis"] == "process"
    assert document["images"][0]["manifests"][1] == {"digest": D3, "platform": "linux/arm64/v8"}
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert MappingReport.from_dict(document) == report


def test_a_1_0_document_is_valid_and_read_with_its_basis_inferred() -> None:
    document = _report(_rec("docker", D1)).to_dict()
    document["$schema"] = document["$schema"].replace("1.1", "1.0")
    document["schemaVersion"] = "1.0"
    image = document["images"][0]
    del image["sources"], image["attribution"]["basis"]
    image["attribution"]["status"] = "match"
    jsonschema.validate(document, SCHEMA)
    again = MappingReport.from_dict(document).images[0]
    assert (again.basis, again.seen_by) == (Basis.LABEL, ("docker",))


def test_the_schema_refuses_an_unknown_basis_and_empty_sources() -> None:
    document = _report(_rec("docker", D1)).to_dict()
    document["images"][0]["attribution"]["basis"] = "hunch"
    try:
        jsonschema.validate(document, SCHEMA)
    except jsonschema.ValidationError:
        pass
    else:
        raise AssertionError("basis 'hunch' was accepted")
    document["images"][0]["attribution"]["basis"] = "label"
    document["images"][0]["sources"] = []
    try:
        jsonschema.validate(document, SCHEMA)
    except jsonschema.ValidationError:
        return
    raise AssertionError("empty sources were accepted")


def test_defender_leaves_ambiguous_records_out_and_the_summary_counts_them() -> None:
    other = ImageReference("r.example", "team/other", "2")
    report = _report(
        _rec("docker", D1, basis=Basis.LABEL),
        ImageRecord(other.with_digest(D2), None, True, basis=Basis.AMBIGUOUS),
    )
    body = ingest.body(report)
    assert body["dockerEvents"] == ["ID=r.example/team/app:1"]
    assert all("team/other" not in line for line in body["dockerImages"])
    line = summary(report, "https://defender.example/", len(report.ambiguous))
    assert "mapped 2 images" in line and "1 of them not sent" in line and "ambiguous" in line
    assert "not sent" not in summary(report, "https://svc.example/")


CONTEXT = PipelineContext(organization_url="https://dev.azure.com/o/", run_id="7", job_id="job-a")


def _by_process_of(record: ImageRecord, *pushers: Pusher) -> ImageRecord:
    return _by_process(record, pushers, CONTEXT)


def _client(job: str, run: str, *refs: str) -> Pusher:
    return Pusher(frozenset(ImageReference.parse(r) for r in refs), job, run)


def test_the_push_client_of_this_job_makes_an_unlabelled_record_ours() -> None:
    record = _by_process_of(_rec("docker", D1), _client("job-a", "7", "r.example/team/app:1"))
    assert (record.attribution, record.basis) == (Attribution.MATCH, Basis.PROCESS)


def test_another_jobs_client_makes_it_another_runs_and_both_make_it_ambiguous() -> None:
    theirs = _client("job-b", "8", "r.example/team/app:1")
    ours = _client("job-a", "7", "r.example/team/app:1")
    record = _by_process_of(_rec("docker", D1), theirs)
    assert (record.attribution, record.basis) == (Attribution.OTHER_RUN, Basis.PROCESS)
    assert _by_process_of(_rec("docker", D1), theirs, ours).basis is Basis.AMBIGUOUS


def test_no_client_seen_is_window_only_unless_another_job_pushed_meanwhile() -> None:
    elsewhere = _client("job-b", "8", "r.example/team/other:1")
    assert _by_process_of(_rec("docker", D1)).basis is Basis.WINDOW_ONLY
    assert _by_process_of(_rec("docker", D1), elsewhere).basis is Basis.AMBIGUOUS
    assert _by_process(_rec("docker", D1), None, CONTEXT).basis is Basis.WINDOW_ONLY
    # seen in the job's own files too, or labelled: no other job's client changes that
    in_files = _rec("docker", D1, seen_by=("docker", "metadata-file"))
    assert _by_process_of(in_files, elsewhere).basis is Basis.WINDOW_ONLY
    labelled = _rec("docker", D1, basis=Basis.LABEL)
    assert _by_process_of(labelled, elsewhere).basis is Basis.LABEL
