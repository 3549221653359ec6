"""Every table of the service, imported in one place so `Base.metadata` knows them all.

Alembic's environment and the migration test read `Base.metadata` after importing this module:
a domain that adds tables adds its `models` import here.
"""

from __future__ import annotations

from container_mapping.service.database import Base
from container_mapping.service.defender import models as defender_models
from container_mapping.service.ingestion import models as ingestion_models
from container_mapping.service.links import models as links_models
from container_mapping.service.organizations import OrganizationRow

__all__ = ["Base", "OrganizationRow", "defender_models", "ingestion_models", "links_models"]
