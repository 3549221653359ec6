"""Whether this host has anything a collector could read, told by a few `stat` calls.

Most jobs run where nothing holds a push: no Docker engine, no podman event log, no record of
pre-job's. There post-job's answer is known before any collector (or the data model they share)
is imported, which is most of what such a job's step costs (measured: Python's part of such a
post-job from 94 to 47 ms). Anything that could hold a push (an engine configured or listening,
a Docker config that may name a context, a podman event log, pre-job's record of the job's
directories) sends post-job the whole way, as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from container_mapping.collect.conf import podman_events_log

DOCKER_DEFAULT_SOCKET = "/var/run/docker.sock"
#: Set by pre-job for post-job: the job's directories (collect/files.py reads them)
JOB_DIRECTORIES_ENV = "CONTAINERMAPPING_JOBDIRECTORIES"


def nothing_to_collect(
    environ: Mapping[str, str],
    *,
    docker_socket: str = DOCKER_DEFAULT_SOCKET,
    podman_log: Path | None = None,
) -> bool:
    """True only when no collector could find a push on this host (see the module's text).

    `docker_socket` and `podman_log` stand for this host's (tests give their own; `None` is
    where podman's configuration says it writes, if it writes a file at all).
    """
    if sys.platform == "win32":
        return False  # the engine's named pipe is answered for elsewhere
    if any(environ.get(name, "").strip() for name in ("DOCKER_HOST", "DOCKER_CONTEXT")):
        return False
    if environ.get(JOB_DIRECTORIES_ENV):
        return False
    config_dir = environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    if os.path.lexists(os.path.join(config_dir, "config.json")):
        return False  # it may name a context: the engine resolves it
    if os.path.lexists(docker_socket):
        return False
    log = podman_log or podman_events_log(os.getuid())[0]
    return log is None or not os.path.lexists(log)
