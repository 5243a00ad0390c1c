"""One opportunity's page: its stage path, facts, products, contacts and team, and its history with the time
spent in each stage."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import commerce as cdp_commerce
from kehu.cdp import service as cdp_service
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.sales import opportunities, pipelines, schemas
from kehu.sales.ui.opportunities import (
    INFLUENCE,
    SALES_METHODS,
    STATUS_COLOURS,
    _amount_input,
    _close_input,
    _lost_dialog,
    aside,
    listed,
    money,
)
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import readable_phone
from kehu.ui.shell import empty_state, frame, locale, notify_error, run_action, tr, unit_of_work, validated


# -- one deal --------------------------------------------------------------------------------------------------
def opportunity_page(opportunity_id: int) -> None:
    with frame("nav.opportunities", "/opportunities", "opportunities") as principal:
        body = ui.column().classes("w-full gap-4")

        def draw() -> None:
            body.clear()
            try:
                with unit_of_work() as session:
                    deal = opportunities.detail(session, principal, int(opportunity_id))
                    stages = pipelines.stages_of(session, deal["pipeline_id"])
                    history = opportunities.history(session, principal, int(opportunity_id))
                    person = cdp_service.get_profile(session, principal, deal["profile_id"]) \
                        if deal["profile_id"] and principal.can("profiles") else None
                    shown = CustomerView.of(session, principal).profile(person) if person else None
                    accounts = {k: cdp_service.get_account(session, principal, deal[k])[0].name
                                for k in ("account_id", "distributor_account_id", "partner_account_id")
                                if deal[k] and principal.can("accounts")}
                    user_ids = {deal["owner_id"], *(m["user_id"] for m in deal["members"]),
                                *(h["owner_id"] for h in history)} - {None}
                    owners, units = cdp_service.names_for(session, user_ids=user_ids, unit_ids={deal["unit_id"]})
                    contacts = opportunities.people_named(session, principal, [c["profile_id"]
                                                                               for c in deal["contacts"]])
                    may_update = principal.can("opportunities", "update")
                    people = {u.id: u.name for u in tenancy_service.list_users(
                        session, principal, unit_id=deal["unit_id"], active=True, limit=200).items} \
                        if principal.can("opportunities", "assign") and principal.can("users") else {}
                    stage_names = {s.id: pipelines.stage_name(s, locale()) for s in stages}
            except KehuError as error:
                notify_error(error)
                with body:
                    empty_state("search_off", tr("opp.not_found"), tr("opp.not_found_text"))
                return
            status = deal["status"]
            current = next(s for s in stages if s.id == deal["stage_id"])
            with body:
                with ui.row().classes("w-full items-center gap-3"):
                    ui.button(icon="arrow_back", on_click=lambda: ui.navigate.to("/opportunities")).props(
                        "flat round dense")
                    ui.label(deal["title"]).classes("text-xl font-medium").props('data-test="opp-heading"')
                    ui.badge(tr(f"opp.status.{status}")).props(f"color={STATUS_COLOURS[status]}").props('data-test="opp-status"')
                    ui.space()
                    if may_update and status == "open":
                        ui.button(tr("opp.win"), icon="emoji_events", on_click=lambda: act(
                            lambda s: opportunities.close(s, principal, int(opportunity_id),
                                                          schemas.Close(outcome="won")),
                            tr("done.opp_won"))).props(
                            "unelevated color=positive no-caps").props('data-test="opp-win"')
                        ui.button(tr("opp.lose"), icon="thumb_down_off_alt", on_click=lambda: _lost_dialog(
                            principal, int(opportunity_id), draw)).props("outline color=negative no-caps")
                        ui.button(tr("common.edit"), icon="edit", on_click=lambda: _edit_dialog(
                            principal, deal, draw)).props("flat no-caps").props('data-test="opp-edit"')
                    elif may_update:
                        ui.button(tr("opp.reopen"), icon="replay", on_click=lambda: act(
                            lambda s: opportunities.reopen(s, principal, int(opportunity_id)),
                            tr("done.opp_reopened"))).props("flat no-caps")
                # the stage path: where the deal is, and a click moves it
                with ui.row().classes("w-full no-wrap gap-1"):
                    for stage in stages:
                        passed = stage.position < current.position
                        here = stage.id == current.id
                        colour = ("bg-positive text-white" if here and status == "won" else
                                  "bg-grey-6 text-white" if here and status == "lost" else
                                  "bg-primary text-white" if here else
                                  "bg-blue-2 text-primary" if passed else "bg-grey-3 text-grey-8")
                        chip = ui.element("div").classes(
                            f"flex-1 text-center text-sm py-2 px-1 rounded {colour} "
                            + ("cursor-pointer hover:opacity-80" if may_update and status == "open" else ""))
                        chip.props(f'data-test="path-{stage.key}"')
                        with chip:
                            ui.label(f"{pipelines.stage_name(stage, locale())} · {stage.probability}%")
                        if may_update and status == "open" and not here:
                            chip.on("click", lambda _=None, k=stage.key, n=stage_names[stage.id]: act(
                                lambda s: opportunities.move_stage(s, principal, int(opportunity_id),
                                                                   schemas.StageMove(stage_key=k)),
                                tr("done.opp_stage", stage=n)))
                with ui.row().classes("w-full gap-4 items-stretch"):
                    with ui.card().classes("flex-1 min-w-[320px]"):
                        facts = [
                            (tr("opp.amount"), money(deal["amount"])),
                            (tr("opp.weighted"), money(deal["weighted_amount"])),
                            (tr("opp.probability"), f"{deal['probability']}%"),
                            (tr("opp.expected_close"), deal["expected_close_on"].isoformat()
                             if deal["expected_close_on"] else "—"),
                            (tr("opp.sales_method"), tr(f"opp.method.{deal['sales_method']}")),
                            (tr("leads.source"), tr(f"lead.source.{deal['source']}")),
                            (tr("opp.influence"), tr(f"opp.influence.{deal['influence']}") if deal["influence"]
                             else "—"),
                            (tr("opp.competitors"), listed(deal["competitors"]) or "—"),
                            (tr("users.unit"), units.get(deal["unit_id"], "")),
                            (tr("customers.owner"), owners.get(deal["owner_id"] or 0, "—")),
                            (tr("opp.in_stage_since"), format_local(deal["stage_entered_at"], principal.timezone)),
                        ]
                        if deal["close_reason"]:
                            facts.append((tr("opp.lost_reason"), tr(f"opp.lost.{deal['close_reason']}")
                                          + (aside(deal["close_note"]) if deal["close_note"] else "")))
                        with ui.grid(columns=2).classes("w-full gap-x-6 gap-y-1 text-sm"):
                            for label, value in facts:
                                ui.label(label).classes("text-grey-7")
                                ui.label(value).classes("font-medium")
                    with ui.card().classes("flex-1 min-w-[320px] gap-2"):
                        with ui.row().classes("w-full items-center"):
                            ui.label(tr("opp.customer")).classes("font-medium")
                            ui.space()
                            if may_update:
                                ui.button(tr("opp.edit_people"), icon="group_add", on_click=lambda: _people_dialog(
                                    principal, deal, contacts, owners, draw)).props(
                                    'flat dense no-caps data-test="opp-people"')
                        if shown is not None:
                            ui.link(shown.name or f"#{shown.id}", f"/customers/{shown.id}").classes("text-lg")
                            ui.label(" · ".join(filter(None, [readable_phone(shown.mobile), shown.city]))
                                     ).classes("text-sm text-grey-8")
                        for key, name in accounts.items():
                            ui.label(tr("opp." + key) + ("：" if locale() == "zh" else ": ") + (name or "")).classes(
                                "text-sm")
                        if deal["contacts"]:
                            ui.label(tr("opp.contacts")).classes("font-medium pt-2")
                            for c in deal["contacts"]:
                                ui.link(f"{contacts.get(c['profile_id'], '#' + str(c['profile_id']))} · "
                                        f"{tr('opp.role.' + c['role'])}", f"/customers/{c['profile_id']}").classes(
                                    "text-sm")
                        ui.label(tr("opp.team")).classes("font-medium pt-2")
                        ui.label(listed([owners.get(deal["owner_id"] or 0, "—")] + [
                            owners.get(m["user_id"], "") + aside(tr("opp.member." + m["role"]))
                            for m in deal["members"]])).classes("text-sm")
                        if deal["lead_id"]:
                            ui.link(tr("leads.lead", id=deal["lead_id"]), f"/leads/{deal['lead_id']}").classes(
                                "text-sm")
                        if deal["description"]:
                            ui.label(deal["description"]).classes("text-sm whitespace-pre-line text-grey-8 pt-2")
                with ui.card().classes("w-full"):
                    with ui.row().classes("w-full items-center"):
                        ui.label(tr("opp.products")).classes("font-medium")
                        ui.space()
                        if may_update:
                            ui.button(tr("opp.edit_products"), icon="edit_note", on_click=lambda: _products_dialog(
                                principal, deal, draw)).props('flat dense no-caps data-test="opp-products"')
                    if deal["products"]:
                        ui.table(columns=[
                            {"name": "name", "label": tr("products.name"), "field": "name", "align": "left"},
                            {"name": "quantity", "label": tr("opp.quantity"), "field": "quantity"},
                            {"name": "price", "label": tr("opp.unit_price"), "field": "price"},
                            {"name": "total", "label": tr("opp.line_total"), "field": "total"}],
                            rows=[{"id": p.id, "name": p.name, "quantity": p.quantity, "price": money(p.unit_price),
                                   "total": money(p.unit_price * p.quantity)} for p in deal["products"]]
                        ).props("flat dense").classes("w-full")
                    else:
                        ui.label(tr("opp.no_products")).classes("text-sm text-grey-7")
                with ui.card().classes("w-full"):
                    ui.label(tr("opp.history")).classes("font-medium")
                    ui.table(columns=[
                        {"name": "at", "label": tr("opp.when"), "field": "at", "align": "left"},
                        {"name": "what", "label": tr("opp.what"), "field": "what", "align": "left"},
                        {"name": "stay", "label": tr("opp.stay"), "field": "stay"},
                        {"name": "amount", "label": tr("opp.amount"), "field": "amount"},
                        {"name": "actor", "label": tr("opp.by"), "field": "actor", "align": "left"}],
                        rows=[{"id": h["id"], "at": format_local(h["at"], principal.timezone),
                               "what": tr(f"opp.change.{h['kind']}", stage=stage_names.get(h["to_stage_id"], ""),
                                          owner=owners.get(h["owner_id"] or 0, ""),
                                          reason=tr(f"opp.lost.{h['reason']}", default=h["reason"])),
                               "stay": tr("opp.days", days=f"{h['seconds_in_stage'] / 86400:.1f}")
                               if h["seconds_in_stage"] is not None else "",
                               "amount": money(h["amount"]),
                               "actor": tr("timeline.system") if h["actor"] == "system" else h["actor"]}
                              for h in history]
                    ).props("flat dense").classes("w-full").props('data-test="opp-history"')
                if people and status == "open":
                    with ui.row().classes("items-center gap-2"):
                        to = ui.select(people, label=tr("leads.assign_to"), with_input=True).props(
                            "outlined dense").classes("w-56")
                        ui.button(tr("leads.assign"), icon="person_add", on_click=lambda: act(
                            lambda s: opportunities.assign(s, principal, int(opportunity_id), schemas.Assignment(
                                owner_id=to.value)), tr("done.assigned", name=people.get(to.value, "")))
                            if to.value else None).props("flat no-caps")

        def act(fn: Any, done: str) -> None:
            if run_action(fn, done) is not None:
                draw()

        draw()


def _save(principal: Any, opportunity_id: int, data: schemas.OpportunityFields | None, dialog: Any,
          done: Any, saved: str = "done.opp_saved") -> None:
    """A dialog's changes to a deal saved (none: the form was refused): on success the dialog closes and the
    page draws again."""
    if data is not None and run_action(lambda s: opportunities.update_opportunity(s, principal, opportunity_id, data),
                                            tr(saved)) is not None:
        dialog.close()
        done()


def _edit_dialog(principal: Any, deal: dict[str, Any], done: Any) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[600px] max-w-full"):
        ui.label(tr("opp.edit")).classes("text-lg font-medium")
        title = ui.input(tr("opp.title"), value=deal["title"]).props("outlined dense").classes("w-full")
        with ui.row().classes("w-full gap-3 no-wrap"):
            amount = _amount_input(deal["amount"], mark="edit-amount").classes("flex-1")
            probability = ui.number(tr("opp.probability"), value=deal["probability"], min=0, max=100).props(
                "outlined dense").classes("w-32")
            close_on = _close_input(deal["expected_close_on"], mark="edit-close").classes("flex-1")
        with ui.row().classes("w-full gap-3 no-wrap"):
            method = ui.select({m: tr(f"opp.method.{m}") for m in SALES_METHODS}, value=deal["sales_method"],
                               label=tr("opp.sales_method")).props("outlined dense").classes("flex-1")
            influence = ui.select({i: tr(f"opp.influence.{i}") for i in INFLUENCE}, value=deal["influence"],
                                  label=tr("opp.influence"), clearable=True).props("outlined dense").classes("flex-1")
        competitors = ui.input(tr("opp.competitors"), value=listed(deal["competitors"]),
                               placeholder=tr("opp.competitors_hint")).props("outlined dense").classes("w-full")
        description = ui.textarea(tr("opp.description"), value=deal["description"]).props(
            "outlined dense autogrow").classes("w-full")

        def save() -> None:
            (amount_ok, amount_value), (close_ok, close_value) = amount.read(), close_on.read()
            if not (amount_ok and close_ok):
                return
            try:
                data = schemas.OpportunityFields(
                    title=title.value or None, amount=amount_value, probability=int(probability.value or 0),
                    expected_close_on=close_value, sales_method=method.value, influence=influence.value,
                    competitors=[c.strip() for c in (competitors.value or "").replace(",", "、").split("、")
                                 if c.strip()], description=description.value or "")
            except ValidationError as error:
                ui.notify(tr("common.invalid", fields=", ".join(str(e["loc"][0]) for e in error.errors())),
                          type="negative")
                return
            _save(principal, deal["id"], data, dialog, done)

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).props('data-test="edit-save"')
    dialog.open()


def _products_dialog(principal: Any, deal: dict[str, Any], done: Any) -> None:
    """The deal's products from the catalogue (or named by hand), quantities and prices; the expected amount
    becomes their total."""
    with unit_of_work() as session:
        catalogue = {p.id: (p.name, p.price) for p in cdp_commerce.list_products(session, principal, active=True)} \
            if principal.can("orders") else {}
    rows = [{"product_id": p.product_id, "name": p.name, "quantity": p.quantity, "unit_price": float(p.unit_price)}
            for p in deal["products"]]
    with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-full"):
        ui.label(tr("opp.edit_products")).classes("text-lg font-medium")
        ui.label(tr("opp.products_help")).classes("text-sm text-grey-7")
        lines = ui.column().classes("w-full gap-1")

        def draw_lines() -> None:
            lines.clear()
            with lines:
                for n, row in enumerate(rows):
                    with ui.row().classes("w-full items-center gap-2 no-wrap"):
                        if row["product_id"] is not None or not row["name"]:
                            ui.select({k: v[0] for k, v in catalogue.items()}, label=tr("products.name"),
                                      value=row["product_id"], with_input=True,
                                      on_change=lambda e, r=row: picked(r, e.value)).props(
                                "outlined dense").classes("flex-1")
                        else:
                            ui.input(tr("products.name")).bind_value(row, "name").props("outlined dense").classes(
                                "flex-1")
                        ui.number(tr("opp.quantity"), min=1, format="%.0f").bind_value(row, "quantity").props(
                            "outlined dense").classes("w-24")
                        ui.number(tr("opp.unit_price"), min=0).bind_value(row, "unit_price").props(
                            "outlined dense").classes("w-40")
                        ui.button(icon="delete", on_click=lambda i=n: (rows.pop(i), draw_lines())).props(
                            "flat dense round color=negative")

        def picked(row: dict[str, Any], product_id: Any) -> None:
            row["product_id"] = product_id
            if product_id in catalogue:
                row["name"], price = catalogue[product_id]
                row["unit_price"] = float(price or 0)
            draw_lines()

        def save() -> None:
            data = validated(lambda: schemas.OpportunityFields(products=[schemas.OpportunityLineIn(
                product_id=r["product_id"], name=r["name"] or None, quantity=int(r["quantity"] or 1),
                unit_price=Decimal(str(r["unit_price"] or 0)).quantize(Decimal("0.01"))) for r in rows
                if r["product_id"] is not None or r["name"]]))
            _save(principal, deal["id"], data, dialog, done, "done.opp_products_saved")

        draw_lines()
        with ui.row().classes("w-full items-center"):
            ui.button(tr("opp.add_product"), icon="add", on_click=lambda: (rows.append(
                {"product_id": None, "name": "", "quantity": 1, "unit_price": 0.0}), draw_lines())).props(
                "flat no-caps")
            ui.button(tr("opp.add_other"), icon="edit", on_click=lambda: (rows.append(
                {"product_id": None, "name": tr("opp.other_item"), "quantity": 1, "unit_price": 0.0}),
                draw_lines())).props("flat no-caps")
            ui.space()
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).props('data-test="products-save"')
    dialog.open()


def _people_dialog(principal: Any, deal: dict[str, Any], names: dict[int, str], owners: dict[int, str],
                   done: Any) -> None:
    """The people on the deal: the customer's side (contacts and their part in the decision) and ours (the
    sales team besides the owner)."""
    contacts = [dict(c) for c in deal["contacts"]]
    members = [dict(m) for m in deal["members"]]
    known = dict(names)
    with unit_of_work() as session:
        colleagues = {u.id: u.name for u in tenancy_service.list_users(
            session, principal, active=True, limit=200).items if u.id != deal["owner_id"]} \
            if principal.can("users") else {}
    colleagues.update({m["user_id"]: owners.get(m["user_id"], f"#{m['user_id']}") for m in members})
    roles = {r: tr(f"opp.role.{r}") for r in ("decision_maker", "influencer", "user", "finance", "contact")}
    member_roles = {r: tr(f"opp.member.{r}") for r in ("sales", "presales", "manager", "finance", "service")}
    with ui.dialog() as dialog, ui.card().classes("w-[640px] max-w-full"):
        ui.label(tr("opp.edit_people")).classes("text-lg font-medium")
        area = ui.column().classes("w-full gap-1")

        def draw_rows() -> None:
            area.clear()
            with area:
                ui.label(tr("opp.contacts")).classes("font-medium")
                for n, c in enumerate(contacts):
                    with ui.row().classes("w-full items-center gap-2 no-wrap"):
                        ui.label(known.get(c["profile_id"], f"#{c['profile_id']}")).classes("flex-1")
                        ui.select(roles).bind_value(c, "role").props("outlined dense").classes("w-40")
                        ui.button(icon="delete", on_click=lambda i=n: (contacts.pop(i), draw_rows())).props(
                            "flat dense round color=negative")
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    query = ui.input(tr("opp.find_customer"), placeholder=tr("customers.search")).props(
                        'outlined dense debounce=300 data-test="contact-find"').classes("flex-1")
                    query.on_value_change(lambda e: find(e.value))
                if colleagues:
                    ui.label(tr("opp.team")).classes("font-medium pt-2")
                    for n, m in enumerate(members):
                        with ui.row().classes("w-full items-center gap-2 no-wrap").props('data-test="member-row"'):
                            ui.label(colleagues.get(m["user_id"], f"#{m['user_id']}")).classes("flex-1")
                            ui.select(member_roles).bind_value(m, "role").props("outlined dense").classes("w-40")
                            ui.button(icon="delete", on_click=lambda i=n: (members.pop(i), draw_rows())).props(
                                "flat dense round color=negative")
                    free = {k: v for k, v in colleagues.items() if k not in {m["user_id"] for m in members}}
                    if free:
                        ui.select(free, label=tr("opp.add_member"), with_input=True, on_change=lambda e: (
                            members.append({"user_id": e.value, "role": "sales"}), draw_rows()) if e.value else None
                                  ).props('outlined dense data-test="member-add"').classes("w-72")

        def find(text: str | None) -> None:
            text = (text or "").strip()
            if not text:
                return
            with unit_of_work() as session:
                hits = cdp_service.page_profiles(session, principal, q=text, per_page=5).items
                view = CustomerView.of(session, principal)
                for p in hits:
                    known[p.id] = " · ".join(filter(None, [p.name, readable_phone(view.profile(p).mobile)]))
            if len(hits) == 1 and hits[0].id not in {c["profile_id"] for c in contacts}:
                contacts.append({"profile_id": hits[0].id, "role": "contact"})
                draw_rows()
            elif not hits:
                ui.notify(tr("opp.no_customer"), type="warning")
            else:
                ui.notify(tr("opp.be_precise", count=len(hits)), type="info")

        def save() -> None:
            data = validated(lambda: schemas.OpportunityFields(
                contacts=[schemas.ContactIn(**c) for c in contacts],
                members=[schemas.MemberIn(**m) for m in members]))
            _save(principal, deal["id"], data, dialog, done, "done.opp_people_saved")

        draw_rows()
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).props('data-test="people-save"')
    dialog.open()
