"""Server-rendered SVG charts: nothing fetched at run time, numbers readable without JavaScript.

A figure's text is one translated sentence per unit ("%(value)s days", "%(points)s pp") around its number,
written with the active language's decimal and group marks (core.locale_format). A number with a sign reads
wrongly in right-to-left text ("-2.1%" shows as "2.1%-"), so the signed number is isolated as left-to-right:
<bdi dir="ltr"> in pages (the *_html functions), Unicode isolates in plain text (SVG tooltips) in Arabic and
Persian. The charts themselves keep their time axis left to right in every language (direction="ltr").
"""

import math
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_decimal
from django.utils import translation
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from core.locale_format import NUMBERING_SYSTEM, digits_localize

# What one character of a 10px axis label takes, and the gap kept between two labels: the x axis shows only
# as many labels as fit side by side, so they never overlap however many points there are.
_CHAR_PX = 6.2
_LABEL_GAP_PX = 10
# LEFT-TO-RIGHT ISOLATE ... POP DIRECTIONAL ISOLATE: <bdi dir="ltr"> for plain text.
_LRI, _PDI = "\u2066", "\u2069"


def number_text(value: float | Decimal | int, *, decimals: int = 0, grouping: bool = True) -> str:
    """A number with exactly ``decimals`` decimals in the active language ("1,234.5", "1 234,5" in Hungarian),
    in the business's digits; the sign is kept ("-3.0")."""
    language = (translation.get_language() or "en").lower()
    primary = language.split("-")[0]
    native = digits_localize(text="1", language=language) != "1"
    numbering = NUMBERING_SYSTEM[primary] if native else "latn"
    pattern = ("#,##0" if grouping else "0") + ("." + "0" * decimals if decimals else "")
    # Babel rounds half to even; a figure of 0.125 shown with two decimals reads 0.13 as people round.
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = format_decimal(exact, format=pattern, locale=translation.to_locale(language), numbering_system=numbering)
    # CLDR's Arabic and Persian minus carries its own direction marks; the isolate below does that job.
    text = text.replace("\u200e", "").replace("\u200f", "").replace("\u061c", "")
    return digits_localize(text=text, language=language)


_DECIMALS = {"rate": 1, "money": 2, "days": 1, "score": 1, "ratio": 2, "periods": 1}


def _sentence(unit: str) -> str:
    """The translated sentence a figure of ``unit`` is written in, around its %(value)s."""
    if unit == "rate":
        # Translators: a percentage, e.g. "12.5%"; %(value)s is the number (it may carry a sign).
        return _("%(value)s%%")
    if unit == "days":
        # Translators: a duration in days, always with one decimal (e.g. "321.7 days"): the form for fractions.
        return _("%(value)s days")
    if unit == "periods":
        # Translators: a CAC payback time in periods of the chosen period's length (months for a month), always
        # with one decimal (e.g. "2.4 periods"): the form for fractions.
        return _("%(value)s periods")
    return "%(value)s"


def _signed(value: float, unit: str, *, sign: bool) -> tuple[str, str]:
    """(the sentence, the number with its sign); a rate as a percentage of 100."""
    number = value * 100 if unit == "rate" else value
    digits = number_text(abs(number), decimals=_DECIMALS.get(unit, 0))
    rounded_zero = digits.strip("0.,\u00a0 ٠۰٫٬") == ""
    if rounded_zero:
        mark = "\u00b1" if sign else ""
    elif number < 0:
        mark = "-"
    else:
        mark = "+" if sign else ""
    return _sentence(unit), mark + digits


def isolated_text(text: str) -> str:
    """Data inside plain text (a page's <title>, a message) isolated as left-to-right in right-to-left
    languages: a period "2025-01-10 .. 2025-02-09" would otherwise show its dates in reverse order."""
    return f"{_LRI}{text}{_PDI}" if translation.get_language_bidi() else text


def _plain(sentence: str, number: str) -> str:
    if translation.get_language_bidi() and number[:1] in "+-\u00b1":
        number = f"{_LRI}{number}{_PDI}"
    return sentence % {"value": number}


def _html(sentence: str, number: str) -> SafeString:
    return mark_safe(escape(sentence) % {"value": format_html('<bdi dir="ltr">{}</bdi>', number)})  # noqa: S308


def format_value(value: float | None, unit: str) -> str:
    """A figure as plain text: "12.5%", "321.7 days", "1,234.50", "n/a"."""
    if value is None:
        return _("n/a")
    return _plain(*_signed(value, unit, sign=False))


