"""The job's build metadata files: what BuildKit, kaniko, podman and buildah write after a push.

Those tools write what they pushed to files the pipeline names:
- BuildKit `--metadata-file`: JSON with `containerimage.digest` and `image.name` (names joined
  by commas; `docker buildx bake` nests one such object per target);
- kaniko `--image-name-with-digest-file`: one `registry/repository:tag@sha256:…` per line;
- podman/buildah `--digestfile`, kaniko `--digest-file`: the manifest digest alone, and
  BuildKit `--iidfile`: the image (config) digest alone. A bare digest names no repository: it
  is evidence for a name found elsewhere (buildah's storage, `buildah.py`).

Names are free, so files are known by their content, and only files written during the job
(modified inside the window) count. Where: the job's own directories as pre-job recorded them
(`ContainerMapping.JobDirectories`, read-only: `Build.SourcesDirectory` and
`Agent.TempDirectory` at the job's start), so no later step can point the scan elsewhere. A
pipeline narrows it with the variable `ContainerMapping.MetadataPaths` (paths separated by `;`,
each a file or directory inside those directories; others are ignored with a warning).

Bounded: breadth first, `MAX_DEPTH` levels below each root, `MAX_ENTRIES` directory entries,
`MAX_READS` files opened, `MAX_FILE` bytes each, `MAX_SECONDS` in all; symbolic links are
never followed, and `.git` and `node_modules` are not entered.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from container_mapping.collect.sources import JOB_DIRECTORIES_ENV
from container_mapping.errors import Error
from container_mapping.model import CollectionWindow
from container_mapping.reference import DIGEST_RE, ImageReference

ROOTS_VARIABLE = "ContainerMapping.JobDirectories"
PATHS_VARIABLE = "ContainerMapping.MetadataPaths"
ROOTS_ENV = JOB_DIRECTORIES_ENV
PATHS_ENV = "CONTAINERMAPPING_METADATAPATHS"
SEPARATOR = ";"
MAX_DEPTH = 4
MAX_ENTRIES = 5000
MAX_READS = 2000
MAX_FILE = 64 * 1024
MAX_SECONDS = 0.5
MAX_CLAIMS = 200
_SKIPPED_DIRECTORIES = frozenset({".git", "node_modules"})


@dataclass(frozen=True)
class Claim:
    """What one file says was pushed: names and a manifest digest, to be confirmed."""

    names: tuple[ImageReference, ...]
    digest: str
    kind: str  # "buildkit-metadata" or "kaniko-name-with-digest"
    path: str


@dataclass(frozen=True)
class Scan:
    claims: tuple[Claim, ...] = ()
    digests: frozenset[str] = frozenset()  # bare digests: digest files and image id files
    warnings: tuple[str, ...] = ()


def scan_roots(environ: Mapping[str, str]) -> tuple[list[Path], list[str]]:
    """The directories to scan, and why any asked-for path was not taken.

    Only pre-job's record is trusted; the pipeline's own list may only narrow it.
    """
    given = [_resolved(Path(p)) for p in environ.get(ROOTS_ENV, "").split(SEPARATOR)]
    trusted = [p for p in given if p is not None]
    asked = [p.strip() for p in environ.get(PATHS_ENV, "").split(SEPARATOR) if p.strip()]
    if not asked:
        return trusted, []
    roots, ignored = [], []
    for text in asked:
        path = _resolved(Path(text))
        if path is not None and any(path == t or t in path.parents for t in trusted):
            roots.append(path)
        else:
            ignored.append(text[:200])
    notes = []
    if ignored:
        notes.append(
            f"{PATHS_VARIABLE}: ignored {len(ignored)} path(s) outside the job's directories "
            f"(Build.SourcesDirectory, Agent.TempDirectory): {', '.join(ignored[:3])}"
        )
    return roots, notes


def _absolute(text: str) -> bool:
    return bool(text) and os.path.isabs(text) and "\0" not in text


def _resolved(path: Path) -> Path | None:
    if not _absolute(str(path)):
        return None
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None


def scan(roots: list[Path], window: CollectionWindow, deadline: float | None = None) -> Scan:
    """Every claim and bare digest in files written inside `window` under `roots`."""
    stop = time.monotonic() + MAX_SECONDS
    if deadline is not None:
        stop = min(stop, deadline)
    since, until = window.since.timestamp(), window.until.timestamp()
    claims: dict[tuple[str, tuple[ImageReference, ...]], Claim] = {}
    digests: set[str] = set()
    budget = _Budget(stop)
    for path in _files(roots, since, until, budget):
        if budget.reads >= MAX_READS or len(claims) >= MAX_CLAIMS:
            break
        budget.reads += 1
        for found in _read(path):
            if isinstance(found, Claim):
                claims.setdefault((found.digest, found.names), found)
            else:
                digests.add(found)
    warnings = (budget.note(),) if budget.note() else ()
    return Scan(tuple(claims.values()), frozenset(digests), warnings)


class _Budget:
    def __init__(self, stop: float) -> None:
        self.stop = stop
        self.entries = 0
        self.reads = 0
        self.cut = ""

    def spent(self) -> bool:
        if self.entries >= MAX_ENTRIES:
            self.cut = f"{MAX_ENTRIES} entries"
        elif time.monotonic() >= self.stop:
            self.cut = "its time"
        return bool(self.cut)

    def note(self) -> str:
        if not self.cut:
            return ""
        return (
            f"the build metadata scan stopped after {self.cut}: name the files in "
            f"{PATHS_VARIABLE} to have them read first"
        )


def _files(roots: list[Path], since: float, until: float, budget: _Budget) -> Iterator[Path]:
    """Regular files modified in [since, until], small enough, breadth first."""
    queue = deque((root, 0) for root in dict.fromkeys(roots))
    while queue and not budget.spent():
        path, depth = queue.popleft()
        try:
            if not path.is_dir():  # a file named in PATHS_VARIABLE
                if _fits(os.lstat(path), since, until):
                    yield path
                continue
            with os.scandir(path) as entries:
                for entry in entries:
                    budget.entries += 1
                    if budget.spent():
                        return
                    if entry.is_dir(follow_symlinks=False):
                        if depth < MAX_DEPTH and entry.name not in _SKIPPED_DIRECTORIES:
                            queue.append((Path(entry.path), depth + 1))
                    elif entry.is_file(follow_symlinks=False) and _fits(
                        entry.stat(follow_symlinks=False), since, until
                    ):
                        yield Path(entry.path)
        except OSError:
            continue


def _fits(stat: os.stat_result, since: float, until: float) -> bool:
    import stat as st

    return (
        st.S_ISREG(stat.st_mode)
        and 0 < stat.st_size <= MAX_FILE
        and since <= stat.st_mtime <= until + 1
    )


def _read(path: Path) -> list[Claim | str]:
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError:
        return []
    if len(data) > MAX_FILE:
        return []
    text = data.decode("utf-8", "replace").strip()
    if DIGEST_RE.fullmatch(text):
        return [text]
    if text.startswith("{"):
        return _buildkit(text, str(path))
    if "@sha256:" in text:
        return _kaniko(text, str(path))
    return []


def _buildkit(text: str, path: str) -> list[Claim | str]:
    try:
        document = json.loads(text)
    except ValueError:
        return []
    if not isinstance(document, dict):
        return []
    targets = [document] + [v for v in document.values() if isinstance(v, dict)]
    found: list[Claim | str] = []
    for target in targets[:50]:
        claim = _buildkit_target(target, path)
        if claim is not None:
            found.append(claim)
    return found


def _buildkit_target(target: Mapping[str, Any], path: str) -> Claim | None:
    digest = target.get("containerimage.digest")
    names = target.get("image.name")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest) or not isinstance(names, str):
        return None
    refs = _references(names.split(","))
    return Claim(refs, digest, "buildkit-metadata", path) if refs else None


def _kaniko(text: str, path: str) -> list[Claim | str]:
    found: list[Claim | str] = []
    for line in text.splitlines()[:50]:
        try:
            ref = ImageReference.parse(line.strip())
        except Error:
            continue
        if ref.digest is not None and ref.tag is not None:
            found.append(
                Claim((ref.with_digest(None),), ref.digest, "kaniko-name-with-digest", path)
            )
    return found


def _references(texts: list[str]) -> tuple[ImageReference, ...]:
    refs = []
    for text in texts[:20]:
        try:
            ref = ImageReference.parse(text.strip())
        except Error:
            continue
        if ref.tag is None and ref.digest is None:  # pushed as the engine does: `latest`
            ref = ImageReference(ref.registry, ref.repository, "latest")
        if ref.tag is not None:
            refs.append(ref.with_digest(None))
    return tuple(dict.fromkeys(refs))


class JobFiles:
    """One scan of the job's directories, shared by the collectors that read it."""

    def __init__(self, roots: list[Path], notes: list[str]) -> None:
        self.roots = roots
        self.notes = tuple(notes)
        self._scan: Scan | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> JobFiles:
        return cls(*scan_roots(environ))

    def scan(self, window: CollectionWindow, deadline: float | None) -> Scan:
        if self._scan is None:
            found = scan(self.roots, window, deadline) if self.roots else Scan()
            self._scan = Scan(found.claims, found.digests, self.notes + found.warnings)
        return self._scan
