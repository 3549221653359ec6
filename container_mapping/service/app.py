"""The app factory: settings in, a FastAPI app out, with storage migrated and trust wired.

Each domain brings its router; every route declares a caller dependency (`trust.dependencies`)
except the health check, the OpenAPI document and its docs. Errors leave as
`{"error": ..., "field": ...}`; bad input is a 4xx, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException

from container_mapping import __version__
from container_mapping.service import bodies, database, migrations, organizations
from container_mapping.service.config import Settings
from container_mapping.service.defender.views import router as defender_router
from container_mapping.service.errors import ServiceError
from container_mapping.service.ingestion.models import DefenderIn, ReportIn
from container_mapping.service.ingestion.views import router as ingestion_router
from container_mapping.service.ingestion.writer import GroupWriter
from container_mapping.service.links.views import router as links_router
from container_mapping.service.middleware import BodyLimit
from container_mapping.service.trace import page
from container_mapping.service.trace.views import router as trace_router
from container_mapping.service.trust.jwks import KeyRing

log = logging.getLogger(__name__)
GC_THRESHOLD = 10_000  # see `from_environment`
OPEN_PATHS = frozenset(
    {"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


def create_app(settings: Settings, engine: Engine | None = None) -> FastAPI:
    """The service for `settings`; migrates the database first unless told not to."""
    engine = engine or database.make_engine(settings.database)
    if settings.migrate:
        migrations.upgrade(engine)
    sessions = database.make_sessionmaker(engine)
    with sessions() as session:
        organizations.sync(session, settings.organizations)

    app = FastAPI(
        title="container-mapping",
        version=__version__,
        description="Which pipeline run and commit produced the image running here.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.keys = KeyRing(settings.trust)
    if not (engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")):
        app.state.writer = GroupWriter(engine, sessions)  # an in-memory database has one connection
    app.state.head = migrations.head()
    app.include_router(ingestion_router)
    app.include_router(links_router)
    app.include_router(defender_router)
    app.include_router(trace_router)
    app.include_router(page.router)
    app.add_api_route("/", page.public_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    _error_handlers(app)
    _openapi_with_bodies(app, (ReportIn, DefenderIn))
    app.add_middleware(BodyLimit, max_body=settings.max_body)
    return app


def _openapi_with_bodies(app: FastAPI, models: tuple[type[BaseModel], ...]) -> None:
    """The OpenAPI document with the schemas of the bodies routes read themselves (`bodies`)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            bodies.add_schemas(generate(), models)
        return app.openapi_schema  # type: ignore[return-value]  # set by `generate`

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way


def healthz(request: Request) -> JSONResponse:
    """200 once the database answers and is at the migrations' head."""
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            revision = migrations.current(connection)
    except Exception as err:  # noqa: BLE001 (any database failure means not ready)
        log.warning("health check: database unavailable: %s", type(err).__name__)
        return JSONResponse({"status": "unavailable", "error": "database unavailable"}, 503)
    if revision != request.app.state.head:
        return JSONResponse({"status": "unavailable", "error": "database not migrated"}, 503)
    return JSONResponse({"status": "ok", "version": __version__})


def _error_body(status: int, error: str, field: str | None, headers: Any = None) -> JSONResponse:
    return JSONResponse({"error": error, "field": field}, status, headers=headers)


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, err: ServiceError) -> JSONResponse:
        return _error_body(err.status_code, str(err), err.field, err.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        field = None if first.get("type") == "json_invalid" else _field(first.get("loc", ()))
        return _error_body(422, _validation_message(first), field)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException) -> JSONResponse:
        return _error_body(err.status_code, str(err.detail), None, err.headers)


def _field(loc: Any) -> str | None:
    """`("body", "images", 0, "digest")` → `images[0].digest`; headers keep their name."""
    parts = list(loc)
    if parts and parts[0] in ("body", "header", "query", "path"):
        parts = parts[1:]
    text_ = ""
    for part in parts:
        text_ += f"[{part}]" if isinstance(part, int) else (f".{part}" if text_ else str(part))
    return text_ or None


def _validation_message(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if (
        kind == "missing"
        and tuple(error.get("loc", ()))[:1] == ("body",)
        and len(error.get("loc", ())) == 1
    ):
        return "a JSON request body is required"
    return str(error.get("msg", "invalid request"))


def from_environment() -> FastAPI:
    """The app for uvicorn's factory mode: settings from `$CONTAINER_MAPPING_*` (see config).

    Everything built so far (the app, its routes and validators, SQLAlchemy's metadata) lives
    as long as the process: `gc.freeze()` takes it out of the cyclic collector's sight, which
    otherwise walks all of it again at every full collection (about 7% of a report's CPU).

    The youngest generation is collected after 10,000 more container objects instead of 700:
    the reports in flight hold a few thousand, so at 700 the collector ran every few reports,
    walked them all and found nothing (363 collections for 1,500 reports, 57 µs a report;
    at 10,000: one). Garbage that only the collector frees still counts toward the 10,000,
    so what it holds stays bounded.
    """
    import gc

    from container_mapping.service import config

    app = create_app(config.load())
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 50)
    return app
