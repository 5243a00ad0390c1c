"""The domain manifests are complete: what a domain's code registers, serves or declares is named in its manifest,
so the app, the shell, the worker, the role editor and Alembic (which loop over kehu/domains.py) miss nothing, and
a new domain is found the day it is written."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import kehu
from kehu.core import events
from kehu.core.domains import Domain, NavEntry, load
from kehu.domains import COMING, COMING_ENTITIES, DOMAINS
from kehu.tenancy.access import entities, permissions

ROOT = Path(kehu.__file__).parent
NOT_DOMAINS = {"core", "ui", "demo"}
# what a module does on import that only happens if something imports it
REGISTERS = re.compile(r"^@(jobs\.)?(job_handler|poller)\b|^@events\.subscribe\(", re.M)


def by_name() -> dict[str, Domain]:
    return {domain.name: domain for domain in DOMAINS}


def test_every_domain_folder_is_in_the_list_of_domains():
    folders = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - NOT_DOMAINS
    assert folders == set(by_name())
    for domain in DOMAINS:  # its models, routers, pages and the rest load
        for reference in (domain.models or "", *domain.services, *domain.routers, *domain.pages,
                          *domain.customer_panels, *domain.selection_actions, *domain.inquiry_actions,
                          *domain.timeline_streams, *domain.read_through, *(f for _, f in domain.export_filters),
                          *(size for _, size in domain.body_limits)):
            if reference:
                assert reference.startswith(f"kehu.{domain.name}."), (domain.name, reference)
                assert load(reference) is not None


def test_every_module_that_registers_on_import_is_a_service_of_its_domain():
    found = 0
    for domain in DOMAINS:
        registering = set()
        for path in (ROOT / domain.name).rglob("*.py"):
            if REGISTERS.search(path.read_text(encoding="utf-8")):
                registering.add(".".join(path.relative_to(ROOT.parent).with_suffix("").parts))
        assert registering <= set(domain.services), (domain.name, sorted(registering - set(domain.services)))
        found += len(registering)
    assert found >= 11  # the scan sees the code it checks


def test_every_router_is_mounted():
    declared = {reference for domain in DOMAINS for reference in domain.routers}
    for path in ROOT.glob("*/api.py"):
        module = f"kehu.{path.parent.name}.api"
        names = re.findall(r"^(\w+) = APIRouter\(", path.read_text(encoding="utf-8"), re.M)
        assert names, module
        assert {f"{module}:{name}" for name in names} <= declared, module


def test_the_worker_loads_every_handler_without_the_web_framework():
    """The worker imports the manifests' services only: the same job handlers, pollers and subscriptions as the
    whole app, and no page or web framework."""
    probe = textwrap.dedent("""
        import json, sys
        from kehu.core.domains import load_all
        from kehu.domains import DOMAINS
        for domain in DOMAINS:
            load_all(domain.services)
        from kehu.core import events, jobs
        print(json.dumps({
            "handlers": sorted(jobs._HANDLERS),
            "pollers": sorted(f"{p.__module__}.{p.__qualname__}" for p in jobs._POLLERS),
            "consumers": sorted(events.subscriptions()),
            "web": sorted(m for m in ("nicegui", "fastapi", "starlette") if m in sys.modules)}))
    """)
    import json

    alone = json.loads(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                                      cwd=ROOT.parent).stdout)
    import kehu.app  # noqa: F401 - everything, pages included
    from kehu.core import jobs

    def ours(names: Iterable[str]) -> list[str]:  # other tests register their own in this process
        return sorted(name for name in names if not name.startswith(("test", "tests.")))

    assert alone["web"] == []
    assert len(alone["handlers"]) >= 8 and alone["consumers"]
    assert alone["handlers"] == ours(jobs._HANDLERS)
    assert alone["pollers"] == ours(f"{p.__module__}.{p.__qualname__}" for p in jobs._POLLERS)
    assert alone["consumers"] == ours(events.subscriptions())


def test_every_entity_a_role_grants_belongs_to_one_domain():
    claimed = [entity for domain in DOMAINS for entity in domain.entities] + list(COMING_ENTITIES)
    assert sorted(claimed) == sorted(set(claimed)), "an entity claimed twice"
    assert entities() == tuple(claimed)  # what the role editor offers is what the domains declare


def test_a_domains_permission_is_offered_by_the_role_editor(client, tree, login):  # type: ignore[no-untyped-def]
    """The role editor's catalogue comes from the manifests: channels' approval permission is there because
    channels declares it, tenancy's own beside it; each once."""
    declared = [p for domain in DOMAINS for p in domain.permissions]
    assert sorted(declared) == sorted(set(declared)) and {"pii.read", "messages.approve"} <= set(declared)
    assert permissions() == tuple(declared)
    catalogue = client.get("/api/v1/roles/catalogue", headers=login("admin@example.com")).json()
    assert catalogue["permissions"] == list(declared) and catalogue["entities"] == list(entities())


def test_each_domain_declares_the_event_kinds_it_publishes():
    for domain in DOMAINS:
        mine = {name for name in events.declared() if name.startswith(f"{domain.name}.")}
        assert mine == {kind.name for kind in domain.events}, domain.name


def test_every_page_in_the_navigation_exists():
    registered = set()
    for path in ROOT.rglob("*.py"):
        registered |= set(re.findall(r'\bpage\("([^"]+)"\)', path.read_text(encoding="utf-8")))
    entries: list[NavEntry] = [entry for domain in DOMAINS for entry in domain.navigation]
    assert {entry.path for entry in entries} <= registered
    assert not {entry.path for entry, _ in COMING} & registered  # a coming page becomes its domain's own
    assert len({entry.path for entry in entries} | {entry.path for entry, _ in COMING}) == len(entries) + len(COMING)


# a module-level statement filling another module's collection (``timeline.STREAMS[...] = …``, ``x.HOOKS.append``)
FILLS_ANOTHERS = re.compile(r"^[a-z_][\w.]*\.[A-Z][A-Z_]*(\.append\(|\.add\(|\.update\(|\[[^\]\n]+\]\s*=)"
                            r"|^(?!app\.)[a-z_][\w.]*\.(add|register)_\w*\(", re.M)  # app.add_typer: the CLI's own


def test_no_module_fills_another_modules_registry_on_import():
    """What a domain adds to one below it is named in its manifest (read through ``contributed``), never pushed
    into a list that is complete only if the right modules happen to be imported."""
    filling = [str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py")
               if FILLS_ANOTHERS.search(path.read_text(encoding="utf-8"))]
    assert filling == []
    assert FILLS_ANOTHERS.search('exports.FILTER_PROVIDERS["segment_id"] = members_filter\n')  # it sees them
    assert FILLS_ANOTHERS.search("cdp_service.READ_THROUGH.append(reads)\n")
    assert FILLS_ANOTHERS.search("timeline.add_stream(stream)\n")


def test_the_cdp_finds_what_the_domains_above_add_to_it():
    from kehu.cdp import exports, timeline
    from kehu.core.domains import contributed

    assert {"lead", "opportunity", "activity", "message", "segment"} <= set(timeline.streams())
    assert set(exports.filter_providers()) == {"segment_id"}
    assert [f.__name__ for f in contributed("read_through")] == ["reads_through_lead"]


def test_a_long_module_says_why_at_its_top():
    """No Python file above ~600 lines without a reason written at its top (its docstring says "Over N lines")."""
    unexplained = []
    for path in ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 600 and not re.search(r"Over \d+ lines", text[:3000]):
            unexplained.append(str(path.relative_to(ROOT)))
    assert unexplained == []
