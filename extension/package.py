"""Build the extension's .vsix with the pinned tfx-cli, the Python the task needs vendored in.

A development tool, run from a checkout (it needs `vss-extension.json`, `extension/`, `task/`
and tfx-cli under `tools/tfx`, installed by `scripts/setup.sh`), so it is not part of the
installed package:

    python3 extension/package.py --publisher P --version 1.0.0 [--extension-id ID] [--output DIR]

The agent has no Python task handler, so the task is a Node shim (`task/index.js`) that runs
the package from `<task folder>/python/` with whatever `python3` the agent has. That
interpreter has nothing installed, so everything post-job imports must travel in the .vsix:
the modules reachable from `ENTRY_MODULES` by static import (found by reading their source,
not by importing them), and nothing else: no tests, no CLI, no service code.

Reproducible: tfx-cli stamps every zip entry with the current time and writes them in the
order its asynchronous file reads finish, so the archive it writes differs on every run even
when its contents do not. `normalise_zip` rewrites it with the entries in a fixed order and a
fixed timestamp; the same inputs then give the same bytes.

Exit codes: 0 built, 1 an error (a missing tool or file, an output that cannot be written),
2 a usage error (a bad flag value); each with one line on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import ast
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger("package")

PACKAGE = "container_mapping"
REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "vss-extension.json"
TASK_DIR = "task"
VENDOR_DIR = "python"
TFX = Path("tools/tfx/node_modules/.bin/tfx")

# What the shim runs (pre-job and post-job). Everything they import is vendored with them.
ENTRY_MODULES: tuple[str, ...] = ("container_mapping.task",)
# The files of the task folder the .vsix carries (anything else there, such as shim tests,
# stays out). The vendored code is added beside them under VENDOR_DIR.
TASK_FILE_PATTERNS = ("task.json", "*.js", "icon.png")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
_VERSION = re.compile(r"^(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,8})$")
# Every entry gets this timestamp: the earliest a zip can hold.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class PackagingError(Exception):
    """The .vsix could not be built: a missing tool or file, an output that cannot be written."""


class UsageError(PackagingError):
    """A flag's value is wrong: a bad publisher, id, version or output directory."""


# --- what to vendor -------------------------------------------------------------------------


def _module_path(package_dir: Path, module: str) -> Path | None:
    """The source file of `container_mapping.x.y` under package_dir, or None if there is none."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts)
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.Module, module: str, is_package: bool) -> Iterable[str]:
    """Absolute names of what a module imports, `if TYPE_CHECKING:` blocks left out.

    `from a import b` yields both `a` and `a.b`: b may be a submodule; a name that is not a
    module is dropped later because no file has it.
    """
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    here = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")


def runtime_modules(
    package_dir: Path, entries: Iterable[str] = ENTRY_MODULES
) -> tuple[list[str], set[str]]:
    """The package's modules reachable from `entries`, and the foreign top-level names seen.

    Parent packages come along (importing `a.b` runs `a/__init__.py`). The foreign names are
    what the code imports from outside the standard library; post-job must have none.
    """
    found: set[str] = set()
    foreign: set[str] = set()
    todo = list(entries)
    for entry in todo:
        if _module_path(package_dir, entry) is None:
            raise PackagingError(
                f"{entry} is not in {package_dir}: fix ENTRY_MODULES in extension/package.py"
            )
    while todo:
        module = todo.pop()
        path = _module_path(package_dir, module)
        if path is None or module in found:
            continue
        found.add(module)
        parent = module.rpartition(".")[0]
        if parent:
            todo.append(parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name in _imported_names(tree, module, path.name == "__init__.py"):
            top = name.partition(".")[0]
            if top == PACKAGE:
                todo.append(name)
            elif top and _is_foreign(top):
                foreign.add(top)
    return sorted(found), foreign


def _is_foreign(top: str) -> bool:
    """Outside the package and the standard library (unknowable before Python 3.10: no)."""
    stdlib = getattr(sys, "stdlib_module_names", None)
    return top not in (PACKAGE, "__future__") and stdlib is not None and top not in stdlib


def vendor(package_dir: Path, target: Path, modules: Iterable[str]) -> list[Path]:
    """Copy the modules' source files to target/container_mapping/..., nothing compiled."""
    copied = []
    for module in modules:
        source = _module_path(package_dir, module)
        if source is None:
            raise PackagingError(f"{module} has no source file under {package_dir}")
        destination = target / PACKAGE / source.relative_to(package_dir)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, destination)
        copied.append(destination)
    return copied


