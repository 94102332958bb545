"""Bar charts as inline SVG, drawn on the server: readable without JavaScript and allowed by the CSP.

Colours and fonts come from classes styled in webapp/static/app.css (the CSP forbids style
attributes); geometry is SVG attributes. Each bar is people at the bottom with bots stacked on
top; a bar whose counts are unknown is drawn as an outline. The chart has an accessible name
(its <title>) and description; the page gives the numbers as a table as well.

A module of our own rather than pygal: pygal's SVG carries inline <style> and style attributes,
which the admin's CSP (style-src 'self') refuses.
"""
import math
from collections import namedtuple
from datetime import date

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 8, 12, 32
TICKS = 4
DAY_TICKS = {7: 1, 30: 5, 90: 15}  # a day label on every nth bar, counted back from today
Bar = namedtuple("Bar", "label tick people bots")  # tick: the x axis label, or "" for none


def scale(peak, ticks=TICKS):
    """The y axis's top and step: whole numbers from 1, 2 or 5 times a power of ten, top >= peak."""
    if peak <= 0:
        return ticks, 1  # an empty chart still gets a readable axis
    raw = peak / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, round(step))
    return step * math.ceil(peak / step), step


def day_bars(series):
    """One bar per day of a series [{day, clicks, bots}] (oldest first), a short date under every few."""
    every = DAY_TICKS.get(len(series), max(1, len(series) // 6))
    return [Bar(point["day"], _day_label(point["day"]) if (len(series) - 1 - index) % every == 0 else "",
                point["clicks"], point["bots"]) for index, point in enumerate(series)]


def describe(bars):
    """A chart's description: the measured bars' totals and the busiest bar."""
    shown = [bar for bar in bars if bar.people is not None and bar.bots is not None]
    people, bots = sum(bar.people for bar in shown), sum(bar.bots for bar in shown)
    text = f"{people:,} clicks by people and {bots:,} by bots, stacked."
    busiest = max(shown, key=lambda bar: bar.people, default=None)
    if busiest and busiest.people:
        text += f" The busiest was {busiest.label}, with {busiest.people:,} by people."
    return text


def stacked_bars(bars, *, title, chart_id, description=None):
    """The SVG (Markup) of one bar per entry of `bars` (Bar tuples), left to right; described by
    describe(bars) unless a description is given."""
    bars = list(bars)
    description = describe(bars) if description is None else description
    peak = max(((bar.people or 0) + (bar.bots or 0) for bar in bars), default=0)
    top, step = scale(peak)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_width / max(len(bars), 1)
    width = max(slot * 0.75, 1)

    def y(value):
        return TOP + plot_height - plot_height * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" focusable="false">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
        '<g class="chart-grid">',
    ]
    for value in range(0, top + 1, step):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y(value))}" y2="{_n(y(value))}"/>')
        parts.append(f'<text class="chart-tick" x="{LEFT - 6}" y="{_n(y(value) + 4)}" text-anchor="end">{value:,}</text>')
    parts.append('</g><g class="chart-bars">')
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + (slot - width) / 2
        parts.append(f"<g><title>{escape(bar.label)}: {_hover(bar)}</title>")
        if bar.people is None or bar.bots is None:
            parts.append(f'<rect class="chart-unknown" x="{_n(x)}" y="{TOP}" width="{_n(width)}" height="{plot_height}"/>')
        else:
            base = 0
            for value, kind in ((bar.people, "people"), (bar.bots, "bots")):
                if value:
                    parts.append(f'<rect class="chart-{kind}" x="{_n(x)}" y="{_n(y(base + value))}" '
                                 f'width="{_n(width)}" height="{_n(y(base) - y(base + value))}"/>')
                base += value
        parts.append("</g>")
        if bar.tick:
            parts.append(f'<text class="chart-label" x="{_n(x + width / 2)}" y="{HEIGHT - 8}" '
                         f'text-anchor="middle">{escape(bar.tick)}</text>')
    parts.append(f'</g><line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y(0))}" y2="{_n(y(0))}"/></svg>')
    return Markup("".join(parts))


def _hover(bar):
    """A bar's tooltip text (its <title>)."""
    if bar.people is None or bar.bots is None:
        return "not measured"
    return f"{bar.people:,} by people, {bar.bots:,} by bots"


def _day_label(day):
    """A short axis label: "7 Dec"."""
    value = date.fromisoformat(day)
    return f"{value.day} {value:%b}"


def _n(value):
    """A coordinate, short: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
