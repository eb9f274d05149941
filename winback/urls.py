from django.urls import path

from winback import views

app_name = "agent"
urlpatterns = [
    path("", views.home, name="home"),
    path("next/", views.next_customer, name="next"),
    path("case/<int:pk>/", views.case_page, name="case"),
    path("case/<int:pk>/release/", views.release, name="release"),
    path("case/<int:pk>/coupon/", views.case_coupon, name="case-coupon"),
    path("callbacks/", views.callbacks, name="callbacks"),
]
