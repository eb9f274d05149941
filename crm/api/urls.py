from rest_framework.routers import DefaultRouter

from crm.api import views

router = DefaultRouter()
router.register("customers", views.CustomerViewSet, basename="customer")
router.register("orders", views.OrderViewSet, basename="order")
router.register("contacts", views.ContactViewSet, basename="contact")
router.register("complaints", views.ComplaintViewSet, basename="complaint")
router.register("feedback", views.FeedbackViewSet, basename="feedback")
router.register("acquisition-spend", views.AcquisitionSpendViewSet, basename="acquisition-spend")

urlpatterns = router.urls
