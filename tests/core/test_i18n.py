"""Every user-facing string goes through the catalogue, in both languages."""

from __future__ import annotations

import re
from pathlib import Path

from kehu.core.i18n import catalogue, catalogue_files, t
from kehu.tenancy.access import DEPTHS, PRIVILEGES, entities, permissions

PACKAGE = Path(__file__).resolve().parents[2] / "kehu"
LITERAL_KEY = re.compile(r"""\b(?:tr?|frame)\(\s*["']([a-z_]+(?:\.[a-z0-9_]+)+)["']""")


def test_both_catalogues_have_the_same_keys_and_no_empty_text():
    zh, en = catalogue("zh"), catalogue("en")
    assert set(zh) == set(en)
    assert all(v.strip() for v in [*zh.values(), *en.values()])


def test_each_domain_brings_its_own_messages_in_both_languages():
    """kehu/<domain>/locales/{zh,en}.json: found by folder (a new domain's are read the day it is written), the
    same keys in both of a domain's files, each key in one domain's file only (the loader refuses a repeat)."""
    import json

    folders = {path.parent.parent.name for path in catalogue_files("zh")}
    assert {"core", "tenancy", "cdp", "segments", "sales"} <= folders
    assert folders == {path.parent.parent.name for path in catalogue_files("en")}
    for zh_path in catalogue_files("zh"):
        en_path = zh_path.with_name("en.json")
        assert set(json.loads(zh_path.read_text("utf-8"))) == set(json.loads(en_path.read_text("utf-8"))), zh_path
    sales = json.loads((PACKAGE / "sales" / "locales" / "zh.json").read_text("utf-8"))
    assert "leads.new" in sales and "nav.leads" not in sales  # a domain's words in its file, the shell's in core's


def test_every_literal_key_used_in_the_code_is_in_the_catalogue():
    used = {m.group(1) for path in PACKAGE.rglob("*.py") for m in LITERAL_KEY.finditer(path.read_text("utf-8"))}
    assert used, "the scan found no keys: the pattern is broken"
    missing = sorted(k for k in used if k not in catalogue("zh"))
    assert missing == []


def test_navigation_and_generated_keys_exist():
    from kehu.core.domains import SECTIONS
    from kehu.domains import COMING, DOMAINS

    keys = {f"nav.section.{s}" for s in SECTIONS} | {e.label for d in DOMAINS for e in d.navigation}
    keys |= {entry.label for entry, _ in COMING} | {text for _, text in COMING}
    keys |= {f"depth.{d}" for d in DEPTHS} | {f"privilege.{p}" for p in PRIVILEGES}
    keys |= {f"entity.{e}" for e in entities()} | {f"permission.{p}" for p in permissions()}
    keys |= {f"unit.kind.{k}" for k in ("hq", "region", "dealer", "team")}
    from kehu.cdp.identity import LIFECYCLE_STAGES
    from kehu.cdp.identity_rules import DEFAULT_RULES

    keys |= {f"stage.{s}" for s in LIFECYCLE_STAGES} | {f"identity.{r.kind}" for r in DEFAULT_RULES}
    keys |= {f"source.kind.{k}" for k in ("web", "app", "server", "import")}
    keys |= {f"merge.reason.{r}" for r in ("identity", "manual", "dedupe")}
    from kehu.cdp.imports import STANDARD_FIELDS

    keys |= {f"field.{f}" for f in STANDARD_FIELDS}
    from kehu.cdp.relations import ACCOUNT_KINDS, CHANNELS, PURPOSES

    keys |= {f"channel.{c}" for c in CHANNELS} | {f"purpose.{p}" for p in PURPOSES}
    keys |= {f"account.kind.{k}" for k in ACCOUNT_KINDS}
    from kehu.cdp.commerce import STATUSES

    keys |= {f"order.status.{s}" for s in STATUSES}
    from kehu.cdp.fields import TYPES

    keys |= {f"fields.type.{t}" for t in TYPES}
    keys |= {f"imports.status.{s}" for s in ("uploaded", "queued", "running", "done", "failed")}
    from kehu.segments.conditions import OPERATORS
    from kehu.segments.conditions import STANDARD_FIELDS as SEGMENT_FIELDS
    from kehu.segments.ui import RULE_TYPES, STATUS_COLOURS

    keys |= {f"segments.field.{f}" for f in SEGMENT_FIELDS} | {f"segments.rule.{r}" for r in RULE_TYPES}
    keys |= {f"segments.op.{o}" for ops in OPERATORS.values() for o in ops}
    keys |= {f"segments.op.{o}" for o in ("did", "did_not", "granted", "not_granted", "has", "lacks", "within",
                                          "not_within")}
    keys |= {f"segments.status.{s}" for s in STATUS_COLOURS} | {f"segments.kind.{k}" for k in ("dynamic", "static")}
    keys |= {f"segments.measure.{m}" for m in ("count", "total", "last_ordered_at")}
    from kehu.segments.rfm import CLASSES
    from kehu.segments.ui import COLOURS

    keys |= {f"tags.colour.{c}" for c in COLOURS} | {f"rfm.class.{c}" for c in CLASSES.values()}
    from kehu.channels.control import SKIP_REASONS
    from kehu.channels.models import CHANNELS as MESSAGE_CHANNELS
    from kehu.channels.models import PROVIDERS, PURPOSES
    from kehu.channels.service import REQUIRED
    from kehu.channels.ui import broadcasts, outbox, settings

    keys |= {f"channels.bc.status.{s}" for s in broadcasts.STATUS_COLOURS}
    keys |= {f"channels.status.{s}" for s in outbox.STATUS_COLOURS}
    keys |= {f"channels.channel.{c}" for c in MESSAGE_CHANNELS}
    keys |= {f"channels.skip.{r}" for r in SKIP_REASONS} | {f"channels.skip.why.{r}" for r in SKIP_REASONS}
    keys |= {f"channels.outbox.provider.{p}" for ps in PROVIDERS.values() for p in ps}
    keys |= {f"channels.settings.field.{f}" for config, secrets in REQUIRED.values() for f in (*config, *secrets)}
    keys |= {f"channels.settings.field.{f}" for fs in (*settings.OPTIONAL.values(), *settings.SECRETS.values())
             for f in fs}
    keys |= {f"channels.calendar.weekday.{d}" for d in range(7)} | {f"channels.tpl.purpose.{p}" for p in PURPOSES}
    assert sorted(k for k in keys if k not in catalogue("zh")) == []


def test_chinese_is_the_default_and_params_are_filled():
    assert t("nav.users") == "用户"
    assert t("nav.users", "en-GB") == "Users"
    assert t("units.staff", "en", count=3) == "Staff (3)"
    assert t("no.such.key", "en", default="fallback") == "fallback"


def test_a_key_defined_in_two_domains_is_refused(tmp_path, monkeypatch):
    import pytest

    from kehu.core import i18n

    for domain, text in (("one", "一"), ("two", "二")):
        (tmp_path / domain / "locales").mkdir(parents=True)
        (tmp_path / domain / "locales" / "zh.json").write_text(f'{{"shared.key": "{text}"}}', "utf-8")
    monkeypatch.setattr(i18n, "_PACKAGE", tmp_path)
    i18n.catalogue.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"shared\.key"):
            i18n.catalogue("zh")
    finally:
        monkeypatch.undo()
        i18n.catalogue.cache_clear()
