"""Every model has a factory that builds a valid, stored row."""

import factory
import pytest
from django.apps import apps

from tests import factories

pytestmark = pytest.mark.django_db
PROJECT_APPS = ("core", "crm", "predictions", "winback", "touchpoints", "metrics")


def _factory_for(model) -> type:
    for value in vars(factories).values():
        if isinstance(value, type) and issubclass(value, factory.django.DjangoModelFactory) \
                and value._meta.get_model_class() is model:
            return value
    raise AssertionError(f"no factory for {model._meta.label}")


@pytest.mark.parametrize("model", [m for app in PROJECT_APPS for m in apps.get_app_config(app).get_models()],
                         ids=lambda m: m._meta.label)
def test_every_model_has_a_factory_that_saves_a_valid_row(model):
    row = _factory_for(model)()
    row.full_clean(validate_unique=False, validate_constraints=False)
    assert model.objects.filter(pk=row.pk).exists()
