"""Failures of Azure DevOps calls, as causes and fixes a person can act on.

The SDK's exceptions carry no HTTP status (a 401 is recognisable only with an empty body), so
every client gets a response hook (msrest's documented `config.hooks`) that remembers, per
thread, the last status and `Retry-After`; `ServiceError` is built from those. Reads are retried
by the SDK (GET, DELETE, OPTIONS: three times, honouring `Retry-After`); a POST or PATCH answered
429 is tried once more here after its `Retry-After`, when that is short.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from container_mapping.errors import ApiError

logger = logging.getLogger(__name__)

PAT_VARIABLE = "AZURE_DEVOPS_EXT_PAT"
T = TypeVar("T")


class ServiceError(ApiError):
    """An Azure DevOps call failed; `cause` says what happened, `fix` what to do."""

    def __init__(self, cause: str, fix: str, status_code: int | None = None) -> None:
        super().__init__(f"{cause}; {fix}", status_code)
        self.cause = cause
        self.fix = fix


@dataclass
class _LastResponse:
    status: int | None = None
    retry_after: float | None = None


class Recorder:
    """What the last response of this thread said: status and `Retry-After` (msrest hook)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        last = self.last()
        last.status = int(response.status_code)
        last.retry_after = _seconds(response.headers.get("Retry-After"))
        return response

    def last(self) -> _LastResponse:
        if not hasattr(self._local, "last"):
            self._local.last = _LastResponse()
        value: _LastResponse = self._local.last
        return value

    def reset(self) -> None:
        self._local.last = _LastResponse()


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


_STATUS_IN_MESSAGE = re.compile(r"returned a (\d{3}) status code|too many (\d{3}) error")
_DENIED = {  # the fix for a 403, by the first word of what was being done
    "sharing": "sharing needs a member of the extension's Marketplace publisher: run as one, "
    "or share the extension with the organization from the publisher's Marketplace page",
    "unsharing": "unsharing needs a member of the extension's Marketplace publisher",
    "": "run as a Project Collection Administrator of the organization",
}
MAX_WAIT = 60.0  # longest Retry-After honoured for a POST/PATCH the SDK does not retry


@contextmanager
def converted(what: str, where: str, recorder: Recorder | None = None) -> Iterator[None]:
    """Turn the SDK's exceptions raised inside into `ServiceError` naming `what` and `where`."""
    try:
        yield
    except ServiceError:
        raise
    except Exception as err:
        raise _convert(err, what, where, recorder) from None


def call(function: Callable[[], T], what: str, where: str, recorder: Recorder | None = None) -> T:
    with converted(what, where, recorder):
        return function()


def write(function: Callable[[], T], what: str, where: str, recorder: Recorder) -> T:
    """A POST/PATCH/DELETE: the SDK does not retry a 429 on POST/PATCH, so wait once here."""
    recorder.reset()
    try:
        return call(function, what, where, recorder)
    except ServiceError as err:
        wait = recorder.last().retry_after
        if err.status_code != 429 or wait is None or wait > MAX_WAIT:
            raise
        logger.info("%s: throttled, waiting %gs (Retry-After) before one more try", where, wait)
        time.sleep(wait)
        recorder.reset()
        return call(function, what, where, recorder)


def status_of(err: BaseException, recorder: Recorder | None) -> int | None:
    from azure.devops.exceptions import AzureDevOpsAuthenticationError

    if isinstance(err, AzureDevOpsAuthenticationError):
        return 401
    if recorder is not None and recorder.last().status is not None:
        status = recorder.last().status
        if status is not None and status >= 400:
            return status
    match = _STATUS_IN_MESSAGE.search(str(err))
    return int(match.group(1) or match.group(2)) if match else None


def _transport(err: BaseException) -> BaseException | None:
    """The requests exception msrest wrapped (its `ClientRequestError.inner_exception`)."""
    import requests

    seen: BaseException | None = err
    for _ in range(4):
        if seen is None or isinstance(seen, requests.exceptions.RequestException):
            return seen
        seen = getattr(seen, "inner_exception", None) or seen.__cause__
    return None


def _timed_out(err: BaseException) -> bool:
    """requests reports reads that timed out on every retry as a ConnectionError."""
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    reason = getattr(err.args[0], "reason", None) if err.args else None
    return isinstance(reason, Urllib3Timeout)


def _convert(err: Exception, what: str, where: str, recorder: Recorder | None) -> ServiceError:
    import requests

    err = _transport(err) or err  # type: ignore[assignment]
    if isinstance(err, requests.exceptions.Timeout) or _timed_out(err):
        return ServiceError(
            f"{where}: no answer to {what} in time (each try of the SDK's)",
            "re-run later, or give a longer --request-timeout; a re-run does only what is left",
        )
    if isinstance(err, requests.exceptions.RetryError):
        return ServiceError(
            f"{where}: {what} kept failing (throttled or unavailable) after the SDK's retries",
            "re-run later; a re-run does only what is left",
            status_of(err, None),
        )
    if isinstance(err, requests.exceptions.ConnectionError):
        return ServiceError(f"{where}: cannot connect for {what}", "check the URL and network")
    status = status_of(err, recorder)
    cause, fix = _explain(status, what, recorder)
    detail = _message(err)
    return ServiceError(f"{where}: {cause}" + (f" ({detail})" if detail else ""), fix, status)


def _message(err: Exception) -> str:
    text = str(getattr(err, "message", "") or err).strip().splitlines()
    first = text[0] if text else ""
    return first[:200]


def _explain(status: int | None, what: str, recorder: Recorder | None) -> tuple[str, str]:
    if status == 401:
        return (
            f"the credential was refused for {what} (401)",
            f"renew the PAT in {PAT_VARIABLE} (scopes: Extensions read & manage, Graph read, "
            "Member Entitlement Management read, Project and Team read, Code read) or `az login`",
        )
    if status == 403:
        return (f"access denied for {what} (403)", _DENIED.get(what.split()[0], _DENIED[""]))
    if status == 404:
        return (f"not found: {what} (404)", "check the organization name or URL")
    if status == 429:
        wait = recorder.last().retry_after if recorder else None
        after = f", Retry-After {wait:g}s" if wait is not None else ""
        return (
            f"throttled during {what} (429{after})",
            "re-run later; a re-run does only what is left",
        )
    code = f" ({status})" if status else ""
    return (f"{what} failed{code}", "re-run with -v for details")
