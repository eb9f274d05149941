from django.urls import path
from rest_framework.routers import DefaultRouter

from winback.api import queue, views

router = DefaultRouter()
router.register("cases", views.CaseViewSet, basename="case")
router.register("offers", views.OfferViewSet, basename="offer")
router.register("coupons", views.CouponViewSet, basename="coupon")

urlpatterns = [
    path("customers/<str:external_id>/lifecycle/", views.CustomerLifecycleView.as_view(), name="customer-lifecycle"),
    path("queue/next/", queue.QueueNextView.as_view(), name="queue-next"),
    path("cases/<int:pk>/disposition/", queue.CaseDispositionView.as_view(), name="case-disposition"),
    path("cases/<int:pk>/release/", queue.CaseReleaseView.as_view(), name="case-release"),
    path("me/callbacks/", queue.MyCallbacksView.as_view(), name="my-callbacks"),
    *router.urls,
]
