from django.db.models import QuerySet

from predictions.models import CustomerPrediction, ModelFit


def fit_latest_usable(*, model: str) -> ModelFit | None:
    """The fit the product uses for ``model``: the latest that converged on enough data."""
    return ModelFit.objects.filter(model=model, usable=True).order_by("-id").first()


def fit_history(*, limit: int = 50) -> QuerySet[ModelFit]:
    return ModelFit.objects.order_by("-id")[:limit]


def customer_prediction(*, customer_id: int) -> CustomerPrediction | None:
    return CustomerPrediction.objects.filter(customer_id=customer_id).first()
