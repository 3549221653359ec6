"""The read-only page at `/`: search, and the chain drawn as a picture.

`/` itself holds no data and needs no key: it asks for the API key once, keeps it in the tab's
`sessionStorage` and sends it as a header, never in a URL. The chain comes from `/page/trace`,
rendered on the server (Jinja2, autoescaped, inline SVG) and read with the key like any API
route. A strict Content-Security-Policy with a per-response nonce allows only the page's own
inline script and style, and no other origin at all.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Annotated

import jinja2
from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from container_mapping.service.database import get_session
from container_mapping.service.trace.picture import draw
from container_mapping.service.trace.questions import answer
from container_mapping.service.trace.views import QuestionDep
from container_mapping.service.trust.dependencies import ReaderDep

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, Depends(get_session)]

COLOURS = {  # fill, stroke
    "commit": ("#eef6ff", "#5b8fd0"),
    "run": ("#eefaf0", "#4a9a5c"),
    "image": ("#fff8e6", "#c69a2a"),
    "registry": ("#f4efff", "#8566c4"),
    "workload": ("#fff0f0", "#c25b5b"),
}


@lru_cache(maxsize=1)
def templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("container_mapping.service.trace", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def _policy(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
        "connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    )


def public_page() -> HTMLResponse:
    """The page shell: no data in it, so no key is needed to load it."""
    nonce = secrets.token_urlsafe(16)
    html = templates().get_template("page.html").render(nonce=nonce)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": _policy(nonce),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@router.get("/page/trace", response_class=HTMLResponse)
def page_trace(caller: ReaderDep, session: SessionDep, asked: QuestionDep) -> HTMLResponse:
    """One question's chains as an HTML fragment (inline SVG and tables) for the page."""
    found = answer(session, caller.org_id, asked)
    items = [{"trace": t, "picture": draw(t)} for t in found.images]
    html = (
        templates()
        .get_template("chain.html")
        .render(items=items, truncated=found.truncated, colours=COLOURS)
    )
    return HTMLResponse(
        html, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    )
