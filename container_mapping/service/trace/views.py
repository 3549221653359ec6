"""`GET /v1/trace`: one question per call, for API keys with `read`.

A digest (or anything else) that only another organization holds answers 404 exactly like one
nobody holds: the answer is built from the caller's organization's rows alone.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from container_mapping.service.database import get_session
from container_mapping.service.trace.models import TraceAnswer
from container_mapping.service.trace.questions import Question, answer, question
from container_mapping.service.trust.dependencies import ReaderDep

router = APIRouter(prefix="/v1", tags=["trace"])
SessionDep = Annotated[Session, Depends(get_session)]
_Text = Annotated[Optional[str], Query(max_length=2048)]


async def asked(
    digest: _Text = None,
    reference: _Text = None,
    repository: _Text = None,
    commit: _Text = None,
    pipeline: _Text = None,
    unmapped: bool = False,
    cluster: _Text = None,
) -> Question:
    """The one question the query parameters ask (422 naming the parameter otherwise).

    `async` only so FastAPI runs it in the event loop: it computes, never waits, and a hop to
    the thread pool would cost more than the work.
    """
    params = {
        "digest": digest,
        "reference": reference,
        "repository": repository,
        "commit": commit,
        "pipeline": pipeline,
    }
    return question(params, unmapped, cluster)


QuestionDep = Annotated[Question, Depends(asked)]


@router.get("/trace", response_model=TraceAnswer, responses={404: {}, 422: {}})
def trace(caller: ReaderDep, session: SessionDep, asked: QuestionDep) -> Response:
    """Which runs produced an image, where it is stored and where it runs; or the reverse."""
    found = answer(session, caller.org_id, asked)
    # Serialised once, here: the model was built and checked as it was made.
    return Response(found.model_dump_json(), media_type="application/json")
