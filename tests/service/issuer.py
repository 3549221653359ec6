"""A local OpenID issuer standing in for Azure DevOps' token service (vstoken.dev.azure.com).

It serves `{issuer}/.well-known/openid-configuration` for each organization, pointing at one
shared JWKS (as Azure DevOps does), and signs RS256 tokens with the claim set of a real
pipeline token (AZURE-FACTS.md): `sub` `p://org/project/pipeline`, `org_id`, `prj_id`, `def_id`,
`rpo_*`, `run_id`, `jti`, `nbf` ten minutes before `iat`. Tests can publish a new key, take the
key set down, and count how often it was fetched.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "api://AzureADTokenExchange"
PROJECT_ID = "7d1c6c39-5a1e-4c59-9c0e-2a4f1b0c0a01"
COMMIT = "0f3c9a7e1b2d4c6f8a0b1c2d3e4f5a6b7c8d9e0f"
REPOSITORY_URI = "https://dev.azure.com/fabrikam/Contoso/_git/web-app"


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(uuid.uuid4().hex[:16].upper(), rsa.generate_private_key(65537, 2048))

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        data.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return dict(data)

    @property
    def x5t(self) -> str:
        digest = hashlib.sha1(self.public_pem).digest()  # noqa: S324 (a thumbprint, as Azure's)
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Issuer:
    """The discovery documents and the key set on one loopback port."""

    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])
    down: bool = False
    jwks_fetches: int = 0
    hits: int = 0  # every request, answered or not

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def issuer(self, org_id: str) -> str:
        return f"{self.base}/{org_id}"

    def start(self) -> Issuer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def claims(self, org_id: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "sub": "p://fabrikam/Contoso/web-app",
            "aud": AUDIENCE,
            "iss": self.issuer(org_id),
            "nbf": now - 600,
            "exp": now + 600,
            "iat": now,
            "org_id": org_id,
            "prj_id": PROJECT_ID,
            "def_id": "42",
            "rpo_id": "3b1c8e2a-0d6f-4c59-9c0e-2a4f1b0c0a02",
            "rpo_uri": REPOSITORY_URI,
            "rpo_ver": COMMIT,
            "rpo_ref": "refs/heads/main",
            "run_id": "1234",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, org_id: str, key: SigningKey | None = None, **overrides: Any) -> str:
        key = key or self.keys[0]
        return jwt.encode(
            self.claims(org_id, **overrides),
            key.private,
            algorithm="RS256",
            headers={"kid": key.kid, "x5t": key.x5t},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                with issuer._lock:
                    issuer.hits += 1
                if issuer.down:
                    self._send(503, {"message": "down"})
                elif self.path == "/.well-known/jwks":
                    with issuer._lock:
                        issuer.jwks_fetches += 1
                    self._send(200, {"keys": [k.jwk() for k in issuer.keys]})
                elif self.path.endswith("/.well-known/openid-configuration"):
                    iss = issuer.base + self.path.removesuffix("/.well-known/openid-configuration")
                    document = {
                        "issuer": iss,
                        "jwks_uri": f"{issuer.base}/.well-known/jwks",
                        "subject_types_supported": ["public", "pairwise"],
                        "response_types_supported": ["id_token"],
                        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "scopes_supported": ["openid"],
                    }
                    self._send(200, document)
                else:
                    self._send(404, {"message": "not found"})

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
