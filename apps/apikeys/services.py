"""Writes on API keys of the current store (the connection's tenant schema)."""

from __future__ import annotations

import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import redis
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from apps.apikeys import cache, publishable_cache
from apps.apikeys.keys import KEY_MARKER, PUBLISHABLE_MARKER, key_generate, key_hash
from apps.apikeys.models import ApiKey, IdentitySecret
from apps.audit.actions import AuditAction
from apps.audit.services import audit_record
from apps.core import pii
from apps.core.cache import redis_client
from apps.core.errors import ApplicationError
from apps.notifications.services import notification_send
from apps.users.models import Membership, User
from apps.users.permissions import can

logger = logging.getLogger(__name__)

VALID_SCOPES = tuple(ApiKey.Scope.values)
# A revocation stays announced in Redis well past every process's local cache lifetime.
REVOKED_MARKER_SECONDS = 120
# Members are told this long before a key expires (once per key, by the daily beat task).
EXPIRY_NOTICE = timedelta(days=7)
# The longest expiry a key can be created with (the dashboard's form and create_api_key).
EXPIRES_IN_DAYS_MAX = 3650


def _require_store_schema() -> str:
    schema = connection.schema_name
    if schema == "public":
        raise ApplicationError(
            "API keys belong to a store; run this in a store's schema.", code="no_store"
        )
    return schema


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    cleaned = []
    for scope in scopes:
        scope = scope.strip().lower()
        if scope and scope not in cleaned:
            cleaned.append(scope)
    unknown = [scope for scope in cleaned if scope not in VALID_SCOPES]
    if unknown:
        raise ApplicationError(
            f"Unknown scope: {', '.join(unknown)}. Valid scopes: {', '.join(VALID_SCOPES)}.",
            fields={"scopes": [f"unknown: {scope}" for scope in unknown]},
        )
    if not cleaned:
        raise ApplicationError("At least one scope is required.", fields={"scopes": ["required"]})
    return sorted(cleaned, key=VALID_SCOPES.index)


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ApplicationError("A key name is required.", fields={"name": ["required"]})
    if len(name) > 100:
        raise ApplicationError(
            "A key name has at most 100 characters.", fields={"name": ["too long"]}
        )
    return name


def _key_store(
    schema: str,
    *,
    marker: str,
    fields: dict,
    audit: dict,
    acting_user: User | None,
    actor_label: str,
    request: HttpRequest | None,
) -> tuple[ApiKey, str]:
    """The one way a key is made, whatever its kind: a fresh unique prefix, only the hash
    stored, audited as `api_key.created` (name, prefix, `audit`; never the secret)."""
    prefix, plaintext = key_generate(marker)
    while ApiKey.objects.filter(prefix=prefix).exists():
        prefix, plaintext = key_generate(marker)
    api_key = ApiKey.objects.create(
        prefix=prefix,
        secret_hash=key_hash(plaintext),
        created_by_id=acting_user.pk if acting_user is not None else None,
        **fields,
    )
    audit_record(
        action=AuditAction.API_KEY_CREATED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="api_key",
        target_id=str(api_key.pk),
        details={"name": fields["name"], "prefix": prefix, **audit},
        request=request,
    )
    # A cached "no such key" for this prefix must not outlive the creation.
    transaction.on_commit(lambda: cache.local_forget(schema, prefix))
    return api_key, plaintext


