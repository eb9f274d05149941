from django.urls import path
from rest_framework.routers import DefaultRouter

from winback.api import views

router = DefaultRouter()
router.register("cases", views.CaseViewSet, basename="case")

urlpatterns = [
    path("customers/<str:external_id>/lifecycle/", views.CustomerLifecycleView.as_view(), name="customer-lifecycle"),
    *router.urls,
]
