"""The agents' page: next customer, the customer card with the call guide, the disposition form."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from core.roles import user_is_agent, user_is_manager
from crm.models import Contact
from winback.forms import DispositionForm
from winback.selectors import CALL_GUIDE, agent_callbacks_local, agent_cases_visible, agent_last_coupon, case_card
from winback.services.queue import (
    DispositionInput, NotYourCase, case_claim_next, case_record_disposition,
    case_release,
)


def agent_required(view):
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user_is_agent(request.user) or user_is_manager(request.user)):
            raise PermissionDenied("The queue is for agents and managers.")
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
        messages.info(request, "Nobody is callable right now (calling hours, gaps between attempts). Try again soon.")
        return redirect("agent:home")
    return redirect("agent:case", pk=case.pk)


@agent_required
@require_http_methods(["GET", "POST"])
def case_page(request: HttpRequest, pk: int) -> HttpResponse:
    case = agent_cases_visible(user=request.user).filter(pk=pk, claimed_by=request.user).select_related("customer").first()
    if case is None:
        raise Http404("This case is not yours.")
    form = DispositionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        v = form.cleaned_data
        try:
            disposition = case_record_disposition(agent=request.user, case_id=case.pk, data=DispositionInput(
                outcome=v["outcome"], reason_id=v["reason"].pk if v["reason"] else None, note=v["note"],
                callback_local=v["callback_at"].replace(tzinfo=None) if v["callback_at"] else None,
                offer_id=v["offer"].pk if v["offer"] else None))
        except NotYourCase:
            messages.error(request, "Your hold on this case ran out and it went back to the queue; nothing was saved.")
            return redirect("agent:home")
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Saved: {case.customer.name}, {Contact.Outcome(disposition.outcome).label.lower()}.")
            if disposition.coupon:
                c = disposition.coupon
                messages.warning(request, f"Coupon for {case.customer.name}: {c.code} ({c.offer.name}), valid until "
                                          f"{timezone.localtime(c.expires_at):%Y-%m-%d}. Read it out before you hang up.")
            nxt = case_claim_next(agent=request.user)
            return redirect("agent:case", pk=nxt.pk) if nxt else redirect("agent:home")
    card = case_card(case=case)
    return render(request, "agent/case.html", {**card, "form": form, "guide": CALL_GUIDE,
                                               "last_coupon": agent_last_coupon(agent=request.user)})


@agent_required
@require_POST
def release(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        case_release(agent=request.user, case_id=pk)
    except NotYourCase:
        raise Http404("This case is not yours.")
    messages.info(request, "The case went back to the queue.")
    return redirect("agent:home")


@agent_required
def callbacks(request: HttpRequest) -> HttpResponse:
    return render(request, "agent/callbacks.html", {"callbacks": agent_callbacks_local(agent=request.user)})
