"""Bearer-token authentication on PyJWT (API.md, "Auth")."""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Self

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from service import settings as config
from service.edge import api_errors as errors
from service.edge import bodies, headers
from service.edge.limits import OwnerRate
from service.principal import Principal

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from starlette.requests import HTTPConnection

SCOPES = ("jobs:read", "jobs:write", "worker", "admin")
DEFAULT_SCOPES = frozenset({"jobs:read", "jobs:write"})
COOKIE_NAME = "jobtrail_token"
QUERY_PARAMETER = "access_token"
MAX_SUBJECT = 255  # characters of `sub`, the owner of the jobs the token creates
# RFC 9110 §9.2.1: the methods that change nothing (and must not, here), so need no CSRF check.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CROSS_ORIGIN = (
    "Refused: a request signed in by the session cookie that changes something must come from"
    " this server's own pages (Sec-Fetch-Site: same-origin, or an Origin header naming this"
    " server). Other clients send 'Authorization: Bearer <token>' instead."
)
_COOKIE_KEY = COOKIE_NAME.encode()
_ONCE = "{} must be sent once: it was sent more than once."
_DEFAULT_PORTS = {"http": ":80", "https": ":443"}
_SHOWN = 100  # characters of a refused header's value quoted in the error

Algorithm = Literal["HS256", "RS256", "ES256"]
VerificationKey = str | rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# RFC 7518 §3.2: an HS256 key has at least as many bits as the hash output. NIST: RSA ≥ 2048.
_MIN_SECRET_BYTES = 32
_VERIFIED_TOKENS = 10_000
_MIN_RSA_BITS = 2048

# RFC 8725 §3: what failed is the verifier's business, not the caller's. Every token that is
# not a well-formed, signed, current token of this service gets the one answer below (a forger
# learns nothing from it: not the algorithm, the issuer, the audience, nor which check it was).
# Two exceptions, for a token that only the key's holder could have made: one whose `sub`
# cannot be an owner says so (API.md: `details.sub`), and one that would be accepted but has
# expired says that, so that its client knows a fresh one will do.
INVALID_TOKEN = "The token is not valid."
EXPIRED_TOKEN = "The token has expired."
# Characters of a token, checked before anything is decoded: the largest identity providers'
# tokens stay under this (a browser's cookie holds at most 4096 bytes; nginx's and Apache's
# default header line limits are 8 KiB), and neither parsing nor the cache below grows with
# whatever an anonymous client sends.
MAX_TOKEN = 8192


class TokenVerifier:
    """Verifies bearer tokens with one pinned algorithm, and issues HS256 ones."""

    __slots__ = ("_algorithm", "_audience", "_issuer", "_key", "_rate", "_verified")

    def __init__(
        self,
        *,
        algorithm: Algorithm,
        key: VerificationKey,
        issuer: str | None = None,
        audience: str | None = None,
        rate: OwnerRate | None = None,
    ) -> None:
        _check_key(algorithm, key)
        self._algorithm: Algorithm = algorithm
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self._rate = rate  # None: no limit on requests per owner
        # Clients send the same token with every request: checking its signature and claims
        # once per token, not per request, saves a quarter of a request's CPU. An entry is
        # only ever returned for the identical token string, and never after its `exp`.
        self._verified: collections.OrderedDict[str, Principal] = collections.OrderedDict()

    @classmethod
    def from_settings(cls, settings: config.Settings) -> Self:
        key: VerificationKey
        if settings.jwt_public_key is None:
            algorithm: Algorithm = "HS256"
            key = settings.signing_secret()
        else:
            algorithm, key = _load_public_key(settings.jwt_public_key)
        limits = settings.limits
        return cls(
            algorithm=algorithm,
            key=key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            rate=OwnerRate(limits.requests_per_second, limits.request_burst)
            if limits.requests_per_second > 0
            else None,
        )

    @property
    def algorithm(self) -> Algorithm:
        return self._algorithm

    def admit(self, principal: Principal) -> None:
        """Counts a request of the principal against its owner's rate (service/edge/limits.py);
        429 `rate_limited` with Retry-After when it is over."""
        if self._rate is not None:
            wait = self._rate.admit(principal.sub)
            if wait is not None:
                raise errors.RateLimited(
                    "Too many requests for this owner: retry after the Retry-After seconds.",
                    headers={"Retry-After": str(wait)},
                )

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and known.expires_at > datetime.now(UTC):
            return known
        principal = self._verify(token)
        self._verified[token] = principal
        if len(self._verified) > _VERIFIED_TOKENS:
            self._verified.popitem(last=False)
        return principal

    def _verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN:
            raise errors.Unauthorized(INVALID_TOKEN)
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],  # pinned: never "none", never another family
                issuer=self._issuer,
                audience=self._audience,
                options={
                    "require": ["exp"],
                    "verify_iss": self._issuer is not None,
                    "verify_aud": self._audience is not None,
                    # `iat` is informational (RFC 7519 §4.1.6); rejecting one a second in the
                    # future only punishes an identity provider whose clock runs ahead.
                    "verify_iat": False,
                    # Checked below, once everything else holds: see INVALID_TOKEN.
                    "verify_exp": False,
                    "verify_sub": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise errors.Unauthorized(INVALID_TOKEN) from exc
        principal = _principal(claims)
        if principal.expires_at <= datetime.now(UTC):  # as PyJWT: expired at `exp` itself
            raise errors.Unauthorized(EXPIRED_TOKEN)
        return principal

    def issue(
        self,
        sub: str,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        ttl_seconds: int = 3600,
    ) -> str:
        if self._algorithm != "HS256" or not isinstance(self._key, str):
            raise config.ConfigError(
                "jobtrail cannot issue tokens: tokens are signed by your identity provider"
                " when JOBTRAIL_JWT_PUBLIC_KEY is set."
            )
        if not sub:
            raise ValueError("A token needs a non-empty subject.")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, not {ttl_seconds}.")
        wanted = set(scopes)
        unknown = wanted.difference(SCOPES)
        if unknown:
            raise ValueError(f"Unknown scopes: {', '.join(sorted(unknown))}.")
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "scope": " ".join(scope for scope in SCOPES if scope in wanted),
            "iat": now,
            "exp": now + ttl_seconds,
        }
        if self._issuer is not None:
            claims["iss"] = self._issuer
        if self._audience is not None:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._key, algorithm="HS256")


