"""The recorder: a watcher pre-job leaves behind, so that no push of the job is lost.

The engine keeps only its last 256 events; a job that pushes early and then runs a few hundred
containers has lost its push from that buffer by post-job. pre-job therefore starts this
watcher (`start`), detached: its own session, no handle of the step's (stdin, stdout and stderr
are /dev/null, every other descriptor closed), so the agent never waits for it. It follows the
engine's event stream from the job's start and appends each image `push` and `tag` event to a
file under `Agent.TempDirectory` (one JSON object a line, the engine's own fields).

It ends, whichever comes first, when post-job has read the file (post-job writes
`<file>.done`), when the agent process that ran pre-job is gone (a cancelled job), or after
`LIFETIME`; the file never grows past `MAX_FILE` (a last line says it was cut). When the
engine restarts, it follows the new engine from the last event it wrote. Nothing in it comes
from a later step: pre-job gives it the engine's address as the job started, and Python is
the interpreter the task itself runs on.

File format: a first line `{"recorder": 1, "pid", "since", "started"}`, then events, then
possibly `{"cut": true}`. `read` returns the events and whether the file can be trusted to
hold everything since the job started; post-job merges them with the engine's buffer.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

# pre-job imports this module for `start` alone: everything else imports inside the functions.

FILE_NAME = "container-mapping-recorder.jsonl"
MAX_FILE = 4 * 1024 * 1024
MAX_LINE = 16 * 1024
LIFETIME = 24 * 3600.0
POLL = 0.5
FILTERS = '{"type":["image"],"event":["push","tag"]}'
_HEADER_KEYS = ("recorder", "pid", "since")


def start(environ: Mapping[str, str], since: float) -> str | None:
    """Start the watcher for this job; return its file's path, or `None` when it cannot run.

    One `posix_spawn` in the caller (no `subprocess` import, no wait; bench/recorder.py
    measures it): stdin, stdout and stderr are /dev/null, every other descriptor the process
    holds is closed in the child, and the child starts its own session, so neither the agent's
    pipes nor the shim's process group reach it.
    """
    temp = environ.get("AGENT_TEMPDIRECTORY", "")
    socket_path = _unix_socket(environ)
    if not temp or not os.path.isabs(temp) or socket_path is None or not sys.executable:
        return None
    path = os.path.join(temp, FILE_NAME)
    argv = [sys.executable, "-I", "-S", "-c", _BOOT, _package_root(), path, socket_path]
    argv += [f"{since:.6f}", str(_grandparent())]
    null = os.devnull
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
    try:
        os.posix_spawn(sys.executable, argv, env, file_actions=actions, setsid=True)
    except (OSError, AttributeError, NotImplementedError):
        return None
    return path


def _inherited_fds() -> list[int]:
    """Descriptors above 2 a child would inherit (the agent may have passed some to the shim)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    found = []
    for name in names:
        if name.isdigit() and int(name) > 2:
            try:
                if os.get_inheritable(int(name)):
                    found.append(int(name))
            except OSError:
                continue
    return found


# `-I -S`: no user site, no PYTHON* variables, no site-packages; the package is put first.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from container_mapping.recorder import main; main(sys.argv[2:])"  # noqa: E501


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _unix_socket(environ: Mapping[str, str]) -> str | None:
    """The engine's socket when it is a local unix socket (the recorder speaks nothing else)."""
    host = environ.get("DOCKER_HOST", "")
    if environ.get("DOCKER_CONTEXT"):
        return None  # a context may name any engine: post-job alone resolves those
    if not host:
        return "/var/run/docker.sock" if os.path.exists("/var/run/docker.sock") else None
    if host.startswith("unix://") and os.path.isabs(host[len("unix://") :]):
        return host[len("unix://") :]
    return None


def _grandparent() -> int:
    """The agent's process: pre-job's parent is the shim (node), whose parent is the agent."""
    shim = os.getppid()
    try:
        with open(f"/proc/{shim}/stat", "rb") as handle:
            fields = handle.read(4096).rsplit(b")", 1)[1].split()
        return int(fields[1])
    except (OSError, IndexError, ValueError):
        return shim


# -- the watcher ----------------------------------------------------------------------------


