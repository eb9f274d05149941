"""Every figure the KPI pages and the API show, with how it is computed (docs/metrics.md sections 2-3)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Definition:
    label: str
    formula: str
    unit: str  # count | rate | money | days | score
    higher_is_better: bool = True


COUNTS = {
    "CS": Definition("Active at start (CS)", "customers active at S", "count"),
    "CN": Definition("New customers (CN)", "customers acquired in P", "count"),
    "L0": Definition("Lapsed from the base (L0)", "customers in CS with a lapse event in P", "count", False),
    "Ln": Definition("New and lapsed (Ln)", "customers in CN with a lapse event in P", "count", False),
    "R": Definition("Reactivated (R)", "customers with a reactivation event in P", "count"),
    "LP": Definition("Lapsed pool (LP)", "customers acquired before S and not active at S", "count", False),
    "RP": Definition("Reactivated from the pool (RP)", "customers in LP with a reactivation event in P", "count"),
    "CE": Definition("Active at end (CE)", "customers active at E, counted directly", "count"),
}

RATES = {
    "churn_rate": Definition("Churn rate", "L0 / CS (customers who join and lapse inside P are excluded)", "rate", False),
    "churn_rate_incl_new": Definition("Churn rate incl. new", "(L0 + Ln) / CS", "rate", False),
    "retention_rate": Definition("Customer retention rate (CRR)", "(CE - CN) / CS", "rate"),
    "growth_rate": Definition("Customer base growth", "(CE - CS) / CS; net adds = CE - CS", "rate"),
    "reactivation_rate": Definition("Reactivation rate", "RP / LP", "rate"),
    "case_win_rate": Definition(
        "Win-back case win rate",
        "win-back cases won in P / win-back cases closed in P (won, returned or lost; void cases and care calls excluded); "
        "a case is won by an order within the attribution window after a contact or coupon", "rate"),
    "incremental_reactivation": Definition(
        "Incremental reactivation",
        "reactivation rate of contacted cases - that of the holdout, over win-back cases opened in P (a case "
        "reactivates when its customer orders again); contacted = every case not in the holdout (intention to "
        "treat); 95% confidence interval of the difference of two proportions", "rate"),
    "repeat_purchase_rate": Definition(
        "Repeat purchase rate",
        "customers who ordered in P and have more than one order up to E / customers who ordered in P", "rate"),
    "nps": Definition("NPS", "% of NPS scores 9-10 - % of scores 0-6, responses in P (-100..100)", "score"),
    "csat": Definition("CSAT", "% of CSAT responses in P scoring 4 or 5 (1-5 scale)", "rate"),
    "csat_mean": Definition("CSAT mean", "mean CSAT score of the responses in P (1-5)", "score"),
    "ces": Definition("CES", "mean CES score of the responses in P (1-7 scale)", "score", False),
    "coupon_redemption_rate": Definition(
        "Coupon redemption rate", "coupons issued in P that have been redeemed / coupons issued in P", "rate"),
    "gross_revenue_churn": Definition(
        "Gross revenue churn",
        "sum over CS of max(0, rev(P-1) - rev(P)) / rev(P-1) of CS; P-1 is the period of equal length before P", "rate", False),
    "net_revenue_churn": Definition(
        "Net revenue churn",
        "(sum of max(0, rev(P-1) - rev(P)) - sum of max(0, rev(P) - rev(P-1))) / rev(P-1), over CS; negative "
        "means expansion outweighs losses", "rate", False),
    "sales_per_customer": Definition("Sales per customer", "revenue in P / customers who ordered in P", "money"),
    "tenure_lost_days": Definition("Average tenure of lost customers", "mean(lapse date - acquired_at) over L0 + Ln, in days", "days"),
    "historical_clv": Definition(
        "Historical CLV", "ARPA * gross margin / churn rate; ARPA = revenue in P / CS; margin is a setting", "money"),
    "lost_profit": Definition(
        "Lost profit",
        "(L0 + Ln) * average profit per customer per period; profit per customer = margin * revenue in P / CS", "money", False),
    "new_customers": Definition("New customers", "CN: customers acquired in P", "count"),
    "revenue": Definition("Revenue", "sum of order amounts in P", "money"),
}

ALL = {**COUNTS, **RATES}

# The headline cards, in page order.
HEADLINE = [
    "churn_rate", "churn_rate_incl_new", "retention_rate", "growth_rate", "reactivation_rate", "case_win_rate",
    "incremental_reactivation", "nps", "csat", "ces", "repeat_purchase_rate", "coupon_redemption_rate",
    "gross_revenue_churn", "net_revenue_churn", "sales_per_customer", "tenure_lost_days", "historical_clv",
    "lost_profit", "new_customers",
]

CONVENTIONS = (
    "Periods are half-open [S, E) in the business time zone. The state at an instant x comes from the lifecycle "
    "events strictly before x, so an event at exactly S belongs to P, not to the state at S (nobody is "
    "both in CS and CN). Lapse events include explicit cancellations. A rate whose denominator "
    "is zero is n/a."
)
