"""The .vsix as the marketplace and the agent get it: built with the pinned tfx-cli, unzipped,
read, and run.

The last test runs the task straight from the unzipped .vsix the way the agent does — the
Node shim, the agent's environment variables, logging commands on stdout — with the bare
system `python3` (no virtual environment, no user site, PYTHONPATH unset, cwd outside the
checkout), against the real engine and registry and a local stand-in for the token and
ingestion endpoints. The pushed digest must arrive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from container_mapping.agent import unescape_property

from ..e2e.stubs import INGEST_PATH, AzureStub
from ..packaging_tool import TOOL, packaging
from .images import build, push

pytestmark = pytest.mark.tfx
ROOT = Path(__file__).resolve().parents[2]
TASK = json.loads((ROOT / "task" / "task.json").read_text())
GUID = TASK["id"]
PUBLISHER, EXTENSION_ID, VERSION = "cm-test-publisher", "cm-test-extension", "3.4.5"
VSIX_NS = {"v": "http://schemas.microsoft.com/developer/vsx-schema/2011"}
# The whole .vsix; today about 75 KB. A jump means something was vendored that should not be.
SIZE_BUDGET = 150_000
SYSTEM_PYTHON = "/usr/bin/python3"


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


def _build(output: Path, publisher: str, extension_id: str, version: str) -> Path:
    try:
        packaging.find_tfx()
    except packaging.PackagingError as err:
        _missing(str(err))
    for needed in ("task/index.js", "container_mapping/task.py"):
        if not (ROOT / needed).is_file():
            _missing(f"{needed} is not in the checkout yet: the task cannot be packaged")
    return packaging.build_vsix(output, publisher, extension_id, version)


@pytest.fixture(scope="module")
def vsix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("vsix")
    path = _build(output, publisher=PUBLISHER, extension_id=EXTENSION_ID, version=VERSION)
    print(f"\n.vsix size: {path.stat().st_size} bytes ({path.name})")
    return path


@pytest.fixture(scope="module")
def unzipped(vsix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(vsix) as archive:
        archive.extractall(target)
    return target


def _vsomanifest(unzipped: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((unzipped / "extension.vsomanifest").read_text())
    return document


def test_file_name_and_identity(vsix: Path, unzipped: Path) -> None:
    assert vsix.name == f"{PUBLISHER}.{EXTENSION_ID}-{VERSION}.vsix"
    tree = ElementTree.parse(unzipped / "extension.vsixmanifest")
    identity = tree.find("v:Metadata/v:Identity", VSIX_NS)
    assert identity is not None
    assert identity.attrib["Publisher"] == PUBLISHER
    assert identity.attrib["Id"] == EXTENSION_ID
    assert identity.attrib["Version"] == VERSION
    flags = tree.find("v:Metadata/v:GalleryFlags", VSIX_NS)
    assert flags is not None and "Public" not in (flags.text or ""), "decorators need private"


def test_contributions(unzipped: Path) -> None:
    contributions = _vsomanifest(unzipped)["contributions"]
    tasks = [c for c in contributions if c["type"] == "ms.vss-distributed-task.task"]
    assert [t["properties"]["name"] for t in tasks] == [packaging.TASK_DIR]
    decorators = {
        target: c["properties"]["template"]
        for c in contributions
        if c["type"] == "ms.azure-pipelines.pipeline-decorator"
        for target in c["targets"]
    }
    assert sorted(decorators) == sorted(
        f"ms.azure{kind}-agent-job.{when}-job-tasks"
        for kind in ("-pipelines", "-release-pipelines")
        for when in ("pre", "post")
    )
    for template in decorators.values():
        assert (unzipped / template).is_file()
    assert _vsomanifest(unzipped).get("scopes", []) == []


def test_templates_are_addressable(unzipped: Path) -> None:
    tree = ElementTree.parse(unzipped / "extension.vsixmanifest")
    addressable = {
        asset.attrib["Path"]
        for asset in tree.findall("v:Assets/v:Asset", VSIX_NS)
        if asset.attrib.get("Addressable") == "true"
    }
    templates = {
        c["properties"]["template"]
        for c in _vsomanifest(unzipped)["contributions"]
        if "template" in c.get("properties", {})
    }
    assert len(templates) == 4
    assert templates <= addressable


def _task_references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "task":
                yield str(value)
            yield from _task_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _task_references(item)


def test_every_template_injects_exactly_the_packaged_task(unzipped: Path) -> None:
    task = json.loads((unzipped / "task" / "task.json").read_text())
    assert task["id"] == GUID
    for contribution in _vsomanifest(unzipped)["contributions"]:
        template = contribution.get("properties", {}).get("template")
        if template is None:
            continue
        text = (unzipped / template).read_text()
        assert list(_task_references(yaml.safe_load(text))) == [f"{task['id']}@1"]
        guids = set(
            re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
        )
        assert guids == {task["id"]}, f"{template} names another task"


def test_task_folder_has_the_shim_and_only_the_code_post_job_needs(vsix: Path) -> None:
    # Read from the archive: the bare run below may leave __pycache__ in the unzipped copy.
    with zipfile.ZipFile(vsix) as archive:
        files = [n for n in archive.namelist() if not n.endswith("/")]
        task = json.loads(archive.read(f"{packaging.TASK_DIR}/task.json"))
    assert f"{packaging.TASK_DIR}/index.js" in files
    assert task["version"] == {"Major": TASK["version"]["Major"], "Minor": 3004, "Patch": 5}
    prefix = f"{packaging.TASK_DIR}/{packaging.VENDOR_DIR}/container_mapping/"
    names = {n.removeprefix(prefix) for n in files if n.startswith(prefix)}
    assert {"__init__.py", "task.py", "agent.py", "capture.py"} <= names
    assert all(name.endswith(".py") for name in names), "sources only: no bytecode, no data"
    assert not [n for n in files if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    for unwanted in ("cli.py", "diagnostics.py", "render.py", "packaging.py", "__main__.py"):
        assert unwanted not in names
    # Operator-side code stays out (azdo/ holds the job's OIDC token client: it is in).
    assert not any(name.startswith(("service/", "tests/")) for name in names)


def test_every_vendored_module_imports_on_a_bare_python3(unzipped: Path, tmp_path: Path) -> None:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        _missing(f"{SYSTEM_PYTHON} is not on this machine")
    vendored = unzipped / packaging.TASK_DIR / packaging.VENDOR_DIR
    modules = sorted(
        ".".join(p.relative_to(vendored).with_suffix("").parts).removesuffix(".__init__")
        for p in vendored.rglob("*.py")
    )
    script = f"import sys; sys.path.insert(0, {str(vendored)!r})\n" + "\n".join(
        f"import {name}" for name in modules
    )
    result = subprocess.run(
        [SYSTEM_PYTHON, "-E", "-s", "-S", "-B", "-c", script],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(modules) >= 10


def test_the_checkout_is_not_modified(tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in (ROOT / "vss-extension.json", ROOT / "task/task.json")}
    _build(tmp_path, publisher="someone-else", extension_id="other", version="9.9.9")
    assert {p: p.read_bytes() for p in before} == before


def test_the_tool_runs_from_the_command_line(vsix: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL), "--publisher", PUBLISHER, "--extension-id", EXTENSION_ID,
         "--version", VERSION, "--output", str(tmp_path / "dist")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    built = tmp_path / "dist" / vsix.name
    assert done.stdout == f"{built} ({built.stat().st_size} bytes)\n"
    assert built.read_bytes() == vsix.read_bytes()


def test_same_inputs_give_the_same_bytes(vsix: Path, tmp_path: Path) -> None:
    again = _build(tmp_path, publisher=PUBLISHER, extension_id=EXTENSION_ID, version=VERSION)
    assert (
        hashlib.sha256(again.read_bytes()).hexdigest()
        == hashlib.sha256(vsix.read_bytes()).hexdigest()
    )


def test_size_stays_small(vsix: Path) -> None:
    assert vsix.stat().st_size < SIZE_BUDGET


# --- the task, run from the .vsix with a bare python3 -----------------------------------------


@pytest.fixture
def stand_in() -> Iterator[AzureStub]:
    """Azure DevOps' token route and Defender's ingestion route, on loopback."""
    with AzureStub() as stub:
        yield stub


def _agent_environment(stub: AzureStub, docker_host: str, home: Path) -> dict[str, str]:
    """What the agent gives a task, and nothing of the machine running the tests."""
    return {
        "PATH": "/usr/bin:/bin",  # system python3 and node; no pyenv, no venv
        "HOME": str(home),
        "PYTHONNOUSERSITE": "1",
        "DOCKER_HOST": docker_host,
        "AGENT_OS": "Linux",
        "AGENT_TEMPDIRECTORY": str(home),
        "AGENT_JOBSTATUS": "Succeeded",
        "SYSTEM_COLLECTIONURI": stub.collection_uri,
        "SYSTEM_COLLECTIONID": str(uuid.uuid4()),
        "SYSTEM_TEAMPROJECT": "project",
        "SYSTEM_TEAMPROJECTID": str(uuid.uuid4()),
        "SYSTEM_HOSTTYPE": "build",
        "SYSTEM_PLANID": str(uuid.uuid4()),
        "SYSTEM_JOBID": str(uuid.uuid4()),
        "SYSTEM_JOBNAME": "Build",
        "SYSTEM_DEFINITIONID": "7",
        "BUILD_DEFINITIONNAME": "images",
        "BUILD_BUILDID": "42",
        "BUILD_BUILDNUMBER": "20261127.1",
        "BUILD_REPOSITORY_URI": "https://dev.azure.com/org/project/_git/images",
        "BUILD_REPOSITORY_ID": str(uuid.uuid4()),
        "BUILD_REPOSITORY_PROVIDER": "TfsGit",
        "BUILD_SOURCEVERSION": "0123456789abcdef0123456789abcdef01234567",
        "BUILD_SOURCEBRANCH": "refs/heads/main",
        "ENDPOINT_URL_SYSTEMVSSCONNECTION": stub.collection_uri,
        "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN": "job-access-token",
        "INPUT_ENDPOINT": stub.ingest_url,
        "INPUT_PROTOCOL": "defender",
        "INPUT_TIMEOUTSECONDS": "30",
        "INPUT_FAILONERROR": "true",  # a fault shows as an error and exit code, not a warning
    }


_SETVARIABLE = re.compile(r"^##vso\[task\.setvariable variable=([^;\]]+)[^\]]*\](.*)$")


def _run_task(
    unzipped: Path, environment: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(unzipped / packaging.TASK_DIR / "index.js")],
        env=environment, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _variables(stdout: str) -> dict[str, str]:
    """Variables a step set, as the next step's environment gets them."""
    found = {}
    for line in stdout.splitlines():
        match = _SETVARIABLE.match(line.strip())
        if match:
            name = unescape_property(match.group(1))
            found[name.replace(".", "_").replace(" ", "_").upper()] = match.group(2)
    return found


