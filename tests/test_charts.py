"""webapp/charts.py: the server-drawn SVG bar chart of clicks (a link's page and the dashboard)."""
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(markup):
    return ET.fromstring(str(markup))


def rects(svg, kind):
    return [rect for rect in svg.iter(f"{SVG}rect") if rect.get("class") == f"chart-{kind}"]


@pytest.mark.parametrize(("peak", "top", "step"), [(0, 4, 1), (1, 1, 1), (3, 3, 1), (7, 8, 2), (10, 10, 5), (1000, 1000, 500),
                                                  (1234, 1500, 500), (99_999, 100_000, 50_000)])
def test_the_axis_is_whole_round_numbers_above_the_peak(peak, top, step):
    assert charts.scale(peak) == (top, step)


@given(st.integers(min_value=0, max_value=10**12))
def test_the_axis_always_holds_the_peak_in_a_few_whole_steps(peak):
    top, step = charts.scale(peak)
    assert top >= peak and top % step == 0 and isinstance(step, int) and step >= 1
    assert top // step <= 2 * charts.TICKS


def test_people_and_bots_are_stacked_bars_in_proportion():
    svg = parse(charts.stacked_bars([charts.Bar("d1", "1", 10, 0), charts.Bar("d2", "", 5, 5), charts.Bar("d3", "", 0, 0)],
                                    title="Clicks", description="desc", chart_id="c"))
    people, bots = rects(svg, "people"), rects(svg, "bots")
    assert len(people) == 2 and len(bots) == 1  # an empty count draws nothing
    full, half = (float(rect.get("height")) for rect in people)
    assert full == pytest.approx(2 * half)
    assert float(bots[0].get("height")) == pytest.approx(half)
    # Bots sit on top of people: the bot bar ends where the people bar starts.
    assert float(bots[0].get("y")) + float(bots[0].get("height")) == pytest.approx(float(people[1].get("y")))


def test_the_chart_has_an_accessible_name_and_description():
    svg = parse(charts.stacked_bars([charts.Bar("d", "d", 1, 0)], title="Clicks per day", description="1 click.", chart_id="x"))
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "x-title x-desc"
    assert svg.find(f"{SVG}title").text == "Clicks per day" and svg.find(f"{SVG}title").get("id") == "x-title"
    assert svg.find(f"{SVG}desc").text == "1 click." and svg.find(f"{SVG}desc").get("id") == "x-desc"


def test_each_bar_says_its_numbers_on_hover():
    svg = parse(charts.stacked_bars([charts.Bar("2026-12-01", "1 Dec", 1234, 5)], title="t", description="d", chart_id="c"))
    titles = [element.text for element in svg.iter(f"{SVG}title")]
    assert "2026-12-01: 1,234 by people, 5 by bots" in titles


def test_an_unknown_bar_is_an_outline_that_says_so():
    svg = parse(charts.stacked_bars([charts.Bar("h", "", None, None), charts.Bar("i", "", 2, 1)], title="t", description="d",
                                    chart_id="c"))
    assert len(rects(svg, "unknown")) == 1
    assert "h: not measured" in [element.text for element in svg.iter(f"{SVG}title")]


def test_only_ticked_bars_get_an_axis_label():
    bars = [charts.Bar(f"day {n}", "L" if n % 5 == 0 else "", n, 0) for n in range(30)]
    svg = parse(charts.stacked_bars(bars, title="t", description="d", chart_id="c"))
    assert [text.text for text in svg.iter(f"{SVG}text") if text.get("class") == "chart-label"] == ["L"] * 6


def test_the_chart_carries_no_style_attribute_or_script():
    """The CSP (style-src 'self', script-src 'self') would refuse them: colours come from app.css classes."""
    markup = str(charts.stacked_bars([charts.Bar("d", "d", 3, 1), charts.Bar("e", "", None, None)], title="t", description="d",
                                     chart_id="c"))
    assert "style" not in markup and "<script" not in markup and "on" + "load" not in markup


def test_labels_are_escaped_svg_injection():
    markup = str(charts.stacked_bars([charts.Bar("<script>x</script>", "<b>", 1, 0)], title="</title><script>",
                                     description="&", chart_id="c"))
    assert "<script" not in markup and "<b>" not in markup
    parse(markup)  # still well-formed XML


def test_a_90_bar_chart_is_well_formed_and_every_bar_fits():
    bars = [charts.Bar(f"d{n}", "", n * 7 % 13, n % 3) for n in range(90)]
    svg = parse(charts.stacked_bars(bars, title="t", description="d", chart_id="c"))
    for rect in rects(svg, "people") + rects(svg, "bots"):
        x, width = float(rect.get("x")), float(rect.get("width"))
        assert charts.LEFT <= x and x + width <= charts.WIDTH - charts.RIGHT
        assert float(rect.get("y")) >= charts.TOP - 0.01


@pytest.mark.parametrize(("days", "labelled"), [(7, 7), (30, 6), (90, 6), (14, 7)])
def test_a_day_series_is_labelled_every_few_days_counted_back_from_today(days, labelled):
    series = [{"day": f"2026-{1 + n // 28:02d}-{1 + n % 28:02d}", "clicks": n, "bots": 1} for n in range(days)]
    bars = charts.day_bars(series)
    assert [bar.label for bar in bars] == [point["day"] for point in series]
    assert [(bar.people, bar.bots) for bar in bars] == [(n, 1) for n in range(days)]
    ticks = [bar.tick for bar in bars if bar.tick]
    assert len(ticks) == labelled and bars[-1].tick  # today always has its date
    assert charts.day_bars([{"day": "2026-12-07", "clicks": 0, "bots": 0}])[0].tick == "7 Dec"


def test_the_description_gives_the_measured_totals_and_the_busiest_bar():
    bars = [charts.Bar("a", "", 3, 1), charts.Bar("b", "", 1_200, 4), charts.Bar("c", "", None, None)]
    assert charts.describe(bars) == "1,203 clicks by people and 5 by bots, stacked. The busiest was b, with 1,200 by people."
    assert charts.describe([charts.Bar("a", "", 0, 2)]) == "0 clicks by people and 2 by bots, stacked."
    assert charts.describe([]) == "0 clicks by people and 0 by bots, stacked."
    svg = parse(charts.stacked_bars(bars, title="t", chart_id="c"))  # the description by default
    assert svg.find(f"{SVG}desc").text == charts.describe(bars)
