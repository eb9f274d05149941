from django import forms
from django.utils.translation import gettext_lazy as _

from core.content import content_text
from winback.models import LeaveReason, Offer
from winback.services.queue import AGENT_OUTCOMES


class OfferChoiceField(forms.ModelChoiceField):
    """Offers with the words to say, in the customer's language (the agent reads them out)."""

    language = "en"

    def label_from_instance(self, offer: Offer) -> str:
        # Translators: an offer in the agent's list: its name, then the words to say to the customer.
        return _("%(name)s: %(script)s") % {"name": content_text(obj=offer, field="name", language=self.language),
                                            "script": content_text(obj=offer, field="script", language=self.language)}


class ReasonChoiceField(forms.ModelChoiceField):
    """Reasons for leaving in the agent's language (the agent picks them, the customer never sees them)."""

    language = "en"

    def label_from_instance(self, reason: LeaveReason) -> str:
        return content_text(obj=reason, field="name", language=self.language)


class DispositionForm(forms.Form):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=[(o.value, o.label) for o in AGENT_OUTCOMES],
                                widget=forms.RadioSelect)
    # Each list's translations come with it (one query more), not one query per choice.
    reason = ReasonChoiceField(queryset=LeaveReason.objects.filter(active=True).prefetch_related("translations"), required=False,
                               label=_("Reason for leaving"), empty_label=_("(not given)"))
    note = forms.CharField(label=_("Note"), widget=forms.Textarea(attrs={"rows": 3}), required=False)
    callback_at = forms.DateTimeField(
        required=False, label=_("Callback (customer's local time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    offer = OfferChoiceField(queryset=Offer.objects.filter(active=True).prefetch_related("translations"), required=False,
                             label=_("Offer"),
                             empty_label=_("(no offer)"))

    def __init__(self, *args, customer_language: str = "en", agent_language: str = "en", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["offer"].language = customer_language
        self.fields["offer"].widget.attrs["lang"] = customer_language  # the scripts are in the customer's language
        self.fields["reason"].language = agent_language

    def clean(self):
        data = super().clean()
        if data.get("outcome") == "callback_requested" and not data.get("callback_at"):
            self.add_error("callback_at", _("A callback needs a date and time."))
        return data

    def first_error_field(self) -> str | None:
        """The field the keyboard focus goes to after a refused save: the first one (in the page's order)
        with an error."""
        return next((name for name in PAGE_ORDER if name in self.errors), None)


PAGE_ORDER = ["outcome", "callback_at", "reason", "offer", "note"]  # as templates/agent/case.html shows them
