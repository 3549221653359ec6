"""`POST /v1/links/defender`: what `defender import` read of Defender, for API keys with `link`.

The records land in the key's organization; an import replaces, in the subscriptions it names,
only what that organization imported before.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from container_mapping.service.database import get_session
from container_mapping.service.defender import service
from container_mapping.service.defender.models import DefenderLinked, DefenderLinkIn
from container_mapping.service.trust.dependencies import LinkerDep

router = APIRouter(prefix="/v1/links", tags=["links"])
SessionDep = Annotated[Session, Depends(get_session)]


@router.post("/defender", response_model=DefenderLinked, responses={409: {}, 422: {}})
def link_defender(body: DefenderLinkIn, caller: LinkerDep, session: SessionDep) -> DefenderLinked:
    """Store one part of an import of Defender's images; the `complete` part ends it."""
    return service.store(session, caller.org_id, body)
