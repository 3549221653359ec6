"""Image references: the distribution grammar, Docker's normalisation, and clear rejections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from container_mapping.errors import InvalidReference
from container_mapping.reference import ImageReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("library/nginx", "docker.io", "library/nginx", None, None),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("index.docker.io/bitnami/redis", "docker.io", "bitnami/redis", None, None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("localhost/app", "localhost", "app", None, None),
        ("localhost:5000/team/app:v1", "localhost:5000", "team/app", "v1", None),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "app", "1", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("myacr.azurecr.io/team/svc-a__b.c", "myacr.azurecr.io", "team/svc-a__b.c", None, None),
        (f"myacr.azurecr.io/svc@{DIGEST}", "myacr.azurecr.io", "svc", None, DIGEST),
        (f"myacr.azurecr.io/svc:1.0@{DIGEST}", "myacr.azurecr.io", "svc", "1.0", DIGEST),
        ("Registry.Example/app", "Registry.Example", "app", None, None),
    ],
)
def test_parses_and_normalises(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Nginx", "lower case"),
        ("team/App:1", "lower case"),
        ("", "empty"),
        (" nginx", "padded"),
        ("nginx:", "invalid tag"),
        ("nginx:-bad", "invalid tag"),
        ("nginx:" + "a" * 129, "invalid tag"),
        ("nginx:v\u00e9", "invalid tag"),  # Docker's `\w` is ASCII
        ("nginx@sha256:abc", "invalid digest"),
        ("nginx@md5:" + "a" * 32, "invalid digest"),
        ("a" * 64, "image id"),
        ("app//x", "invalid repository"),
        ("app-/x", "invalid repository"),
        ("reg.io/" + "a" * 260, "longer than"),
    ],
)
def test_rejects_with_a_clear_reason(text: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message):
        ImageReference.parse(text)


def test_familiar_name_is_what_docker_prints() -> None:
    assert ImageReference.parse("docker.io/library/nginx:1").familiar_name == "nginx"
    assert ImageReference.parse("bitnami/redis").familiar_name == "bitnami/redis"
    assert ImageReference.parse("localhost:5000/a").familiar_name == "localhost:5000/a"


_component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,6}){0,2}", fullmatch=True)
_registry = st.sampled_from(
    ["docker.io", "localhost:5000", "myacr.azurecr.io", "127.0.0.1:5000", "ghcr.io"]
)
_tag = st.none() | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.none() | st.from_regex(r"sha256:[a-f0-9]{64}", fullmatch=True)


@given(_registry, st.lists(_component, min_size=1, max_size=3), _tag, _digest)
def test_round_trips_through_text(
    registry: str, path: list[str], tag: str | None, digest: str | None
) -> None:
    repository = "/".join(path)
    if registry == "docker.io" and "/" not in repository:
        repository = "library/" + repository
    ref = ImageReference(registry, repository, tag, digest)
    assert ImageReference.parse(str(ref)) == ref


@given(st.text(max_size=80))
def test_never_fails_but_with_its_own_error(text: str) -> None:
    try:
        ref = ImageReference.parse(text)
    except InvalidReference:
        return
    assert ImageReference.parse(str(ref)) == ref
