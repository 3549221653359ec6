"""Decide from an image's own labels whether the current run built it.

On a shared Docker host, another job's push can fall inside our time window. Azure Pipelines'
Docker task labels every image it builds with the run (`com.azure.dev.image.build.builduri`
is `vstfs:///Build/Build/<run id>`); OCI labels name the source repository and revision.
A label that names another run is proof the image is not ours; no label is no proof either way.
"""

from __future__ import annotations

from collections.abc import Mapping

from container_mapping.model import Attribution, PipelineContext

AZURE_PREFIX = "com.azure.dev.image."
BUILD_URI = AZURE_PREFIX + "build.builduri"
COLLECTION_URI = AZURE_PREFIX + "system.teamfoundationcollectionuri"
AZURE_REVISION = AZURE_PREFIX + "build.sourceversion"
AZURE_REPOSITORY_URI = AZURE_PREFIX + "build.repository.uri"
OCI_SOURCE = "org.opencontainers.image.source"
OCI_REVISION = "org.opencontainers.image.revision"
_BUILD_URI_PREFIX = "vstfs:///Build/Build/"


def attribute(
    labels: Mapping[str, str], context: PipelineContext
) -> tuple[Attribution, dict[str, str]]:
    """Return the verdict and the labels it rests on."""
    evidence = {
        k: v
        for k, v in labels.items()
        if k.startswith(AZURE_PREFIX) or k.startswith("org.opencontainers.image.")
    }
    if not context.in_pipeline:
        return Attribution.UNKNOWN, evidence
    verdict = _by_run(labels, context)
    if verdict is None:
        verdict = _by_revision(labels, context)
    return verdict or Attribution.UNKNOWN, evidence


def _by_run(labels: Mapping[str, str], context: PipelineContext) -> Attribution | None:
    build_uri = labels.get(BUILD_URI, "").strip()
    if not build_uri.startswith(_BUILD_URI_PREFIX):
        return None
    same_collection = _same_url(labels.get(COLLECTION_URI), context.organization_url)
    same_run = build_uri[len(_BUILD_URI_PREFIX) :] == context.run_id
    return Attribution.MATCH if same_run and same_collection else Attribution.OTHER_RUN


def _by_revision(labels: Mapping[str, str], context: PipelineContext) -> Attribution | None:
    """By commit, and only together with the repository: a commit alone names no run.

    Our commit of our repository is a match; another commit of our repository was built by
    another run. A label naming no repository, or another one (a multi-repo checkout), says
    nothing about which run built the image, whatever its commit.
    """
    revision = (labels.get(AZURE_REVISION) or labels.get(OCI_REVISION) or "").strip().lower()
    source = (labels.get(AZURE_REPOSITORY_URI) or labels.get(OCI_SOURCE) or "").strip()
    if not revision or not source or not context.commit or not context.repository_uri:
        return None
    if _normalise_url(source) != _normalise_url(context.repository_uri):
        return None
    return Attribution.MATCH if revision == context.commit.lower() else Attribution.OTHER_RUN


def _same_url(left: str | None, right: str | None) -> bool:
    """Compare repository or organization URLs loosely; unknown on either side counts as same."""
    if not left or not right:
        return True
    return _normalise_url(left) == _normalise_url(right)


def _normalise_url(url: str) -> str:
    text = url.strip().lower()
    scheme, sep, rest = text.partition("://")
    if sep:
        rest = rest.split("@", 1)[-1]  # https://org@dev.azure.com/... carries a user name
        text = rest
    return text.removesuffix("/").removesuffix(".git").removesuffix("/")
