"""The Defender sink: what a delivery that never arrived says."""

from __future__ import annotations

import time

import pytest

from container_mapping.http import HttpClient
from container_mapping.sinks.defender import DefenderSink
from container_mapping.sinks.interface import SinkError
from tests.e2e.stubs import closed_port_url
from tests.unit.samples import DIGEST, FAST, oidc_token, record, report


def test_defender_sink_reports_refused_connections() -> None:
    sink = DefenderSink(closed_port_url(), HttpClient(retry=FAST), oidc_token)
    with pytest.raises(SinkError, match="not delivered"):
        sink.send(report(record(f"127.0.0.1:5000/app:1@{DIGEST}")), time.monotonic() + 2)
