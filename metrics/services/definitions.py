"""Every figure the KPI pages and the API show, with how it is computed (docs/metrics.md sections 2-3), and
which way is good for it: a page marks a change as better or worse from ``higher_is_better`` alone, so a
figure whose rise is bad (churn, CES, the queue's age) says so here, once."""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Definition:
    label: str | Promise
    formula: str | Promise
    unit: str  # count | rate | money | days | score | ratio | periods
    higher_is_better: bool = True

    @property
    def good_direction(self) -> str:
        """"up" or "down": the direction of a change that is good news."""
        return "up" if self.higher_is_better else "down"


COUNTS = {
    "CS": Definition(_("Active at start (CS)"), _("customers active at S"), "count"),
    "CN": Definition(_("New customers (CN)"), _("customers acquired in P"), "count"),
    "L0": Definition(_("Lapsed from the base (L0)"), _("customers in CS with a lapse event in P"), "count", False),
    "Ln": Definition(_("New and lapsed (Ln)"), _("customers in CN with a lapse event in P"), "count", False),
    "R": Definition(_("Reactivated (R)"), _("customers with a reactivation event in P"), "count"),
    "LP": Definition(_("Lapsed pool (LP)"), _("customers acquired before S and not active at S"), "count", False),
    "RP": Definition(_("Reactivated from the pool (RP)"), _("customers in LP with a reactivation event in P"), "count"),
    "CE": Definition(_("Active at end (CE)"), _("customers active at E, counted directly"), "count"),
}

RATES = {
    "churn_rate": Definition(
        _("Churn rate"), _("L0 / CS (customers who join and lapse inside P are excluded)"), "rate", False),
    "churn_rate_incl_new": Definition(_("Churn rate incl. new"), _("(L0 + Ln) / CS"), "rate", False),
    "retention_rate": Definition(_("Customer retention rate (CRR)"), _("(CE - CN) / CS"), "rate"),
    "growth_rate": Definition(_("Customer base growth"), _("(CE - CS) / CS; net adds = CE - CS"), "rate"),
    "reactivation_rate": Definition(_("Reactivation rate"), _("RP / LP"), "rate"),
    "case_win_rate": Definition(
        _("Win-back case win rate"),
        _("win-back cases won in P / win-back cases closed in P (won, returned or lost; void cases and care calls "
          "excluded); a case is won by an order within the attribution window after a contact or coupon"), "rate"),
    "incremental_reactivation": Definition(
        _("Incremental reactivation"),
        # xgettext:no-python-format
        _("reactivation rate of contacted cases - that of the holdout, over win-back cases opened in P (a case "
          "reactivates when its customer orders again); contacted = every case not in the holdout (intention to "
          "treat); 95% confidence interval of the difference of two proportions"), "rate"),
    "repeat_purchase_rate": Definition(
        _("Repeat purchase rate"),
        _("customers who ordered in P and have more than one order up to E / customers who ordered in P"), "rate"),
    # The "%" of these formulas is a percent sign, not a placeholder (else makemessages flags them python-format).
    "nps": Definition(
        _("NPS"),
        # xgettext:no-python-format
        _("% of NPS scores 9-10 - % of scores 0-6, responses in P (-100..100)"), "score"),
    "csat": Definition(
        _("CSAT"),
        # xgettext:no-python-format
        _("% of CSAT responses in P scoring 4 or 5 (1-5 scale)"), "rate"),
    "csat_mean": Definition(_("CSAT mean"), _("mean CSAT score of the responses in P (1-5)"), "score"),
    # CES asks how much effort it took: a higher score is worse.
    "ces": Definition(_("CES"), _("mean CES score of the responses in P (1-7 scale)"), "score", False),
    "coupon_redemption_rate": Definition(
        _("Coupon redemption rate"), _("coupons issued in P that have been redeemed / coupons issued in P"), "rate"),
    "gross_revenue_churn": Definition(
        _("Gross revenue churn"),
        _("sum over CS of max(0, rev(P-1) - rev(P)) / rev(P-1) of CS; P-1 is the period of equal length before P"),
        "rate", False),
    "net_revenue_churn": Definition(
        _("Net revenue churn"),
        _("(sum of max(0, rev(P-1) - rev(P)) - sum of max(0, rev(P) - rev(P-1))) / rev(P-1), over CS; negative "
          "means expansion outweighs losses"), "rate", False),
    "sales_per_customer": Definition(_("Sales per customer"), _("revenue in P / customers who ordered in P"), "money"),
    "tenure_lost_days": Definition(
        _("Average tenure of lost customers"), _("mean(lapse date - acquired_at) over L0 + Ln, in days"), "days"),
    "historical_clv": Definition(
        _("Historical CLV"), _("ARPA * gross margin / churn rate; ARPA = revenue in P / CS; margin is a setting"),
        "money"),
    "lost_profit": Definition(
        _("Lost profit"),
        _("(L0 + Ln) * average profit per customer per period; profit per customer = margin * revenue in P / CS"),
        "money", False),
    "new_customers": Definition(_("New customers"), _("CN: customers acquired in P"), "count"),
    "revenue": Definition(_("Revenue"), _("sum of order amounts in P"), "money"),
    "revenue_won_back": Definition(
        _("Revenue won back"),
        _("orders of the customers whose win-back case closed as won in P, from the winning order to the end of the "
          "attribution window"), "money"),
}