def bearer_token(request: HTTPConnection) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is no header.

    The scheme is case-insensitive (RFC 9110 §11.1). Two Authorization headers are refused: the
    field is a singleton, and a proxy that read the other one must not disagree with us on who
    is calling.
    """
    header = headers.header(request, b"authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or _repeated(request):
        raise errors.Unauthorized("The Authorization header must be 'Bearer <token>'.")
    return token


def _repeated(request: HTTPConnection) -> bool:
    return len(_all_values(request, b"authorization")) > 1


def _all_values(request: HTTPConnection, name: bytes) -> list[bytes]:
    """Every value of the header `name`, where `headers.header` gives the first only."""
    pairs: list[tuple[bytes, bytes]] = request.scope["headers"]
    return [value for key, value in pairs if key.lower() == name]


def authenticate(
    request: HTTPConnection,
    verifier: TokenVerifier,
    scope: str,
    *,
    cookie: bool = True,
    stream: bool = False,
) -> Principal:
    """The caller, holding `scope`: the `Authorization` header's token; without one, the session
    cookie's (`cookie`), for which a request that may change something must pass
    `require_same_origin`; without either, `?access_token=` on the SSE forms only (`stream`).
    """
    if scope not in SCOPES:
        raise ValueError(f"Unknown scope {scope!r}.")
    token = bearer_token(request)
    if token is None and cookie:
        token = request.cookies.get(COOKIE_NAME) or None
        if token is not None:
            if _cookies_named(request, _COOKIE_KEY) > 1:
                raise errors.Unauthorized(_ONCE.format(f"The {COOKIE_NAME} cookie"))
            require_same_origin(request)
    if token is None and stream:
        tokens = request.query_params.getlist(QUERY_PARAMETER)
        if len(tokens) > 1:
            raise errors.Unauthorized(_ONCE.format(f"?{QUERY_PARAMETER}="))
        token = tokens[0] if tokens else None
    if not token:
        raise errors.Unauthorized()
    principal = verifier.verify(token)
    if not principal.has(scope):
        raise errors.Forbidden(f"The token lacks the '{scope}' scope.")
    verifier.admit(principal)
    return principal


def _cookies_named(request: HTTPConnection, name: bytes) -> int:
    """How many cookies called `name` the request carries, in all its Cookie headers.

    Starlette keeps one (the last of the first header); a browser sends two when another site
    of the same domain set one too ("cookie tossing"), listed first or last by its path: which
    one is ours is then anyone's guess, so neither is taken.
    """
    return sum(
        part.partition(b"=")[0].strip() == name
        for value in _all_values(request, b"cookie")
        for part in value.split(b";")
    )


def require_same_origin(request: HTTPConnection) -> None:
    """CSRF: a browser attaches the cookie to whatever request a page makes, so a request it
    authenticates that may change something must show that a page of this origin made it.

    As Go's `net/http.CrossOriginProtection` does, `Sec-Fetch-Site` decides when it is sent
    (every browser since 2023; a page cannot set it): only `same-origin` passes. Without it, the
    `Origin` header must be this server's own origin (scheme, host and port, as Django and Rails
    compare). Unlike Go, neither header is a refusal too: the cookie is a browser's credential
    (other clients send the Authorization header, which no other site can make a browser send),
    and every browser sends one of the two with a POST, PATCH or DELETE.
    """
    if request.scope.get("method", "GET") in SAFE_METHODS:
        return
    site = headers.header(request, b"sec-fetch-site")
    if site is not None:
        if site.strip().lower() == "same-origin":
            return
        problem = f"must be same-origin, not {_shown(site)}"
        raise errors.Forbidden(_CROSS_ORIGIN, details={"Sec-Fetch-Site": problem})
    origin = headers.header(request, b"origin")
    own = own_origin(request)
    if origin is None:
        problem = f"is missing (and so is Sec-Fetch-Site); it must be {own}"
        raise errors.Forbidden(_CROSS_ORIGIN, details={"Origin": problem})
    scheme, _, host = origin.strip().partition("://")
    if _origin(scheme, host) != own:
        problem = f"must be {own}, not {_shown(origin)}"
        raise errors.Forbidden(_CROSS_ORIGIN, details={"Origin": problem})


def own_origin(request: HTTPConnection) -> str:
    """This server's origin as the request addressed it: its scheme and its `Host`."""
    url = request.url
    return _origin(url.scheme, url.netloc)


