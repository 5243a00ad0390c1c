"""Domain manifests: what each domain brings to the application, declared in one place (its ``manifest.py``), and
the one list of domains (``kehu/domains.py``) that the app, the web UI's shell, the worker and Alembic loop over
(the role editor's entities are checked against it). Adding a domain is a new folder with a manifest and one line
in that list.

A manifest names its parts as ``"module:attribute"`` (or a module) rather than importing them: the worker loads a
domain's services without its pages and the web framework, and the shell mounts the pages without importing them
(the domains' pages import the shell, never the other way round). ``load`` imports what a reference names.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any

from kehu.core.events import EventKind

SECTIONS = ("work", "marketing", "admin")  # the navigation's sections, in the order they are shown


@dataclass(frozen=True)
class NavEntry:
    """One entry of the navigation: its label's message key, a Material icon, the page's path, what the viewer
    needs to see it (an entity, ``entity.privilege[@depth]`` or a permission; None: everyone signed in; see
    ``kehu.ui.shell.may_see``), the section and the place within it (lower first)."""

    label: str
    icon: str
    path: str
    need: str | None
    section: str
    order: int


@dataclass(frozen=True)
class Domain:
    """What one domain brings. Every reference is ``"module:attribute"`` (a module alone for ``models`` and
    ``services``, imported for what registering on import does: tables, job handlers, pollers, event
    subscriptions, the extension points of the domains below)."""

    name: str
    models: str | None = None  # its tables
    services: tuple[str, ...] = ()  # imported by the app and the worker: job handlers, pollers, subscriptions
    events: tuple[EventKind, ...] = ()  # the kinds of domain event it publishes
    entities: tuple[str, ...] = ()  # the entities a role grants privileges on (``role_vocabulary``)
    permissions: tuple[str, ...] = ()  # permissions that are not about rows (``messages.approve``)
    routers: tuple[str, ...] = ()  # FastAPI routers
    body_limits: tuple[tuple[str, str], ...] = ()  # (path prefix, "module:BYTES"): larger bodies than the default
    pages: tuple[str, ...] = ()  # functions that register its pages (``page(path)(fn)``), called by the shell
    navigation: tuple[NavEntry, ...] = ()
    customer_panels: tuple[str, ...] = ()  # fn(principal, profile_id): a panel in the Customer 360's side column
    selection_actions: tuple[str, ...] = ()  # fn(principal, picked, clear): buttons for customers picked in a list
    inquiry_actions: tuple[str, ...] = ()  # fn(principal, held): what to offer when a new customer already exists
    calendar_entries: tuple[str, ...] = ()  # fn(principal, start, end, unit_id): its part of the campaign calendar
    # What it adds to the CDP's extension points (read through ``contributed`` when first needed):
    timeline_streams: tuple[str, ...] = ()  # a cdp.timeline.TimelineStream: its entries on the customer's timeline
    read_through: tuple[str, ...] = ()  # fn(session, principal, profile_id) -> bool: a row of the reader's reaches
    export_filters: tuple[tuple[str, str], ...] = ()  # (key, fn(session, principal, value)): a filter of exports

    def __post_init__(self) -> None:
        for entry in self.navigation:
            if entry.section not in SECTIONS:
                raise ValueError(f"{self.name}: navigation section {entry.section!r} is not one of {SECTIONS}")
        for kind in self.events:
            if not kind.name.startswith(f"{self.name}."):
                raise ValueError(f"{self.name} declares {kind.name}, another domain's kind of event")


def load(reference: str) -> Any:
    """What ``"module:attribute"`` names (the module itself without an attribute)."""
    module, _, attribute = reference.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


# The module that lists the installed domains (DOMAINS) and the entities of those still to come (COMING_ENTITIES):
# the application's composition root, named rather than imported, since it imports every domain and this module
# is below them all.
COMPOSITION = "kehu.domains"


@functools.cache
def role_vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a role can grant: the entities (each domain's, then those to come) and the permissions the installed
    domains declare, in the order of the domains. Read on first use, when every domain is importable."""
    root = importlib.import_module(COMPOSITION)
    entities = [entity for domain in root.DOMAINS for entity in domain.entities] + list(root.COMING_ENTITIES)
    permissions = [permission for domain in root.DOMAINS for permission in domain.permissions]
    return tuple(dict.fromkeys(entities)), tuple(dict.fromkeys(permissions))


@functools.cache
def contributed(part: str) -> tuple[Any, ...]:
    """What the installed domains add to an extension point of a domain below them — ``part`` is the field of
    ``Domain`` (``timeline_streams``, ``read_through``, ``export_filters``: a (key, thing) pair each) — loaded on
    first use, in the order of the domains. The CDP asks for them here instead of keeping lists that the domains
    above fill when they happen to be imported."""
    root = importlib.import_module(COMPOSITION)
    found: list[Any] = []
    for domain in root.DOMAINS:
        for reference in getattr(domain, part):
            found.append((reference[0], load(reference[1])) if isinstance(reference, tuple) else load(reference))
    return tuple(found)


def load_all(references: tuple[str, ...] | list[str]) -> list[Any]:
    return [load(reference) for reference in references]


def navigation(domains: list[Domain]) -> list[tuple[str, list[NavEntry]]]:
    """The navigation's sections, each with its entries in order (sections without any are left out)."""
    entries = [entry for domain in domains for entry in domain.navigation]
    sections = [(section, sorted((e for e in entries if e.section == section), key=lambda e: (e.order, e.path)))
                for section in SECTIONS]
    return [(section, items) for section, items in sections if items]
