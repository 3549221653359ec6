"""The mapping service: receives what jobs report, trusts only Azure DevOps' own tokens, answers.

The operator side of the package. Its libraries (FastAPI, SQLAlchemy, Alembic, PyJWT) come with
the `service` extra and are imported by the modules below this one, never by this file: the
agent side imports `container_mapping` on every job and must not pay for them.
"""
