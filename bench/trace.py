"""Trace latency at 1,000,000 stored image records: p50/p99 of `GET /v1/trace` over HTTP.

The service runs as its own process (`container-mapping serve`, one worker), as deployed; the
rows are bulk-loaded with SQL (a recursive CTE on SQLite, generate_series on PostgreSQL)
into a database migrated by the service's own migrations: 200,000 reports of 5 images each, a
registry crawl of 75,000 manifests (25,000 indexes, each with two platform children) and a
pod snapshot of 20,000 containers. Then the real service (uvicorn, one process) answers
questions by digest (random stored ones), by a platform digest whose run pushed the index, by
reference, by commit, and with `unmapped` for one cluster.

    python3 bench/trace.py                     # SQLite in a temporary directory
    python3 bench/trace.py --images 200000     # smaller
    CM_TEST_POSTGRES_URL=postgresql+psycopg://… python3 bench/trace.py --postgres

Target: p99 <= 20 ms at 1,000,000 image records.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).parents[1]))

from container_mapping.service import migrations  # noqa: E402
from container_mapping.service.app import create_app  # noqa: E402
from container_mapping.service.config import from_dict  # noqa: E402
from tests.service.server import ServeProcess, free_port  # noqa: E402

ORG = "5e3a2f70-1b4c-4d8e-9f00-0000000c0a70"
OTHER = "8a1b2c3d-4e5f-4a6b-8c7d-00000fab71c0"
KEY = "bench-read-key"
PER_REPORT = 5


def sqlite_load(engine: Engine, images: int) -> None:
    reports = images // PER_REPORT
    with engine.begin() as c:
        c.exec_driver_sql("PRAGMA synchronous=OFF")
        c.exec_driver_sql(f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {reports - 1})
            INSERT INTO reports (id, org_id, idempotency_key, request_sha256, received_at,
                protocol, subject, project_id, project_name, pipeline_id, pipeline_name, run_id,
                run_number, repository_uri, repository_name, "commit", branch, job_name, response)
            SELECT printf('r-%d', i), CASE WHEN i % 10 = 0 THEN '{OTHER}' ELSE '{ORG}' END,
                printf('k-%d', i), printf('%064d', i),
                strftime('%Y-%m-%d %H:%M:%S', '2026-01-01', printf('+%d seconds', i)) || '.000000',
                'mapping-service', 'p://contoso/Payments/api', 'prj-' || (i % 20), 'Payments',
                CAST(i % 500 AS TEXT), printf('pipeline-%d', i % 500), CAST(i AS TEXT),
                printf('2026.%d', i),
                printf('https://dev.azure.com/contoso/Payments/_git/r%d', i % 2000),
                printf('r%d', i % 2000), printf('%040x', i * 7919), 'refs/heads/main', 'Build',
                '{{}}'
            FROM n""")  # noqa: S608 (numbers only)
        c.exec_driver_sql(f"""
            WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {images - 1})
            INSERT INTO images (report_id, org_id, registry, repository, tag, digest, pushed_at,
                platform, source, evidence)
            SELECT printf('r-%d', i / {PER_REPORT}),
                CASE WHEN (i / {PER_REPORT}) % 10 = 0 THEN '{OTHER}' ELSE '{ORG}' END,
                'contoso.azurecr.io', printf('team%d/app%d', i % 50, i % 5000), printf('v%d', i),
                printf('sha256:%064x', i * 2654435761),
                strftime('%Y-%m-%d %H:%M:%S', '2026-01-01', printf('+%d seconds', i)) || '.000000',
                'linux/amd64', 'docker', 'observed'
            FROM n""")  # noqa: S608
        _load_links_sqlite(c, images)
        c.exec_driver_sql("ANALYZE")


