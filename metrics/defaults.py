from django.apps import apps as global_apps


def metrics_defaults_ensure(apps=global_apps, **kwargs) -> None:
    apps.get_model("core", "BusinessSettings").objects.get_or_create(pk=1)