def main(argv: list[str]) -> None:
    import threading

    path, socket_path, since, agent = argv[0], argv[1], float(argv[2]), int(argv[3])
    started = time.time()
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600
        )
    except OSError:
        return  # another recorder's file, or a trap left by a step: do nothing
    out = _Output(fd)
    out.write({"recorder": 1, "pid": os.getpid(), "since": since, "started": started})
    threading.Thread(target=_guard, args=(path, agent, started), daemon=True).start()
    threading.Thread(target=_watch_pushers, args=(out,), daemon=True).start()
    last = since
    while True:
        try:
            last = _follow(socket_path, last, out)
        except OSError:
            pass
        time.sleep(1.0)  # the engine is restarting, or not there yet


def _guard(path: str, agent: int, started: float) -> None:
    """End the process when post-job has read the file, the agent is gone, or time is up."""
    while True:
        time.sleep(POLL)
        if os.path.exists(path + ".done") or not _alive(agent):
            os._exit(0)
        if time.time() - started > LIFETIME or not os.path.exists(path):
            os._exit(0)


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not: where no init reaps, a dead child stays one)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = _proc_file(pid, "stat", 4096)
    return not stat or stat.rsplit(b")", 1)[-1].split()[:1] != [b"Z"]


def _recorder_alive(pid: int) -> bool:
    """Whether `pid` is a running recorder (not another process that took its number)."""
    return _alive(pid) and b"container_mapping.recorder" in _proc_file(pid, "cmdline", 4096)


class _Output:
    def __init__(self, fd: int) -> None:
        import threading

        self.fd = fd
        self.size = 0
        self.cut = False
        self.lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        import json

        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        with self.lock:
            if self.cut:
                return
            if self.size + len(line) > MAX_FILE - 64:
                line, self.cut = b'{"cut":true}\n', True
            os.write(self.fd, line)
            self.size += len(line)


# -- who pushes: the client process, seen while the push runs --------------------------------

PUSH_CLIENTS = frozenset({"docker", "podman", "buildah"})
JOB_KEYS = {"SYSTEM_JOBID": "job", "BUILD_BUILDID": "run", "SYSTEM_COLLECTIONURI": "org"}
PROC_POLL = 0.05
MAX_SEEN = 50_000


def _watch_pushers(out: _Output) -> None:
    """Every `PROC_POLL` seconds, each new `docker/podman/buildah … push` process and its job.

    When the engine's push event arrives the client has usually exited (measured: 1 push in 5
    found then), so clients are looked for while they run. A process's environment names its
    job (SYSTEM_JOBID, BUILD_BUILDID): readable for this user's processes (or all, as root).
    """
    seen: set[int] = set()
    while True:
        try:
            pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid not in seen:
                seen.add(pid)
                found = _pusher(pid)
                if found is not None:
                    out.write(found)
        if len(seen) > MAX_SEEN:
            seen = set(pids)
        time.sleep(PROC_POLL)


def _pusher(pid: int) -> dict[str, Any] | None:
    argv = _proc_file(pid, "cmdline", 16 * 1024).split(b"\0")
    if not argv or os.path.basename(argv[0]).decode("utf-8", "replace") not in PUSH_CLIENTS:
        return None
    if b"push" not in argv[1:4]:
        return None
    environ = _proc_file(pid, "environ", 256 * 1024).split(b"\0")
    job = {}
    for entry in environ:
        key, _, value = entry.partition(b"=")
        name = JOB_KEYS.get(key.decode("latin-1"))
        if name:
            job[name] = value.decode("utf-8", "replace")[:300]
    return {"pusher": 1, "pid": pid, "at": time.time(), "refs": _references(argv[2:40]), **job}


#: Flags whose value is a secret or a path, never a reference: their value is never kept.
_VALUE_FLAGS = frozenset(
    {b"--creds", b"--authfile", b"--cert-dir", b"--digestfile", b"--sign-by",
     b"--sign-passphrase-file", b"--encryption-key", b"--format", b"-f", b"--compression-format"}
)  # fmt: skip


def _references(args: list[bytes]) -> list[str]:
    """The arguments that can be what is pushed: not flags, not a flag's value, with a `/`.

    What is pushed names a repository (`registry/repository[:tag]`); a flag's value such as
    podman's `--creds user:password` never reaches the file.
    """
    found, skip = [], False
    for arg in args:
        if skip or not arg:
            skip = False
            continue
        if arg.startswith(b"-"):
            skip = arg in _VALUE_FLAGS
            continue
        if b"/" in arg and len(arg) <= 300 and arg.isascii():
            found.append(arg.decode("ascii"))
    return found[:20]


