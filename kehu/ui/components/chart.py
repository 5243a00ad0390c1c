"""Charts: ECharts' options, drawn once ECharts has loaded (kehu/ui/components/chart.js), so that a page shows its
figures without waiting for the chart library first. Options as ECharts documents them; a key written ``:name``
holds a JavaScript function's source (``":formatter": "v => v + '万'"``)."""

from __future__ import annotations

from typing import Any

from nicegui import ui


class Chart(ui.element, component="chart.js"):
    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__()
        self._props["options"] = options


def chart(options: dict[str, Any]) -> Chart:
    """A chart of ``options`` (sized with classes, e.g. ``h-72 w-full``)."""
    return Chart(options)
