"""The Inspect view's widgets and helpers on their own, without a model."""

from __future__ import annotations

from textual.app import App, ComposeResult
from tui_helpers import wait_for

from tui.text import format_probability, visible_token
from tui.widgets.attention_map import AttentionData, AttentionMap, fit, shade
from tui.widgets.logit_lens import LensCell, LensColumn, LogitLens, stage_title
from tui.widgets.probability_bars import Bar, ProbabilityBars, bar
from tui.widgets.token_strip import Strip, StripToken, TokenStrip, level, visible_range


def test_token_labels_make_whitespace_and_control_characters_visible():
    assert visible_token(" the\n") == "␣the⏎"
    assert visible_token("\x1b[2J") == "\\x1b[2J"  # an escape sequence is shown, never sent
    assert visible_token("é\\xc3") == "é\\xc3"


def test_probabilities_keep_two_figures():
    assert [format_probability(p) for p in (0.413, 0.0413, 0.00413, 0.0)] == ["41%", "4.1%", "0.41%", "0.00%"]


def test_bars_are_drawn_to_an_eighth_of_a_column():
    assert bar(1.0, 4) == "████" and bar(0.0, 4) == "    "
    assert bar(0.5, 3) == "█▌ "  # 1.5 columns
    assert bar(2.0, 2) == "██"  # never past its width


def test_the_strip_shows_the_tokens_around_the_cursor_that_fit():
    assert visible_range([1] * 10, 5, 4) == range(4, 8)
    assert visible_range([1] * 10, 0, 4) == range(0, 4)
    assert visible_range([1] * 10, 9, 4) == range(6, 10)
    assert visible_range([3, 1, 1], 0, 2) == range(0, 1)  # the cursor's token, even if too wide
    assert [level(p) for p in (0.9, 0.3, 0.1, 0.01)] == ["high", "mid", "low", "rare"]


def test_attention_shades_from_none_to_all_and_keeps_the_newest_cells():
    assert shade(0.0) == " " and shade(1.0) == "█" and shade(0.001) == "·" and shade(0.5) == "▒"
    data = AttentionData([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]], ["a", "b", "c"])
    small = fit(data, 2, 2)
    assert small.rows == [[0.5, 0.0], [0.3, 0.5]] and small.labels == ["b", "c"]


class InspectWidgets(App[None]):
    def compose(self) -> ComposeResult:
        yield TokenStrip(id="text")
        yield ProbabilityBars()
        yield AttentionMap()


async def test_the_widgets_render_what_they_are_given():
    app = InspectWidgets()
    async with app.run_test(size=(60, 20)) as pilot:
        strip, bars, attention = app.query_one(TokenStrip), app.query_one(ProbabilityBars), app.query_one(AttentionMap)
        strip.strip = Strip([StripToken("ab", 1, None), StripToken(" c", 2, 0.9)], 1)
        bars.bars = [Bar("x", 0.6, 0.8, True), Bar("y", 0.3, 0.0, False)]
        attention.data = AttentionData([[1.0, 0.0], [0.4, 0.6]], ["p", "q"])
        await wait_for(pilot, lambda: strip.size.width > 0, "the layout")
        assert str(strip.render()) == "ab c"
        lines = str(bars.render()).splitlines()
        assert lines[1].startswith("▶ x") and lines[1].rstrip().endswith("80.0%")
        assert lines[2].rstrip().endswith("cut")  # removed by the settings
        assert str(attention.render()).splitlines() == ["     pq", "   p █ ", "   q ░▒"]  # 0.4 and 0.6


def test_lens_titles_shorten_to_fit_their_column():
    assert [stage_title(s, 8) for s in ("embeddings", "attention 1", "mlp 12")] == ["emb", "att 1", "mlp 12"]
    assert [stage_title(s, 5) for s in ("embeddings", "attention 1", "mlp 12")] == ["e", "a1", "m12"]


class LensApp(App[None]):
    CSS = """LogitLens { & > .logit-lens--drawn { text-style: bold; } & > .logit-lens--next { text-style: italic; } }"""

    def compose(self) -> ComposeResult:
        yield LogitLens()


async def test_the_lens_shows_each_stages_top_predictions_then_the_drawn_tokens_probability():
    app = LensApp()
    async with app.run_test(size=(36, 4)) as pilot:
        lens = app.query_one(LogitLens)
        lens.columns = [LensColumn("embeddings", [LensCell("a", 0.5, False), LensCell("b", 0.2, True)],
                                   LensCell("b", 0.2, True)),
                        LensColumn("attention 1", [LensCell("b", 0.9, True)], LensCell("b", 0.9, True)),
                        LensColumn("mlp 1", [LensCell("c", 0.4, False)], LensCell("b", 0.03, True))]
        await wait_for(pilot, lambda: lens.size.width > 0, "the layout")
        rendered = lens.render()
        lines = [line.rstrip() for line in str(rendered).splitlines()]
        assert lines == ["emb         att 1       mlp 1",  # 12 columns each
                         "a 50%       b 90%       c 40%",
                         "b 20%",  # the rows that fit: the third row of ranks does not
                         "b 20%       b 90%       b 3.0%"]
        top, drawn = rendered.split("\n")[1], rendered.split("\n")[3]
        styles = {top.plain[span.start:span.end].strip(): span.style for span in top.spans}
        assert styles["b 90%"].bold and not styles["a 50%"].bold  # the drawn token stands out among the predictions
        assert all(span.style.italic for span in drawn.spans)  # the last row: the drawn token at each stage
