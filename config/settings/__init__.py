"""DJANGO_SETTINGS_MODULE=config.settings: the profile DJANGO_PROFILE names (development unless it says
production). The test run names config.settings.test itself (pytest.ini)."""

import os

if os.environ.get("DJANGO_PROFILE", "development") == "production":
    from config.settings.production import *  # noqa: F403
else:
    from config.settings.development import *  # noqa: F403
