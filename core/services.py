import datetime as dt

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from core.models import LANGUAGE_CODES, EnqueueFailure, Heartbeat, UserPreference
from core.selectors import totp_device_confirmed


def heartbeat_record(*, name: str, worker: str) -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"beat_at": timezone.now(), "worker": worker[:200]}
    )
    return heartbeat


def enqueue_failure_record(*, task: str, error: str) -> None:
    now = timezone.now()
    updated = EnqueueFailure.objects.filter(task=task).update(count=F("count") + 1, last_at=now, last_error=error[:500])
    if not updated:
        _, created = EnqueueFailure.objects.get_or_create(
            task=task, defaults={"count": 1, "last_at": now, "last_error": error[:500]}
        )
        if not created:  # a concurrent first failure made the row in between
            EnqueueFailure.objects.filter(task=task).update(count=F("count") + 1, last_at=now, last_error=error[:500])


# --- Logins -------------------------------------------------------------------------------------------

def login_lockout_clear(*, usernames: list[str]) -> int:
    """Forget every failed login of these accounts, from any address: they may log in again at once.

    Returns the number of attempt rows deleted (a manager's "Unlock" in the admin)."""
    return AccessAttempt.objects.filter(username__in=usernames).delete()[0]


def totp_device_verify(*, device: TOTPDevice, token: str) -> bool:
    """The code against the device, under its row lock: two requests cannot both use one code, and
    django-otp's back-off (1 s, 2 s, 4 s... after each wrong code) holds across processes."""
    with transaction.atomic():
        locked = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        verified = locked.verify_token(token.strip())
    device.refresh_from_db()
    return verified


def totp_enrolment_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The person's authenticator being set up: a new secret, inactive until a code confirms it.

    Shown again (same secret) until confirmed, so a reload of the page does not invalidate a scanned code."""
    if totp_device_confirmed(user=user) is not None:
        raise ValidationError(_("An authenticator is already set up for this account."), code="already_enrolled")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)


def totp_enrolment_confirm(*, user: AbstractBaseUser, token: str) -> TOTPDevice:
    """Activate the authenticator being set up once it gives a right code; from then on every login of the
    person asks for a code. A wrong code changes nothing (and slows the next try down)."""
    device = totp_enrolment_start(user=user)
    if not totp_device_verify(device=device, token=token):
        raise ValidationError(_("That code is not right (or came too late). Enter the code your app shows now."),
                              code="wrong_code")
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return device


# --- API tokens ---------------------------------------------------------------------------------------

def api_token_create(*, user: AbstractBaseUser, ttl_days: int | None = None) -> tuple[AuthToken, str]:
    """A new API token for the user: (the stored row, the token itself).

    Only the token's digest is stored, so the token is shown once, here, and never again."""
    days = settings.API_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    if not 1 <= days <= 366:
        raise ValidationError(_("A token lives 1 to 366 days, not %(days)d.") % {"days": days}, code="ttl")
    return AuthToken.objects.create(user=user, expiry=dt.timedelta(days=days))


def api_token_revoke(*, token: AuthToken) -> None:
    """The token stops working at once (its row is deleted)."""
    AuthToken.objects.filter(digest=token.digest).delete()


def api_tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Every token of the user stops working at once; returns how many there were."""
    return AuthToken.objects.filter(user=user).delete()[0]


def user_language_set(*, user: AbstractBaseUser, language: str) -> UserPreference:
    """Stores a person's language ("" = their browser's); a code outside settings.LANGUAGES changes nothing."""
    if language not in ("", *LANGUAGE_CODES):
        raise ValidationError(_("Unknown language %(code)s: choose one of %(codes)s.")
                              % {"code": language[:20], "codes": ", ".join(LANGUAGE_CODES)})
    preference, _created = UserPreference.objects.update_or_create(user=user, defaults={"language": language})
    return preference
