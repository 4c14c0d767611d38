"""Server-side SVG bar charts for the insights page: no script, no network, no library.

Colours are SVG presentation attributes (the page's CSP allows no inline style); each chart has
a <title> and <desc>, and the page puts a table of the same numbers beside it.
"""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 28
#: Dark enough for 3:1 contrast against white (WCAG non-text contrast).
COLOURS = ("#2563a8", "#b4462b")


def bar_chart(chart_id: str, title: str, labels: list[str], series: list[tuple[str, list[float]]],
              *, percent: bool = False) -> Markup:
    """Stacked bars, one per label; ``series`` is [(name, values)], stacked bottom up."""
    n = max(1, len(labels))
    totals = [sum(values[i] for _name, values in series) for i in range(len(labels))]
    top = max([*totals, 0.0])
    scale_max = 1.0 if percent else max(1.0, top)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    parts = [
        f'<svg id="{escape(chart_id)}" class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" aria-labelledby="{escape(chart_id)}-title '
        f'{escape(chart_id)}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(_describe(labels, series, percent))}</desc>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" stroke="#555"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#555"/>',
        _text(LEFT - 4, TOP + 4, _fmt(scale_max, percent), "end"),
        _text(LEFT - 4, TOP + plot_h, "0", "end"),
    ]
    for i, label in enumerate(labels):
        base = 0.0
        x = LEFT + i * slot + (slot - bar_w) / 2
        for k, (name, values) in enumerate(series):
            v = values[i]
            if v <= 0:
                continue
            h = plot_h * v / scale_max
            y = TOP + plot_h - plot_h * base / scale_max - h
            parts.append(f'<rect class="bar bar-{k}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{COLOURS[k % len(COLOURS)]}"><title>{escape(label)}: {escape(name)} '
                         f'{escape(_fmt(v, percent))}</title></rect>')
            base += v
    if labels:
        parts.append(_text(LEFT, HEIGHT - 8, labels[0], "start"))
        if len(labels) > 1:
            parts.append(_text(WIDTH - RIGHT, HEIGHT - 8, labels[-1], "end"))
    if len(series) > 1:  # a legend
        for k, (name, _values) in enumerate(series):
            x = LEFT + 8 + k * 150
            parts.append(f'<rect x="{x}" y="{TOP}" width="10" height="10" fill="{COLOURS[k % len(COLOURS)]}"/>')
            parts.append(_text(x + 14, TOP + 9, name, "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


def _text(x: float, y: float, text: str, anchor: str) -> str:
    return (f'<text x="{x}" y="{y}" font-size="11" fill="#333" text-anchor="{anchor}" '
            f'font-family="sans-serif">{escape(text)}</text>')


def _fmt(value: float, percent: bool) -> str:
    return f"{value:.0%}" if percent else f"{value:,.0f}"


def _describe(labels: list[str], series: list[tuple[str, list[float]]], percent: bool) -> str:
    if not labels:
        return "No data."
    peaks = []
    for name, values in series:
        i = max(range(len(values)), key=values.__getitem__)
        peaks.append(f"{name}: highest {_fmt(values[i], percent)} on {labels[i]}")
    return f"{len(labels)} days from {labels[0]} to {labels[-1]}. " + "; ".join(peaks) + ". The table below has every value."
