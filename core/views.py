from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from core.selectors import health_status


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    ok, checks = health_status()
    return JsonResponse({"status": "ok" if ok else "error", **checks}, status=200 if ok else 503)