def format_value_html(value: float | None, unit: str) -> SafeString:
    """format_value for a page: the number isolated as left-to-right (<bdi dir="ltr">)."""
    if value is None:
        return escape(_("n/a"))
    return _html(*_signed(value, unit, sign=False))


def _change(change: float, unit: str) -> tuple[str, str]:
    if unit == "rate":
        # Translators: a change of a rate in percentage points, e.g. "+1.2 pp"; %(value)s is the signed number.
        return _("%(value)s pp"), _signed(change * 100, "score", sign=True)[1]
    return _signed(change, unit, sign=True)


def format_change(change: float | None, unit: str) -> str:
    """A change between two periods: percentage points for rates ("+1.2 pp"), the unit's own format else."""
    if change is None:
        return ""
    return _plain(*_change(change, unit))


def format_change_html(change: float | None, unit: str) -> SafeString:
    """format_change for a page, the signed number isolated as left-to-right."""
    if change is None:
        return mark_safe("")
    return _html(*_change(change, unit))


def change_judgement(change: float | None, *, higher_is_better: bool) -> str:
    """"better", "worse" or "same" (or "" without a change): the direction that is good comes from the
    figure's definition."""
    if change is None:
        return ""
    if abs(change) < 1e-12:
        return "same"
    return "better" if (change > 0) == higher_is_better else "worse"


def tick_every(labels: list[str], plot_width: float) -> int:
    """Show every n-th x label so that the labels, at their estimated width, fit side by side."""
    if not labels:
        return 1
    widest = max(len(label) for label in labels) * _CHAR_PX + _LABEL_GAP_PX
    fit = max(1, int(plot_width // widest) + 1)  # the outer labels may reach into the margins
    return max(1, math.ceil(len(labels) / fit))


def _tick_indexes(n: int, every: int) -> list[int]:
    """The labelled points: every n-th from the first, the last one taking the place of the one before it (at
    least ``every`` points after the one before that, so it never crowds it)."""
    picked = list(range(0, n, every))
    if len(picked) > 1 and picked[-1] != n - 1:
        picked[-1] = n - 1
    return picked


def _empty_message(width: int, height: int) -> str:
    return (f'<text x="{width / 2:.0f}" y="{height / 2 + 4:.0f}" font-size="12" text-anchor="middle" '
            f'class="kpi-chart-empty">{escape(_("No data for this period"))}</text>')


def svg_sparkline(*, title: str, points: list[tuple[str, float | None]], unit: str, width: int = 140,
                  height: int = 36) -> str:
    """A small line without axes for a figure's trend; the last point is marked, each point's value is its
    tooltip, and a figure without any value says so instead of drawing an empty box."""
    pad = 3
    values = [v for _, v in points if v is not None]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}" class="sparkline" direction="ltr">',
             f"<title>{escape(title)}</title>"]
    if not values:
        parts.append(f'<text x="{width / 2:.0f}" y="{height / 2 + 4:.0f}" font-size="10" text-anchor="middle" '
                     f'class="kpi-chart-empty">{escape(_("No data for this period"))}</text></svg>')
        return "".join(parts)
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    step = (width - 2 * pad) / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return pad + i * step, pad + (height - 2 * pad) * (1 - (v - lo) / (hi - lo))

    segment: list[str] = []
    for i, (label, v) in enumerate([*points, ("", None)]):
        if v is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#417690" stroke-width="1.5" points="{" ".join(segment)}"/>')
            segment = []
            continue
        x, y = xy(i, v)
        segment.append(f"{x:.1f},{y:.1f}")
        last = i == len(points) - 1
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{2.5 if last else 1.2}" fill="#417690">'
                     f'<title>{escape(label)}: {escape(format_value(v, unit))}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)


