"""The organizations table, kept equal to the configuration at start.

Every stored row names its organization; the configuration is the truth about which ones exist
(an organization removed from it can no longer write or read, its rows stay).
"""

from __future__ import annotations

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from container_mapping.service.config import Organization
from container_mapping.service.database import Base


class OrganizationRow(Base):
    __tablename__ = "organizations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # the org_id claim (GUID)
    name: Mapped[str] = mapped_column(String(200))


def sync(session: Session, organizations: tuple[Organization, ...]) -> None:
    """Insert the configured organizations that are missing and rename the renamed ones."""
    for org in organizations:
        row = session.get(OrganizationRow, org.id)
        if row is None:
            session.add(OrganizationRow(id=org.id, name=org.name))
        elif row.name != org.name:
            row.name = org.name
    try:
        session.commit()
    except IntegrityError:  # another process inserted them at the same moment
        session.rollback()


def names(session: Session) -> dict[str, str]:
    return {row.id: row.name for row in session.scalars(select(OrganizationRow))}
