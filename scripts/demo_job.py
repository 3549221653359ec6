"""One Azure Pipelines job, simulated end to end on this machine (run by `scripts/demo`).

The agent's part is played exactly: the task's Node shim is run with `INPUT_*` and the
predefined variables in its environment, pre-job's `task.setvariable` is carried into
post-job's environment, and a local stand-in answers the two Azure routes the task calls
(the job's OIDC token route and Defender's ingestion route) by their documented contracts.
The pipeline's own steps are a real `docker build` and `docker push` to a local registry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.demo_service import mapping_service, operator_side  # noqa: E402
from tests.e2e.stubs import AzureStub  # noqa: E402

DOCKER = "/usr/bin/docker"  # the engine's own client; /usr/local/bin/docker may be newer
SETVARIABLE = re.compile(r"^##vso\[task\.setvariable variable=([^;\]]+)[^\]]*\](.*)$")
# The predefined variables of the simulated job (an embedded default; the environment wins).
DEFAULT_JOB = {
    "SYSTEM_COLLECTIONID": "7d1d4c1e-1f0a-4a3c-9d1b-000000000001",
    "SYSTEM_TEAMPROJECT": "Payments",
    "SYSTEM_TEAMPROJECTID": "7d1d4c1e-1f0a-4a3c-9d1b-000000000002",
    "SYSTEM_DEFINITIONID": "42",
    "BUILD_DEFINITIONNAME": "payments-ci",
    "BUILD_BUILDID": str(int(time.time()) % 100000),
    "BUILD_BUILDNUMBER": time.strftime("%Y%m%d") + ".1",
    "BUILD_REPOSITORY_NAME": "payments",
    "BUILD_REPOSITORY_URI": "https://dev.azure.com/contoso/Payments/_git/payments",
    "BUILD_REPOSITORY_PROVIDER": "TfsGit",
    "BUILD_SOURCEVERSION": "0123456789abcdef0123456789abcdef01234567",
    "BUILD_SOURCEBRANCH": "refs/heads/main",
    "SYSTEM_JOBID": "7d1d4c1e-1f0a-4a3c-9d1b-000000000004",
    "SYSTEM_JOBNAME": "Build",
    "SYSTEM_JOBATTEMPT": "1",
    "SYSTEM_PLANID": "7d1d4c1e-1f0a-4a3c-9d1b-000000000005",
    "SYSTEM_HOSTTYPE": "build",
    "AGENT_OS": "Linux",
}
# A stand-in for the job's access token; the agent would put a real one here.
DEMO_ACCESS_TOKEN = "demo-job-access-token"  # noqa: S105


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def run_shim(env: dict[str, str], command: str) -> dict[str, str]:
    """Run the task as the agent does; echo its log; return the variables it set."""
    node = shutil.which("node") or "node"
    done = subprocess.run(
        [node, str(ROOT / "task" / "index.js")],
        env={**env, "INPUT_COMMAND": command},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    for line in (done.stdout + done.stderr).splitlines():
        print(f"  agent log | {line}")
    print(f"  exit code {done.returncode}")
    return {
        m.group(1).replace(".", "_").replace(" ", "_").upper(): m.group(2)
        for m in map(SETVARIABLE.match, done.stdout.splitlines())
        if m
    }


def docker_build_and_push(env: dict[str, str], registry: str) -> list[str]:
    image = f"{registry}/payments/api"
    tags = [f"{image}:{env['BUILD_BUILDNUMBER']}", f"{image}:latest"]
    with tempfile.TemporaryDirectory() as context:
        Path(context, "payload").write_text(f"run {env['BUILD_BUILDID']} at {time.time()}\n")
        Path(context, "Dockerfile").write_text("FROM scratch\nCOPY payload /payload\n")
        labels = [
            f"--label=org.opencontainers.image.revision={env['BUILD_SOURCEVERSION']}",
            f"--label=org.opencontainers.image.source={env['BUILD_REPOSITORY_URI']}",
        ]
        build = [DOCKER, "build", "-q", *labels, *(f"-t={t}" for t in tags), context]
        subprocess.run(
            build, env={**env, "DOCKER_BUILDKIT": "0"}, check=True, stdout=subprocess.DEVNULL
        )
    for tag in tags:
        subprocess.run([DOCKER, "push", "-q", tag], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"  pushed {tag}")
    return tags


def repo_digest(env: dict[str, str], tag: str) -> str:
    """`registry/repository@sha256:…` of what the engine pushed for `tag`."""
    name = tag.rsplit(":", 1)[0]
    done = subprocess.run(
        [DOCKER, "image", "inspect", "--format", "{{json .RepoDigests}}", tag],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return next(d for d in json.loads(done.stdout) if d.startswith(name + "@"))


def main() -> None:
    registry = os.environ["CM_TEST_REGISTRY"]
    with AzureStub() as azure:
        env = {**DEFAULT_JOB, **{k: v for k, v in os.environ.items() if k in DEFAULT_JOB}}
        env.update(
            PATH=os.environ["PATH"],
            HOME=os.environ.get("HOME", "/root"),
            DOCKER_HOST=os.environ["DOCKER_HOST"],
            SYSTEM_COLLECTIONURI=azure.collection_uri,
            ENDPOINT_URL_SYSTEMVSSCONNECTION=azure.collection_uri,
            ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN=DEMO_ACCESS_TOKEN,
            INPUT_ENDPOINT=azure.ingest_url,
            INPUT_PROTOCOL="defender",
            INPUT_TIMEOUTSECONDS="30",
        )
        step("pre-job (injected by the decorator): the job starts")
        env.update(run_shim(env, "pre-job"))
        step("the pipeline's own steps: docker build and docker push")
        tags = docker_build_and_push(env, registry)
        step("post-job (injected by the decorator): map what this job pushed, report to Defender")
        run_shim(env, "post-job")
        step("what the Defender stand-in received")
        for request in azure.requests_to("container-mappings"):
            print(json.dumps(request.json(), indent=2))
        step("the same job as a versioned report: container-mapping collect --verify")
        since = env.get("CONTAINERMAPPING_JOBSTART", "10m")
        subprocess.run(
            [sys.executable, "-m", "container_mapping", "collect", "--since", since, "--verify"],
            env={**os.environ, **env},
            check=False,
        )
        step("the mapping service: container-mapping serve (embedded default) and a local issuer")
        with mapping_service(env) as (service, token):
            azure.behaviour.oidc_token = token  # the token route now hands out a signed token
            step("post-job again, the task set to protocol: mapping-service")
            endpoint = f"{service.url}/v1/reports"
            run_shim({**env, "INPUT_PROTOCOL": "mapping-service", "INPUT_ENDPOINT": endpoint},
                     "post-job")  # fmt: skip
            operator_side(service, registry, tags[0], repo_digest(env, tags[0]), step)


if __name__ == "__main__":
    main()
