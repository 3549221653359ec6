"""The report's wire format: valid against docs/mapping-report.schema.json, and round-trips."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from container_mapping.context import from_environment
from container_mapping.errors import ConfigError, InvalidReference
from container_mapping.model import (
    Attribution,
    CollectionWindow,
    ImageRecord,
    MappingReport,
    Verification,
)
from container_mapping.reference import ImageReference

from .test_context import AGENT_ENV

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "mapping-report.schema.json").read_text())
T0 = datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=timezone.utc)


def _report() -> MappingReport:
    pushed = ImageRecord(
        reference=ImageReference.parse("myacr.azurecr.io/team/app:1.0@sha256:" + "1" * 64),
        image_id="sha256:" + "2" * 64,
        pushed=True,
        pushed_at=T0 + timedelta(seconds=5),
        created=T0,
        platform="linux/amd64",
        labels={"org.opencontainers.image.revision": "abc", "ünïcode": "wert ✓"},
        attribution=Attribution.MATCH,
        attribution_evidence={"org.opencontainers.image.revision": "abc"},
        verification=Verification.MISMATCH,
        registry_digest="sha256:" + "3" * 64,
        note="the registry holds another digest",
    )
    built = ImageRecord(ImageReference.parse("app:dev"), "sha256:" + "4" * 64, pushed=False)
    other = ImageRecord(
        ImageReference.parse("app:x"), "sha256:" + "5" * 64, True, attribution=Attribution.OTHER_RUN
    )
    return MappingReport(
        window=CollectionWindow(T0, T0 + timedelta(minutes=3)),
        pipeline=from_environment(AGENT_ENV),
        images=(pushed, built),
        skipped=(other,),
        engine_version="20.10.24",
        generated_at=T0 + timedelta(minutes=3),
    )


def test_report_validates_against_the_published_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = json.loads(json.dumps(_report().to_dict()))
    jsonschema.validate(document, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_round_trip_is_lossless() -> None:
    report = _report()
    again = MappingReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report


def test_schema_rejects_what_the_model_would() -> None:
    document = _report().to_dict()
    document["images"][0]["digest"] = "sha256:XYZ"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, SCHEMA)
    with pytest.raises(InvalidReference):
        MappingReport.from_dict(document)


def test_a_future_major_version_is_refused_clearly() -> None:
    document = _report().to_dict()
    document["schemaVersion"] = "2.0"
    with pytest.raises(ConfigError, match="unsupported report schemaVersion"):
        MappingReport.from_dict(document)


def test_model_checks_invariants_at_construction() -> None:
    with pytest.raises(InvalidReference):
        ImageRecord(ImageReference.parse("app:1"), "not-a-digest", pushed=True)
    with pytest.raises(ConfigError):
        ImageRecord(ImageReference.parse("app"), None, pushed=True)
    with pytest.raises(ConfigError, match="before it starts"):
        CollectionWindow(T0, T0 - timedelta(seconds=1))
