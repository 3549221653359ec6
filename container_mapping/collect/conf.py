"""The few settings read from containers.conf and storage.conf, without a TOML parser.

Python 3.9 has no TOML reader and the agent side takes no dependency: only `key = "value"`
lines of one table are read, which is how those files hold the settings used here (podman's
event log, buildah's storage root). Each file is read up to `MAX_CONF` bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAX_CONF = 256 * 1024
PODMAN_SYSTEM_CONFS = ("/usr/share/containers/containers.conf", "/etc/containers/containers.conf")
JOURNALD_NOTE = (
    "podman logs its events to the journal here, which is not read yet: set "
    'events_logger = "file" in containers.conf to have podman pushes mapped'
)


def table_values(files: Iterable[Path], table: str, keys: Iterable[str]) -> dict[str, str]:
    """`keys` of `[table]` as the last of `files` to set each says ("" when none does)."""
    found = dict.fromkeys(keys, "")
    for path in files:
        try:
            with path.open("rb") as handle:
                text = handle.read(MAX_CONF).decode("utf-8", "replace")
        except OSError:
            continue
        current = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("["):
                current = line.strip("[] ")
                continue
            key, sep, value = line.partition("=")
            if sep and current == table and key.strip() in found:
                found[key.strip()] = value.split("#")[0].strip().strip("\"'")
    return found


def podman_events_log(uid: int) -> tuple[Path | None, str | None]:
    """The file podman writes its events to for `uid`, or `None` (with a note when it matters):
    the journal backend is not read, and any other backend writes no file."""
    found = table_values(_podman_confs(uid), "engine", ("events_logger", "events_logfile_path"))
    logger, path = found["events_logger"], found["events_logfile_path"]
    if logger == "journald":
        return None, (JOURNALD_NOTE if Path("/usr/bin/podman").exists() else None)
    if logger not in ("file", ""):
        return None, None
    return (Path(path) if path else _default_podman_log(uid)), None


def events_settings(files: Iterable[Path]) -> tuple[str, str]:
    """`events_logger` and `events_logfile_path` of the `[engine]` table, the last file winning."""
    found = table_values(files, "engine", ("events_logger", "events_logfile_path"))
    return found["events_logger"], found["events_logfile_path"]


def _default_podman_log(uid: int) -> Path:
    if uid == 0:
        return Path("/run/libpod/events/events.log")
    return Path(f"/run/user/{uid}/libpod/tmp/events/events.log")


def _podman_confs(uid: int) -> list[Path]:
    files = [Path(p) for p in PODMAN_SYSTEM_CONFS]
    if uid != 0:
        import pwd

        try:
            home = pwd.getpwuid(uid).pw_dir
        except KeyError:
            return files
        files.append(Path(home) / ".config" / "containers" / "containers.conf")
    return files