def _proc_file(pid: int, name: str, limit: int) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read(limit)
    except OSError:
        return b""


def _follow(socket_path: str, since: float, out: _Output) -> float:
    """Stream the engine's image events from `since` into `out`; return the last event's time."""
    import socket
    import urllib.parse

    query = urllib.parse.urlencode({"since": f"{since:.9f}", "filters": FILTERS})
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(socket_path)
    sock.sendall(f"GET /events?{query} HTTP/1.1\r\nHost: docker\r\n\r\n".encode())
    sock.settimeout(None)
    reader = sock.makefile("rb")
    status = reader.readline(MAX_LINE)
    if b" 200 " not in status:
        sock.close()
        return since
    chunked = False
    while True:
        header = reader.readline(MAX_LINE)
        if header in (b"\r\n", b"\n", b""):
            break
        if header.lower().startswith(b"transfer-encoding:") and b"chunked" in header.lower():
            chunked = True
    last = since
    for line in _lines(reader, chunked):
        event = _compact(line)
        if event is not None:
            out.write(event)
            last = max(last, event["timeNano"] / 1e9)
    sock.close()
    return last


def _lines(reader: Any, chunked: bool) -> Any:
    pending = b""
    while True:
        if chunked:
            size_line = reader.readline(MAX_LINE)
            if not size_line:
                return
            try:
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                return
            if size == 0:
                return
            data = reader.read(size + 2)[:size]
        else:
            data = reader.read1(65536) if hasattr(reader, "read1") else reader.read(1)
        if not data:
            return
        pending += data
        *lines, pending = pending.split(b"\n")
        if len(pending) > MAX_LINE:
            pending = b""
        yield from lines


def _compact(line: bytes) -> dict[str, Any] | None:
    import json

    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict) or raw.get("Type") != "image":
        return None
    actor = _object(raw.get("Actor"))
    attributes = _object(actor.get("Attributes"))
    nano = raw.get("timeNano")
    if raw.get("Action") not in ("push", "tag") or not isinstance(nano, int):
        return None
    return {
        "Type": "image",
        "Action": raw["Action"],
        "Actor": {
            "ID": str(actor.get("ID") or "")[:512],
            "Attributes": {"name": str(attributes.get("name") or "")[:512]},
        },
        "timeNano": nano,
    }


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- post-job's side ------------------------------------------------------------------------


class Recording(NamedTuple):
    events: list[dict[str, Any]]
    complete: bool  # holds every image event since the job's start
    problem: str | None  # why it cannot be trusted (missing, dead, corrupt, cut)
    pushers: list[dict[str, Any]] = []  # push clients seen running, with their job


def read(path: str, since: float) -> Recording:
    """The recorded events, and whether they cover the window from `since` on.

    Marks the file read (`<file>.done`), which ends the watcher. Reads at most `MAX_FILE`.
    """
    import json

    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(MAX_FILE + 1)
    except OSError:
        return Recording([], False, "the recorder's file is missing")
    _mark_done(path)
    lines = data.split(b"\n")
    header = _header(lines[0])
    if header is None:
        return Recording([], False, "the recorder's file is not one it wrote")
    events, pushers, bad, cut = [], [], 0, len(data) > MAX_FILE
    for line in lines[1:]:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(event, dict) and event.get("cut") is True:
            cut = True
        elif isinstance(event, dict) and event.get("pusher") == 1:
            pushers.append(event)
        elif isinstance(event, dict) and isinstance(event.get("timeNano"), int):
            events.append(event)
        else:
            bad += 1
    problem = None
    if cut:
        problem = "the recorder's file reached its size limit"
    elif bad:
        problem = f"the recorder's file has {bad} damaged lines"
    elif header["since"] > since + 1:
        problem = "the recorder started after the job"
    elif not _recorder_alive(int(header["pid"])):
        problem = "the recorder stopped before post-job"
    return Recording(events, problem is None, problem, pushers)


def _header(line: bytes) -> dict[str, float] | None:
    import json

    try:
        header = json.loads(line)
    except ValueError:
        return None
    if not isinstance(header, dict) or any(k not in header for k in _HEADER_KEYS):
        return None
    if header["recorder"] != 1 or not isinstance(header["pid"], int):
        return None
    if not isinstance(header["since"], (int, float)):
        return None
    return header


def _mark_done(path: str) -> None:
    try:
        os.close(
            os.open(path + ".done", os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        )
    except OSError:
        pass
