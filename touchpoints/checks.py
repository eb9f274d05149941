from django.conf import settings
from django.core.checks import Error, Warning, register

from touchpoints.models import RETRY_MAX_DELAY_SECONDS_BOUNDS, RETRY_WINDOW_HOURS_BOUNDS


@register()
def retry_settings_in_bounds(app_configs, **kwargs):
    errors = []
    for name, (low, high), unit in (("TOUCHPOINT_RETRY_WINDOW_HOURS", RETRY_WINDOW_HOURS_BOUNDS, "hours"),
                                    ("TOUCHPOINT_RETRY_MAX_DELAY_SECONDS", RETRY_MAX_DELAY_SECONDS_BOUNDS, "seconds")):
        value = getattr(settings, name)
        if not low <= value <= high:
            errors.append(Error(
                f"{name} is {value}: it must be from {low} to {high} {unit} (until it is, the nearest bound is used).",
                hint=f"Set {name} in the environment within the bounds (README, Configuration).", id="touchpoints.E001"))
    return errors


@register(deploy=True)
def site_url_is_https(app_configs, **kwargs):
    if settings.SITE_URL.startswith("https://"):
        return []
    return [Warning(
        f"SITE_URL is {settings.SITE_URL!r}: the unsubscribe and survey links in emails must be https.",
        hint="Set SITE_URL to the public https address, e.g. https://winback.example.com.", id="touchpoints.W001",
    )]
