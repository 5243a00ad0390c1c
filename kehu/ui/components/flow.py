"""The flow canvas: a graph of nodes and the ways between them, drawn in the browser with Vue Flow (served with
kehu from kehu/ui/vendor/vue-flow, no CDN) — zoom and pan, a palette to drag nodes from, connections drawn from a
node's ways, selection, Delete and Ctrl+Z. The page on the server holds the graph: the canvas reports each thing
the user does as an event, and the page answers by setting the graph again (``show``). Journeys draw with it.

A node as the canvas takes it: ``id``, ``type``, ``icon``, ``kind`` (the type in the reader's words), ``label``,
``summary``, ``counts`` (text, or empty), ``problems`` (texts), ``ways`` (``[{id, label}]``: where connections
leave from; one way, ``out``, for a plain node; none for an end), ``enterable`` (takes connections in),
``position`` (``{x, y}``), ``selected`` and, optionally, ``mark`` and ``markIcon`` (a note in its head:
"locked"). An edge: ``from``, ``way``, ``to``, ``label``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nicegui import ui

HERE = Path(__file__).parent
VENDOR = HERE.parent / "vendor" / "vue-flow"
OUT = "out"  # the one way on from a node that has no named ways


class FlowCanvas(ui.element, component="flow.js",
                 esm={"@vue-flow/core": str(VENDOR / "core"), "@vue-flow/background": str(VENDOR / "background"),
                      "@vue-flow/controls": str(VENDOR / "controls")}):
    def __init__(self, *, graph: dict[str, Any], palette: list[dict[str, str]], editable: bool,
                 texts: dict[str, str], structure: bool = True) -> None:
        """``structure``: nodes may be connected (False: their settings change, the drawing stays — a journey
        made of a template)."""
        super().__init__()
        # Vue Flow's module build asks process.env.NODE_ENV, as bundlers replace it; a browser has no process
        ui.add_head_html('<script>window.process = window.process || {env: {NODE_ENV: "production"}};</script>')
        ui.add_css((VENDOR / "vue-flow.css").read_text(encoding="utf-8"))
        ui.add_css((HERE / "flow.css").read_text(encoding="utf-8"))
        self._props["graph"] = graph
        self._props["palette"] = palette
        self._props["editable"] = editable
        self._props["structure"] = structure
        self._props["texts"] = texts

    def show(self, graph: dict[str, Any]) -> None:
        """Draw the graph as it now is."""
        self._props["graph"] = graph
        self.update()

    def fit(self) -> None:
        self.run_method("fit")
