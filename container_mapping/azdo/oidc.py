"""The job's OIDC token, asked of Azure DevOps with the job's own access token.

Route (the one Microsoft's Defender task uses): `POST {collection}{projectId}/_apis/
distributedtask/hubs/{hostType}/plans/{planId}/jobs/{jobId}/oidctoken?api-version=7.1-preview.1`
with `Authorization: Bearer <access token>` and an all-zero `authorizationId`.

Every way this fails gets its own message naming the cause and the fix: users of Microsoft's
task saw a 302 to a sign-in page (an access token the organization did not accept) and builds
failing on a token request. Nothing here puts a token, a header or a response body in a message.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from container_mapping.errors import ApiError

if TYPE_CHECKING:  # the HTTP client is imported only when a token is asked for
    import threading

    from container_mapping.http import HttpClient, RetryPolicy
    from container_mapping.model import PipelineContext

API_VERSION = "7.1-preview.1"
ACCESS_TOKEN_VARIABLES = (
    "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN",
    "SYSTEM_ACCESSTOKEN",
)
_FIX_SCOPE = (
    "check the organization policy 'Third-party application access via OAuth' and the "
    "pipeline's job authorization scope (Project settings > Pipelines > Settings), and that "
    "the agent can reach Azure DevOps"
)


MAX_TOKEN_ANSWER = 64 * 1024  # a token is a few KiB; the route's JSON wraps one


class TokenError(ApiError):
    """The job's OIDC token could not be had; the message says why and what to do."""


def is_token_text(value: str) -> bool:
    """Printable ASCII without spaces: what every bearer token is (RFC 6750's token68 and more).

    A value with a line break or a control character cannot be masked whole by the agent, nor
    sent in a header: it is refused, never echoed.
    """
    return value.isascii() and value.isprintable() and " " not in value


def access_token(environ: Mapping[str, str]) -> str | None:
    """The job's access token, which the agent gives every task without YAML mapping."""
    for name in ACCESS_TOKEN_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    return None


def token_url(context: PipelineContext) -> str:
    """The token route for this job; `TokenError` when a variable it needs is missing."""
    needed = {
        "SYSTEM_COLLECTIONURI": context.organization_url,
        "SYSTEM_TEAMPROJECTID": context.project_id,
        "SYSTEM_HOSTTYPE": context.host_type,
        "SYSTEM_PLANID": context.plan_id,
        "SYSTEM_JOBID": context.job_id,
    }
    missing = [name for name, value in needed.items() if not value]
    if missing:
        raise TokenError(
            f"cannot ask for the job's OIDC token: {', '.join(missing)} not set; "
            "this step must run as a task inside an Azure Pipelines job"
        )
    base = str(context.organization_url)
    base = base if base.endswith("/") else base + "/"
    path = "/".join(
        urllib.parse.quote(str(part), safe="")
        for part in (
            context.project_id,
            "_apis",
            "distributedtask",
            "hubs",
            context.host_type,
            "plans",
            context.plan_id,
            "jobs",
            context.job_id,
            "oidctoken",
        )
    )
    return f"{base}{path}?api-version={API_VERSION}"


