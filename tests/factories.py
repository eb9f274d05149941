import datetime as dt
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm.models import Complaint, Contact, Customer, Feedback, Order


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct-horse-battery-staple")


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"CUST-{n:06d}")
    name = factory.Faker("name")
    email = factory.LazyAttribute(lambda c: f"{c.external_id.lower()}@example.com")
    phone = ""
    locale = "en"


class OrderFactory(factory.django.DjangoModelFactory):
    """A bare order row; tests of the denormalised figures go through the services instead."""

    class Meta:
        model = Order

    external_id = factory.Sequence(lambda n: f"ORD-{n:07d}")
    customer = factory.SubFactory(CustomerFactory)
    ordered_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=10))
    amount = Decimal("49.90")
    currency = "EUR"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    channel = Contact.Channel.CALL
    occurred_at = factory.LazyFunction(timezone.now)


class ComplaintFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Complaint

    customer = factory.SubFactory(CustomerFactory)
    opened_at = factory.LazyFunction(lambda: timezone.now() - dt.timedelta(days=3))
    summary = "Parcel arrived damaged"


class FeedbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Feedback

    customer = factory.SubFactory(CustomerFactory)
    kind = Feedback.Kind.NPS
    score = 9
    responded_at = factory.LazyFunction(timezone.now)


class OfferFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "winback.Offer"

    name = factory.Sequence(lambda n: f"Offer {n}")
    script = "Fifteen percent off your next order."
    code_prefix = "TEST"
    valid_days = 30


class CadenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.Cadence"

    name = factory.Sequence(lambda n: f"Cadence {n}")
    trigger = "order"
    marketing = False


class CadenceStepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "touchpoints.CadenceStep"

    cadence = factory.SubFactory(CadenceFactory)
    channel = "email"
    template = "thank_you"
