"""Storing links: replacement is whole and atomic, also when two posts of one cluster or one
repository arrive at the same moment (threads against the real service, SQLite and PostgreSQL).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import create_engine, text

from tests.service.links_fixtures import CONTOSO, Service, links_service  # noqa: F401

D = ["sha256:" + c * 64 for c in "0123456789abcdef"]


def _snapshot(pods: int, digest: str) -> dict[str, Any]:
    containers = [
        {"namespace": "ns", "pod": f"p{i}", "ownerKind": "Pod", "ownerName": f"p{i}",
         "container": "c", "containerKind": "regular", "image": "x", "digest": digest,
         "resolvable": True}
        for i in range(pods)
    ]  # fmt: skip
    return {"cluster": "race", "takenAt": "2026-11-27T12:00:00Z", "containers": containers}


def _rows(links: Service, sql: str) -> list[Any]:
    engine = create_engine(links.database)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql)))
    finally:
        engine.dispose()


def test_two_snapshots_of_one_cluster_at_once_leave_exactly_one(links: Service) -> None:
    bodies = [_snapshot(300, D[1]), _snapshot(200, D[2])]
    answers: list[int] = []

    def post(body: dict[str, Any]) -> None:
        with links.client(scope="link") as client:
            answers.append(client.post("/v1/links/pods", json=body).status_code)

    for _ in range(3):
        threads = [threading.Thread(target=post, args=(b,)) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert answers == [200] * 6
    rows = _rows(links, "SELECT digest, count(*), count(DISTINCT snapshot_id) FROM workloads "
                        "WHERE cluster = 'race' GROUP BY digest")  # fmt: skip
    assert [tuple(r) for r in rows] in ([(D[1], 300, 1)], [(D[2], 200, 1)])
    [snapshot] = _rows(links, "SELECT containers FROM cluster_snapshots WHERE cluster = 'race'")
    assert snapshot[0] == rows[0][1]


def test_a_crawl_answers_200_or_409_and_never_stores_twice(links: Service) -> None:
    artifact = {"repository": "team/api", "digest": D[3], "mediaType": "application/json",
                "tags": ["1", "bad tag"],
                "labels": {"org.opencontainers.image.revision": "A" * 40}}  # fmt: skip
    body = {"registry": "reg.example:5000", "crawledAt": "2026-11-27T12:00:00Z",
            "repositories": ["team/api"], "artifacts": [artifact, artifact]}  # fmt: skip
    answers: list[int] = []

    def post() -> None:
        with links.client(scope="link") as client:
            answers.append(client.post("/v1/links/registry", json=body).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(answers) <= {200, 409} and 200 in answers
    rows = _rows(links, "SELECT digest, tags, label_commit, evidence FROM registry_artifacts")
    assert len(rows) == 1
    digest, tags, commit, evidence = rows[0]
    assert digest == D[3] and "bad tag" not in str(tags) and commit == "a" * 40
    assert evidence == "label"
