from django.conf import settings
from django.core.checks import Warning, register


@register(deploy=True)
def site_url_is_https(app_configs, **kwargs):
    if settings.SITE_URL.startswith("https://"):
        return []
    return [Warning(
        f"SITE_URL is {settings.SITE_URL!r}: the unsubscribe and survey links in emails must be https.",
        hint="Set SITE_URL to the public https address, e.g. https://winback.example.com.", id="touchpoints.W001",
    )]
