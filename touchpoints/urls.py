from django.urls import path

from touchpoints import views

app_name = "touchpoints"
urlpatterns = [
    path("u/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("s/<str:token>/", views.score, name="score"),
    path("c/", views.comment, name="comment"),
]
