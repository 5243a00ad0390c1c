"""Every job kind the code enqueues has a handler, and every domain event kind it publishes is declared: found by
reading the code, so a call written tomorrow is checked the day it is written (a job nobody handles fails only
when a worker claims it, in production)."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kehu
import kehu.app  # every domain registers its handlers, pollers and event kinds on import
from kehu.core import events, jobs

ROOT = Path(kehu.__file__).parent


def calls_of(function: str) -> Iterator[tuple[str, ast.Call]]:
    """(module, call) for each call of ``function`` (``jobs.enqueue(...)`` or ``enqueue(...)``) under kehu/."""
    for path in sorted(ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and function in (getattr(node.func, "attr", None),
                                                             getattr(node.func, "id", None)):
                yield module, node


def value_of(module: str, node: ast.expr) -> Any:
    """A string literal, or the module-level constant (or imported name) the call names."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return getattr(importlib.import_module(module), node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return getattr(getattr(importlib.import_module(module), node.value.id), node.attr)
    raise AssertionError(f"{module}: a kind computed at run time ({ast.unparse(node)}) cannot be checked here")


def test_every_enqueued_job_kind_has_a_handler():
    kinds = {}
    for module, call in calls_of("enqueue"):
        if module == "kehu.core.jobs":
            continue
        kind = next((k.value for k in call.keywords if k.arg == "kind"), None)
        assert kind is not None, f"{module}: enqueue without kind="
        kinds[value_of(module, kind)] = module
    assert len(kinds) >= 8, kinds  # the scan sees the code it is meant to check
    unhandled = {kind: module for kind, module in kinds.items() if jobs.handler_for(kind) is None}
    assert unhandled == {}


def test_every_published_event_kind_is_declared_and_every_consumer_reads_declared_kinds():
    published = {}
    for module, call in calls_of("publish"):
        if module == "kehu.core.events" or len(call.args) < 2:
            continue
        kind = value_of(module, call.args[1])
        published[getattr(kind, "name", kind)] = module
    assert {kind: module for kind, module in published.items() if kind not in events.declared()} == {}
    consumers = events.subscriptions()
    assert "sales.lead_rules" in consumers  # the scan and the registry see the domains' code
    assert {"cdp.profile_merged", "cdp.merge_undone"} <= published.keys()
    for name, subscription in consumers.items():
        assert subscription.kinds <= events.declared().keys(), name
        assert subscription.kinds or subscription.stream is not None or subscription.selects, f"{name} reads nothing"