class OidcTokenClient:
    """Asks the token route once per job (retrying only what the server asks to retry)."""

    def __init__(self, http: HttpClient, retry: RetryPolicy | None = None) -> None:
        self.http = http
        self.retry = retry or http.retry

    def request(self, context: PipelineContext, token: str | None, deadline: float | None) -> str:
        if not token:
            raise TokenError(
                "no job access token in the environment (ENDPOINT_AUTH_PARAMETER_"
                "SYSTEMVSSCONNECTION_ACCESSTOKEN or SYSTEM_ACCESSTOKEN); run this step as the "
                "container-mapping task, which the agent gives the token to"
            )
        if not is_token_text(token):
            raise TokenError(
                "the job access token in the environment has characters no token has (a line "
                "break or a control character); it was not sent. Does an earlier step set "
                "System.AccessToken?"
            )
        from container_mapping.http import TransportError, redact

        url = token_url(context)
        where = f"of {redact(str(context.organization_url))}"
        try:
            response = self.http.request(
                "POST",
                url,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                json={"authorizationId": "00000000-0000-0000-0000-000000000000"},
                deadline=deadline,
                retry=self.retry,
                max_body=MAX_TOKEN_ANSWER,
            )
        except TransportError as err:
            reason = str(err).removeprefix(f"{redact(url)}: ")
            raise TokenError(
                f"the OIDC token route {where} did not answer ({reason}); {_FIX_SCOPE}"
            ) from err
        if 300 <= response.status < 400:
            raise TokenError(
                f"the OIDC token route {where} redirected (HTTP {response.status}) instead of "
                f"answering, usually to a sign-in page: the job access token was not accepted; "
                f"{_FIX_SCOPE}",
                response.status,
            )
        if response.status in (401, 403):
            raise TokenError(
                f"the OIDC token route {where} refused the job access token (HTTP "
                f"{response.status}); {_FIX_SCOPE}",
                response.status,
            )
        if not response.ok:
            raise TokenError(
                f"the OIDC token route {where} answered HTTP {response.status}; "
                "Azure DevOps may be having trouble, the next run will try again",
                response.status,
            )
        return _token_from(response.body, where)


def _token_from(body: bytes, where: str) -> str:
    import json

    try:
        data = json.loads(body)
    except ValueError:
        data = None
    value = data.get("oidcToken") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value.strip() or not is_token_text(value.strip()):
        raise TokenError(
            f"the OIDC token route {where} answered without an oidcToken in JSON (a proxy or "
            f"sign-in page in between?); {_FIX_SCOPE}"
        )
    return value.strip()


class BackgroundToken:
    """The job's OIDC token, asked for in a thread from the moment a push is seen.

    `start()` is called by capture when the engine's events show a push, so the token route's
    round trip overlaps the inspects and registry checks instead of following them; the sink
    then waits for it (`__call__`, a `TokenSource`). Without `start()` it is asked for then. A
    job that pushed nothing never talks to the token route. `on_token` (the log's `set_secret`)
    runs in the caller's thread before the token is handed out.
    """

    def __init__(
        self,
        make_http: Callable[[], HttpClient],
        context: PipelineContext,
        access: str | None,
        on_token: Callable[[str], None],
        deadline: float | None = None,
    ) -> None:
        self._make_http, self._context, self._access = make_http, context, access
        self._on_token, self._deadline = on_token, deadline
        self._http: HttpClient | None = None
        self._thread: threading.Thread | None = None
        self._value: str | None = None
        self._error: BaseException | None = None

    @property
    def http(self) -> HttpClient:
        """The client the token was asked with, for the sink (same proxy, TLS, connections)."""
        if self._http is None:
            self._http = self._make_http()
        return self._http

    def start(self) -> None:
        if self._thread is None:
            import threading

            self._thread = threading.Thread(target=self._fetch, name="oidc-token", daemon=True)
            self._thread.start()

    def _fetch(self) -> None:
        try:
            self._value = OidcTokenClient(self.http).request(
                self._context, self._access, self._deadline
            )
        except BaseException as err:  # handed to the caller's thread, raised there
            self._error = err

    def __call__(self, deadline: float | None) -> str:
        if self._thread is None:
            self._fetch()
        else:
            import time

            self._thread.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if self._thread.is_alive():
                raise TokenError(
                    f"the OIDC token route of {_where(self._context)} did not answer within "
                    f"the time budget; {_FIX_SCOPE}"
                )
        if self._error is not None:
            raise self._error
        assert self._value is not None  # noqa: S101 - _fetch sets one of the two
        self._on_token(self._value)
        return self._value


def _where(context: PipelineContext) -> str:
    from container_mapping.http import redact

    return redact(str(context.organization_url))
