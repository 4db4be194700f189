"""The statistics' charts, drawn on the server by pygal as SVG and shown as images (an SVG
shown as an image runs no script, and the page's Content-Security-Policy keeps forbidding
inline styles). Each chart stands beside its table of numbers, which is what screen
readers and the CSV give; the image is for the eye.

Issue 32: the hand-drawn charts cut their values ("0,0"), let labels run into values and
labelled a full bar "0,0 %"; pygal places labels and values so they do not overlap, which
a browser test checks for every chart."""
from __future__ import annotations

import base64

# The site's green on white, its type, large enough to read.
_STYLE = dict(background="white", plot_background="white", foreground="#0b0c0c",
              foreground_strong="#0b0c0c", foreground_subtle="#505a5f", colors=("#1d5e20",),
              font_family="system-ui, sans-serif", label_font_size=14,
              major_label_font_size=14, value_font_size=14, value_label_font_size=14,
              tooltip_font_size=14, title_font_size=15, opacity=".95", opacity_hover=".95")
WIDTH = 520  # drawn for a phone's width; a wider screen scales it up


def _whole_numbers(values) -> list[int]:
    """Marks for counts: whole numbers, at most five (0, 0.4, 0.8 ... were written 0, 0, 0)."""
    top = max([int(v) for v in values] + [1])
    step = max(1, -(-top // 4))
    return list(range(0, top + step, step))


def _config(**extra) -> dict:
    from pygal.style import Style
    return dict(style=Style(**_STYLE), js=[], show_legend=False, disable_xml_declaration=True,
                explicit_size=False, margin=12, truncate_label=-1, truncate_legend=-1,
                **extra)


def _image(chart) -> str:
    svg = chart.render(is_unicode=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def columns(rows, label=None) -> str:
    """Loans per day or week as columns; about five of the days or weeks named below."""
    import pygal
    names = [str(label(row[0]) if label else row[0]) for row in rows]
    chart = pygal.Bar(**_config(width=WIDTH, height=280, print_values=False,
                                show_minor_x_labels=False, x_label_rotation=0,
                                y_labels=_whole_numbers(row[1] for row in rows)))
    chart.x_labels = names
    chart.x_labels_major = names[::max(1, len(names) // 5)] if names else []
    chart.add("", [row[1] for row in rows])
    return _image(chart)


def bars(rows, value_index: int = 1, formatter=None, whole=None) -> str:
    """One bar per row, its value written at its end. ``whole``: what a full bar stands
    for (1 for shares); ``formatter``: how a value is written (a share as a percentage)."""
    import pygal
    written = formatter or _count
    # Few marks on the value axis, so their words never meet ("90,0 %" ran into "100,0 %");
    # a bar of nothing gets no value (at the axis it ran into the row's name; the table
    # beside the chart says 0).
    marks = ([whole * n / 4 for n in range(5)] if whole
             else _whole_numbers(row[value_index] for row in rows))
    config = _config(width=WIDTH, height=70 + 34 * max(len(rows), 1), print_values=True,
                     print_values_position="top",
                     value_formatter=lambda value: written(value) if value else "",
                     y_labels=marks)
    if whole:
        config["range"] = (0, whole)
    chart = pygal.HorizontalBar(**config)
    # pygal stacks horizontal bars from the bottom: reversed, the first row is on top, as in
    # the table beside it.
    chart.x_labels = [str(row[0]) for row in reversed(rows)]
    chart.add("", [row[value_index] for row in reversed(rows)])
    return _image(chart)


def _count(value) -> str:
    return str(int(value))


def register(app) -> None:
    app.jinja_env.globals.update(chart_columns=columns, chart_bars=bars)