@pytest.mark.docker
@pytest.mark.node
def test_the_packaged_task_runs_on_a_bare_python3(
    unzipped: Path,
    stand_in: AzureStub,
    docker_host: str,
    docker_client: Any,
    unique_repo: str,
    tmp_path: Path,
) -> None:
    if not shutil.which("node", path="/usr/bin:/bin") or not os.access(SYSTEM_PYTHON, os.X_OK):
        _missing("the bare run needs /usr/bin/node and /usr/bin/python3")
    environment = _agent_environment(stand_in, docker_host, tmp_path)
    bare = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import container_mapping"],
        env=environment, cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bare.returncode != 0, "the system python3 must not find the package outside the .vsix"

    pre = _run_task(unzipped, {**environment, "INPUT_COMMAND": "pre-job"}, tmp_path)
    assert pre.returncode == 0, pre.stdout + pre.stderr
    variables = _variables(pre.stdout)
    assert "CONTAINERMAPPING_JOBSTART" in variables, pre.stdout

    reference = f"{unique_repo}:v1"
    build(docker_client, reference)
    digest = push(docker_client, reference)

    post_environment = {**environment, **variables, "INPUT_COMMAND": "post-job"}
    post = _run_task(unzipped, post_environment, tmp_path)
    assert post.returncode == 0, post.stdout + post.stderr
    # Warnings may come from other tests' pushes on the shared engine; a fault would be an error.
    assert "##vso[task.logissue type=error" not in post.stdout, post.stdout

    ingested = stand_in.requests_to(INGEST_PATH)
    assert len(ingested) == 1, stand_in.received
    headers = {k.lower(): v for k, v in ingested[0].headers.items()}
    assert headers["authorization"] == f"Bearer {stand_in.behaviour.oidc_token}"
    images = ingested[0].json()["dockerImages"]
    assert any(digest in line and unique_repo in line for line in images), images
