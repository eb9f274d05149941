from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.auth_api import TokenLogoutAllView, TokenLogoutView
from core.views import Login, health, home, language_set, liveness, totp_enrol

urlpatterns = [
    path("", home, name="home"),
    path("admin/", admin.site.urls),
    path("health/", health, name="health"),
    path("health/live/", liveness, name="health-live"),
    path("accounts/login/", Login.as_view(), name="login"),  # before django.contrib.auth's own
    path("accounts/authenticator/", totp_enrol, name="totp-enrol"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("language/", language_set, name="language-set"),
    path("agent/", include("winback.urls")),
    path("t/", include("touchpoints.urls")),  # the links in emails: unsubscribe, survey scores
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[]), name="schema"),
    # The split view serves Swagger UI's init script as a request of its own (/api/docs/?script=): no inline
    # script, which the Content-Security-Policy refuses.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[],
                                                          template_name="api/swagger_ui.html"), name="api-docs"),
    path("api/auth/logout/", TokenLogoutView.as_view(), name="api-logout"),
    path("api/auth/logoutall/", TokenLogoutAllView.as_view(), name="api-logout-all"),
    path("api/", include("winback.api.urls")),
    path("api/", include("crm.api.urls")),
    path("api/", include("metrics.api.urls")),
]
