"""The Lab's table: a row per variant of an experiment, its state (waiting,
training with its time left, done) and its figures as they come."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from textual.widgets import DataTable

from tui.text import format_count, format_loss


@dataclass(frozen=True)
class VariantRow:
    state: str = "waiting"  # "waiting", "0:21 left", "done", "part-way"
    parameters: int | None = None
    tokens: int | None = None  # training tokens seen
    val_loss: float | None = None
    val_bpc: float | None = None


COLUMNS = {"state": "state", "parameters": "params", "tokens": "tokens", "val_loss": "val loss",
           "val_bpc": "bits/char"}


class VariantTable(DataTable):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_by_name: dict[str, VariantRow] = {}

    def on_mount(self) -> None:
        self.add_column("variant", key="variant")
        for key, label in COLUMNS.items():
            self.add_column(label, key=key)

    def set_variants(self, names: list[str]) -> None:
        """One waiting row per variant, in order."""
        self.clear()
        self.rows_by_name = {name: VariantRow() for name in names}
        for name in names:
            self.add_row(name, *self._cells(VariantRow()), key=name)

    def update(self, name: str, **changes: object) -> None:
        """Change some figures of a variant's row."""
        row = self.rows_by_name[name] = replace(self.rows_by_name[name], **changes)
        for key, cell in zip(COLUMNS, self._cells(row), strict=True):
            self.update_cell(name, key, cell, update_width=True)

    @property
    def selected(self) -> str | None:
        """The variant of the row under the cursor."""
        names = list(self.rows_by_name)
        return names[self.cursor_row] if 0 <= self.cursor_row < len(names) else None

    @staticmethod
    def _cells(row: VariantRow) -> list[str]:
        number = {"parameters": format_count, "tokens": format_count, "val_loss": format_loss, "val_bpc": format_loss}
        return [row.state] + [number[f.name](getattr(row, f.name)) if getattr(row, f.name) is not None else "–"
                              for f in fields(row) if f.name != "state"]
