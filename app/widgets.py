"""Widgets the dashboard's screens share: a virtual table that draws only the rows on screen (they may be
read lazily, a window at a time), plotext charts that thin their points to what the terminal can show, and two
small dialogs."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.geometry import Size
from textual.message import Message
from textual.screen import ModalScreen
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Button, Input, Label, SelectionList
from textual_plotext import PlotextPlot

from nasapp.app.formatting import markup_safe as escape  # also makes control characters visible
from nasapp.app.formatting import plain

# ---- the virtual table ---------------------------------------------------------------------------


@dataclass
class Column:
    key: str
    label: str
    width: int | None = None  # None: as wide as the widest cell, up to max_width
    align: str = "left"  # "left" | "right"
    max_width: int = 48


@dataclass(frozen=True)
class TableRow:
    key: Any
    cells: tuple[str, ...]
    tone: str | None = None  # "good" | "bad" | "active" | "muted": a component class colours the row


class LazyRows(Sequence):
    """Rows formatted only when drawn: `make(key)` turns a key into its TableRow (and may cache it)."""

    def __init__(self, keys: list[Any], make: Callable[[Any], TableRow]) -> None:
        self.keys = keys
        self.make = make

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self.make(key) for key in self.keys[index]]
        return self.make(self.keys[index])


class _RowMessage(Message):
    """A message about one row of a VirtualTable (its key)."""

    def __init__(self, table: VirtualTable, key: Any) -> None:
        super().__init__()
        self.table = table
        self.key = key

    @property
    def control(self) -> VirtualTable:
        return self.table


class VirtualTable(ScrollView, can_focus=True):
    """A read-only table that renders only the rows on screen.

    Textual's DataTable measures every cell of every row, which takes seconds at 10,000 rows; this table
    keeps rows as preformatted strings and draws the visible lines, so setting 10,000 rows costs a few
    milliseconds. The header stays on the first line; the cursor is a row.
    """

    DEFAULT_CSS = """
    VirtualTable {
        background: $surface;
        color: $foreground;
        height: 1fr;
        scrollbar-size-vertical: 1;
        & > .vtable--header { text-style: bold; background: $panel; color: $foreground; }
        & > .vtable--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
        }
        &:focus > .vtable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }
        & > .vtable--good { color: $text-success; }
        & > .vtable--bad { color: $text-error; }
        & > .vtable--active { color: $text-warning; }
        & > .vtable--muted { color: $text-muted; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "vtable--header", "vtable--cursor", "vtable--good", "vtable--bad", "vtable--active", "vtable--muted",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Open"),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "last", "Last", show=False),
        Binding("left", "scroll_left", show=False),
        Binding("right", "scroll_right", show=False),
    ]

    class Selected(_RowMessage):
        """Enter (or a click on the highlighted row) on a row."""

    class Highlighted(_RowMessage):
        """The cursor moved to another row."""

    class HeaderClicked(Message):
        """A click on a column's header (screens sort by it)."""

        def __init__(self, table: VirtualTable, column: str) -> None:
            super().__init__()
            self.table = table
            self.column = column

        @property
        def control(self) -> VirtualTable:
            return self.table

    def __init__(self, columns: Sequence[Column] = (), *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.columns: list[Column] = list(columns)
        self.rows: Sequence[TableRow] = []
        self.cursor = 0
        self.header_marks: dict[str, str] = {}  # column key -> a mark after its label ("▲", "▼")
        self.marked: set[Any] = set()  # keys of rows drawn with a mark (●) in the first cell
        self._widths: list[int] = []
        self._keys: Sequence[Any] = []
        self._last_highlighted: Any = None
        self._given_widths: dict[str, int] = {}
        self._measure()

    # ---- data ----------------------------------------------------------------------------------
    def set_columns(self, columns: Sequence[Column]) -> None:
        self.columns = list(columns)
        self._measure()
        self.refresh()

    def set_rows(self, rows: Sequence[TableRow], keys: Sequence[Any] | None = None,
                 widths: dict[str, int] | None = None) -> None:
        """Replace the rows; the cursor stays on the same key when that row is still there.

        `rows` may be lazy (a LazyRows, or any Sequence that makes a row when it is drawn, such as a window
        read from the store); then give the rows' `keys`, and the content widths of the auto-width columns in
        `widths` (else every row is made to measure them).
        """
        key = self.cursor_key
        self.rows = rows if isinstance(rows, Sequence) else list(rows)
        self._keys = keys if keys is not None else [row.key for row in self.rows]
        found = self._find(key)
        if found is not None:
            self.cursor = found
        self.cursor = max(0, min(self.cursor, len(self.rows) - 1))
        self._given_widths = widths or {}
        self._measure()
        self._scroll_cursor_into_view()
        self.refresh()
        self._post_highlight()

    @property
    def cursor_key(self) -> Any:
        return self._keys[self.cursor] if 0 <= self.cursor < len(self._keys) else None

    def _find(self, key: Any) -> int | None:
        """The row of a key (a scan: a set_rows of 100,000 keys builds no index it may never need)."""
        if key is None:
            return None
        try:
            return self._keys.index(key)
        except ValueError:
            return None

    @property
    def row_count(self) -> int:
        return len(self.rows)

    def move_to_key(self, key: Any) -> bool:
        found = self._find(key)
        if found is None:
            return False
        self.move_cursor(found)
        return True

    def move_cursor(self, row: int) -> None:
        if not self.rows:
            return
        row = max(0, min(row, len(self.rows) - 1))
        if row != self.cursor:
            self.cursor = row
            self.refresh()
        self._scroll_cursor_into_view()
        self._post_highlight()

    def _post_highlight(self) -> None:
        key = self.cursor_key
        if key != self._last_highlighted:
            self._last_highlighted = key
            self.post_message(self.Highlighted(self, key))

    def _measure(self) -> None:
        given = self._given_widths
        widths = []
        for i, column in enumerate(self.columns):
            label = cell_len(column.label) + 1  # room for a sort mark
            if column.width is not None:
                widths.append(max(column.width, label))
            else:
                if column.key in given:
                    longest = given[column.key]
                else:
                    longest = max((len(row.cells[i]) for row in self.rows if i < len(row.cells)), default=0)
                widths.append(max(label, min(longest, column.max_width)))
        self._widths = widths
        total = sum(widths) + len(widths) + 1
        self.virtual_size = Size(total, len(self.rows) + 1)

    # ---- scrolling and keys ------------------------------------------------------------------------
    @property
    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def _scroll_cursor_into_view(self) -> None:
        top = int(self.scroll_y)
        page = self._page
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + page:
            self.scroll_to(y=self.cursor - page + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor - self._page)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor + self._page)

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self.rows) - 1)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.Selected(self, self.cursor_key))

    def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            column = self._column_at(offset.x + int(self.scroll_x))
            if column is not None:
                self.post_message(self.HeaderClicked(self, column.key))
            return
        row = int(self.scroll_y) + offset.y - 1
        if 0 <= row < len(self.rows):
            again = row == self.cursor
            self.move_cursor(row)
            if again or event.chain >= 2:
                self.action_select()

    def _column_at(self, x: int) -> Column | None:
        position = 1
        for column, width in zip(self.columns, self._widths, strict=True):
            if position <= x < position + width + 1:
                return column
            position += width + 1
        return None

    # ---- drawing -----------------------------------------------------------------------------------
    def _line_text(self, cells: Sequence[str], header: bool = False) -> str:
        parts = []
        for i, (column, width) in enumerate(zip(self.columns, self._widths, strict=True)):
            text = plain(cells[i], False) if i < len(cells) else ""  # a cell is drawn raw: no control characters
            if header:
                text += self.header_marks.get(column.key, "")
            if cell_len(text) > width:
                text = set_cell_size(text, width - 1) + "…"
            parts.append(text.rjust(width) if column.align == "right" else set_cell_size(text, width))
        return " " + " ".join(parts) + " "

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y == 0:
            style = base + self.get_component_rich_style("vtable--header")
            text = self._line_text([c.label for c in self.columns], header=True)
        else:
            index = scroll_y + y - 1
            if index >= len(self.rows):
                return Strip.blank(width, base)
            row = self.rows[index]
            style = base
            if row.tone:
                style += self.get_component_rich_style(f"vtable--{row.tone}")
            if index == self.cursor:
                style += self.get_component_rich_style("vtable--cursor")
            text = self._line_text(row.cells)
            if row.key in self.marked:
                text = "●" + text[1:]
        strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(scroll_x, scroll_x + width, style)


