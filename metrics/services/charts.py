"""Server-rendered SVG charts: nothing fetched at run time, numbers readable without JavaScript."""

from django.utils.html import escape


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "money":
        return f"{value:,.2f}"
    if unit == "days":
        return f"{value:,.1f} days"
    if unit == "score":
        return f"{value:,.1f}"
    return f"{value:,.0f}"


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
             f'viewBox="0 0 {width} {height}" aria-label="{escape(title)}" class="kpi-chart">',
             f'<text x="{left}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>']
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        _, y = xy(0, v)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
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
    every = max(1, len(points) // 6)
    for i, (label, _) in enumerate(points):
        if i % every == 0 or (i == len(points) - 1 and i % every >= every / 2):
            parts.append(f'<text x="{left + i * step:.1f}" y="{height - 12}" font-size="10" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)