def _origin(scheme: str, host: str) -> str:
    scheme, host = scheme.lower(), host.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None:
        host = host.removesuffix(default)
    return f"{scheme}://{host}"


def _shown(value: str) -> str:
    """A header's value in an error message: a client's own, cut short."""
    value = value.strip()
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def _principal(claims: dict[str, Any]) -> Principal:
    sub, exp, scope = claims.get("sub"), claims["exp"], claims.get("scope")
    if sub is None:  # a claim every token of ours has: like any other malformed token
        raise errors.Unauthorized(INVALID_TOKEN)
    problem = _subject_problem(sub)
    if problem is not None:
        raise errors.Unauthorized(f"The token's 'sub' claim {problem}.", details={"sub": problem})
    assert isinstance(sub, str)
    if scope is None:
        scopes = DEFAULT_SCOPES
    elif isinstance(scope, str):
        scopes = frozenset(scope.split()).intersection(SCOPES)
    else:
        raise errors.Unauthorized(INVALID_TOKEN)
    # PyJWT compares int(exp) with the clock: a bool or a string of digits would pass that.
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise errors.Unauthorized(INVALID_TOKEN)
    try:
        expires_at = datetime.fromtimestamp(exp, tz=UTC)
    except (ValueError, OverflowError, OSError):
        raise errors.Unauthorized(INVALID_TOKEN) from None
    return Principal(sub=sub, scopes=scopes, expires_at=expires_at)


def _subject_problem(sub: object) -> str | None:
    """Why `sub` cannot be the owner of jobs (API.md, "Limits": the token), or None."""
    if not isinstance(sub, str) or not sub.strip() or len(sub) > MAX_SUBJECT:
        return f"must be a non-empty string of at most {MAX_SUBJECT} characters"
    if not sub.isascii() and not bodies.is_unicode(sub):  # "\ud800": nothing could store it
        return "is not valid Unicode"
    if "\x00" in sub:  # the owner column: no PostgreSQL text holds U+0000
        return bodies.NO_NUL
    return None


def _load_public_key(path: Path) -> tuple[Algorithm, VerificationKey]:
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise config.ConfigError(
            f"Cannot read JOBTRAIL_JWT_PUBLIC_KEY {str(path)!r}: {exc.strerror}."
        ) from exc
    if b"PRIVATE KEY" in pem:
        raise config.ConfigError(
            f"JOBTRAIL_JWT_PUBLIC_KEY {str(path)!r} holds a private key; give the public key."
        )
    try:
        if b"-----BEGIN CERTIFICATE-----" in pem:
            key: object = x509.load_pem_x509_certificate(pem).public_key()
        else:
            key = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise config.ConfigError(
            f"JOBTRAIL_JWT_PUBLIC_KEY {str(path)!r} is not a PEM public key or certificate."
        ) from exc
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256", key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return "ES256", key
    raise config.ConfigError(
        f"JOBTRAIL_JWT_PUBLIC_KEY {str(path)!r} must be an RSA key (RS256) or an EC P-256 key"
        f" (ES256), not {_describe(key)}."
    )


def _check_key(algorithm: Algorithm, key: VerificationKey) -> None:
    # Fail at startup rather than warn (or fail) on every request.
    if algorithm == "HS256":
        if not isinstance(key, str) or len(key.encode()) < _MIN_SECRET_BYTES:
            raise config.ConfigError(
                f"JOBTRAIL_JWT_SECRET must be at least {_MIN_SECRET_BYTES} bytes long;"
                " unset it to have one generated."
            )
    elif algorithm == "RS256":
        if not isinstance(key, rsa.RSAPublicKey) or key.key_size < _MIN_RSA_BITS:
            raise config.ConfigError(f"RS256 needs an RSA key of at least {_MIN_RSA_BITS} bits.")
    elif not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise config.ConfigError("ES256 needs an EC P-256 public key.")


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC {key.curve.name} key"
    return f"a {type(key).__name__.lstrip('_')}"
