"""The local signing key and the tokens it signs. Never accepted by a deployed stack:
the template's authorizer only trusts https issuers, and this one is not."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_ISSUER = "urn:studio-records:local"
LOCAL_AUDIENCE = "studio-records-local-app"
DEFAULT_HOME = Path(__file__).resolve().parent.parent / ".devstack"


def home() -> Path:
    return Path(os.environ.get("DEVSTACK_HOME", str(DEFAULT_HOME)))


def private_key_pem(directory: Path | None = None) -> bytes:
    """The local key, made on first use and kept in the (git-ignored) stack folder."""
    directory = directory or home()
    path = directory / "jwt-signing-key.pem"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        tmp.chmod(0o600)
        tmp.replace(path)
    return path.read_bytes()


def public_key_pem(directory: Path | None = None) -> bytes:
    key = serialization.load_pem_private_key(private_key_pem(directory), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def mint(
    sub: str,
    groups: list[str] | None = None,
    *,
    ttl_s: int = 3600,
    audience: str = LOCAL_AUDIENCE,
    issuer: str = LOCAL_ISSUER,
    directory: Path | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A Cognito-shaped id token for ``sub``."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + ttl_s,
        "token_use": "id",
        "cognito:username": sub,
    }
    if groups:
        claims["cognito:groups"] = groups
    claims.update(extra or {})
    return jwt.encode(claims, private_key_pem(directory), algorithm="RS256", headers={"kid": "local"})


def verify(token: str, public_pem: bytes) -> dict[str, Any]:
    """Check signature, issuer, audience and expiry, as the HTTP API's JWT authorizer does."""
    return jwt.decode(
        token,
        public_pem,
        algorithms=["RS256"],
        audience=LOCAL_AUDIENCE,
        issuer=LOCAL_ISSUER,
        options={"require": ["exp", "iss", "sub"]},
    )
