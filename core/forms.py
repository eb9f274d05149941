"""The login forms (the agents' page and the admin): the password, then the authenticator's code for a person
who set one up. Both go through django.contrib.auth.authenticate with the request, so axes counts and
refuses them alike."""

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from core.selectors import totp_device_confirmed
from core.services import totp_device_verify


class SecondStepMixin(forms.Form):
    otp_token = forms.CharField(
        label=_("Authenticator code"), required=False, max_length=8,
        help_text=_("Only if you set up an authenticator app: the 6 digits it shows now."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
    error_messages_second_step = {
        "otp_required": _("Enter the code your authenticator app shows for this account."),
        "otp_wrong": _("That authenticator code is not right (or came too late). Wait for the next one and "
                       "try again."),
    }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # the password (and axes' lockout), which sets self.user_cache
        user = self.get_user()
        device = totp_device_confirmed(user=user) if user is not None else None
        if device is None:
            return cleaned
        token = cleaned.get("otp_token") or ""
        if not token:
            raise ValidationError(self.error_messages_second_step["otp_required"], code="otp_required")
        if not totp_device_verify(device=device, token=token):
            # Counted as a failed login: guessing codes runs into the same lockout as guessing passwords.
            user_login_failed.send(sender=type(self), request=self.request,
                                   credentials={"username": cleaned.get("username")})
            raise ValidationError(self.error_messages_second_step["otp_wrong"], code="otp_wrong")
        user.otp_device = device  # django_otp marks the session verified when login() runs
        return cleaned


class LoginForm(SecondStepMixin, AuthenticationForm):
    pass


class AdminLoginForm(SecondStepMixin, AdminAuthenticationForm):
    pass


class TotpConfirmForm(forms.Form):
    token = forms.CharField(label=_("Code from the app"), max_length=8,
                            widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric",
                                                          "autofocus": True}))
