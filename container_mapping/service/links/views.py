"""`POST /v1/links/registry` and `POST /v1/links/pods`: what `link` posts, for API keys with `link`.

The organization is the key's, never the body's: a crawl or a snapshot lands in the caller's
organization and replaces only what that organization stored before.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from container_mapping.service.database import get_session
from container_mapping.service.links import service
from container_mapping.service.links.models import (
    PodsLinked,
    PodsLinkIn,
    RegistryLinked,
    RegistryLinkIn,
)
from container_mapping.service.trust.dependencies import LinkerDep

router = APIRouter(prefix="/v1/links", tags=["links"])
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/registry", response_model=RegistryLinked)
def link_registry(body: RegistryLinkIn, caller: LinkerDep, session: SessionDep) -> RegistryLinked:
    """Store a registry crawl; each repository it lists replaces what was stored for it."""
    return service.store_crawl(session, caller.org_id, body)


@router.post("/pods", response_model=PodsLinked)
def link_pods(body: PodsLinkIn, caller: LinkerDep, session: SessionDep) -> PodsLinked:
    """Store a cluster's pod snapshot, replacing that cluster's previous one in one transaction."""
    return service.replace_snapshot(session, caller.org_id, body)
