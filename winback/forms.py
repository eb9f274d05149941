from django import forms
from django.utils.translation import gettext_lazy as _

from winback.models import LeaveReason, Offer
from winback.services.queue import AGENT_OUTCOMES


class OfferChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, offer: Offer) -> str:
        return f"{offer.name}: {offer.script}"  # the words to say, where the agent picks it


class DispositionForm(forms.Form):
    outcome = forms.ChoiceField(choices=[(o.value, o.label) for o in AGENT_OUTCOMES], widget=forms.RadioSelect)
    reason = forms.ModelChoiceField(queryset=LeaveReason.objects.filter(active=True), required=False,
                                    label=_("Reason for leaving"), empty_label=_("(not given)"))
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    callback_at = forms.DateTimeField(
        required=False, label=_("Callback (customer's local time)"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    offer = OfferChoiceField(queryset=Offer.objects.filter(active=True), required=False, empty_label=_("(no offer)"))

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
