"""The few settings read from containers.conf and storage.conf, without a TOML parser.

Python 3.9 has no TOML reader and the agent side takes no dependency: only `key = "value"`
lines of one table are read, which is how those files hold the settings used here (podman's
event log, buildah's storage root). Each file is read up to `MAX_CONF` bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

MAX_CONF = 256 * 1024


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
