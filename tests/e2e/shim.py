"""Run `node task/index.js` the way the agent does, and read what it told the agent.

The agent starts the task's Node handler with the job's variables and the task's inputs in the
environment, reads `##vso[...]` lines from its output, and passes variables set by one step to
the later steps as environment variables. `run_task` and `carry_variables` do the same.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from container_mapping.agent import unescape_message, unescape_property

ROOT = Path(__file__).parents[2]
SHIM = ROOT / "task" / "index.js"
ACCESS_TOKEN = "job-access-token-0f3c9a77e1"  # a stand-in: never a real credential
_COMMAND = re.compile(r"^##vso\[(?P<name>[\w.]+)(?: (?P<props>[^\]]*))?\](?P<message>.*)$")


@dataclass(frozen=True)
class Command:
    name: str
    properties: dict[str, str]
    message: str


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def commands(self) -> list[Command]:
        return [c for c in (parse_command(line) for line in self.lines) if c is not None]

    def issues(self, kind: str) -> list[str]:
        return [
            c.message
            for c in self.commands
            if c.name == "task.logissue" and c.properties.get("type") == kind
        ]

    @property
    def warnings(self) -> list[str]:
        return self.issues("warning")

    @property
    def errors(self) -> list[str]:
        return self.issues("error")

    @property
    def failed(self) -> bool:
        return any(
            c.name == "task.complete" and c.properties.get("result") == "Failed"
            for c in self.commands
        )

    @property
    def plain_lines(self) -> list[str]:
        return [line for line in self.lines if not line.startswith("##vso[")]

    def variables(self) -> dict[str, str]:
        """Variables this step set, named as later steps see them in their environment."""
        return {
            env_name(c.properties["variable"]): c.message
            for c in self.commands
            if c.name == "task.setvariable"
        }


def parse_command(line: str) -> Command | None:
    match = _COMMAND.match(line)
    if match is None:
        return None
    props: dict[str, str] = {}
    for pair in filter(None, (match.group("props") or "").split(";")):
        key, _, value = pair.partition("=")
        props[key.strip()] = unescape_property(value)
    return Command(match.group("name"), props, unescape_message(match.group("message")))


def env_name(variable: str) -> str:
    return variable.replace(".", "_").replace(" ", "_").upper()


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not installed"
    return found


def pipeline_env(collection_uri: str, **extra: str) -> dict[str, str]:
    """What the agent gives a task: predefined variables, the job's token, the machine's PATH."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "SYSTEM_COLLECTIONURI": collection_uri,
        "SYSTEM_COLLECTIONID": "c0ffee00-0000-4000-8000-000000000001",
        "SYSTEM_TEAMPROJECT": "Contoso",
        "SYSTEM_TEAMPROJECTID": "7d1c6c39-5a1e-4c59-9c0e-2a4f1b0c0a01",
        "SYSTEM_HOSTTYPE": "build",
        "SYSTEM_PLANID": "4b1f0a8e-55c3-4c5b-9a43-0d6f8a1e2b31",
        "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
        "SYSTEM_JOBATTEMPT": "1",
        "SYSTEM_JOBNAME": "Build",
        "SYSTEM_DEFINITIONID": "42",
        "BUILD_DEFINITIONNAME": "web-app",
        "BUILD_BUILDID": "1234",
        "BUILD_BUILDNUMBER": "20261127.1",
        "BUILD_REPOSITORY_NAME": "web-app",
        "BUILD_REPOSITORY_URI": "https://dev.azure.com/fabrikam/Contoso/_git/web-app",
        "BUILD_SOURCEVERSION": "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f",
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "AGENT_OS": "Linux",
        "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN": ACCESS_TOKEN,
        "ENDPOINT_URL_SYSTEMVSSCONNECTION": collection_uri,
    }
    env.update(extra)
    return env


#: The agent's worker process, played by a shell: its own environment is what the agent started
#: with (the task reads the PATH there, on Linux), and it starts node with the step's one.
AGENT = '"$0" "$1"; exit $?'


def run_task(
    env: Mapping[str, str],
    command: str = "post-job",
    shim: Path = SHIM,
    timeout: float = 120,
    step_env: Mapping[str, str] | None = None,
) -> Run:
    """`node index.js` with `INPUT_COMMAND`; the other inputs come from `env`.

    `env` is the agent's and the task's environment; `step_env` is what earlier steps set on
    top of it (variables, a prepended PATH), which reaches node but not the agent itself.
    """
    agent_env = {**env, "INPUT_COMMAND": command}
    argv = [node(), str(shim)]
    if step_env:
        exports = " ".join(f'{k}="${{CM_STEP_{i}}}"' for i, k in enumerate(step_env))
        for i, value in enumerate(step_env.values()):
            agent_env[f"CM_STEP_{i}"] = value
        script = f'{exports} "$0" "$1"; exit $?'
    else:
        script = AGENT
    started = time.monotonic()
    done = subprocess.run(
        ["/bin/sh", "-c", script, *argv],
        env=agent_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - started)


def pre_job(env: Mapping[str, str]) -> dict[str, str]:
    """Run pre-job and return the environment post-job gets: `env` plus what pre-job set."""
    run = run_task(env, "pre-job")
    assert run.code == 0, run
    assert not run.warnings, run
    return {**env, **run.variables()}


def assert_secrets_kept(run: Run, *secrets: str) -> None:
    """Secrets appear only in `task.setsecret` lines, and those precede every other line."""
    for line in run.stdout.splitlines():
        if line.startswith("##vso[task.setsecret]"):
            continue
        for secret in secrets:
            assert secret not in line, f"secret text printed: {line[:80]}"
    for secret in secrets:
        assert secret not in run.stderr
    seen_other = False
    for line in run.lines:
        if line.startswith("##vso[task.setsecret]"):
            assert not seen_other, "a token was masked only after other output"
        else:
            seen_other = True
