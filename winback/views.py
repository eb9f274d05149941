"""The agents' page: next customer, the customer card with the call guide, the disposition form."""

from functools import wraps
from html import unescape

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.safestring import SafeString
from django.utils.translation import get_language, gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.content import content_text
from core.isolation import sentence_isolated
from core.locale_format import date_local
from core.roles import user_is_agent, user_is_manager
from crm.models import Contact
from winback.forms import DispositionForm
from winback.models import CouponReservation
from winback.selectors import (
    AGENT_TODAY_NOTES, QUEUE_DEPTH_CAP, agent_callbacks_local, agent_cases_visible, agent_last_coupon, agent_today,
    call_guide, case_callback_presets, case_card, case_claimed_at, case_coupon_reservation, customer_language,
    language_code, queue_depth,
)
from winback.services.queue import (
    DispositionInput, NotYourCase, call_settings, case_claim_next, case_put_back, case_record_disposition,
    coupon_expires_at, coupon_reserve,
)


def agent_required(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user_is_agent(request.user) or user_is_manager(request.user)):
            raise PermissionDenied(_("The queue is for agents and managers."))
        return view(request, *args, **kwargs)

    return wrapper


@agent_required
def home(request: HttpRequest) -> HttpResponse:
    held = agent_cases_visible(user=request.user).filter(claimed_by=request.user, lease_until__gt=timezone.now()).first()
    if held:
        return redirect("agent:case", pk=held.pk)
    return render(request, "agent/home.html", {"callbacks": agent_callbacks_local(agent=request.user)[:5],
                                               "last_coupon": agent_last_coupon(agent=request.user)})


@agent_required
@require_POST
def next_customer(request: HttpRequest) -> HttpResponse:
    case = case_claim_next(agent=request.user)
    if case is None:
        messages.info(request, _("Nobody is callable right now (calling hours, gaps between attempts). Try again soon."))
        return redirect("agent:home")
    return redirect("agent:case", pk=case.pk)


def _held_case(request: HttpRequest, pk: int):
    case = agent_cases_visible(user=request.user).filter(pk=pk, claimed_by=request.user).select_related("customer").first()
    if case is None:
        raise Http404(_("This case is not yours."))
    return case


@agent_required
@require_http_methods(["GET", "POST"])
def case_page(request: HttpRequest, pk: int) -> HttpResponse:
    case = _held_case(request, pk)
    customer_lang = language_code(locale=case.customer.locale)
    form = DispositionForm(request.POST if request.method == "POST" else None, customer_language=customer_lang,
                           agent_language=get_language() or "en")
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            disposition = case_record_disposition(agent=request.user, case_id=case.pk, data=DispositionInput(
                outcome=v["outcome"], reason_id=v["reason"].pk if v["reason"] else None, note=v["note"],
                callback_local=v["callback_at"].replace(tzinfo=None) if v["callback_at"] else None,
                offer_id=v["offer"].pk if v["offer"] else None))
        except NotYourCase:
            messages.error(request, _("Your hold on this case ran out and it went back to the queue; nothing was saved."))
            return redirect("agent:home")
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            # Translators: after a call is saved: the customer's name and the call's outcome (e.g. "No answer").
            messages.success(request, sentence_isolated(_("Saved: %(name)s (%(outcome)s)."), name=case.customer.name,
                                                        outcome=Contact.Outcome(disposition.outcome).label))
            if disposition.coupon:
                c = disposition.coupon
                messages.warning(request, sentence_isolated(
                    _("Coupon for %(name)s: %(code)s (%(offer)s), valid until %(date)s. Read it out before you hang up."),
                    name=case.customer.name, code=c.code,
                    offer=content_text(obj=c.offer, field="name", language=customer_lang) if c.offer_id else "",
                    date=date_local(value=c.expires_at)))
            nxt = case_claim_next(agent=request.user)
            return redirect("agent:case", pk=nxt.pk) if nxt else redirect("agent:home")
    now = timezone.now()
    rules = call_settings()
    card = case_card(case=case, now=now)
    reservation = case_coupon_reservation(case=case, agent=request.user)
    depth = queue_depth(rules=rules, now=now)
    return render(request, "agent/case.html", {
        **card, "form": form, "first_error": form.first_error_field() if form.is_bound else None,
        "guide": call_guide(case=case, open_complaints=card["open_complaints"], now=now),
        "language": customer_language(locale=card["customer"].locale),
        "last_coupon": agent_last_coupon(agent=request.user),
        "reservation": reservation,
        "reservation_html": _reservation_html(reservation, language=customer_lang) if reservation else "",
        "now": now, "claimed_at": case_claimed_at(case=case, agent=request.user) or now,
        "queue_depth": depth, "queue_depth_capped": depth >= QUEUE_DEPTH_CAP,
        "today": agent_today(agent=request.user, now=now), "today_notes": AGENT_TODAY_NOTES,
        "callback_presets": case_callback_presets(customer=card["customer"], rules=rules, now=now),
    })


def _reservation_html(reservation: CouponReservation, *, language: str) -> SafeString:
    """What to say with the code: the offer in the customer's language and the code's last day, each isolated."""
    valid_until = coupon_expires_at(offer=reservation.offer, now=timezone.now())
    # Translators: after a coupon code on the agent's card: the offer's name and the code's last day.
    return sentence_isolated(_("(%(offer)s), valid until %(date)s. Read it out; it is issued when you save the call."),
                             offer=content_text(obj=reservation.offer, field="name", language=language),
                             date=date_local(value=valid_until))


@agent_required
@require_POST
def case_coupon(request: HttpRequest, pk: int) -> JsonResponse:
    """The agent chose an offer (or none) on the case page: the code to read out, before the call is saved."""
    case = _held_case(request, pk)
    raw = request.POST.get("offer", "").strip()
    if raw and (not raw.isdigit() or len(raw) > 18):
        return JsonResponse({"error": _("Choose an offer from the list.")}, status=400)
    try:
        reservation = coupon_reserve(agent=request.user, case_id=pk, offer_id=int(raw) if raw else None)
    except NotYourCase:
        raise Http404(_("This case is not yours."))
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    if reservation is None:
        return JsonResponse({"code": "", "text": _("No offer: no coupon will be issued.")})
    html = _reservation_html(reservation, language=language_code(locale=case.customer.locale))
    # "html" is escaped here, data in <bdi>; "text" is the same sentence without the markup (API clients).
    return JsonResponse({"code": reservation.code, "html": html, "text": unescape(strip_tags(html))})


@agent_required
@require_POST
def release(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        case_put_back(agent=request.user, case_id=pk)
    except NotYourCase:
        raise Http404(_("This case is not yours."))
    messages.info(request, _("The case went back to the queue."))
    return redirect("agent:home")


@agent_required
def callbacks(request: HttpRequest) -> HttpResponse:
    return render(request, "agent/callbacks.html", {"callbacks": agent_callbacks_local(agent=request.user)})
