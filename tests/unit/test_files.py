"""The build metadata scan: only the job's directories, only files of the job, always bounded."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from container_mapping.collect import files
from container_mapping.collect.conf import events_settings
from container_mapping.collect.files import JobFiles, scan, scan_roots
from container_mapping.model import CollectionWindow
from container_mapping.task import DIRECTORIES_VARIABLE, pre_job

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _window() -> CollectionWindow:
    now = datetime.now(timezone.utc)
    return CollectionWindow(now - timedelta(minutes=1), now + timedelta(seconds=5))


def _meta(path: Path, digest: str = D1, name: str = "r.example/app:1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"containerimage.digest": digest, "image.name": name}))
    return path


def test_pre_job_records_the_job_directories_read_only() -> None:
    lines: list[str] = []

    class Log:
        def set_variable(self, name: str, value: str, *, readonly: bool = False) -> None:
            lines.append(f"{name}={value} readonly={readonly}")

    env = {"BUILD_SOURCESDIRECTORY": "/w/1/s", "AGENT_TEMPDIRECTORY": "/w/_temp"}
    pre_job(Log(), datetime.now(timezone.utc), env)  # type: ignore[arg-type]
    assert f"{DIRECTORIES_VARIABLE}=/w/1/s;/w/_temp readonly=True" in lines


def test_a_pipeline_may_narrow_the_scan_but_not_widen_it(tmp_path: Path) -> None:
    job, other = tmp_path / "job", tmp_path / "other"
    (job / "out").mkdir(parents=True)
    other.mkdir()
    env = {
        files.ROOTS_ENV: str(job),
        files.PATHS_ENV: f"{job / 'out'};{other};/;{job}/../other;relative",
    }
    roots, notes = scan_roots(env)
    assert roots == [(job / "out").resolve()]
    assert len(notes) == 1 and "ignored 4 path(s)" in notes[0]
    # without pre-job's record nothing is trusted: a pipeline's list alone opens nothing
    alone, why = scan_roots({files.PATHS_ENV: str(other)})
    assert alone == [] and "ignored 1 path(s)" in why[0]
    assert scan_roots({}) == ([], [])


def test_only_files_written_in_the_window_count(tmp_path: Path) -> None:
    fresh = _meta(tmp_path / "a" / "meta.json")
    old = _meta(tmp_path / "old.json", D2, "r.example/old:1")
    then = time.time() - 3600
    os.utime(old, (then, then))
    (tmp_path / "iid").write_text(D2 + "\n")
    (tmp_path / "kaniko").write_text(f"r.example/k:2@{D1}\nnot a reference\n")
    found = scan([tmp_path], _window())
    assert {(c.kind, str(c.names[0])) for c in found.claims} == {
        ("buildkit-metadata", "r.example/app:1"),
        ("kaniko-name-with-digest", "r.example/k:2"),
    }
    assert fresh.exists() and found.digests == frozenset({D2})


def test_symlinks_large_files_and_deep_directories_are_not_read(tmp_path: Path) -> None:
    outside = _meta(tmp_path.parent / f"{tmp_path.name}-outside" / "m.json")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link.json").symlink_to(outside)
    (root / "linkdir").symlink_to(outside.parent)
    big = root / "big.json"
    big.write_text(
        json.dumps(
            {
                "containerimage.digest": D1,
                "image.name": "r.example/big:1",
                "x": "y" * files.MAX_FILE,
            }
        )
    )
    deep = root.joinpath(*["d"] * (files.MAX_DEPTH + 1))
    _meta(deep / "m.json")
    _meta(root.joinpath(*["d"] * files.MAX_DEPTH) / "ok.json", D2, "r.example/ok:1")
    found = scan([root], _window())
    assert [str(c.names[0]) for c in found.claims] == ["r.example/ok:1"]


def test_the_scan_stops_at_its_entry_budget_and_says_so(tmp_path: Path) -> None:
    crowd = tmp_path / "crowd"
    crowd.mkdir()
    for i in range(files.MAX_ENTRIES + 10):
        (crowd / f"f{i}").write_bytes(b"")
    found = scan([tmp_path], _window())
    assert found.claims == () and len(found.warnings) == 1 and "stopped after" in found.warnings[0]


def test_a_bake_file_names_each_target_and_a_bare_name_means_latest(tmp_path: Path) -> None:
    bake = {
        "app": {"containerimage.digest": D1, "image.name": "r.example/app"},
        "worker": {"containerimage.digest": D2, "image.name": "r.example/w:1,r.example/w:2"},
        "junk": {"containerimage.digest": "sha256:nope", "image.name": "r.example/j:1"},
    }
    (tmp_path / "bake.json").write_text(json.dumps(bake))
    found = JobFiles([tmp_path], []).scan(_window(), None)
    assert {(str(n), c.digest) for c in found.claims for n in c.names} == {
        ("r.example/app:latest", D1),
        ("r.example/w:1", D2),
        ("r.example/w:2", D2),
    }


def test_podmans_event_settings_are_read_from_the_engine_table(tmp_path: Path) -> None:
    system, user = tmp_path / "system.conf", tmp_path / "user.conf"
    system.write_text('[engine]\nevents_logger = "journald"\n[other]\nevents_logfile_path="/x"\n')
    user.write_text(
        '[engine]\n# a comment\nevents_logger="file" # file it is\n'
        'events_logfile_path = "/y/e.log"\n'
    )
    assert events_settings([system]) == ("journald", "")
    assert events_settings([system, user, tmp_path / "missing"]) == ("file", "/y/e.log")
