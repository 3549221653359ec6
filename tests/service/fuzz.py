"""What the schemathesis runs share: the app served in a thread on a fresh SQLite file, and its
OpenAPI document with the run bounded (no coverage or stateful phases, a few examples each)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import schemathesis

from container_mapping.service import config
from container_mapping.service.app import create_app
from tests.service.conftest import config_document
from tests.service.issuer import Issuer
from tests.service.server import ThreadServer


@contextmanager
def served(issuer: Issuer, directory: Path) -> Iterator[str]:
    """The service's URL, trusting `issuer`, with its database in `directory`."""
    app = create_app(config.from_dict(config_document(issuer, f"sqlite:///{directory}/m.db")))
    with ThreadServer(app) as server:
        yield server.url
    app.state.engine.dispose()


def bounded_schema(url: str, max_examples: int) -> Any:
    bounded = schemathesis.Config.from_dict(
        {
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {"max-examples": max_examples},
        }
    )
    return schemathesis.openapi.from_url(f"{url}/openapi.json", config=bounded)
