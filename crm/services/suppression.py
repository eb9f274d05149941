"""The suppression list: people who asked for erasure are never contacted again, even if re-imported.

Only keyed hashes are kept: HMAC-SHA256 under ``SUPPRESSION_HASH_KEY`` of "kind:value", with the email
lowercased and trimmed, the phone in E.164 (as crm stores it) and the shop's customer key as given. A
plain SHA-256 of an email could be reversed by hashing a list of addresses; without the key it cannot.

Key rotation: a digest cannot be recomputed without the value it hid, so a new key does not replace the old
ones. New entries use the current key; a lookup tries the current key and every old one
(``SUPPRESSION_HASH_OLD_KEYS``; with the default key, the keys derived from ``SECRET_KEY_FALLBACKS``).
Each entry records which key made it (``key_id``), so ``suppression_unknown_keys`` can tell when a key was
dropped too early.
"""

import hashlib
import hmac
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from crm.models import SuppressionEntry
from crm.validators import phone_normalize

Kind = SuppressionEntry.Kind


def _derived(secret: str) -> bytes:
    # A key of its own, so the list never shares a key with sessions or signed links.
    return hmac.new(secret.encode(), b"crm.suppression-list", hashlib.sha256).digest()


def suppression_keys() -> list[bytes]:
    """The current key first, then the old ones still accepted for lookups."""
    if settings.SUPPRESSION_HASH_KEY:
        keys = [settings.SUPPRESSION_HASH_KEY.encode(), *(k.encode() for k in settings.SUPPRESSION_HASH_OLD_KEYS)]
    else:
        fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", [])
        keys = [_derived(settings.SECRET_KEY), *(_derived(k) for k in fallbacks),
                *(k.encode() for k in settings.SUPPRESSION_HASH_OLD_KEYS)]
    return keys


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"key-id:" + key).hexdigest()[:16]


def normalised(kind: str, value: str) -> str:
    value = (value or "").strip()
    if kind == Kind.EMAIL:
        return value.lower()
    if kind == Kind.PHONE and value:
        try:
            return phone_normalize(value)
        except ValidationError:
            return value  # an unreadable number cannot match a stored E.164 one anyway
    return value


def digest(*, kind: str, value: str, key: bytes) -> str:
    return hmac.new(key, f"{kind}:{normalised(kind, value)}".encode(), hashlib.sha256).hexdigest()


def _values(*, email: str, phone: str, external_id: str) -> list[tuple[str, str]]:
    pairs = [(Kind.EMAIL, email), (Kind.PHONE, phone), (Kind.EXTERNAL_ID, external_id)]
    return [(kind, value) for kind, value in pairs if normalised(kind, value)]


def suppression_matches(*, email: str = "", phone: str = "", external_id: str = "") -> list[str]:
    """The kinds of the given values that are on the list (under any accepted key); [] when none is."""
    candidates = {digest(kind=kind, value=value, key=key): kind
                  for kind, value in _values(email=email, phone=phone, external_id=external_id)
                  for key in suppression_keys()}
    if not candidates:
        return []
    found = SuppressionEntry.objects.filter(digest__in=list(candidates)).values_list("digest", flat=True)
    return sorted({candidates[d] for d in found})


def suppression_add(*, email: str, phone: str, external_id: str, source: str) -> list[str]:
    """List the person's values under the current key (listing them again adds nothing); returns the kinds."""
    key = suppression_keys()[0]
    pairs = _values(email=email, phone=phone, external_id=external_id)
    SuppressionEntry.objects.bulk_create(
        [SuppressionEntry(kind=kind, digest=digest(kind=kind, value=value, key=key), key_id=key_id(key),
                          source=source[:40], created_at=timezone.now()) for kind, value in pairs],
        ignore_conflicts=True)
    return [kind for kind, _ in pairs]


def suppression_unknown_keys(*, accepted: Iterable[bytes] | None = None) -> int:
    """How many entries were made with a key that is no longer accepted (they would never match)."""
    ids = [key_id(k) for k in (accepted if accepted is not None else suppression_keys())]
    return SuppressionEntry.objects.exclude(key_id__in=ids).count()