def svg_line_chart(*, title: str, points: list[tuple[str, float | None]], unit: str, width: int = 520, height: int = 180) -> str:
    left, right, top, bottom = 56, 12, 24, 34
    values = [v for _, v in points if v is not None]
    lo = min(values + [0.0])
    hi = max(values + [lo + (1e-9 if unit != "rate" else 0.01)])
    if hi == lo:
        hi = lo + 1
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(points) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - (v - lo) / (hi - lo) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}" class="kpi-chart" direction="ltr">',
             f'<text x="{left}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        if values:  # without data the scale means nothing
            parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{escape(format_value(v, unit))}</text>')
    segment: list[str] = []
    for i, (label, v) in enumerate(points):
        if v is None:
            if len(segment) > 1:
                parts.append(f'<polyline fill="none" stroke="#417690" stroke-width="2" points="{" ".join(segment)}"/>')
            segment = []
            continue
        x, y = xy(i, v)
        segment.append(f"{x:.1f},{y:.1f}")
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#417690"><title>{escape(label)}: '
                     f'{escape(format_value(v, unit))}</title></circle>')
    if len(segment) > 1:
        parts.append(f'<polyline fill="none" stroke="#417690" stroke-width="2" points="{" ".join(segment)}"/>')
    if not values:
        parts.append(_empty_message(width, height))
    labels = [label for label, _v in points]
    for i in _tick_indexes(len(labels), tick_every(labels, plot_w)):
        lx = left + i * step
        anchor = "end" if lx > width - right - 30 else "middle"  # the last label stays inside the box
        parts.append(f'<text x="{lx:.1f}" y="{height - 12}" font-size="10" text-anchor="{anchor}">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)


# Colour and dash of each line of svg_lines_chart, by the series' key (the legend shows the same).
LINE_STYLES = {
    "actual": ("#417690", ""),
    "expected": ("#c0392b", "6 4"),
}
_DEFAULT_LINE = ("#555555", "")


def svg_lines_chart(*, title: str, labels: list[str], series: list[tuple[str, str, list[float | None]]], unit: str,
                    marker: int | None = None, marker_label: str = "", show_title: bool = True, width: int = 720,
                    height: int = 240) -> str:
    """Several lines over the same x labels, with a legend; ``series`` is [(key, legend text, values)], the key
    choosing the line's colour and dash (LINE_STYLES). ``marker`` is the index of an x label to mark with a
    vertical line and ``marker_label`` (e.g. the week of a model's fit). Points get a circle (with their value
    as a tooltip) only when there are few of them; the numbers are in the page's table either way.
    ``show_title=False`` when the page heads the chart itself (the title stays its accessible name)."""
    left, right, top, bottom = 56, 12, 40 if show_title else 34, 34
    legend_y = 28 if show_title else 12
    values = [v for _, _, vs in series for v in vs if v is not None]
    lo = min(values + [0.0])
    hi = max(values + [lo + 1e-9])
    if hi == lo:
        hi = lo + 1
    n = len(labels)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(n - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + i * step, top + plot_h - (v - lo) / (hi - lo) * plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}" class="kpi-chart" direction="ltr">']
    if show_title:
        parts.append(f'<text x="{left}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>')
    # The legend: one short line and the series' text each, left to right under the title.
    x = left
    for key, legend, _points in series:
        colour, dash = LINE_STYLES.get(key, _DEFAULT_LINE)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{x}" x2="{x + 22}" y1="{legend_y}" y2="{legend_y}" stroke="{colour}" stroke-width="2"'
                     f'{dashed}/>')
        parts.append(f'<text x="{x + 27}" y="{legend_y + 4}" font-size="11">{escape(legend)}</text>')
        x += 27 + 7 * len(legend) + 18
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{escape(format_value(v, unit))}</text>')
    if marker is not None and 0 <= marker < n:
        mx = left + marker * step
        anchor = "end" if mx > left + plot_w / 2 else "start"
        parts.append(f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" y2="{top + plot_h}" stroke="#888" '
                     f'stroke-dasharray="2 3" class="kpi-chart-marker"/>')
        parts.append(f'<text x="{mx + (-4 if anchor == "end" else 4):.1f}" y="{top - 4}" font-size="10" '
                     f'text-anchor="{anchor}">{escape(marker_label)}</text>')  # above the lines
    dots = n <= 60
    for key, legend, vs in series:
        colour, dash = LINE_STYLES.get(key, _DEFAULT_LINE)
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        segment: list[str] = []
        for i, v in enumerate([*vs, None]):  # the None closes the last segment
            if v is None:
                if len(segment) > 1:
                    parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dashed} '
                                 f'points="{" ".join(segment)}" data-series="{escape(key)}"/>')
                elif len(segment) == 1 and not dots:  # a lone point: no line to draw it
                    cx, cy = segment[0].split(",")
                    parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
                segment = []
                continue
            px, py = xy(i, v)
            segment.append(f"{px:.1f},{py:.1f}")
            if dots:
                parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"><title>{escape(labels[i])}'
                             f' {escape(legend)}: {escape(format_value(v, unit))}</title></circle>')
    if not values:
        parts.append(_empty_message(width, height))
    for i in _tick_indexes(n, tick_every(labels, plot_w)):
        lx = left + i * step
        anchor = "end" if lx > width - right - 30 else "middle"  # the last label stays inside the box
        parts.append(f'<text x="{lx:.1f}" y="{height - 12}" font-size="10" text-anchor="{anchor}">{escape(labels[i])}</text>')
    parts.append("</svg>")
    return "".join(parts)
