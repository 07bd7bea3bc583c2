"""The Inspect view (key 3): what the model makes of a text, one step at a time.

The text is a prompt (the view generates from it, exactly as the sampler
would with the same seed) or a completion already written. At each step:
the next-token candidates, raw beside processed by the sampling settings;
the text coloured by the probability of each drawn token, and its tokens
with their ids; the attention of a chosen layer and head (or their average,
or every layer x head); and the logit lens.

The library computes (minigpt.inspect), on a snapshot of the weights, in a
thread worker; stepping and switching heads only re-render. While training,
the view refreshes its snapshot every REFRESH_SECONDS, and only while it is
on screen, so that training keeps its speed; f holds the snapshot (and the
text) still while the user steps through it, and f again follows training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive, var
from textual.widgets import Label
from textual.worker import Worker, WorkerState

from minigpt.tokenizer import UnknownCharactersError
from tui.text import format_probability, one_line, visible_token
from tui.widgets.attention_map import AttentionData, AttentionGrid, AttentionMap, SmallMap
from tui.widgets.logit_lens import LensCell, LensColumn, LogitLens
from tui.widgets.probability_bars import Bar, ProbabilityBars
from tui.widgets.token_strip import Strip, StripToken, TokenStrip

if TYPE_CHECKING:  # these import PyTorch, which the app loads after its first paint
    from minigpt.inspect import Inspection
    from minigpt.plumbing.session import TrainingSession
    from minigpt.plumbing.settings import SamplingSettings
    from minigpt.trainer import Trainer

REFRESH_SECONDS = 3.0  # while training and on screen: a new snapshot this often
MAP_KEYS = 160  # most key positions handed to the attention map (it shows those that fit)
MAP_QUERIES = 60
SMALL_MAP_SIDE = 16
HINT = "Press 3 to inspect the prompt you are writing (/), or else the last completion"


@dataclass(frozen=True, eq=False)  # each computation is news, even of the same weights
class Inspected:
    """A finished computation: the inspection and the text of each of its tokens."""

    inspection: Inspection
    labels: list[str]
    source: str  # what was inspected and on which weights, for the title
    weights_step: int  # the training step of the snapshot


class InspectView(Vertical, can_focus=True):
    BINDINGS = [
        Binding("left", "step(-1)", "Step", key_display="←→", id="inspect-step",
                tooltip="Step back through the text (→ forward)"),
        Binding("right", "step(1)", "Step", show=False, id="inspect-step-forward",
                tooltip="Step forward through the text"),
        Binding("home", "step(-1000000)", "First", show=False, id="inspect-first", tooltip="Go to the first step"),
        Binding("end", "step(1000000)", "Last", show=False, id="inspect-last", tooltip="Go to the last step"),
        # One footer entry for layers and heads: at 80 columns the footer has no room for two.
        Binding("left_square_bracket", "layer(-1)", "Head", key_display="[]h", id="inspect-layer",
                tooltip="Show the previous layer's attention (] the next, h the next head)"),
        Binding("right_square_bracket", "layer(1)", "Layer", show=False, id="inspect-layer-next",
                tooltip="Show the next layer's attention"),
        Binding("h", "next_head", "Head", show=False, id="inspect-head",
                tooltip="Next attention head, then the average over heads, then every layer x head"),
        Binding("f", "hold(True)", "Hold", id="inspect-hold",
                tooltip="Hold the snapshot still while training goes on"),
        Binding("f", "hold(False)", "Follow", id="inspect-follow",
                tooltip="Follow training again: a new snapshot every 3 s"),
    ]

    session: var[TrainingSession | None] = var(None)
    sampling: var[SamplingSettings | None] = var(None)
    run_state: var[str] = var("loading")
    model_name: var[str] = var("")  # a Lab variant opened here ("width/width-64"), not the app's own model
    inspected: reactive[Inspected | None] = reactive(None)
    step: reactive[int] = reactive(0)
    layer: reactive[int] = reactive(0)
    head: reactive[int] = reactive(0)  # n_heads is the average, n_heads + 1 the grid
    held: reactive[bool] = reactive(False, bindings=True)  # the snapshot stays while training goes on

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._request: tuple[str, str, SamplingSettings | None] | None = None  # prompt, text, settings
        self._seed = 0  # drawn once per request, so that a refresh replays the same draws
        self._worker: Worker | None = None

    def compose(self) -> ComposeResult:
        yield Label(HINT, id="inspect-title", markup=False)
        yield TokenStrip(id="inspect-text")
        yield TokenStrip(show_ids=True, id="inspect-tokens")
        with Horizontal(id="inspect-panes"):
            yield ProbabilityBars(id="inspect-bars")
            with Vertical(id="inspect-attention"):
                yield AttentionMap(id="inspect-map")
                yield AttentionGrid(id="inspect-grid")
        yield LogitLens(id="inspect-lens")

    def on_mount(self) -> None:
        self.query_one("#inspect-bars").border_title = "next token"
        self.query_one("#inspect-attention").border_title = "attention"
        self.set_interval(REFRESH_SECONDS, self._refresh_while_training)

    # --- what to inspect ------------------------------------------------------------------

    def inspect(self, prompt: str, text: str, settings: SamplingSettings | None = None) -> None:
        """Inspect text, written after prompt; with no text, generate from prompt
        under settings (the app's sampling settings if None) and inspect that."""
        self._request = (prompt, text, settings)
        base = settings or self.sampling
        self._seed = base.seeded().seed if base is not None else 0
        self.step = 0
        self._compute_now()

    def _compute_now(self) -> None:
        if self._request is None or self.session is None or self.sampling is None:
            return  # computed once the session and settings have come
        prompt, text, settings = self._request
        settings = settings or self.sampling
        if settings.seed < 0:
            settings = replace(settings, seed=self._seed)
        trainer = self.session.trainer
        if unknown := trainer.tokenizer.unknown_characters(prompt + text):
            self._title(f"Cannot inspect this text: {UnknownCharactersError(unknown)}")
            return
        self._worker = self._compute(trainer, prompt, text, settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group="inspect", name="inspect")
    def _compute(self, trainer: Trainer, prompt: str, text: str, settings: SamplingSettings) -> Inspected:
        from minigpt.inspect import replay, score, token_labels

        step = trainer.step  # read before the snapshot, which may be a step newer, never older
        model = trainer.snapshot()
        if text:
            inspection = score(model, trainer.tokenizer, prompt, text, settings)
            source = f"completion of {prompt!r}" if prompt else "sample"
        else:
            inspection = replay(model, trainer.tokenizer, prompt, settings)
            source = f"generated from {prompt!r}"
        return Inspected(inspection, token_labels(trainer.tokenizer, inspection.tokens),
                         f"{source}, weights of step {step:,}, seed {settings.seed}", step)

    def _refresh_while_training(self) -> None:
        busy = self._worker and self._worker.is_running
        # A held snapshot, and a Lab variant opened here, do not change.
        if self.run_state == "training" and self.is_on_screen and not (self.held or busy or self.model_name):
            self._compute_now()

    def watch_session(self) -> None:
        self._compute_now()

    def watch_sampling(self) -> None:
        if self._request and self._request[2] is None:  # it follows the app's settings
            self._compute_now()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        event.stop()  # the view's own worker: the app need not hear of it
        if event.state == WorkerState.SUCCESS:
            self.inspected = event.worker.result
        elif event.state == WorkerState.ERROR:
            self._title(f"Could not inspect: {event.worker.error}")
            self.notify(str(event.worker.error), title="Inspect failed", severity="error")

    # --- keys -----------------------------------------------------------------------------

    def action_step(self, delta: int) -> None:
        if self.inspected:
            self.step = max(0, min(self.step + delta, len(self.inspected.inspection.steps) - 1))

    def action_layer(self, delta: int) -> None:
        if self.session:
            self.layer = (self.layer + delta) % self.session.trainer.model_config.n_layers

    def action_next_head(self) -> None:
        if self.session:
            self.head = (self.head + 1) % (self.session.trainer.model_config.n_heads + 2)

    def action_hold(self, hold: bool) -> None:
        self.held = hold
        self._show()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hold":
            return parameters[0] != self.held  # f holds, or, once held, follows again
        return True

    # --- showing --------------------------------------------------------------------------

    def _title(self, text: str) -> None:
        self.query_one("#inspect-title", Label).update(one_line(text, 500))

    def watch_inspected(self) -> None:
        if self.inspected:
            self.step = min(self.step, max(len(self.inspected.inspection.steps) - 1, 0))
        self._show()

    def watch_step(self) -> None:
        self._show()

    def watch_layer(self) -> None:
        self._show()

    def watch_head(self) -> None:
        self._show()

    def _show(self) -> None:
        if not self.is_mounted or self.inspected is None:
            return
        inspection, labels = self.inspected.inspection, self.inspected.labels
        steps = inspection.steps
        if not steps:
            self._title(f"{self.inspected.source}: no token to step through")
            return
        step = steps[self.step]
        position = step.position
        held = "held · " if self.held else ""
        model = f"{self.model_name} · " if self.model_name else ""  # a Lab variant: say so first
        self._title(f"{model}{held}token {self.step + 1}/{len(steps)}: {visible_token(labels[position])} drawn at "
                    f"{format_probability(step.processed)} (raw {format_probability(step.raw)}) · "
                    f"perplexity {inspection.perplexity:.2f} · "
                    f"{self.inspected.source}")
        drawn = {s.position: s.raw for s in steps}
        strip = Strip([StripToken(label, token, drawn.get(i)) for i, (label, token)
                       in enumerate(zip(labels, inspection.tokens, strict=True))], position)
        self.query_one("#inspect-text", TokenStrip).strip = strip
        self.query_one("#inspect-tokens", TokenStrip).strip = strip
        self.query_one(ProbabilityBars).bars = [
            Bar(self._label(c.token), c.raw, c.processed, c.token == step.token) for c in step.candidates]
        self._show_attention(inspection, labels, position)
        self._show_lens(inspection, position - 1, step.token)

    def _label(self, token: int) -> str:
        from minigpt.inspect import token_labels  # PyTorch is loaded: there is a session

        assert self.session is not None
        return token_labels(self.session.trainer.tokenizer, [token])[0]

    def _show_attention(self, inspection: Inspection, labels: list[str], position: int) -> None:
        """The attention of the queries up to the one predicting the current token."""
        attention = inspection.trace.attention  # (L, H, T, T)
        layers, heads = attention.shape[:2]
        grid = layers > 0 and self.head == heads + 1
        self.query_one(AttentionMap).display = not grid
        self.query_one(AttentionGrid).display = grid
        box = self.query_one("#inspect-attention")
        if not layers:
            box.border_title = "attention · none: this model has no attention layers"
            self.query_one(AttentionMap).data = None
            return
        layer, head = self.layer % layers, self.head
        if grid:
            box.border_title = f"attention · every layer x head · at {visible_token(labels[position - 1])}"
            self.query_one(AttentionGrid).maps = [
                [SmallMap(f"L{i + 1} H{j + 1}", _window(attention[i, j], labels, position, SMALL_MAP_SIDE,
                                                        SMALL_MAP_SIDE)) for j in range(heads)]
                for i in range(layers)]
            return
        weights = attention[layer].mean(0) if head == heads else attention[layer, head]
        which = "heads averaged" if head == heads else f"head {head + 1}/{heads}"
        box.border_title = f"attention · layer {layer + 1}/{layers} · {which}"
        self.query_one(AttentionMap).data = _window(weights, labels, position, MAP_QUERIES, MAP_KEYS)

    def _show_lens(self, inspection: Inspection, query: int, drawn: int) -> None:
        """The lens at the query predicting the current token (drawn)."""
        trace = inspection.trace
        tokens = trace.lens_tokens[:, query].tolist()  # (S, LENS_TOP)
        probs = trace.lens_probs[:, query].tolist()
        drawn_probs = trace.lens_next[:, query].tolist()  # (S,)
        label = self._label(drawn)
        self.query_one(LogitLens).columns = [
            LensColumn(stage, [LensCell(self._label(t), p, t == drawn) for t, p in zip(row, row_probs, strict=True)],
                       LensCell(label, drawn_prob, True))
            for stage, row, row_probs, drawn_prob in zip(trace.lens_stages, tokens, probs, drawn_probs, strict=True)]


def _window(weights, labels: list[str], position: int, queries: int, keys: int) -> AttentionData:
    """The newest queries and keys before position (the token being predicted) of a (T, T) map."""
    first_query, first_key = max(position - queries, 0), max(position - keys, 0)
    return AttentionData(weights[first_query:position, first_key:position].tolist(), labels[first_key:position])
