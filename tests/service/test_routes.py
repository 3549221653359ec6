"""Every route declares who may call it: a route without a caller dependency fails here.

Open by design: the health check, the OpenAPI document and its docs, the page at `/` and its
static assets. Everything else must depend on `pipeline_caller` or `require_scope(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import Mount

from container_mapping.service import config
from container_mapping.service.app import create_app
from container_mapping.service.trust.dependencies import is_auth_dependency

OPEN = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/"}
OPEN_MOUNTS = ("/static", "/assets")


def walk(
    routes: list[Any], inherited: tuple[Any, ...] = ()
) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """Routes with the dependencies their includes add, through included routers."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            extra = tuple(getattr(route.include_context, "dependencies", ()))
            yield from walk(list(original.routes), inherited + extra)
        else:
            yield route, inherited


def declares_caller(dependant: Dependant) -> bool:
    if is_auth_dependency(dependant.call):
        return True
    return any(declares_caller(d) for d in dependant.dependencies)


def unguarded(app: Any) -> list[str]:
    found = []
    for route, inherited in walk(list(app.router.routes)):
        path = getattr(route, "path", "")
        if isinstance(route, Mount) and path.startswith(OPEN_MOUNTS):
            continue
        if path in OPEN:
            continue
        if isinstance(route, APIRoute):
            if declares_caller(route.dependant) or any(
                is_auth_dependency(d.dependency) for d in inherited
            ):
                continue
        found.append(f"{sorted(getattr(route, 'methods', None) or ['*'])} {path}")
    return found


def test_every_route_declares_a_caller(tmp_path: Path) -> None:
    settings = config.from_dict({"database": f"sqlite:///{tmp_path / 'm.db'}"})
    app = create_app(settings)
    try:
        paths = {getattr(r, "path", "") for r, _ in walk(list(app.router.routes))}
        assert "/v1/reports" in paths  # the walk sees the included routers' routes
        assert unguarded(app) == []
    finally:
        app.state.engine.dispose()


def test_the_check_catches_an_open_route(tmp_path: Path) -> None:
    settings = config.from_dict({"database": f"sqlite:///{tmp_path / 'm.db'}"})
    app = create_app(settings)
    try:
        app.add_api_route("/v1/leak", lambda: {"all": "records"}, methods=["GET"])
        assert unguarded(app) == ["['GET'] /v1/leak"]
    finally:
        app.state.engine.dispose()