class InfoTable(VirtualTable):
    """A VirtualTable whose rows open nothing (enter is not offered in the footer)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Open", show=False)]


# ---- charts ----------------------------------------------------------------------------------------

def thin_points(xs: Sequence[float], ys: Sequence[float], cols: int, rows: int,
                keep: int = 0) -> tuple[list[float], list[float]]:
    """At most one point per cell of a cols x rows grid (what a terminal can show), keeping the extremes.

    Plotting costs grow with the number of points (10,000 points take plotext a third of a second); a
    chart cell can show one marker, so drawing more than one point per cell changes nothing on screen.
    `keep` > 0 keeps every point when there are at most that many.
    """
    count = len(xs)
    if count <= keep or count == 0:
        return list(xs), list(ys)
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    dx = (x1 - x0) / max(cols - 1, 1) or 1.0
    dy = (y1 - y0) / max(rows - 1, 1) or 1.0
    seen: set[tuple[int, int]] = set()
    out_x: list[float] = []
    out_y: list[float] = []
    indices = range(count)
    extremes = {min(indices, key=xs.__getitem__), max(indices, key=xs.__getitem__),
                min(indices, key=ys.__getitem__), max(indices, key=ys.__getitem__)}
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        cell = (int((x - x0) / dx), int((y - y0) / dy))
        if cell in seen and i not in extremes:
            continue
        seen.add(cell)
        out_x.append(x)
        out_y.append(y)
    return out_x, out_y


def running_best(xs: Sequence[float], ys: Sequence[float], direction: str = "max") -> tuple[list, list]:
    """The best-so-far line as a step function, with points only where it changes (and at the end)."""
    better: Callable[[float, float], bool] = (lambda a, b: a > b) if direction == "max" else (lambda a, b: a < b)
    out_x: list[float] = []
    out_y: list[float] = []
    best: float | None = None
    for x, y in zip(xs, ys, strict=True):
        if best is None or better(y, best):
            if best is not None:
                out_x.append(x)
                out_y.append(best)
            best = y
            out_x.append(x)
            out_y.append(y)
    if out_x and xs and out_x[-1] != xs[-1]:
        out_x.append(xs[-1])
        out_y.append(best)  # type: ignore[arg-type]
    return out_x, out_y


def integer_ticks(low: float, high: float, count: int) -> list[int]:
    """About `count` evenly spaced whole numbers from low to high (trial numbers and steps are whole)."""
    low_i, high_i = math.floor(low), math.ceil(high)
    if high_i <= low_i:
        return [low_i]
    step = max(1, math.ceil((high_i - low_i) / max(count - 1, 1)))
    ticks = list(range(low_i, high_i + 1, step))
    return ticks


class Chart(PlotextPlot):
    """A plotext chart that draws from data set on it, thinned to its size, only when data or size change."""

    DEFAULT_CSS = """
    Chart {
        height: 1fr; width: 1fr; min-height: 6;
        border-top: solid $primary 50%; border-title-color: $text; border-title-align: center;
    }
    """
    empty_text = "no data yet"
    chart_title = ""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.has_data = False
        self.renders = 0  # how often the plot was built, and how long the last build took
        self.last_render_s = 0.0

    def on_mount(self) -> None:
        self.border_title = self.chart_title

    def set_title(self, title: str) -> None:
        self.chart_title = title
        self.border_title = title

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        """Add the series (plt is this chart's plotext figure); subclasses implement it."""

    def render(self):  # type: ignore[override]
        if not self.has_data or self.size.width < 10 or self.size.height < 4:
            return Text(self.empty_text, style="dim")
        started = time.perf_counter()
        plt = self.plt
        plt.clear_data()
        # the plotting area is the widget less the axes and labels (about 10 columns and 3 lines)
        self.draw(plt, max(self.size.width - 10, 10), max(self.size.height - 3, 4))
        rendered = super().render()
        self.renders += 1
        self.last_render_s = time.perf_counter() - started
        return rendered


class SearchCurve(Chart):
    """Each finished trial's reward as a point (x: trial number), the running best as a line.

    Given the points to plot (a job's screen bins them: app/chart_points.py) and the best-so-far line, or
    with `best` left out, the line is computed from the points."""

    empty_text = "search curve: no finished trials yet"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.best: tuple[list[float], list[float]] = ([], [])
        self.label = "reward"

    def set_data(self, xs: list[float], ys: list[float], direction: str, label: str = "reward",
                 best: tuple[list[float], list[float]] | None = None) -> None:
        self.xs, self.ys, self.label = xs, ys, label
        self.best = best if best is not None else running_best(xs, ys, direction)
        self.has_data = bool(xs)
        self.set_title(f"[cyan]•[/] {escape(label)} per trial · [green]best so far[/] · x: trial number")
        self.refresh()

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        xs, ys = thin_points(self.xs, self.ys, cols, rows, keep=200)
        bx, by = self.best
        plt.plot(bx, by, color="green", marker="braille")
        plt.scatter(xs, ys, marker="•", color="cyan")
        plt.xticks(integer_ticks(min(self.xs), max(self.xs), max(2, cols // 12)))


class ParetoChart(Chart):
    """Accuracy against latency for every succeeded trial, the Pareto front as a line."""

    empty_text = "Pareto front: latency not measured for this job"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.points: tuple[list[float], list[float]] = ([], [])
        self.front: tuple[list[float], list[float]] = ([], [])
        self.x_label = "latency_ms"
        self.y_label = "accuracy"

    def set_data(self, points: tuple[list[float], list[float]], front: tuple[list[float], list[float]],
                 x_label: str = "latency_ms", y_label: str = "accuracy", total: int | None = None) -> None:
        """`points` may be a sample of `total` points (the front all in it): the title then says so."""
        self.points, self.front, self.x_label, self.y_label = points, front, x_label, y_label
        self.has_data = bool(points[0])
        shown = len(points[0])
        sample = f" · {shown:,} of {total:,} shown" if total is not None and total > shown else ""
        self.set_title(f"[green]◆ Pareto front[/] · {escape(y_label)} against {escape(x_label)}{sample}"
                       if self.has_data else "Pareto front")
        self.refresh()

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        xs, ys = thin_points(self.points[0], self.points[1], cols, rows, keep=200)
        plt.scatter(xs, ys, marker="•", color="cyan")
        if self.front[0]:
            plt.plot(self.front[0], self.front[1], marker="braille", color="green")
            plt.scatter(self.front[0], self.front[1], marker="◆", color="green")


class LearningCurve(Chart):
    """A trial's intermediate reports: one line per metric (the reward metric first)."""

    empty_text = "learning curve: no intermediate reports"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, tuple[list[float], list[float]]] = {}

    def set_data(self, series: dict[str, tuple[list[float], list[float]]]) -> None:
        self.series = series
        self.has_data = any(xs for xs, _ in series.values())
        names = [escape(name) for name in list(series)[:2]]
        title = "learning curve"
        if names:
            title = f"[green]{names[0]}[/]" + (f" · [cyan]{names[1]}[/] (right axis)" if len(names) > 1 else "")
            title += " by step"
        self.set_title(title)
        self.refresh()

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        colors = ["green", "cyan"]
        steps: list[float] = []
        for i, (xs, ys) in enumerate(list(self.series.values())[:2]):
            finite = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
            if not finite:
                continue
            steps += [p[0] for p in finite]
            plt.plot([p[0] for p in finite], [p[1] for p in finite], marker="braille", color=colors[i],
                     yside="left" if i == 0 else "right")
        if steps:
            plt.xticks(integer_ticks(min(steps), max(steps), max(2, cols // 12)))


class SeriesChart(Chart):
    """Named series, each a line (or points) in its own colour, named in the title: the copies of a proxy
    variance run, the selected models of a proxy select run, a proxy search's correlation per candidate."""

    COLORS = ("green", "cyan", "magenta", "yellow", "blue", "red", "white")

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.points = False

    def set_data(self, series: dict[str, tuple[list[float], list[float]]], title: str, points: bool = False,
                 empty: str = "no data yet") -> None:
        self.series, self.points, self.empty_text = series, points, empty
        self.has_data = any(xs for xs, _ in series.values())
        names = [f"[{self.COLORS[i % len(self.COLORS)]}]{escape(name)}[/]" for i, name in enumerate(series)]
        shown = " · ".join(names[:4]) + (f" · +{len(names) - 4} more" if len(names) > 4 else "")
        self.set_title(f"{escape(title)}: {shown}" if names else escape(title))
        self.refresh()

    def draw(self, plt: Any, cols: int, rows: int) -> None:
        for i, (xs, ys) in enumerate(self.series.values()):
            color = self.COLORS[i % len(self.COLORS)]
            pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and not math.isnan(y)]
            if not pairs:
                continue
            px, py = [p[0] for p in pairs], [p[1] for p in pairs]
            if self.points:
                plt.scatter(px, py, marker="•", color=color)
            else:
                plt.plot(px, py, marker="braille", color=color)


# ---- dialogs -----------------------------------------------------------------------------------------

class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; y or enter answers yes, n or escape no."""

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen > Grid {
        grid-size: 2; grid-gutter: 1 2; grid-rows: auto 3; width: 60; height: auto;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    ConfirmScreen Label { column-span: 2; width: 1fr; }
    ConfirmScreen Button { width: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Grid():
            yield Label(self.question)
            yield Button("Yes (y)", variant="error", id="yes")
            yield Button("No (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """One line of input; enter answers, escape cancels."""

    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Horizontal {
        width: 60; height: auto; border: thick $primary; background: $surface; padding: 1 2;
        layout: vertical;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", restrict: str | None = None) -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.restrict = restrict

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Label(self.question)
            yield Input(self.value, restrict=self.restrict, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChoiceScreen(ModalScreen[list[str] | None]):
    """Tick any of a list of names (space or a click ticks one); enter answers with the ticked ones in the
    list's order, escape cancels."""

    DEFAULT_CSS = """
    ChoiceScreen { align: center middle; }
    ChoiceScreen > Vertical {
        width: 60; max-height: 80%; height: auto; border: thick $primary; background: $surface; padding: 0 1;
    }
    ChoiceScreen SelectionList { height: auto; max-height: 16; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("enter", "answer", "Done", priority=True),
    ]

    def __init__(self, question: str, names: list[str], ticked: list[str]) -> None:
        super().__init__()
        self.question = question
        self.names = names
        self.ticked = set(ticked)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{escape(self.question)} [dim](space ticks, enter: done, escape: cancel)[/dim]")
            yield SelectionList[str](*[(escape(name), name, name in self.ticked) for name in self.names])

    def action_answer(self) -> None:
        chosen = set(self.query_one(SelectionList).selected)
        self.dismiss([name for name in self.names if name in chosen])

    def action_cancel(self) -> None:
        self.dismiss(None)