# The win-back funnel (docs/metrics.md s.6; the choices are metrics/services/funnel.py's docstring): each
# stage's value is its count, its share of the stage before in the figure's inputs.
FUNNEL = {
    "funnel_opened": Definition(
        _("Funnel: cases opened"), _("win-back cases opened in P (care calls and void cases excluded)"), "count"),
    "funnel_callable": Definition(
        _("Funnel: callable"),
        _("of those, not in the holdout, the customer with a phone (as now) and neither on do-not-call nor "
          "suppressed when the case opened"), "count"),
    "funnel_attempted": Definition(_("Funnel: attempted"), _("of those, with at least one call recorded on the case"), "count"),
    "funnel_reached": Definition(
        _("Funnel: reached"),
        _("of those, with a call that was a conversation (reached, callback asked, complaint, do-not-call)"), "count"),
    "funnel_offered": Definition(_("Funnel: offer made"), _("of those, with a coupon issued on the case"), "count"),
    "funnel_redeemed": Definition(_("Funnel: coupon redeemed"), _("of those, with a coupon of the case redeemed"), "count"),
    "funnel_reactivated": Definition(
        _("Funnel: reactivated"),
        _("of those, closed as won: an order within the attribution window after a contact or coupon of the case"),
        "count"),
    "funnel_holdout_reactivation": Definition(
        _("Holdout reactivation"),
        _("holdout cases opened in P whose customer ordered again within the attribution window after the case "
          "opened / holdout cases opened in P"), "rate"),
    "winback_conversion_rate": Definition(
        _("Win-back conversion rate"),
        _("callable cases opened in P closed as won (an order within the attribution window after a contact or "
          "coupon) / callable cases opened in P; per agent: the cases whose last call was the agent's"), "rate"),
}

# Acquisition cost and order mix (docs/metrics.md s.6; the choices are metrics/services/acquisition.py's docstring).
ACQUISITION = {
    "cac": Definition(
        _("Customer acquisition cost (CAC)"),
        _("acquisition spend in P / CN; a month's spend is its all-channels amount, else the sum of its channels; "
          "n/a when CN = 0 or no spend was entered for P"), "money", False),
    "clv_cac_ratio": Definition(
        _("CLV : CAC"), _("historical CLV / CAC; 3 or more is the usual health mark"), "ratio"),
    "clv_cac_ratio_predicted": Definition(
        _("Predicted CLV : CAC"),
        _("mean predicted 12-month CLV of the customers acquired in P who have a prediction (latest usable model "
          "fit, as of that fit) / CAC"), "ratio"),
    "cac_payback": Definition(
        _("CAC payback"),
        _("CAC / (ARPA * gross margin), in periods of P's length; ARPA = revenue in P / CS"), "periods", False),
    "cross_sell_rate": Definition(
        _("Cross-sell rate"),
        _("customers who ordered in P a category they had never ordered before / customers who ordered in P and "
          "had ordered before P; only order lines of a known category count"), "rate"),
    "upsell_rate": Definition(
        _("Up-sell rate"),
        _("customers whose mean order value in P is at least the up-sell threshold (a setting) above their mean "
          "order value over the 12 months before P / customers who ordered in P and in those 12 months"), "rate"),
    "loyalty_share": Definition(
        _("Loyalty share"),
        _("customers active at E with at least 3 orders in the 12 months before E / CE"), "rate"),
}

ALL = {**COUNTS, **RATES, **FUNNEL, **ACQUISITION}

# The queue as it stands (not a period's figure): read now, and at the start of each month for the trend.
QUEUE = {
    "queue_depth": Definition(
        _("Queue depth"),
        _("open cases (win-back and care calls) not in the holdout whose customer has a phone and is neither on "
          "do-not-call nor suppressed; earlier points: the cases open at that instant, with the customers' flags "
          "as they are now"), "count", False),
    "oldest_case_age_days": Definition(
        _("Oldest callable case"),
        _("days since the oldest of those cases was opened"), "days", False),
}

# The headline cards, in page order.
HEADLINE = [
    "churn_rate", "churn_rate_incl_new", "retention_rate", "growth_rate", "reactivation_rate", "case_win_rate",
    "incremental_reactivation", "revenue_won_back", "nps", "csat", "ces", "repeat_purchase_rate",
    "coupon_redemption_rate", "gross_revenue_churn", "net_revenue_churn", "sales_per_customer", "tenure_lost_days",
    "historical_clv", "lost_profit", "new_customers", "winback_conversion_rate",
    "cac", "clv_cac_ratio", "clv_cac_ratio_predicted", "cac_payback", "cross_sell_rate", "upsell_rate",
    "loyalty_share",
]

# The manager's home: the period figures that matter most, then the queue (QUEUE).
HOME = ["churn_rate", "reactivation_rate", "case_win_rate", "incremental_reactivation", "revenue_won_back"]

CONVENTIONS = _(
    "Periods are half-open [S, E) in the business time zone. The state at an instant x comes from the lifecycle "
    "events strictly before x, so an event at exactly S belongs to P, not to the state at S (nobody is "
    "both in CS and CN). Lapse events include explicit cancellations. A rate whose denominator "
    "is zero is n/a."
)
