"""The registry crawl against the real registry: indexes, platforms, labels, paging, bounds."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from container_mapping.errors import RegistryError
from container_mapping.service.links.crawl import Crawler, Limits, next_link, registry_name
from tests.service.oci_push import OCI_INDEX, OciPusher

LABELS = {
    "org.opencontainers.image.source": "https://dev.azure.com/contoso/Payments/_git/api",
    "org.opencontainers.image.revision": "a" * 40,
}


@pytest.fixture
def pusher(registry_addr: str) -> Iterator[OciPusher]:
    p = OciPusher(registry_addr)
    yield p
    p.close()


@pytest.fixture
def repo() -> str:
    return f"cmtest/crawl-{uuid.uuid4().hex[:10]}"


def test_an_index_with_two_platforms_is_read_with_its_children(
    pusher: OciPusher, repo: str, registry_addr: str
) -> None:
    pushed = pusher.index(repo, "v1", LABELS)
    single, _ = pusher.image(repo, {"x": "y"}, tag="solo")
    with Crawler(registry_addr) as crawler:
        crawl = crawler.crawl([repo])
    by_digest = {a.digest: a for a in crawl.artifacts}
    index = by_digest[pushed.index or ""]
    assert index.media_type == OCI_INDEX and index.tags == ("v1",) and index.parent_digest is None
    for platform, digest in pushed.children.items():
        child = by_digest[digest]
        assert child.parent_digest == pushed.index and child.tags == ()
        assert f"{child.platform.os}/{child.platform.architecture}" == platform  # type: ignore[union-attr]
        assert child.labels == LABELS
    assert by_digest[pushed.children["linux/arm64"]].platform.variant == "v8"  # type: ignore[union-attr]
    assert pushed.attestation not in by_digest and crawl.skipped_attestations == 1
    assert by_digest[single].tags == ("solo",) and by_digest[single].labels == {"x": "y"}
    assert len(crawl.artifacts) == 4 and crawl.problems == ()


def test_two_tags_of_one_manifest_make_one_artifact(
    pusher: OciPusher, repo: str, registry_addr: str
) -> None:
    first, _ = pusher.image(repo, {"k": "v"}, tag="a")
    second, _ = pusher.image(repo, {"k": "v"}, tag="b")
    assert first == second
    with Crawler(registry_addr) as crawler:
        crawl = crawler.crawl([repo])
    assert [(a.digest, a.tags) for a in crawl.artifacts] == [(first, ("a", "b"))]


def test_catalog_and_tags_follow_relative_link_pages(pusher: OciPusher, registry_addr: str) -> None:
    prefix = f"cmtest/page-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/r{i}" for i in range(3)]
    for name in names:
        for tag in ("t1", "t2", "t3"):
            pusher.image(name, {"tag": tag}, tag=tag)
    with Crawler(registry_addr, limits=Limits(page_size=1)) as crawler:
        catalog = list(crawler.catalog())
        tags = crawler.tags(names[0])
    assert set(names) <= set(catalog) and len(catalog) == len(set(catalog))
    assert sorted(tags) == ["t1", "t2", "t3"]  # this registry answers every tag on one page


def test_bounds_turn_into_problems_not_crashes(
    pusher: OciPusher, repo: str, registry_addr: str
) -> None:
    pusher.image(repo, {"big": "x" * 2000}, tag="big")
    with Crawler(registry_addr, limits=Limits(config_bytes=512)) as crawler:
        crawl = crawler.crawl([repo, "cmtest/does-not-exist"])
    assert crawl.artifacts == () and crawl.repositories == ()
    assert any("larger than 512 bytes" in p for p in crawl.problems)
    assert any("404" in p for p in crawl.problems)


def test_too_many_pages_is_an_error(pusher: OciPusher, registry_addr: str) -> None:
    for i in range(3):
        pusher.image(f"cmtest/many-{uuid.uuid4().hex[:8]}", {"i": str(i)}, tag="t")
    with Crawler(registry_addr, limits=Limits(page_size=1, pages=2)) as crawler:
        with pytest.raises(RegistryError, match="more than 2 pages"):
            list(crawler.catalog())


def test_batches_keep_repositories_whole_and_small(pusher: OciPusher, registry_addr: str) -> None:
    prefix = f"cmtest/batch-{uuid.uuid4().hex[:8]}"
    names = [f"{prefix}/r{i}" for i in range(4)]
    for name in names:
        pusher.index(name, "v1", LABELS)
    with Crawler(registry_addr) as crawler:
        crawl = crawler.crawl(names)
    bodies = list(crawl.batches(max_bytes=2500))
    assert len(bodies) > 1
    assert sorted(n for b in bodies for n in b["repositories"]) == sorted(names)
    for body in bodies:
        assert {a["repository"] for a in body["artifacts"]} <= set(body["repositories"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('</v2/_catalog?last=a&n=1>; rel="next"', "http://r:5000/v2/_catalog?last=a&n=1"),
        ("<https://other/v2/x>; rel=next", "https://other/v2/x"),
        ('<a>; rel="prev", <b?n=2>; rel="next"', "http://r:5000/v2/b?n=2"),
        ("", None),
        ("garbage", None),
    ],
)
def test_next_link(header: str, expected: str | None) -> None:
    assert next_link(header, "http://r:5000/v2/_catalog?n=1") == expected


@pytest.mark.parametrize(
    ("given", "name"),
    [("127.0.0.1:5000", "127.0.0.1:5000"), ("https://Reg.Example/", "reg.example"),
     ("http://localhost:5000", "localhost:5000")],
)  # fmt: skip
def test_registry_names(given: str, name: str) -> None:
    assert registry_name(given) == name


def test_a_path_is_not_a_registry() -> None:
    with pytest.raises(RegistryError):
        registry_name("https://reg.example/some/repo")
