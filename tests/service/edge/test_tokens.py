"""Tokens: claims, scopes, signatures, public keys, issuer and audience, the shared secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from service.edge import api_errors as errors
from service.edge import auth
from service.principal import Principal
from service.settings import ConfigError, Settings
from tests.service.edge.verifiers import SECRET, make_verifier

if TYPE_CHECKING:
    from pathlib import Path


OTHER_SECRET = "o" * 32
ISSUER = "https://id.example.com/"
AUDIENCE = "jobtrail"


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "alice", "exp": int(time.time()) + 600}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A token signed by hand, for headers PyJWT refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _public_pem(tmp_path: Path, private_key: Any) -> Path:
    path = tmp_path / "public.pem"
    path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


# Tokens and claims


def test_issued_token_round_trips(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET)
    before = int(time.time())

    principal = verifier.verify(verifier.issue("alice", ["jobs:read", "worker"], 60))

    assert principal.sub == "alice"
    assert principal.scopes == {"jobs:read", "worker"}
    assert before + 60 <= principal.expires_at.timestamp() <= time.time() + 60
    assert principal.expires_at.tzinfo is UTC


def test_token_without_scope_claim_reads_and_writes(tmp_path: Path) -> None:
    token = jwt.encode(_claims(), SECRET, algorithm="HS256")

    principal = make_verifier(tmp_path, jwt_secret=SECRET).verify(token)

    assert principal.scopes == {"jobs:read", "jobs:write"}
    assert not principal.has("worker")


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        pytest.param("jobs:read", {"jobs:read"}, id="one"),
        pytest.param(" worker   jobs:write ", {"worker", "jobs:write"}, id="extra-spaces"),
        pytest.param("jobs:read openid profile", {"jobs:read"}, id="unknown-ignored"),
        pytest.param("", set(), id="empty-means-none"),
        pytest.param("Jobs:Read", set(), id="case-sensitive"),
    ],
)
def test_scope_claim_is_space_separated(tmp_path: Path, scope: str, expected: set[str]) -> None:
    token = jwt.encode(_claims(scope=scope), SECRET, algorithm="HS256")

    assert make_verifier(tmp_path, jwt_secret=SECRET).verify(token).scopes == expected


def test_admin_holds_every_scope_and_sees_every_owner() -> None:
    expires_at = datetime.now(UTC)
    admin = Principal(sub="root", scopes=frozenset({"admin"}), expires_at=expires_at)
    user = Principal(sub="bob", scopes=frozenset({"jobs:read"}), expires_at=expires_at)

    assert admin.is_admin
    assert all(admin.has(scope) for scope in auth.SCOPES)
    assert admin.owner_filter is None
    assert not user.is_admin
    assert [scope for scope in auth.SCOPES if user.has(scope)] == ["jobs:read"]
    assert user.owner_filter == "bob"


def _hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def _tampered(token: str, **claims: Any) -> str:
    """The token with its claims changed and its signature kept."""
    header, _, signature = token.split(".")
    forged = {**jwt.decode(token, options={"verify_signature": False}), **claims}
    return f"{header}.{_b64(json.dumps(forged).encode())}.{signature}"


def _flipped(token: str) -> str:
    """The token with the last character of its signature changed."""
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _sub_problem(problem: str) -> tuple[str, dict[str, str]]:
    return f"The token's 'sub' claim {problem}.", {"sub": problem}


_NOT_A_SUBJECT = _sub_problem("must be a non-empty string of at most 255 characters")
_INVALID = (auth.INVALID_TOKEN, {})
_EXPIRED = int(time.time()) - 60

# Every refused token answers INVALID_TOKEN, except that a token only the key's holder could
# have made says why its `sub` cannot be an owner, and one that would be accepted but has
# expired says so (RFC 8725 §3: nothing about which check failed reaches anyone else).
INVALID_TOKENS = [
    pytest.param(lambda: _hs256(_claims(exp=_EXPIRED)), (auth.EXPIRED_TOKEN, {}), id="expired"),
    pytest.param(
        lambda: _hs256(_claims(exp=int(time.time()))), (auth.EXPIRED_TOKEN, {}), id="exp-now"
    ),
    pytest.param(lambda: _hs256(_claims(nbf=int(time.time()) + 600)), _INVALID, id="nbf-future"),
    pytest.param(lambda: _hs256(_claims(), OTHER_SECRET), _INVALID, id="wrong-secret"),
    pytest.param(
        lambda: _hs256(_claims(exp=_EXPIRED), OTHER_SECRET), _INVALID, id="expired-wrong-secret"
    ),
    pytest.param(
        lambda: _hs256(_claims(exp=_EXPIRED, nbf=int(time.time()) + 600)),
        _INVALID,
        id="expired-and-nbf-future",
    ),
    pytest.param(lambda: _tampered(_hs256(_claims()), sub="bob"), _INVALID, id="tampered-sub"),
    pytest.param(
        lambda: _tampered(_hs256(_claims(scope="jobs:read")), scope="admin"),
        _INVALID,
        id="tampered-scope",
    ),
    pytest.param(
        lambda: _tampered(_hs256(_claims(exp=_EXPIRED)), exp=int(time.time()) + 600),
        _INVALID,
        id="tampered-exp",
    ),
    pytest.param(lambda: _flipped(_hs256(_claims())), _INVALID, id="tampered-signature"),
    pytest.param(lambda: _hs256(_claims()).rpartition(".")[0], _INVALID, id="two-segments"),
    pytest.param(lambda: _hs256(_claims()).rpartition(".")[0] + ".", _INVALID, id="no-signature"),
    pytest.param(lambda: _hs256(_claims(sub=None)), _INVALID, id="missing-sub"),
    pytest.param(lambda: _hs256(_claims(sub="")), _NOT_A_SUBJECT, id="empty-sub"),
    pytest.param(lambda: _hs256(_claims(sub=42)), _NOT_A_SUBJECT, id="numeric-sub"),
    pytest.param(lambda: _hs256(_claims(sub=["alice"])), _NOT_A_SUBJECT, id="list-sub"),
    pytest.param(
        lambda: _hs256(_claims(sub=42, exp=_EXPIRED)), _NOT_A_SUBJECT, id="numeric-sub-expired"
    ),
    pytest.param(lambda: _hs256(_claims(exp=None)), _INVALID, id="missing-exp"),
    pytest.param(lambda: _hs256(_claims(exp="tomorrow")), _INVALID, id="text-exp"),
    pytest.param(lambda: _hs256(_claims(exp=True)), _INVALID, id="bool-exp"),
    pytest.param(lambda: _hs256(_claims(exp=10**20)), _INVALID, id="exp-out-of-range"),
    pytest.param(lambda: _hs256(_claims(scope=["admin"])), _INVALID, id="scope-list"),
    pytest.param(lambda: _hs256(_claims(jti=7)), _INVALID, id="numeric-jti"),
    pytest.param(lambda: "not-a-jwt", _INVALID, id="garbage"),
    pytest.param(lambda: "a.b.c", _INVALID, id="garbage-segments"),
    pytest.param(lambda: "", _INVALID, id="empty"),
    pytest.param(
        lambda: _forge({"alg": "none", "typ": "JWT"}, _claims(scope="admin"), None),
        _INVALID,
        id="alg-none",
    ),
    pytest.param(
        lambda: _forge({"alg": "None"}, _claims(scope="admin"), None), _INVALID, id="alg-None"
    ),
    pytest.param(
        lambda: _forge({"alg": "none"}, _claims(scope="admin"), SECRET.encode()),
        _INVALID,
        id="alg-none-signed",
    ),
    pytest.param(
        lambda: _forge({"alg": "HS512", "typ": "JWT"}, _claims(), SECRET.encode()),
        _INVALID,
        id="other-hmac-alg",
    ),
    pytest.param(
        lambda: _forge({"alg": "hs256"}, _claims(), SECRET.encode()), _INVALID, id="alg-case"
    ),
    pytest.param(
        lambda: _forge({"alg": ["HS256"]}, _claims(), SECRET.encode()), _INVALID, id="alg-list"
    ),
    pytest.param(
        lambda: jwt.encode(_claims(), rsa.generate_private_key(65537, 2048), algorithm="RS256"),
        _INVALID,
        id="rs256",
    ),
    pytest.param(
        lambda: jwt.encode(_claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
        _INVALID,
        id="es256",
    ),
    pytest.param(
        lambda: _forge({"alg": "HS256", "crit": ["exp"]}, _claims(), SECRET.encode()),
        _INVALID,
        id="unknown-crit",
    ),
    pytest.param(
        lambda: _forge({"alg": "HS256", "b64": False}, _claims(), SECRET.encode()),
        _INVALID,
        id="unencoded-payload",
    ),
    pytest.param(
        lambda: _hs256(_claims(pad="x" * auth.MAX_TOKEN)), _INVALID, id="oversized-signed"
    ),
]


@pytest.mark.parametrize(("make_token", "expected"), INVALID_TOKENS)
def test_invalid_tokens_are_unauthorized(
    tmp_path: Path, make_token: Any, expected: tuple[str, dict[str, str]]
) -> None:
    token = make_token()

    with pytest.raises(errors.Unauthorized) as caught:
        make_verifier(tmp_path, jwt_secret=SECRET).verify(token)

    assert (caught.value.message, caught.value.details) == expected
    assert caught.value.status == 401
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}


def test_a_token_up_to_the_size_limit_is_accepted(tmp_path: Path) -> None:
    room = auth.MAX_TOKEN - len(_hs256(_claims(pad="")))
    token = _hs256(_claims(pad="x" * (room * 3 // 4)))  # base64: 4 characters per 3 bytes
    assert auth.MAX_TOKEN - 4 <= len(token) <= auth.MAX_TOKEN

    assert make_verifier(tmp_path, jwt_secret=SECRET).verify(token).sub == "alice"


# Public keys: RS256 and ES256


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), "RS256", id="rsa"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), "ES256", id="ec-p256"),
    ],
)
def test_public_key_verifies_tokens_of_its_algorithm(
    tmp_path: Path, make_key: Any, algorithm: str
) -> None:
    private_key = make_key()
    verifier = make_verifier(tmp_path, jwt_public_key=_public_pem(tmp_path, private_key))
    token = jwt.encode(_claims(scope="worker"), private_key, algorithm=algorithm)

    principal = verifier.verify(token)

    assert verifier.algorithm == algorithm
    assert principal.sub == "alice"
    assert principal.scopes == {"worker"}
    with pytest.raises(ConfigError, match="identity provider"):
        verifier.issue("alice")


@pytest.mark.parametrize(
    "make_key",
    [
        pytest.param(lambda: rsa.generate_private_key(65537, 2048), id="rs256"),
        pytest.param(lambda: ec.generate_private_key(ec.SECP256R1()), id="es256"),
    ],
)
def test_public_key_verifier_rejects_hs256_tokens(tmp_path: Path, make_key: Any) -> None:
    private_key = make_key()
    pem_path = _public_pem(tmp_path, private_key)
    verifier = make_verifier(tmp_path, jwt_public_key=pem_path)
    # Algorithm confusion: an HMAC keyed with the public key, which anyone may read.
    confused = _forge({"alg": "HS256", "typ": "JWT"}, _claims(), pem_path.read_bytes())
    shared = _hs256(_claims(), Settings(data_dir=tmp_path).signing_secret())

    for token in (confused, shared):
        with pytest.raises(errors.Unauthorized) as caught:
            verifier.verify(token)
        assert caught.value.message == auth.INVALID_TOKEN


def test_es256_verifier_rejects_rs256_tokens(tmp_path: Path) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    verifier = make_verifier(tmp_path, jwt_public_key=_public_pem(tmp_path, ec_key))
    token = jwt.encode(_claims(), rsa.generate_private_key(65537, 2048), algorithm="RS256")

    with pytest.raises(errors.Unauthorized) as caught:
        verifier.verify(token)
    assert caught.value.message == auth.INVALID_TOKEN


def _write(name: str, content: bytes) -> Any:
    def write(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(content)
        return path

    return write


@pytest.mark.parametrize(
    ("write", "message"),
    [
        pytest.param(
            lambda path: _public_pem(path, ec.generate_private_key(ec.SECP384R1())),
            "secp384r1",
            id="ec-p384",
        ),
        pytest.param(
            lambda path: _public_pem(path, ed25519.Ed25519PrivateKey.generate()),
            "RSA key",
            id="ed25519",
        ),
        pytest.param(
            lambda path: _public_pem(path, rsa.generate_private_key(65537, 1024)),
            "2048 bits",
            id="short-rsa",
        ),
        pytest.param(lambda path: path / "missing.pem", "Cannot read", id="missing-file"),
        pytest.param(_write("key.pem", b"hello"), "not a PEM", id="not-pem"),
        pytest.param(
            _write("key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            "private key",
            id="private-key",
        ),
    ],
)
def test_unusable_public_key_is_a_config_error(tmp_path: Path, write: Any, message: str) -> None:
    path = write(tmp_path)

    with pytest.raises(ConfigError, match=message):
        make_verifier(tmp_path, jwt_public_key=path)


# Issuer and audience


@pytest.mark.parametrize(
    ("configured", "claims", "accepted"),
    [
        pytest.param({}, {"iss": "anyone", "aud": "anything"}, True, id="unconfigured-ignored"),
        pytest.param({"jwt_issuer": ISSUER}, {"iss": ISSUER}, True, id="issuer-matches"),
        pytest.param({"jwt_issuer": ISSUER}, {"iss": "https://evil/"}, False, id="wrong-issuer"),
        pytest.param({"jwt_issuer": ISSUER}, {}, False, id="missing-issuer"),
        pytest.param({"jwt_audience": AUDIENCE}, {"aud": AUDIENCE}, True, id="audience-matches"),
        pytest.param(
            {"jwt_audience": AUDIENCE}, {"aud": ["other", AUDIENCE]}, True, id="audience-in-list"
        ),
        pytest.param({"jwt_audience": AUDIENCE}, {"aud": "other"}, False, id="wrong-audience"),
        pytest.param({"jwt_audience": AUDIENCE}, {}, False, id="missing-audience"),
    ],
)
def test_issuer_and_audience_are_enforced_only_when_configured(
    tmp_path: Path, configured: dict[str, str], claims: dict[str, Any], accepted: bool
) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET, **configured)
    token = _hs256(_claims(**claims))

    if accepted:
        assert verifier.verify(token).sub == "alice"
    else:
        with pytest.raises(errors.Unauthorized):
            verifier.verify(token)


def test_issued_token_carries_configured_issuer_and_audience(tmp_path: Path) -> None:
    verifier = make_verifier(tmp_path, jwt_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE)

    token = verifier.issue("alice", auth.SCOPES, 60)

    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=AUDIENCE)
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["scope"] == "jobs:read jobs:write worker admin"
    assert claims["exp"] - claims["iat"] == 60
    assert verifier.verify(token).is_admin


@pytest.mark.parametrize(
    ("sub", "scopes", "ttl_seconds"),
    [
        pytest.param("", ["jobs:read"], 60, id="empty-sub"),
        pytest.param("alice", ["jobs:delete"], 60, id="unknown-scope"),
        pytest.param("alice", ["jobs:read"], 0, id="zero-ttl"),
    ],
)
def test_issue_rejects_bad_arguments(
    tmp_path: Path, sub: str, scopes: list[str], ttl_seconds: int
) -> None:
    with pytest.raises(ValueError):
        make_verifier(tmp_path, jwt_secret=SECRET).issue(sub, scopes, ttl_seconds)


# The shared secret


def test_generated_secret_is_created_once_and_reused(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path)
    token = auth.TokenVerifier.from_settings(first).issue("alice")

    secret = first.signing_secret()

    assert first.signing_secret() == secret
    assert Settings(data_dir=tmp_path).signing_secret() == secret
    assert len(secret.encode()) >= 32
    assert stat.S_IMODE((tmp_path / "jwt-secret").stat().st_mode) == 0o600
    assert make_verifier(tmp_path).verify(token).sub == "alice"


def test_configured_secret_is_used_and_nothing_is_generated(tmp_path: Path) -> None:
    token = make_verifier(tmp_path, jwt_secret=SECRET).issue("alice")

    assert jwt.decode(token, SECRET, algorithms=["HS256"])["sub"] == "alice"
    assert not (tmp_path / "jwt-secret").exists()


def test_short_secret_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        make_verifier(tmp_path, jwt_secret="hunter2")
