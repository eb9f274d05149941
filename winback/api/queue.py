"""The queue API for dialer integrations: the same services as the agents' page."""

import datetime as dt
from html import unescape

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import error_body, validation_errors
from core.fields import BusinessDateTimeField
from core.roles import user_is_agent, user_is_manager
from winback.api.serializers import CallbackSerializer, DispositionResultSerializer, ReleaseResultSerializer
from winback.selectors import agent_callbacks, call_guide, case_card, held_case_call_zones
from winback.services.calling_hours import zone_info, zone_keys
from winback.services.queue import (
    AGENT_OUTCOMES, DispositionInput, NotYourCase, case_claim_next, case_record_disposition,
    case_put_back,
)


class IsAgentOrManager(BasePermission):
    message = _("The queue is for agents and managers.")

    def has_permission(self, request, view) -> bool:
        return user_is_agent(request.user) or user_is_manager(request.user)


class CardSerializer(serializers.Serializer):
    def to_representation(self, card: dict) -> dict:
        case, customer = card["case"], card["customer"]
        # The guide the case page shows: a recovery call opens with the complaint, a care call says why.
        guide = call_guide(case=case, open_complaints=card["open_complaints"], now=timezone.now())
        return {
            "case": {"id": case.pk, "status": case.status, "is_recovery": case.is_recovery, "attempts": case.attempts,
                     "lease_until": case.lease_until, "lapsed_at": case.lapsed_at, "callback_at": case.callback_at},
            "customer": {"external_id": customer.external_id, "name": customer.name, "phone": customer.phone,
                         "local_time": card["local_time"].isoformat(), "time_zone": card["zone"],
                         "lifetime_value": str(card["lifetime_value"]), "order_count": card["order_count"],
                         "purchase_rhythm_days": card["rhythm_days"],
                         "days_since_last_order": card["days_since_last_order"]},
            "recent_orders": [{"external_id": o.external_id, "ordered_at": o.ordered_at, "amount": str(o.amount),
                               "currency": o.currency} for o in card["recent_orders"]],
            "open_complaints": [{"opened_at": c.opened_at, "category": c.category, "summary": c.summary} for c in card["open_complaints"]],
            "past_complaints": [{"opened_at": c.opened_at, "category": c.category, "resolution": c.resolution} for c in card["past_complaints"]],
            "contacts": [{"occurred_at": c.occurred_at, "channel": c.channel, "outcome": c.outcome, "notes": c.notes} for c in card["contacts"]],
            "earlier_reasons": [{"at": d.created_at, "reason": d.reason.name, "note": d.note} for d in card["earlier_reasons"]],
            "reasons": [{"id": r.pk, "name": r.name} for r in card["reasons"]],
            "offers": [{"id": o.pk, "name": o.name, "script": o.script} for o in card["offers"]],
            "call_guide": guide["steps"],
            "call_guide_kind": guide["kind"],
            # The page's lines isolate their data in <bdi>; an API client gets the plain sentences.
            "call_guide_opening": [unescape(strip_tags(line)) for line in guide["why"]],
        }


class CallbackTimeField(BusinessDateTimeField):
    """A callback time as typed: without an offset it is the customer's wall clock (kept naive), with one
    (+05:00, Z) it is that instant (the offset kept, never dropped)."""

    def enforce_timezone(self, value: dt.datetime) -> dt.datetime:
        return value


class DispositionSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=[(o.value, o.label) for o in AGENT_OUTCOMES])
    reason = serializers.IntegerField(required=False, allow_null=True)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000)
    callback_at = CallbackTimeField(
        required=False, allow_null=True,
        help_text=_("The customer's local time without an offset (e.g. 2025-03-12T15:00), or an instant with "
                    "one (e.g. 2025-03-12T14:00:00Z)."))
    offer = serializers.IntegerField(required=False, allow_null=True)


def _customer_wall_clock(*, call_zones: str, callback: dt.datetime | None) -> dt.datetime | None:
    """The callback as the customer's local wall-clock time, which is what the queue service takes.

    An instant given with an offset is moved into the zone the service reads local times in (the first of
    the customer's zones, as local_to_utc does), so that it names the same instant there."""
    if callback is None or callback.tzinfo is None:
        return callback
    zone = zone_info(zone_keys(call_zones or "")[0]) or dt.timezone.utc
    return callback.astimezone(zone).replace(tzinfo=None)


def _validation_response(exc: ValidationError) -> Response:
    return Response(error_body(validation_errors(exc)), status=status.HTTP_400_BAD_REQUEST)


class QueueNextView(APIView):
    """Claim the next callable case (held for the lease); 204 when nobody is callable now."""

    permission_classes = [IsAgentOrManager]

    @extend_schema(request=None, responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The case card"), 204: None})
    def post(self, request: Request) -> Response:
        case = case_claim_next(agent=request.user)
        if case is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(CardSerializer(case_card(case=case)).data)


class CaseDispositionView(APIView):
    """Record the outcome of the call on the case you hold; another agent's case is a 404."""

    permission_classes = [IsAgentOrManager]

    @extend_schema(request=DispositionSerializer, responses={200: DispositionResultSerializer})
    def post(self, request: Request, pk: int) -> Response:
        # Whose case it is comes first: another agent learns nothing, not even what the body lacks.
        call_zones = held_case_call_zones(agent=request.user, case_id=pk)
        if call_zones is None:
            raise Http404(_("No such case among yours."))
        data = DispositionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            disposition = case_record_disposition(agent=request.user, case_id=pk, data=DispositionInput(
                outcome=v["outcome"], reason_id=v.get("reason"), note=v.get("note", ""),
                callback_local=_customer_wall_clock(call_zones=call_zones, callback=v.get("callback_at")), offer_id=v.get("offer")))
        except NotYourCase:
            raise Http404(_("No such case among yours."))
        except ValidationError as exc:
            return _validation_response(exc)
        return Response(DispositionResultSerializer(disposition).data)


class CaseReleaseView(APIView):
    permission_classes = [IsAgentOrManager]

    @extend_schema(request=None, responses={200: ReleaseResultSerializer},
                   description="Put the held case back in the queue: it comes after every other callable case for the "
                               "call settings' skip_minutes, so the next claim brings another customer.")
    def post(self, request: Request, pk: int) -> Response:
        try:
            case_put_back(agent=request.user, case_id=pk)
        except NotYourCase:
            raise Http404(_("No such case among yours."))
        return Response(ReleaseResultSerializer({"case": pk, "released": True}).data)


class MyCallbacksView(APIView):
    permission_classes = [IsAgentOrManager]

    @extend_schema(responses={200: CallbackSerializer(many=True)}, description="Your booked callbacks, soonest first.")
    def get(self, request: Request) -> Response:
        return Response(CallbackSerializer(agent_callbacks(agent=request.user), many=True).data)