# --- the staged tree ------------------------------------------------------------------------


def check_identity(publisher: str, extension_id: str, version: str) -> None:
    """Refuse what the marketplace would refuse, before tfx-cli says it less clearly."""
    for label, value in (("publisher", publisher), ("extension id", extension_id)):
        if not _NAME.match(value):
            raise UsageError(
                f"{label} {value!r} is not valid: use letters, digits, '-' and '_' "
                "(starting with a letter or digit)"
            )
    if not _VERSION.match(version):
        raise UsageError(
            f"version {version!r} is not valid: use MAJOR.MINOR.PATCH with MINOR below 1000"
        )


def task_version(version: str, major: int) -> dict[str, int]:
    """The task's version for an extension version.

    Major stays task.json's own: the decorator templates ask for `@<major>`. Minor and Patch
    follow the extension, so every published extension version carries a higher task version
    and agents fetch the new task instead of a cached one: Minor = 1000 * major + minor,
    Patch = patch (extension 1.2.3 -> task <major>.1002.3), which keeps the order of versions.
    """
    ext_major, ext_minor, ext_patch = (int(part) for part in version.split("."))
    return {"Major": major, "Minor": 1000 * ext_major + ext_minor, "Patch": ext_patch}


def _write_json(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def stage(root: Path, staging: Path, publisher: str, extension_id: str, version: str) -> list[str]:
    """Lay out everything tfx-cli packs under staging; returns the vendored modules."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    manifest.update(publisher=publisher, id=extension_id, version=version)
    _write_json(staging / MANIFEST, manifest)

    for relative in _manifest_files(manifest):
        if relative == TASK_DIR:
            continue
        source = root / relative
        if not source.is_file():
            raise PackagingError(f"{MANIFEST} names {relative}, which is not in {root}")
        (staging / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staging / relative)

    task_dir = staging / TASK_DIR
    task_dir.mkdir()
    for pattern in TASK_FILE_PATTERNS:
        for source in sorted((root / TASK_DIR).glob(pattern)):
            shutil.copyfile(source, task_dir / source.name)
    if not (task_dir / "index.js").is_file():
        raise PackagingError(f"{root / TASK_DIR / 'index.js'} is missing: the task has no shim")
    task = json.loads((task_dir / "task.json").read_text(encoding="utf-8"))
    task["version"] = task_version(version, int(task["version"]["Major"]))
    _write_json(task_dir / "task.json", task)

    modules, foreign = runtime_modules(root / PACKAGE)
    if foreign:
        logger.warning(
            "post-job imports %s from outside the standard library; these are NOT vendored",
            ", ".join(sorted(foreign)),
        )
    vendor(root / PACKAGE, task_dir / VENDOR_DIR, modules)
    return modules


def _manifest_files(manifest: dict[str, Any]) -> list[str]:
    """Every file the manifest refers to: `files` entries, the icon and the details page."""
    paths = [entry["path"] for entry in manifest.get("files", [])]
    paths += list(manifest.get("icons", {}).values())
    paths += [item["path"] for item in manifest.get("content", {}).values()]
    return paths


# --- tfx-cli and the archive ----------------------------------------------------------------


def find_tfx(root: Path = REPO_ROOT) -> Path:
    tfx = root / TFX
    if not os.access(tfx, os.X_OK):
        raise PackagingError(
            f"tfx-cli is not installed at {tfx}: run `npm ci --prefix {root / 'tools/tfx'}`"
        )
    return tfx


def run_tfx(tfx: Path, staging: Path, output: Path) -> None:
    command = [
        str(tfx), "extension", "create", "--manifest-globs", MANIFEST,
        "--root", str(staging), "--output-path", str(output), "--no-prompt", "--no-color",
    ]  # fmt: skip
    environment = {**os.environ, "HOME": str(staging.parent)}  # tfx keeps a cache in ~/.tfx
    result = subprocess.run(  # noqa: S603 - a fixed program with arguments we built
        command, cwd=staging, env=environment, capture_output=True, text=True, check=False
    )
    if result.returncode != 0 or not output.is_file():
        detail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise PackagingError("tfx extension create failed: " + " | ".join(detail))


def _entry_order(name: str) -> tuple[int, str]:
    # [Content_Types].xml first, as Open Packaging Conventions readers expect; then by name.
    return (0 if name == "[Content_Types].xml" else 1, name)


def normalise_zip(path: Path) -> None:
    """Rewrite the archive with fixed entry order, timestamps and permissions."""
    with zipfile.ZipFile(path) as original:
        entries = [(info.filename, original.read(info)) for info in original.infolist()]
    entries.sort(key=lambda entry: _entry_order(entry[0]))
    temporary = path.with_suffix(".tmp")
    with zipfile.ZipFile(temporary, "w") as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.create_system = 3  # Unix, so the permission bits below are read
            if name.endswith("/"):
                info.external_attr = (0o40755 << 16) | 0x10
                info.compress_type = zipfile.ZIP_STORED
            else:
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    temporary.replace(path)


# --- the entry point ------------------------------------------------------------------------


def default_identity(root: Path = REPO_ROOT) -> tuple[str, str]:
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    return manifest["publisher"], manifest["id"]


def package_version(root: Path = REPO_ROOT) -> str:
    """`__version__` of the checkout's package, read from its source (nothing is imported)."""
    tree = ast.parse((root / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise PackagingError(f"{root / PACKAGE / '__init__.py'} sets no __version__ string")


def output_directory(path: Path | str) -> Path:
    """The directory the .vsix goes to, created if missing; refused if it cannot be."""
    directory = Path(path).resolve()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--output {path} is a file: name a directory (it is created if missing)")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PackagingError(
            f"cannot create the output directory {directory}: {err.strerror or err}; "
            "choose another --output"
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PackagingError(
            f"cannot write to the output directory {directory}: choose another --output"
        )
    return directory


def build_vsix(
    output_dir: Path | str,
    publisher: str | None = None,
    extension_id: str | None = None,
    version: str | None = None,
    *,
    root: Path = REPO_ROOT,
) -> Path:
    """Build `output_dir/<publisher>.<id>-<version>.vsix` and return its path.

    Publisher and id default to vss-extension.json's, the version to the package's; none of
    them is written back to a file of the checkout.
    """
    default_publisher, default_id = default_identity(root)
    publisher = default_publisher if publisher is None else publisher
    extension_id = default_id if extension_id is None else extension_id
    version = package_version(root) if version is None else version
    check_identity(publisher, extension_id, version)
    output = output_directory(output_dir) / f"{publisher}.{extension_id}-{version}.vsix"
    tfx = find_tfx(root)
    if output.is_dir():
        raise UsageError(f"{output} is a directory: remove it or choose another --output")
    with tempfile.TemporaryDirectory(prefix="cm-vsix-") as temporary:
        staging = Path(temporary) / "root"
        staging.mkdir()
        modules = stage(root, staging, publisher, extension_id, version)
        logger.info("vendored %d modules: %s", len(modules), ", ".join(modules))
        unfinished = Path(temporary) / output.name
        run_tfx(tfx, staging, unfinished)
        normalise_zip(unfinished)
        try:
            shutil.move(str(unfinished), output)
        except OSError as err:
            raise PackagingError(
                f"cannot write {output}: {err.strerror or err}; choose another --output"
            ) from None
    return output


def _not_empty(flag: str, default: str) -> Any:
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(
                f"must not be empty: give a value, or leave {flag} out to use {default}"
            )
        return text

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extension/package.py",
        description="Build the Azure DevOps extension (.vsix) from this checkout.",
        epilog="exit codes: 0 built, 1 error, 2 usage error (one line on stderr says what to do)",
    )
    parser.add_argument(
        "--publisher", metavar="P", type=_not_empty("--publisher", "vss-extension.json's"),
        help="your Marketplace publisher ID (default: vss-extension.json's)",
    )  # fmt: skip
    parser.add_argument(
        "--extension-id", metavar="ID", type=_not_empty("--extension-id", "vss-extension.json's"),
        help="extension id (default: vss-extension.json's)",
    )  # fmt: skip
    parser.add_argument(
        "--version", metavar="V", type=_not_empty("--version", "the package's version"),
        help="extension version MAJOR.MINOR.PATCH, MINOR below 1000 (default: the package's)",
    )  # fmt: skip
    parser.add_argument(
        "--output", metavar="DIR", default="dist", type=_not_empty("--output", "dist"),
        help="directory to write the .vsix to, created if missing (default: dist)",
    )  # fmt: skip
    parser.add_argument("-v", "--verbose", action="store_true", help="name the vendored modules")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Build the .vsix; print its path and size to stdout."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="package: %(levelname)s: %(message)s",
    )
    try:
        path = build_vsix(args.output, args.publisher, args.extension_id, args.version)
    except PackagingError as err:
        print(f"package: error: {err}", file=sys.stderr)
        return EXIT_USAGE if isinstance(err, UsageError) else EXIT_ERROR
    print(f"{path} ({path.stat().st_size} bytes)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
