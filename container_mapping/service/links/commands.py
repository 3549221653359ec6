"""`container-mapping link registry|pods` and `container-mapping trace`: the service's clients.

They run where the operator is (a laptop, a cron job, a cluster's CI), read a registry or a
cluster there with the credentials found there, and talk to the service over its API with an
API key. Their libraries (httpx, rich, kubernetes) are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from container_mapping.cliargs import env, service_flags, subparser
from container_mapping.errors import ConfigError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

EPILOG = """exit codes:
  0  success
  1  an error (one line on stderr says what and what to do), a refused key (401/403) included
  2  usage error
  3  the mapping service is not reachable
  4  the service knows nothing of what was asked (404)

The service and key come from --server/--api-key, else CONTAINER_MAPPING_SERVER and
CONTAINER_MAPPING_API_KEY (default server http://127.0.0.1:8080).
"""


def register(commands: Any) -> None:
    """Add `link` and `trace` to the CLI's subcommands."""
    _register_link(commands)
    _register_trace(commands)


def _subparser(commands: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    return subparser(commands, name, help_text, EPILOG)


def _service_flags(parser: argparse.ArgumentParser) -> None:
    service_flags(parser, "an API key of the service")


def _register_link(commands: Any) -> None:
    link = _subparser(commands, "link", "link digests to registries and clusters")
    kinds = link.add_subparsers(dest="link_kind", required=True, metavar="KIND")
    registry = _subparser(kinds, "registry", "crawl a registry and post what it holds")
    registry.add_argument("url", metavar="URL", help="the registry: host[:port] or its URL")
    registry.add_argument(
        "--repository",
        action="append",
        default=[],
        metavar="R",
        help="crawl only this repository (repeatable); default: the catalog",
    )
    registry.add_argument("--json", action="store_true", help="print the crawl, post nothing")
    _service_flags(registry)
    registry.set_defaults(handler=_exits(_link_registry))
    pods = _subparser(kinds, "pods", "post what a cluster runs (kubectl get pods -A -o json)")
    pods.add_argument(
        "file",
        metavar="FILE|-",
        nargs="?",
        help="a kubectl JSON document ('-' for stdin); omit with --context",
    )
    pods.add_argument(
        "--cluster",
        metavar="NAME",
        default=env("CLUSTER"),
        help="the cluster's name [$CONTAINER_MAPPING_CLUSTER; default: the context]",
    )
    pods.add_argument("--context", metavar="CTX", help="read this kubeconfig context live")
    pods.add_argument("--json", action="store_true", help="print the snapshot, post nothing")
    _service_flags(pods)
    pods.set_defaults(handler=_exits(_link_pods))


def _register_trace(commands: Any) -> None:
    trace = _subparser(
        commands, "trace", "which run produced an image, where it is stored and runs"
    )
    trace.add_argument(
        "target",
        metavar="REF|DIGEST",
        nargs="?",
        help="an image digest (sha256:…) or reference (registry/repo:tag)",
    )
    asked = trace.add_mutually_exclusive_group()
    asked.add_argument("--repository", metavar="URL", help="images built from this repository")
    asked.add_argument("--commit", metavar="SHA", help="images built from this commit")
    asked.add_argument("--pipeline", metavar="ORG/PROJECT/ID", help="images of this pipeline")
    asked.add_argument(
        "--unmapped", action="store_true", help="what runs that no pipeline run produced"
    )
    trace.add_argument("--cluster", metavar="NAME", help="with --unmapped: only this cluster")
    trace.add_argument(
        "--json", action="store_true", help="the answer as JSON (see docs/trace-answer.schema.json)"
    )
    _service_flags(trace)
    trace.set_defaults(handler=_exits(_trace))


# ---------------------------------------------------------------- handlers


def _link_registry(args: argparse.Namespace) -> int:
    from container_mapping.service.links.crawl import Crawler, registry_name

    with Crawler(registry_name(args.url)) as crawler:
        crawl = crawler.crawl(args.repository)
    for problem in crawl.problems:
        print(f"container-mapping: warning: {problem}", file=sys.stderr)
    if args.json:
        return _print_json(crawl.to_dict())
    answers = _post_crawl(args, crawl)
    stored = sum(a["artifacts"] for a in answers)
    print(
        f"linked {stored} manifests of {len(crawl.repositories)} repositories of "
        f"{crawl.registry} ({crawl.skipped_attestations} attestations skipped)"
    )
    return EXIT_ERROR if crawl.problems and not crawl.artifacts else EXIT_OK


def _post_crawl(args: argparse.Namespace, crawl: Any) -> list[dict[str, Any]]:
    """One request per batch of whole repositories, so each stays under the body limit."""
    answers: list[dict[str, Any]] = _call(
        args, lambda client: [client.post("/v1/links/registry", body) for body in crawl.batches()]
    )
    return answers


def _link_pods(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from container_mapping.service.links.pods import running_containers

    objects = _pod_objects(args)
    cluster = args.cluster or args.context
    if not cluster:
        raise ConfigError("name the cluster: --cluster NAME (or $CONTAINER_MAPPING_CLUSTER)")
    containers = running_containers(objects)
    taken = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    body = {"cluster": cluster, "takenAt": taken, "containers": [c.to_dict() for c in containers]}
    if args.json:
        return _print_json(body)
    linked = _call(args, lambda client: client.post("/v1/links/pods", body))
    unresolvable = linked["containers"] - linked["resolvable"]
    print(
        f"linked {linked['containers']} containers of cluster {cluster} "
        f"({unresolvable} without a manifest digest)"
    )
    return EXIT_OK


def _pod_objects(args: argparse.Namespace) -> list[dict[str, Any]]:
    from container_mapping.service.links.pods import load_document

    if args.context and args.file:
        raise ConfigError("give a FILE or --context, not both")
    if args.context:
        from container_mapping.service.links.kube import read_cluster

        return read_cluster(args.context)
    if not args.file:
        raise ConfigError("give a kubectl JSON document (FILE or '-') or --context CTX")
    if args.file == "-":
        return load_document(sys.stdin.buffer.read())
    try:
        with open(args.file, "rb") as handle:
            return load_document(handle.read())
    except OSError as err:
        raise ConfigError(f"cannot read {args.file}: {err.strerror}") from err


def _trace(args: argparse.Namespace) -> int:
    params = _trace_params(args)
    answer = _call(args, lambda client: client.get("/v1/trace", params))
    if args.json:
        return _print_json(answer)
    from container_mapping.service.trace.render import render

    render(answer, page_url=_page_url(args, params))
    return EXIT_OK


def _trace_params(args: argparse.Namespace) -> dict[str, str]:
    asked = [
        (k, getattr(args, k)) for k in ("repository", "commit", "pipeline") if getattr(args, k)
    ]
    if args.unmapped:
        return {"unmapped": "true", **({"cluster": args.cluster} if args.cluster else {})}
    if args.cluster:
        raise ConfigError("--cluster goes with --unmapped")
    if args.target and asked:
        raise ConfigError(f"give REF|DIGEST or --{asked[0][0]}, not both")
    if asked:
        return dict(asked)
    if not args.target:
        raise ConfigError(
            "give a digest or reference, or --repository/--commit/--pipeline/--unmapped"
        )
    kind = "digest" if args.target.startswith("sha256:") else "reference"
    return {kind: args.target}


def _page_url(args: argparse.Namespace, params: dict[str, str]) -> str | None:
    from urllib.parse import urlencode

    from container_mapping.service.links.client import DEFAULT_SERVER

    kinds = ("digest", "reference", "repository", "commit")
    shown = {k: v for k, v in params.items() if k in kinds}
    server = (args.server or DEFAULT_SERVER).rstrip("/")
    return f"{server}/?{urlencode(shown, safe=':/')}" if shown else None


def _call(args: argparse.Namespace, request: Any) -> Any:
    from container_mapping.service.links.client import ServiceClient

    with ServiceClient(args.server, args.api_key) as client:
        return request(client)


def _exits(handler: Any) -> Any:
    """The exit codes of the epilog: 3 when the service is unreachable, 4 for a 404."""

    def run(args: argparse.Namespace) -> int:
        from container_mapping.service.links.client import NotFound, ServiceUnreachable

        try:
            return int(handler(args))
        except ServiceUnreachable as err:
            print(f"container-mapping: error: {err}", file=sys.stderr)
            return EXIT_UNREACHABLE
        except NotFound as err:
            print(f"container-mapping: {err}", file=sys.stderr)
            return EXIT_NOT_FOUND

    def checked(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ModuleNotFoundError as err:
            print(
                f"container-mapping: {args.command} needs {err.name}: "
                "pip install 'container-mapping[service]'",
                file=sys.stderr,
            )
            return EXIT_ERROR

    return checked


def _print_json(value: Any) -> int:
    json.dump(value, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return EXIT_OK
