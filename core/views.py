from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from core.selectors import health_status, liveness_status


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """Every loop the service depends on: 503 when any is down (for monitoring and alerting)."""
    ok, checks = health_status()
    return JsonResponse(checks, status=200 if ok else 503)


@require_GET
def liveness(request: HttpRequest) -> JsonResponse:
    """This web process and its database: for a container's health check, which must not restart the web
    processes because beat or a worker stopped."""
    ok, checks = liveness_status()
    return JsonResponse(checks, status=200 if ok else 503)
