"""The service as real processes: two at once on one database, and killed mid-stream.

- Two `serve` processes receive the same report with the same Idempotency-Key at the same
  instant: one row, and both answer the first answer.
- SIGKILL while concurrent clients send: after a restart every acknowledged report is there
  exactly once with all its images, and no report is there in part.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import text

from container_mapping.service import database
from tests.service.conftest import CONTOSO, config_document
from tests.service.issuer import Issuer
from tests.service.reports import report
from tests.service.server import ServeProcess, free_port

IMAGES = 5


def write_config(tmp_path: Path, issuer: Issuer, database_url: str) -> Path:
    path = tmp_path / "service.yml"
    path.write_text(yaml.safe_dump(config_document(issuer, database_url)))
    return path


@pytest.fixture
def processes(
    tmp_path: Path, issuer: Issuer, database_url: str
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    path = write_config(tmp_path, issuer, database_url)
    first = ServeProcess(path, free_port(), log=tmp_path / "first.log")
    second = ServeProcess(path, free_port(), log=tmp_path / "second.log")
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


def rows(database_url: str, query: str) -> list[Any]:
    engine = database.make_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(query)))
    finally:
        engine.dispose()


def test_one_key_at_once_on_two_processes_stores_once(
    processes: tuple[ServeProcess, ServeProcess], issuer: Issuer, database_url: str
) -> None:
    rounds = 15
    answers: dict[int, list[httpx.Response]] = {i: [] for i in range(rounds)}
    barrier = threading.Barrier(2)
    bodies = [report(CONTOSO, images=IMAGES, seed=f"round-{i}") for i in range(rounds)]

    def send(server: ServeProcess) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i, body in enumerate(bodies):
                headers = {"Authorization": f"Bearer {issuer.token(CONTOSO)}",
                           "Idempotency-Key": f"job-{i}"}  # fmt: skip
                barrier.wait(10)
                answers[i].append(client.post("/v1/reports", json=body, headers=headers))

    threads = [threading.Thread(target=send, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for i in range(rounds):
        a, b = answers[i]
        assert a.status_code == b.status_code == 201, (a.text, b.text)
        assert a.json() == b.json()
    stored = {row[0] for row in rows(database_url, "SELECT id FROM reports")}
    assert stored == {answers[i][0].json()["id"] for i in range(rounds)}
    assert rows(database_url, "SELECT count(*) FROM images")[0][0] == rounds * IMAGES


class Sender(threading.Thread):
    """A client sending reports with fresh keys until told to stop; remembers what was acked."""

    def __init__(self, name: str, url: str, issuer: Issuer) -> None:
        super().__init__(daemon=True)
        self.name, self.url, self.issuer = name, url, issuer
        self.acked: dict[str, str] = {}  # key -> report id
        self.unacked: list[tuple[str, dict[str, Any]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        token = self.issuer.token(CONTOSO)
        with httpx.Client(base_url=self.url, timeout=10) as client:
            n = 0
            while not self.stop.is_set():
                key, n = f"{self.name}-{n}", n + 1
                body = report(CONTOSO, images=IMAGES, seed=key)
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
                try:
                    answer = client.post("/v1/reports", json=body, headers=headers)
                except httpx.HTTPError:
                    self.unacked.append((key, body))
                    return  # the service is gone
                if answer.status_code == 201:
                    self.acked[key] = answer.json()["id"]
                else:
                    self.unacked.append((key, body))


def test_sigkill_while_clients_send_loses_nothing_acknowledged(
    tmp_path: Path, issuer: Issuer, database_url: str
) -> None:
    path = write_config(tmp_path, issuer, database_url)
    server = ServeProcess(path, free_port(), workers=2, log=tmp_path / "serve.log")
    server.start()
    senders = [Sender(f"client{i}", server.url, issuer) for i in range(6)]
    try:
        for sender in senders:
            sender.start()
        time.sleep(2.5)
        server.kill()  # SIGKILL to uvicorn and its workers, mid-request
    finally:
        server.kill()
    for sender in senders:
        sender.stop.set()
        sender.join(20)
    acked = {k: v for s in senders for k, v in s.acked.items()}
    assert len(acked) > 20, "too few reports were acknowledged for the test to mean anything"

    server.start()  # restart on the same database
    try:
        stored = {row[0] for row in rows(database_url, "SELECT id FROM reports")}
        lost = set(acked.values()) - stored
        assert not lost, f"{len(lost)} acknowledged reports lost"
        counts = rows(database_url, "SELECT report_id, count(*) FROM images GROUP BY report_id")
        per_report = dict(counts)
        assert all(per_report.get(rid) == IMAGES for rid in stored), "a partial report"
        assert sum(per_report.values()) == len(stored) * IMAGES

        unacked = [item for s in senders for item in s.unacked]
        token = issuer.token(CONTOSO)
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for key, body in unacked:  # the task's retry after the crash
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
                assert client.post("/v1/reports", json=body, headers=headers).status_code == 201
        # every key sent is stored exactly once: acknowledged, or retried after the restart
        after = rows(database_url, "SELECT count(*), count(DISTINCT idempotency_key) FROM reports")
        assert after[0][0] == after[0][1] == len(acked) + len(unacked)
    finally:
        server.stop()
