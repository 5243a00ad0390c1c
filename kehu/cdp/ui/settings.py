"""The CDP's settings pages: the product catalogue, custom fields and the identity rules."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import commerce, fields, identity_rules, schemas
from kehu.core.i18n import t
from kehu.ui.components import localise_table
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


# -- product catalogue -----------------------------------------------------------------------------
def products_page() -> None:
    with frame("nav.products", "/admin/products", "settings.manage") as principal:
        ui.label(tr("products.help")).classes("text-grey-7")
        filters: dict[str, Any] = {"kind": None}
        manage = principal.has("settings.manage")

        @ui.refreshable
        def product_table() -> None:
            with unit_of_work() as session:
                rows = [{"id": p.id, "sku": p.sku, "name": p.name, "kind": tr(f"products.kind.{p.kind}"),
                         "kind_code": p.kind,
                         "price": float(p.price) if p.price is not None else None,
                         "price_text": f"¥{p.price:,.2f}" if p.price is not None else "—",
                         "active": tr("common.yes") if p.is_active else tr("common.no"), "is_active": p.is_active}
                        for p in commerce.list_products(session, principal, kind=filters["kind"])]
            if not rows:
                empty_state("inventory_2", tr("products.empty_title"), tr("products.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "sku", "label": tr("products.sku"), "field": "sku", "align": "left", "sortable": True},
                {"name": "name", "label": tr("products.name"), "field": "name", "align": "left", "sortable": True},
                {"name": "kind", "label": tr("products.kind"), "field": "kind", "align": "left", "sortable": True},
                {"name": "price", "label": tr("products.price"), "field": "price", "sortable": True,
                 ":format": "(v, row) => row.price_text"},
                {"name": "active", "label": tr("products.active"), "field": "active", "align": "left"},
            ], rows=rows, row_key="id", pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            if manage:
                table.on("rowClick", lambda e: edit(e.args[1]))

        def edit(row: dict[str, Any] | None) -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("products.edit") if row else tr("products.new")).classes("text-lg font-medium")
                sku = ui.input(tr("products.sku"), value=row["sku"] if row else "").classes("w-full")
                if row:
                    sku.disable()
                name = ui.input(tr("products.name"), value=row["name"] if row else "").classes("w-full")
                kind = ui.select({k: tr(f"products.kind.{k}") for k in commerce.PRODUCT_KINDS},
                                 value=row["kind_code"] if row else "vehicle_model",
                                 label=tr("products.kind")).classes("w-full")
                price = ui.number(tr("products.price"), value=row["price"] if row else None, min=0, format="%.2f",
                                  prefix="¥").classes("w-full")
                active = ui.switch(tr("products.active"), value=row["is_active"] if row else True)

                def save() -> None:
                    amount = None if price.value in (None, "") else f"{float(price.value):.2f}"
                    if row:
                        done = validated(lambda: run_action(lambda s: commerce.update_product(
                            s, principal, row["id"], schemas.ProductUpdate(
                                name=name.value or "", kind=kind.value, price=amount, is_active=active.value,
                            ).model_dump(exclude_unset=True)), tr("done.product_saved", name=name.value or "")))
                    else:
                        done = validated(lambda: run_action(lambda s: commerce.create_product(
                            s, principal, schemas.ProductCreate(
                                sku=(sku.value or "").strip(), name=name.value or "", kind=kind.value, price=amount,
                                is_active=active.value).model_dump()),
                            tr("done.product_created", name=name.value or "")))
                    if done is not None:
                        dialog.close()
                        product_table.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save)
            dialog.open()

        def pick(kind: str | None) -> None:
            filters["kind"] = kind
            product_table.refresh()

        with ui.row().classes("w-full items-center gap-3"):
            ui.select({None: tr("customers.all"), **{k: tr(f"products.kind.{k}") for k in commerce.PRODUCT_KINDS}},
                      value=None, label=tr("products.kind"), on_change=lambda e: pick(e.value)).props(
                "outlined dense").classes("w-48")
            ui.space()
            if manage:
                ui.button(tr("products.new"), icon="add", on_click=lambda: edit(None))
        product_table()


# -- custom fields -----------------------------------------------------------------------------------
def custom_fields_page() -> None:
    with frame("nav.custom_fields", "/admin/custom-fields", "settings.manage") as principal:
        ui.label(tr("fields.help")).classes("text-grey-7")

        @ui.refreshable
        def field_table() -> None:
            with unit_of_work() as session:
                rows = [{"id": f.id, "key": f.key, "label": f.label_en if locale() == "en" else f.label_zh,
                         "type": tr(f"fields.type.{f.type}"),
                         "options": "、".join(o["en"] if locale() == "en" else o["zh"] for o in f.options) or "—",
                         "pii": tr("common.yes") if f.is_pii else tr("common.no")}
                        for f in fields.list_fields(session, principal)]
            if not rows:
                empty_state("tune", tr("fields.empty_title"), tr("fields.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "label", "label": tr("fields.label"), "field": "label", "align": "left", "sortable": True},
                {"name": "key", "label": tr("fields.key"), "field": "key", "align": "left"},
                {"name": "type", "label": tr("fields.type"), "field": "type", "align": "left"},
                {"name": "options", "label": tr("fields.options"), "field": "options", "align": "left"},
                {"name": "pii", "label": tr("fields.pii"), "field": "pii", "align": "left"},
            ], rows=rows, pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)

        def create() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[560px]"):
                ui.label(tr("fields.new")).classes("text-lg font-medium")
                key = ui.input(tr("fields.key"), placeholder="intended_model").classes("w-full")
                label_zh = ui.input(tr("roles.name_zh")).classes("w-full")
                label_en = ui.input(tr("roles.name_en")).classes("w-full")
                kind = ui.select({k: tr(f"fields.type.{k}") for k in fields.TYPES}, value="text",
                                 label=tr("fields.type")).classes("w-full")
                options = ui.textarea(tr("fields.options"), placeholder=tr("fields.options_hint")).classes("w-full")
                options.bind_visibility_from(kind, "value", lambda v: v in ("option", "multi_option"))
                pii = ui.checkbox(tr("fields.pii_hint"))

                def parsed_options() -> list[dict[str, str]]:
                    out = []
                    for line in (options.value or "").splitlines():
                        parts = [p.strip() for p in line.split("|")]
                        if parts and parts[0]:
                            out.append({"value": parts[0], "zh": parts[1] if len(parts) > 1 else parts[0],
                                        "en": parts[2] if len(parts) > 2 else parts[0]})
                    return out

                def save() -> None:
                    created = validated(lambda: run_action(lambda s: fields.create_field(
                        s, principal, schemas.CustomFieldCreate(
                            key=key.value or "", label_zh=label_zh.value or "", label_en=label_en.value or "",
                            type=kind.value, is_pii=pii.value,
                            options=parsed_options() if kind.value in ("option", "multi_option") else [],
                        ).model_dump(mode="json")),
                        tr("done.field_created", name=(label_zh.value if locale() == "zh" else label_en.value) or "")))
                    if created is not None:
                        dialog.close()
                        field_table.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save)
            dialog.open()

        if principal.has("settings.manage"):
            ui.button(tr("fields.new"), icon="add", on_click=create)
        field_table()
        _identity_rules_card(principal)


def _identity_rules_card(principal: Any) -> None:
    """One ID rules: priority and per-profile limit of each identity kind, editable by administrators."""
    with unit_of_work() as session:
        rules = identity_rules.list_rules(session, principal.org_id)
    editable = principal.has("settings.manage")
    with ui.card().classes("w-full"):
        ui.label(tr("rules.title")).classes("text-lg font-medium")
        ui.label(tr("rules.help")).classes("text-grey-7 text-sm")
        with ui.grid(columns=4).classes("w-full max-w-3xl gap-x-6 gap-y-1 items-center mt-2"):
            for label in (tr("rules.kind"), tr("rules.priority"), tr("rules.limit"), ""):
                ui.label(label).classes("text-xs text-grey-7 font-medium")
            for rule in rules:
                ui.label(t(f"identity.{rule.kind}", locale(), default=rule.kind))
                priority = ui.number(value=rule.priority, min=1, max=1000, step=1, format="%d").props("dense outlined")
                limit = ui.number(value=rule.max_per_profile, min=1, max=1000, step=1, format="%d").props(
                    "dense outlined")
                if editable:
                    ui.button(icon="save", on_click=lambda r=rule, p=priority, m=limit: run_action(
                        lambda s: identity_rules.set_rule(s, principal, kind=r.kind, priority=int(p.value or 1),
                                                          max_per_profile=int(m.value or 1)),
                        tr("done.identity_rule_saved", kind=t(f"identity.{r.kind}", locale(), default=r.kind)))
                    ).props("flat dense").mark(f"save-rule-{rule.kind}")
                else:
                    priority.disable()
                    limit.disable()
                    ui.label("")
