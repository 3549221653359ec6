"""The sink protocols the task offers are the ones the sinks implement."""

from __future__ import annotations


def test_protocol_choices_match_the_sink_protocols() -> None:
    from container_mapping import task
    from container_mapping.sinks.interface import SinkProtocol

    assert task.PROTOCOLS == tuple(p.value for p in SinkProtocol)
