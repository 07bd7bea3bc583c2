"""Textual's Footer, without a memory leak that a long session would feel."""

from __future__ import annotations

from textual.widgets import Footer


class AppFooter(Footer):
    """The Footer recomposes whenever the active bindings change (here: each
    completion, each change of training state), and each new FooterKey is
    data-bound to Footer.compact. Textual drops the watchers of removed keys
    only when compact itself changes, which it never does, so every old key
    stayed in memory (Textualize/textual#6666). Forget them after each recompose."""

    async def recompose(self) -> None:
        await super().recompose()
        watchers = getattr(self, "__watchers", {}).get("compact")  # where Textual keeps them
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