@transaction.atomic
def api_key_create(
    *,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    acting_user: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> tuple[ApiKey, str]:
    """Create a key for the current store. Returns (api_key, plaintext key); the plaintext is
    never stored nor retrievable again. Audited as `api_key.created` (name, prefix, scopes,
    expiry; never the secret).

    Raises ApplicationError 400 naming the field for a blank/long name, unknown or no scopes,
    or an expiry that is naive or not in the future.
    """
    schema = _require_store_schema()
    name = _clean_name(name)
    clean_scopes = _clean_scopes(scopes)
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            raise ApplicationError(
                "The expiry needs a time zone.", fields={"expires_at": ["naive datetime"]}
            )
        if expires_at <= timezone.now():
            raise ApplicationError(
                "The expiry must be in the future.", fields={"expires_at": ["in the past"]}
            )
    return _key_store(
        schema,
        marker=KEY_MARKER,
        fields={"name": name, "scopes": clean_scopes, "expires_at": expires_at},
        audit={
            "scopes": clean_scopes,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        acting_user=acting_user,
        actor_label=actor_label,
        request=request,
    )


@transaction.atomic
def api_key_revoke(
    *,
    api_key: ApiKey,
    acting_user: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> ApiKey:
    """Revoke a key of the current store; effective at once in every process (a Redis marker
    checked on each authentication), and in the database for good. Audited as
    `api_key.revoked`. Raises ApplicationError 409 if the key is already revoked."""
    schema = _require_store_schema()
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is not None:
        raise ApplicationError(
            "This API key is already revoked.", code="already_revoked", status_code=409
        )
    api_key.revoked_at = timezone.now()
    api_key.save(update_fields=["revoked_at"])
    audit_record(
        action=AuditAction.API_KEY_REVOKED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="api_key",
        target_id=str(api_key.pk),
        details={"name": api_key.name, "prefix": api_key.prefix},
        request=request,
    )
    prefix = api_key.prefix
    cache.local_forget(schema, prefix)
    transaction.on_commit(lambda: _announce_revocation(schema, prefix))
    transaction.on_commit(lambda: publishable_cache.origins_forget(schema))
    return api_key


def _announce_revocation(schema: str, prefix: str) -> None:
    cache.local_forget(schema, prefix)
    try:
        redis_client().set(cache.revoked_marker_key(schema, prefix), 1, ex=REVOKED_MARKER_SECONDS)
    except redis.RedisError:
        # Other processes still drop the key when their local cache entry expires.
        logger.warning("could not announce API key revocation", extra={"prefix": prefix})


def api_key_touch(*, api_key_id: int, used_at: datetime) -> None:
    """Record a key's use time; called at most once a minute per key by authentication."""
    ApiKey.objects.filter(pk=api_key_id).update(last_used_at=used_at)


def _key_manager_ids() -> list[int]:
    """Members of the connection's store whose role may manage API keys."""
    roles = [role for role in Membership.Role.values if can(role, "manage_api_keys")]
    return list(
        Membership.objects.filter(tenant_id=connection.tenant.pk, role__in=roles)
        .order_by("user_id")
        .values_list("user_id", flat=True)
    )


@transaction.atomic
def api_keys_expiry_notify(*, now: datetime | None = None) -> list[ApiKey]:
    """Notify the store's members who manage API keys (kind `api_key.expiring`, plus the
    store's webhooks subscribed to it) of every unrevoked key that expires within
    EXPIRY_NOTICE of `now` and was not notified yet. Each key's `expiry_notified_at` is set in
    the same transaction as its notification, so re-runs never notify a key twice, and a
    concurrent run skips the rows this one holds. Returns the keys notified, soonest first.
    Raises ApplicationError outside a store schema."""
    _require_store_schema()
    now = now or timezone.now()
    due = list(
        ApiKey.objects.select_for_update(skip_locked=True)
        .filter(
            revoked_at__isnull=True,
            expiry_notified_at__isnull=True,
            expires_at__gt=now,
            expires_at__lte=now + EXPIRY_NOTICE,
        )
        .order_by("expires_at", "id")
    )
    if not due:
        return []
    recipients = _key_manager_ids()
    for api_key in due:
        api_key.expiry_notified_at = now
        api_key.save(update_fields=["expiry_notified_at"])
        expires = api_key.expires_at.astimezone(UTC)
        notification_send(
            kind="api_key.expiring",
            title=f'API key "{api_key.name}" expires on {expires:%Y-%m-%d}',
            body=(
                f"The key {api_key.prefix} stops working at {expires:%Y-%m-%d %H:%M} UTC. "
                "Create a new key and switch your integration to it before then."
            ),
            link="/api-keys/",
            data={
                "api_key_id": api_key.pk,
                "prefix": api_key.prefix,
                "name": api_key.name,
                "expires_at": expires.isoformat(),
            },
            user_ids=recipients,
        )
    return due


# --- Publishable keys and the identity verification secret (apps/apikeys/publishable.py) ------
MAX_ALLOWED_ORIGINS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*")


def _origin(raw: str) -> str | None:
    """`raw` as a browser sends it in `Origin` (`scheme://host[:port]`: lowercase, the host in
    its ASCII form, IPv6 in brackets, no default port), or None when it is not an origin."""
    text = raw.strip().rstrip("/")
    if len(text) > 200 or not text.isprintable():
        return None
    parsed = urlsplit(text)
    scheme = parsed.scheme.lower()
    try:
        port = parsed.port
    except ValueError:
        return None
    if (
        scheme not in _DEFAULT_PORTS
        or not parsed.hostname
        or port == 0
        or parsed.path
        or parsed.query
        or parsed.fragment
        or parsed.username is not None
    ):
        return None
    try:
        address = ipaddress.ip_address(parsed.hostname)
    except ValueError:
        try:
            # A Unicode host is sent by browsers in its punycode form.
            host = parsed.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        if not _HOST_NAME.fullmatch(host):
            return None
    else:
        host = f"[{address.compressed}]" if address.version == 6 else address.compressed
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origins_clean(origins: Iterable[str]) -> list[str]:
    """Storefront origins as browsers send them in `Origin` (`_origin`). Raises
    ApplicationError naming `allowed_origins` for anything that is not an origin, or for none."""
    cleaned: list[str] = []
    for raw in origins:
        if not raw.strip():
            continue
        origin = _origin(raw)
        if origin is None:
            raise ApplicationError(
                f"Not an origin: {raw.strip()!r} (expected e.g. https://shop.example).",
                fields={"allowed_origins": [f"not an origin: {raw.strip()}"]},
            )
        if origin not in cleaned:
            cleaned.append(origin)
    if not cleaned:
        raise ApplicationError(
            "At least one allowed origin is required.", fields={"allowed_origins": ["required"]}
        )
    if len(cleaned) > MAX_ALLOWED_ORIGINS:
        raise ApplicationError(
            f"At most {MAX_ALLOWED_ORIGINS} allowed origins.",
            fields={"allowed_origins": ["too many"]},
        )
    return cleaned


@transaction.atomic
def publishable_key_create(
    *,
    name: str,
    allowed_origins: Iterable[str],
    acting_user: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> tuple[ApiKey, str]:
    """Create a publishable key (`ss_pub_…`) for the current store: for browsers (the SDK),
    good for tracking and recommendations only, from `allowed_origins` only. Returns (api_key,
    plaintext); stored hashed like secret keys. Audited as `api_key.created` with kind
    `publishable` and the origins. Raises ApplicationError naming `name` or `allowed_origins`."""
    schema = _require_store_schema()
    name = _clean_name(name)
    origins = origins_clean(allowed_origins)
    created = _key_store(
        schema,
        marker=PUBLISHABLE_MARKER,
        fields={
            "name": name,
            "kind": ApiKey.Kind.PUBLISHABLE,
            "allowed_origins": origins,
            "scopes": [ApiKey.Scope.RECOMMEND],
        },
        audit={"kind": ApiKey.Kind.PUBLISHABLE, "allowed_origins": origins},
        acting_user=acting_user,
        actor_label=actor_label,
        request=request,
    )
    transaction.on_commit(lambda: publishable_cache.origins_forget(schema))
    return created


IDENTITY_SECRET_MARKER = "ss_idv_"  # noqa: S105 (the visible marker, not a secret)


@transaction.atomic
def identity_secret_rotate(
    *,
    acting_user: User | None = None,
    actor_label: str = "",
    request: HttpRequest | None = None,
) -> str:
    """Generate the store's identity verification secret (`ss_idv_…`), replacing any previous
    one: user tokens signed with the old secret stop verifying (within API_KEY_CACHE_SECONDS
    in other processes). Returns the secret, shown once; stored encrypted (apps.core.pii).
    Audited as `api_key.identity_secret_rotated` (never the secret)."""
    schema = _require_store_schema()
    secret = f"{IDENTITY_SECRET_MARKER}{secrets.token_urlsafe(32)}"
    replaced = IdentitySecret.objects.select_for_update().exists()
    IdentitySecret.objects.all().delete()
    IdentitySecret.objects.create(
        encrypted_secret=pii.encrypt(secret.encode()),
        created_by_id=acting_user.pk if acting_user is not None else None,
    )
    audit_record(
        action=AuditAction.API_KEY_IDENTITY_SECRET_ROTATED,
        acting_user=acting_user,
        actor_label=actor_label,
        target_type="identity_secret",
        target_id=schema,
        details={"replaced": replaced},
        request=request,
    )
    transaction.on_commit(lambda: publishable_cache.identity_secret_forget(schema))
    return secret


@transaction.atomic
def identity_secret_reencrypt() -> int:
    """Re-encrypt the current store's identity verification secret under the first
    PII_ENCRYPTION_KEYS key (part of `manage.py pii_reencrypt`). Returns the rows rewritten."""
    _require_store_schema()
    count = 0
    for row in IdentitySecret.objects.select_for_update():
        row.encrypted_secret = pii.reencrypt(row.encrypted_secret)
        row.save(update_fields=["encrypted_secret"])
        count += 1
    return count
