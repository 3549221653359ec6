"""What `extension/package.py` decides without tfx-cli: which modules to vendor, versions, the
archive, and its flags (each bad value one line with its exit code)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from container_mapping import __version__

from ..packaging_tool import TOOL, packaging


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
    assert "container_mapping.cli" not in modules


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
    with pytest.raises(packaging.UsageError):
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


def test_the_version_defaults_to_the_package_s_read_from_source() -> None:
    assert packaging.package_version() == __version__


def test_the_installed_package_has_no_packaging_left() -> None:
    import importlib.util

    assert importlib.util.find_spec("container_mapping.packaging") is None
    assert TOOL.is_file()


@pytest.mark.parametrize("flag", ["--publisher", "--extension-id", "--version", "--output"])
def test_an_empty_flag_is_a_usage_error_not_the_default(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        packaging.main([flag, ""])
    assert exited.value.code == packaging.EXIT_USAGE
    assert f"argument {flag}: must not be empty: give a value, or leave {flag} out" in (
        capsys.readouterr().err
    )


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = packaging.main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return code, err.strip()


def test_an_output_naming_a_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "old.vsix"
    existing.write_bytes(b"keep me")
    code, line = _fails(["--output", str(existing)], capsys)
    assert code == packaging.EXIT_USAGE
    assert line == (
        f"package: error: --output {existing} is a file: name a directory "
        "(it is created if missing)"
    )
    assert existing.read_bytes() == b"keep me"


def test_an_output_below_a_file_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("")
    code, line = _fails(["--output", str(tmp_path / "file" / "dist")], capsys)
    assert code == packaging.EXIT_ERROR
    assert "cannot create the output directory" in line and "choose another --output" in line


def test_an_unwritable_output_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() == 0:  # root writes anywhere: /proc refuses even root
        target = Path("/proc/cm-test-dist")
    else:
        target = tmp_path / "read-only"
        target.mkdir(mode=0o555)
    code, line = _fails(["--output", str(target)], capsys)
    assert code == packaging.EXIT_ERROR
    assert "choose another --output" in line


def test_a_bad_version_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, line = _fails(["--version", "1.0"], capsys)
    assert code == packaging.EXIT_USAGE
    assert "version '1.0' is not valid: use MAJOR.MINOR.PATCH" in line


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
