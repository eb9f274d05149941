from django.urls import path

from metrics.api import views

urlpatterns = [
    path("metrics/", views.MetricsView.as_view(), name="metrics"),
    path("metrics/series/", views.MetricSeriesView.as_view(), name="metrics-series"),
    path("metrics/cohorts/", views.CohortsView.as_view(), name="metrics-cohorts"),
    path("metrics/predictions/", views.PredictedValueView.as_view(), name="metrics-predictions"),
]
