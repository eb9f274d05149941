"""The lifecycle computation in one PostgreSQL statement: window functions over the order history give
each order's segment (docs/metrics.md section 1); a lateral VALUES list turns every segment into its events.
It gives exactly what lifecycle_rules.lifecycle_compute gives (the property test holds them together).

Each row is an event (kind acquired, at_risk, lapsed, cancelled, reactivated) or, with a kind starting
"due_", a future instant at which one may fall due.
"""

# %(K)s etc. are the PolicyParams fields; {order_scope} and {customer_scope} restrict the batch's orders "o"
# and customers "cu"; {order}, {cancellation}, {customer} are the tables (winback/sql.py composes it).
# {model_rule}, {repeat_days} and {model_us} are MODEL_RULE_PARTS or RHYTHM_RULE_PARTS: the model rule's
# purchase days cost a second sort of the orders, which the other rules do not pay.
EVENTS_SQL = """
WITH ord AS (
    SELECT o.customer_id, o.ordered_at AS t,
           row_number() OVER w AS i,
           first_value(o.ordered_at) OVER w AS t1,
           lead(o.ordered_at) OVER w AS nxt,
           {repeat_days} AS x
    FROM {order} o
    WHERE {order_scope}
    -- Orders at the same instant are interchangeable here, so the index order (customer_id, ordered_at)
    -- serves the window without a sort.
    WINDOW w AS (PARTITION BY o.customer_id ORDER BY o.ordered_at)
),
canc AS (
    -- A cancellation falls in the segment of the last order at or before it (segment 0: before any).
    SELECT k.customer_id,
           (SELECT count(*) FROM {order} o2
             WHERE o2.customer_id = k.customer_id AND o2.ordered_at <= k.cancelled_at) AS seg,
           min(k.cancelled_at) AS c
    FROM {cancellation} k
    JOIN {customer} cu ON cu.id = k.customer_id
    WHERE {customer_scope}
      AND k.cancelled_at >= LEAST(cu.acquired_at,
                                  (SELECT min(o3.ordered_at) FROM {order} o3 WHERE o3.customer_id = k.customer_id))
    GROUP BY 1, 2
),
span0 AS (
    SELECT ord.*, ((extract(epoch FROM t) - extract(epoch FROM t1)) * 1000000)::bigint AS span_us
    FROM ord
),
span AS (
    SELECT span0.*, {model_us} AS model_us FROM span0
),
thr AS (
    SELECT span.customer_id, span.t, span.nxt, canc.c,
           CASE WHEN {model_rule} THEN model_us
                WHEN i >= %(min_orders)s
                THEN LEAST(GREATEST(%(K)s * span_us / (100 * (i - 1)), %(min_us)s), %(max_us)s)
                ELSE %(default_us)s END AS lapse_us,
           CASE WHEN {model_rule} THEN model_us * %(AK)s / %(K)s
                WHEN i >= %(min_orders)s
                THEN LEAST(GREATEST(%(AK)s * span_us / (100 * (i - 1)), %(min_us)s), %(max_us)s)
                ELSE %(default_us)s * %(AK)s / %(K)s END AS risk_us
    FROM span
    LEFT JOIN canc ON canc.customer_id = span.customer_id AND canc.seg = span.i
    OFFSET 0  -- an optimisation fence: the thresholds are computed once per order, not once per use
),
seg AS (
    SELECT thr.*,
           t + lapse_us::float8 * interval '1 microsecond' AS lapse_at,
           t + risk_us::float8 * interval '1 microsecond' AS risk_at
    FROM thr
    OFFSET 0
),
cond AS MATERIALIZED (
    -- Materialised: the crossings are computed once per order, not once per use below.
    SELECT seg.*,
           (nxt IS NULL OR lapse_at < nxt) AND (c IS NULL OR lapse_at < c) AS lapses,
           risk_us < lapse_us AND (nxt IS NULL OR risk_at < nxt) AND (c IS NULL OR risk_at < c) AS risks
    FROM seg
)
SELECT cond.customer_id, v.kind, v.at
-- Most orders are followed by another in time and can give no event: only the others are unpivoted.
FROM (SELECT * FROM cond WHERE lapses OR risks OR c IS NOT NULL) AS cond
CROSS JOIN LATERAL (VALUES
    ('at_risk', CASE WHEN risks AND risk_at <= %(now)s THEN risk_at END),
    ('lapsed', CASE WHEN lapses AND lapse_at <= %(now)s THEN lapse_at END),
    ('cancelled', CASE WHEN c <= %(now)s THEN c END),
    ('reactivated', CASE WHEN nxt IS NOT NULL AND ((lapses AND lapse_at <= %(now)s) OR c <= %(now)s) THEN nxt END),
    ('due_at_risk', CASE WHEN risks AND risk_at > %(now)s THEN risk_at END),
    ('due_lapsed', CASE WHEN lapses AND lapse_at > %(now)s THEN lapse_at END),
    ('due_cancelled', CASE WHEN c > %(now)s THEN c END)
) AS v(kind, at)
WHERE v.at IS NOT NULL
UNION ALL
SELECT cu.id, 'acquired', LEAST(cu.acquired_at, f.t1)
FROM {customer} cu
LEFT JOIN (SELECT customer_id, t AS t1 FROM ord WHERE i = 1) f ON f.customer_id = cu.id
WHERE {customer_scope} AND (cu.acquired_at IS NOT NULL OR f.t1 IS NOT NULL)
UNION ALL
SELECT canc.customer_id, v.kind, v.at
FROM canc
LEFT JOIN (SELECT customer_id, t AS t1 FROM ord WHERE i = 1) f ON f.customer_id = canc.customer_id
CROSS JOIN LATERAL (VALUES
    ('cancelled', CASE WHEN canc.c <= %(now)s THEN canc.c END),
    ('reactivated', CASE WHEN canc.c <= %(now)s THEN f.t1 END),
    ('due_cancelled', CASE WHEN canc.c > %(now)s THEN canc.c END)
) AS v(kind, at)
WHERE canc.seg = 0 AND v.at IS NOT NULL
"""


# The model rule: x = purchase days among orders 1..i, less one (a day of the business time zone); the
# lapse threshold is PolicyParams.model_threshold_us, with its floating-point operations in the same order
# (so both paths give the same microsecond); before a repeat purchase, default_days.
MODEL_RULE_PARTS = {
    "model_rule": "true",
    "repeat_days": "dense_rank() OVER (PARTITION BY o.customer_id ORDER BY (o.ordered_at AT TIME ZONE %(tz)s)::date) - 1",
    "model_us": (
        "CASE WHEN x >= 1 THEN floor(LEAST(GREATEST("
        "((%(alpha)s + span_us / 604800000000.0::float8)"
        " * power((1.0::float8 / %(p_alive_min)s - 1.0::float8) * (%(b)s + x - 1) / %(a)s, 1.0::float8 / (%(r)s + x))"
        " - %(alpha)s - span_us / 604800000000.0::float8) * 604800000000.0::float8,"
        " %(min_us)s::float8), %(max_us)s::float8))::bigint ELSE %(default_us)s END"
    ),
}
RHYTHM_RULE_PARTS = {"model_rule": "false", "repeat_days": "0", "model_us": "0"}
