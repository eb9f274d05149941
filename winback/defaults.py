"""The rows the product needs to work: the dormancy policy, reasons for leaving, offers, call settings.

Created by migrations, and ensured again after every migrate (a test database flush empties the tables; an
install restored from a partial dump lacks them). Lists are created only when empty, so a manager's own
reasons and offers are never touched. (The beat schedule is config/schedule.py's.)"""

from django.apps import apps as global_apps

# A fresh install lapses a customer after default_days without an order, for everyone: on CDNOW (README,
# "Does the flag pick the right customers?") that window wins the backtest among repeat buyers at equal flag
# rate over every rule a policy can run without history, and at each rule's own flag it beats the rhythm rule
# (F1 0.555 vs 0.456 among repeat buyers). tune_lapse_rule says when another rule does better on the
# business's own orders.
FRESH_INSTALL_RULE = "window"
FRESH_INSTALL_NOTE = "Fresh install: one window for everyone (README, the CDNOW evaluation)"

REASONS = [
    "Price", "Product quality", "Service or support", "Felt unappreciated", "Competitor offer", "Delivery",
    "Billing", "Moved or no longer needed", "Other",
]
OFFERS = [
    ("10% off the next order", "Ten percent off your next order, valid for 30 days.", "BACK10", 30),
    ("Free delivery", "Free delivery on your next order, valid for 30 days.", "SHIP", 30),
]
# The default rows in the other languages (core/content.py), by their English name: added where a language has
# no row yet, so a manager's own translation is never overwritten, and a renamed default is left alone.
REASON_TRANSLATIONS = {
    "Price": {"ar": "السعر", "fa": "قیمت", "hu": "Ár"},
    "Product quality": {"ar": "جودة المنتج", "fa": "کیفیت محصول", "hu": "Termékminőség"},
    "Service or support": {"ar": "الخدمة أو الدعم", "fa": "خدمات یا پشتیبانی", "hu": "Kiszolgálás vagy ügyfélszolgálat"},
    "Felt unappreciated": {"ar": "شعر بعدم التقدير", "fa": "احساس بی‌توجهی", "hu": "Nem érezte magát megbecsülve"},
    "Competitor offer": {"ar": "عرض من منافس", "fa": "پیشنهاد رقیب", "hu": "Versenytárs ajánlata"},
    "Delivery": {"ar": "التوصيل", "fa": "ارسال و تحویل", "hu": "Kiszállítás"},
    "Billing": {"ar": "الفواتير", "fa": "صورت‌حساب", "hu": "Számlázás"},
    "Moved or no longer needed": {"ar": "انتقل أو لم يعد بحاجة إلينا", "fa": "جابه‌جایی یا بی‌نیازی",
                                  "hu": "Elköltözött, vagy már nincs rá szüksége"},
    "Other": {"ar": "سبب آخر", "fa": "سایر", "hu": "Egyéb"},
}
# Latin digits, as the business's default digits setting writes the figures around them (core.locale_format).
OFFER_TRANSLATIONS = {
    "10% off the next order": {
        "ar": ("خصم 10% على الطلب التالي", "خصم عشرة بالمئة على طلبك القادم، صالح لمدة 30 يومًا."),
        "fa": ("10٪ تخفیف سفارش بعدی", "ده درصد تخفیف برای سفارش بعدی شما، با اعتبار 30 روز."),
        "hu": ("10% kedvezmény a következő rendelésből", "Tíz százalék kedvezmény a következő rendeléséből, 30 napig érvényes."),
    },
    "Free delivery": {
        "ar": ("توصيل مجاني", "توصيل مجاني لطلبك القادم، صالح لمدة 30 يومًا."),
        "fa": ("ارسال رایگان", "ارسال رایگان برای سفارش بعدی شما، با اعتبار 30 روز."),
        "hu": ("Ingyenes kiszállítás", "Ingyenes kiszállítás a következő rendeléséhez, 30 napig érvényes."),
    },
}


def winback_defaults_ensure(apps=global_apps, **kwargs) -> None:
    get = apps.get_model
    if not get("winback", "DormancyPolicy").objects.exists():
        get("winback", "DormancyPolicy").objects.create(note=FRESH_INSTALL_NOTE, rule=FRESH_INSTALL_RULE)
    if not get("winback", "LeaveReason").objects.exists():
        for position, name in enumerate(REASONS):
            get("winback", "LeaveReason").objects.create(name=name, position=position)
    get("winback", "CallSettings").objects.get_or_create(pk=1)
    if not get("winback", "Offer").objects.exists():
        for name, script, prefix, days in OFFERS:
            get("winback", "Offer").objects.create(name=name, script=script, code_prefix=prefix, valid_days=days)
    _translations_ensure(apps)


def _translations_ensure(apps) -> None:
    # Runs after every migrate: a few queries; rows are added only where missing, so an edited one stays as the
    # manager wrote it (a deleted one comes back with the default text).
    try:
        Reason, ReasonText = apps.get_model("winback", "LeaveReason"), apps.get_model("winback", "LeaveReasonTranslation")
    except LookupError:  # migrated to a state before the translation tables
        return
    have = set(ReasonText.objects.filter(reason__name__in=REASON_TRANSLATIONS).values_list("reason__name", "language"))
    ReasonText.objects.bulk_create([
        ReasonText(reason=reason, language=language, name=text)
        for reason in Reason.objects.filter(name__in=REASON_TRANSLATIONS)
        for language, text in REASON_TRANSLATIONS[reason.name].items() if (reason.name, language) not in have
    ], ignore_conflicts=True)
    Offer, OfferText = apps.get_model("winback", "Offer"), apps.get_model("winback", "OfferTranslation")
    have = set(OfferText.objects.filter(offer__name__in=OFFER_TRANSLATIONS).values_list("offer_id", "language"))
    OfferText.objects.bulk_create([
        OfferText(offer=offer, language=language, name=name, script=script)
        for offer in Offer.objects.filter(name__in=OFFER_TRANSLATIONS)
        for language, (name, script) in OFFER_TRANSLATIONS[offer.name].items() if (offer.pk, language) not in have
    ], ignore_conflicts=True)