def _load_links_sqlite(c: Any, images: int) -> None:
    """Every 40th pushed image is an index with two platform children in the crawl."""
    indexes = images // 40
    c.exec_driver_sql(f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {indexes - 1})
        INSERT INTO registry_artifacts (org_id, registry, repository, digest, media_type, tags,
            parent_digest, platform_os, platform_architecture, labels, crawled_at)
        SELECT '{ORG}', 'contoso.azurecr.io', printf('team%d/app%d', i, i),
            printf('sha256:%064x', (i * 40 + 1) * 2654435761),
            'application/vnd.oci.image.index.v1+json', json_array(printf('v%d', i * 40 + 1)),
            '', NULL, NULL, '{{}}', '2026-02-01 00:00:00.000000' FROM n
        UNION ALL
        SELECT '{ORG}', 'contoso.azurecr.io', printf('team%d/app%d', i, i),
            printf('sha256:%064x', i * 1000003 + p),
            'application/vnd.oci.image.manifest.v1+json', '[]',
            printf('sha256:%064x', (i * 40 + 1) * 2654435761), 'linux',
            CASE p WHEN 0 THEN 'amd64' ELSE 'arm64' END, '{{}}', '2026-02-01 00:00:00.000000'
        FROM n, (SELECT 0 AS p UNION ALL SELECT 1)""")  # noqa: S608
    c.exec_driver_sql(f"""
        WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 19999)
        INSERT INTO workloads (org_id, cluster, snapshot_id, namespace, pod, owner_kind,
            owner_name, owner_inferred, container, container_kind, image, digest, resolvable,
            last_seen)
        SELECT '{ORG}', printf('aks-%d', i % 4), 's', printf('ns%d', i % 30), printf('pod-%d', i),
            'Deployment', printf('app-%d', i % 3000), 0, 'app', 'regular', 'x',
            CASE WHEN i % 3 = 0 THEN printf('sha256:%064x', (i % {indexes}) * 1000003)
                 WHEN i % 3 = 1 THEN printf('sha256:%064x', i * 97 * 2654435761)
                 ELSE printf('sha256:%064x', i + 123456789012) END,
            1, '2026-03-01 00:00:00.000000'
        FROM n""")  # noqa: S608


def postgres_load(engine: Engine, images: int) -> None:
    reports = images // PER_REPORT
    hexd = "lpad(to_hex({x}), 64, '0')"
    with engine.begin() as c:
        _pg(
            c,
            f"""
            INSERT INTO reports (id, org_id, idempotency_key, request_sha256, received_at,
                protocol, subject, project_id, project_name, pipeline_id, pipeline_name, run_id,
                run_number, repository_uri, repository_name, "commit", branch, job_name, response)
            SELECT 'r-' || i, CASE WHEN i % 10 = 0 THEN '{OTHER}' ELSE '{ORG}' END, 'k-' || i,
                lpad(i::text, 64, '0'), timestamptz '2026-01-01' + i * interval '1 second',
                'mapping-service', 'p://contoso/Payments/api', 'prj-' || (i % 20), 'Payments',
                (i % 500)::text, 'pipeline-' || (i % 500), i::text, '2026.' || i,
                'https://dev.azure.com/contoso/Payments/_git/r' || (i % 2000), 'r' || (i % 2000),
                lpad(to_hex(i * 7919), 40, '0'), 'refs/heads/main', 'Build', '{{}}'
            FROM generate_series(0, {reports - 1}) AS i""",
        )  # noqa: S608
        _pg(
            c,
            f"""
            INSERT INTO images (report_id, org_id, registry, repository, tag, digest, pushed_at,
                platform, source, evidence)
            SELECT 'r-' || (i / {PER_REPORT}),
                CASE WHEN (i / {PER_REPORT}) % 10 = 0 THEN '{OTHER}' ELSE '{ORG}' END,
                'contoso.azurecr.io', 'team' || (i % 50) || '/app' || (i % 5000), 'v' || i,
                'sha256:' || {hexd.format(x="i::bigint * 2654435761")},
                timestamptz '2026-01-01' + i * interval '1 second', 'linux/amd64', 'docker',
                'observed'
            FROM generate_series(0, {images - 1}) AS i""",
        )  # noqa: S608
        indexes = images // 40
        _pg(
            c,
            f"""
            INSERT INTO registry_artifacts (org_id, registry, repository, digest, media_type,
                tags, parent_digest, platform_os, platform_architecture, labels, crawled_at)
            SELECT '{ORG}', 'contoso.azurecr.io', 'team' || i || '/app' || i,
                'sha256:' || {hexd.format(x="(i::bigint * 40 + 1) * 2654435761")},
                'application/vnd.oci.image.index.v1+json', json_build_array('v' || (i * 40 + 1)),
                '', NULL, NULL, '{{}}'::json, timestamptz '2026-02-01'
            FROM generate_series(0, {indexes - 1}) AS i
            UNION ALL
            SELECT '{ORG}', 'contoso.azurecr.io', 'team' || i || '/app' || i,
                'sha256:' || {hexd.format(x="i::bigint * 1000003 + p")},
                'application/vnd.oci.image.manifest.v1+json', '[]'::json,
                'sha256:' || {hexd.format(x="(i::bigint * 40 + 1) * 2654435761")}, 'linux',
                CASE p WHEN 0 THEN 'amd64' ELSE 'arm64' END, '{{}}'::json, timestamptz '2026-02-01'
            FROM generate_series(0, {indexes - 1}) AS i, generate_series(0, 1) AS p""",
        )  # noqa: S608
        _pg(
            c,
            f"""
            INSERT INTO workloads (org_id, cluster, snapshot_id, namespace, pod, owner_kind,
                owner_name, owner_inferred, container, container_kind, image, digest, resolvable,
                last_seen)
            SELECT '{ORG}', 'aks-' || (i % 4), 's', 'ns' || (i % 30), 'pod-' || i, 'Deployment',
                'app-' || (i % 3000), false, 'app', 'regular', 'x',
                'sha256:' || CASE
                     WHEN i % 3 = 0 THEN {hexd.format(x=f"(i % {indexes})::bigint * 1000003")}
                     WHEN i % 3 = 1 THEN {hexd.format(x="i::bigint * 97 * 2654435761")}
                     ELSE {hexd.format(x="i::bigint + 123456789012")} END,
                true, timestamptz '2026-03-01'
            FROM generate_series(0, 19999) AS i""",
        )  # noqa: S608
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("VACUUM ANALYZE")


def _pg(connection: Any, sql: str) -> None:
    """psycopg reads `%` as a placeholder even without parameters: double it."""
    connection.exec_driver_sql(sql.replace("%", "%%"))


def measure(client: httpx.Client, params: list[dict[str, str]], expect: int = 200) -> list[float]:
    times = []
    for p in params:
        start = time.perf_counter()
        answer = client.get("/v1/trace", params=p)
        times.append((time.perf_counter() - start) * 1000)
        assert answer.status_code == expect, (p, answer.status_code, answer.text[:200])
    return times


def figures(name: str, times: list[float]) -> str:
    times = sorted(times)
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return (
        f"  {name:<34} n={len(times):<5} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   "
        f"max {times[-1]:6.1f} ms"
    )


def run(url: str, images: int, samples: int, load: Any, workdir: str) -> None:
    engine = create_engine(url)
    migrations.upgrade(engine)
    with engine.begin() as c:
        for org, name in ((ORG, "contoso"), (OTHER, "fabrikam")):
            c.execute(text("INSERT INTO organizations (id, name) VALUES (:i, :n)"),
                      {"i": org, "n": name})  # fmt: skip
    started = time.perf_counter()
    load(engine, images)
    loaded = time.perf_counter() - started
    with engine.connect() as c:
        count = c.execute(text("SELECT count(*) FROM images")).scalar_one()
    engine.dispose()
    print(f"{make_url(url).get_backend_name()}: {count:,} image records loaded in {loaded:.1f} s")

    document = {"database": url, "organizations": [
        {"name": "contoso", "id": ORG, "issuer": "https://vstoken.dev.azure.com/" + ORG,
         "api_keys": [{"name": "bench", "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                       "scopes": ["read"]}]},
        {"name": "fabrikam", "id": OTHER,
         "issuer": "https://vstoken.dev.azure.com/" + OTHER}]}  # fmt: skip
    app = create_app(from_dict(document))  # for the in-process figures
    config = Path(workdir) / "service.yml"
    config.write_text(yaml.safe_dump(document))
    rng = random.Random(7)
    ours = [i for i in rng.sample(range(images), samples * 2) if (i // PER_REPORT) % 10][:samples]
    theirs = [  # only other-org digests this organization holds nowhere (crawl, snapshot)
        i for i in rng.sample(range(images), samples * 20)
        if (i // PER_REPORT) % 10 == 0 and i % 40 != 1 and i % 97 != 0
    ]  # fmt: skip
    digest = lambda n: f"sha256:{n * 2654435761:064x}"  # noqa: E731
    indexes = images // 40
    picked = rng.sample(range(indexes), min(samples, indexes))
    children = [f"sha256:{i * 1000003 + rng.randint(0, 1):064x}" for i in picked]
    server = ServeProcess(config, free_port()).start(timeout=120)  # its own process, as deployed
    try:
        client = httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
        )
        questions = {
            "trace by digest (pushed)": [{"digest": digest(i)} for i in ours],
            "trace by platform digest (index)": [{"digest": d} for d in children],
            "trace by reference": [
                {"reference": f"contoso.azurecr.io/team{i % 50}/app{i % 5000}:v{i}"}
                for i in ours[: samples // 2]
            ],
            "trace by commit (5 images)": [
                {"commit": f"{(i // PER_REPORT) * 7919:040x}"} for i in ours[: samples // 2]
            ],
        }
        measure(client, questions["trace by digest (pushed)"][:50])  # warm up
        print(
            f"  over HTTP (load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
        )
        for name, asked in questions.items():
            print(figures(name, measure(client, asked)))
        other = [{"digest": digest(i)} for i in theirs[: samples // 2]]
        print(figures("another org's digest (404)", measure(client, other, expect=404)))
        unmapped = [{"unmapped": "true", "cluster": "aks-1"}] * 10
        print(figures("unmapped, one cluster (5,000 pods)", measure(client, unmapped)))
        client.close()
    finally:
        server.stop()
    print(f"  in the process, no HTTP (load average {os.getloadavg()[0]:.1f})")
    for name, asked in questions.items():
        print(figures(name, in_process(app, asked)))
    app.state.engine.dispose()


def in_process(app: Any, asked: list[dict[str, str]]) -> list[float]:
    """The same questions through `answer()` on one session: the storage's share of the time."""
    from container_mapping.service.trace.questions import answer, question

    times = []
    with app.state.sessions() as session:
        for params in asked:
            start = time.perf_counter()
            answer(session, ORG, question(dict(params), False, None)).model_dump_json()
            times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--postgres", action="store_true", help="also PostgreSQL ($CM_TEST_POSTGRES_URL)"
    )
    parser.add_argument("--only-postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    args.postgres = args.postgres or args.only_postgres
    if not args.only_postgres:
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench.db", args.images, args.samples, sqlite_load, tmp)
    admin = os.environ.get("CM_TEST_POSTGRES_URL")
    if args.postgres and admin:
        name = f"cm_bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            url = make_url(admin).set(database=name).render_as_string(hide_password=False)
            with tempfile.TemporaryDirectory() as tmp:
                run(url, args.images, args.samples, postgres_load, tmp)
        finally:
            with engine.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            engine.dispose()


if __name__ == "__main__":
    main()
