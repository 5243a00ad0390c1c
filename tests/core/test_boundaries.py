"""The boundary the import contracts cannot write with wildcards alone: every module of a domain other than its
pages (``<domain>.ui``) and routers (``<domain>.api``, ``<domain>.deps``) — a service under any name, written
tomorrow — imports no web framework, not even through another module, so the worker and the services run and
are tested without one."""

from __future__ import annotations

import grimp

WEB = ("fastapi", "nicegui", "starlette")
# the HTTP mechanics every router shares
PLATFORM_WEB = {"kehu.core.http", "kehu.core.input_guard", "kehu.core.openapi"}


def test_only_pages_and_routers_reach_a_web_framework():
    graph = grimp.build_graph("kehu", include_external_packages=True)
    checked, offending = 0, []
    for module in sorted(graph.modules):
        parts = module.split(".")
        if parts[0] != "kehu" or len(parts) < 2 or parts[1] in ("ui", "app", "cli", "demo") or module == "kehu":
            continue
        if parts[1] == "core":
            if module in PLATFORM_WEB:
                continue
        elif len(parts) < 3 or parts[2] in ("ui", "api", "deps"):
            continue
        checked += 1
        for framework in WEB:
            chain = graph.find_shortest_chain(importer=module, imported=framework)
            if chain:
                offending.append(" → ".join(chain))
    assert checked >= 55  # the walk sees the services it is meant to check
    assert offending == []
