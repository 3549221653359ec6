"""What packaging decides without tfx-cli: which modules to vendor, versions, the archive."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from container_mapping import packaging
from container_mapping.cli import build_parser
from container_mapping.errors import ConfigError


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "container_mapping"
    for name, text in {"__init__.py": "", **files}.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_scan_follows_absolute_relative_and_lazy_imports(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "task.py": "from container_mapping import agent\n"
            "def run():\n    from .sinks import defender\n",
            "agent.py": "import json\n",
            "sinks/__init__.py": "",
            "sinks/defender.py": "from ..http import client\n",
            "http.py": "client = 1\n",
            "cli.py": "from container_mapping import task\n",
            "service/__init__.py": "",
        },
    )
    modules, foreign = packaging.runtime_modules(package, ["container_mapping.task"])
    assert modules == [
        "container_mapping",
        "container_mapping.agent",
        "container_mapping.http",
        "container_mapping.sinks",
        "container_mapping.sinks.defender",
        "container_mapping.task",
    ]
    assert foreign == set()


def test_type_checking_imports_are_not_vendored_and_foreign_ones_are_named(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "task.py": "from typing import TYPE_CHECKING\nimport requests\n"
            "if TYPE_CHECKING:\n    import docker\n    from container_mapping import cli\n",
            "cli.py": "",
        },
    )
    modules, foreign = packaging.runtime_modules(package, ["container_mapping.task"])
    assert modules == ["container_mapping", "container_mapping.task"]
    assert foreign == {"requests"}


def test_a_missing_entry_module_is_an_error(tmp_path: Path) -> None:
    package = _package(tmp_path, {})
    with pytest.raises(packaging.PackagingError, match="ENTRY_MODULES"):
        packaging.runtime_modules(package, ["container_mapping.task"])


def test_the_real_task_needs_no_third_party_code() -> None:
    modules, foreign = packaging.runtime_modules(packaging.REPO_ROOT / "container_mapping")
    assert foreign == set()
    assert "container_mapping.task" in modules
    assert not {"container_mapping.cli", "container_mapping.packaging"} & set(modules)


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.1.0", (1, 1, 0)), ("1.0.0", (1, 1000, 0)), ("2.13.7", (1, 2013, 7))],
)
def test_task_version_follows_the_extension_version(
    version: str, expected: tuple[int, int, int]
) -> None:
    stamped = packaging.task_version(version, 1)
    assert (stamped["Major"], stamped["Minor"], stamped["Patch"]) == expected


def test_task_versions_keep_the_order_of_extension_versions() -> None:
    versions = ["0.1.0", "0.1.1", "0.2.0", "0.999.9", "1.0.0", "1.0.1", "2.0.0"]
    stamped = [tuple(packaging.task_version(v, 1).values()) for v in versions]
    assert stamped == sorted(stamped)
    assert len(set(stamped)) == len(stamped)


@pytest.mark.parametrize(
    ("publisher", "extension_id", "version"),
    [
        ("has space", "ok", "1.0.0"),
        ("ok", "", "1.0.0"),
        ("ok", "ok", "1.0"),
        ("ok", "ok", "1.1000.0"),
        ("ok", "ok", "v1.0.0"),
    ],
)
def test_bad_identity_is_refused(publisher: str, extension_id: str, version: str) -> None:
    with pytest.raises(ConfigError):
        packaging.check_identity(publisher, extension_id, version)


def test_normalised_zip_depends_only_on_contents(tmp_path: Path) -> None:
    def write(path: Path, order: list[str], when: tuple[int, ...]) -> bytes:
        with zipfile.ZipFile(path, "w") as archive:
            for name in order:
                info = zipfile.ZipInfo(name, date_time=when)  # type: ignore[arg-type]
                archive.writestr(info, b"" if name.endswith("/") else name.encode())
        packaging.normalise_zip(path)
        return path.read_bytes()

    names = ["task/", "task/index.js", "extension.vsixmanifest", "[Content_Types].xml"]
    first = write(tmp_path / "a.vsix", names, (2026, 11, 27, 9, 0, 0))
    second = write(tmp_path / "b.vsix", list(reversed(names)), (2025, 1, 2, 3, 4, 6))
    assert first == second
    with zipfile.ZipFile(tmp_path / "a.vsix") as archive:
        assert archive.namelist()[0] == "[Content_Types].xml"
        assert archive.read("task/index.js") == b"task/index.js"


def test_flags_take_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTAINER_MAPPING_PUBLISHER", "from-env")
    monkeypatch.setenv("CONTAINER_MAPPING_EXTENSION_VERSION", "1.2.3")
    args = build_parser().parse_args(["package", "--extension-id", "from-flag"])
    assert (args.publisher, args.extension_id, args.extension_version, args.output) == (
        "from-env",
        "from-flag",
        "1.2.3",
        "dist",
    )


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the raw scanlines of a PNG with a single IDAT chunk."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks[data[pos + 4 : pos + 8]] = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    width, height = struct.unpack(">II", chunks[b"IHDR"][:8])
    return width, height, zlib.decompress(chunks[b"IDAT"])


def test_the_committed_icon_is_what_make_icon_draws() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_icon", packaging.REPO_ROOT / "extension" / "make_icon.py"
    )
    assert spec is not None and spec.loader is not None
    make_icon = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icon)
    committed = _png_pixels((packaging.REPO_ROOT / "extension" / "icon.png").read_bytes())
    assert committed[:2] == (128, 128)
    assert committed == _png_pixels(make_icon.render())
