"""Opportunity pages: the kanban board by stage (drag a card to move it; drop it on "lost" to close it) and
the list, a deal's page (stage path, facts, products, contacts, team, history with time in stage), the
conversion of a lead, the customer's deals on the 360, the pipeline settings and the sales reports
(forecast rolled up the unit tree, funnel and cycle times, first-contact service levels).

Over 800 lines: five pages of one domain share the money, stage and dialog helpers; to split next are the
reports page and the pipeline settings into their own modules.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import commerce as cdp_commerce
from kehu.cdp import normalise
from kehu.cdp import service as cdp_service
from kehu.cdp import ui as cdp_ui
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.sales import opportunities, reports, schemas
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ParsedInput, ServerTable, add_status_slot
from kehu.ui.shell import empty_state, frame, locale, notify_error, page, run_action, tr, unit_of_work, validated

STATUS_COLOURS = {"open": "primary", "won": "positive", "lost": "grey-6"}
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "product_fit", "timing", "no_response", "other")
SALES_METHODS = ("direct", "distribution", "agency", "fleet", "online")
INFLUENCE = ("high", "medium", "low")


def register() -> None:
    page("/opportunities")(opportunities_page)
    page("/opportunities/{opportunity_id}")(opportunity_page)
    page("/sales/reports")(reports_page)
    page("/admin/pipelines")(pipelines_page)
    cdp_ui.CUSTOMER_PANELS.append(_customer_opportunities)


def money(value: Any) -> str:
    """An amount as a salesperson reads it: ¥44.5万 in Chinese, ¥444,800 in English."""
    amount = float(value or 0)
    if locale() == "zh" and abs(amount) >= 10_000:
        return f"¥{amount / 10_000:,.1f}万"
    return f"¥{amount:,.0f}"


def listed(items: Any) -> str:
    """Items in a line as the reader writes them: 甲、乙 / a, b."""
    return ("、" if locale() == "zh" else ", ").join(str(i) for i in items)


def aside(text: str) -> str:
    """A remark after a word: （备注） / (note)."""
    return f"（{text}）" if locale() == "zh" else f" ({text})"


def _explained(error: Exception) -> str:
    return error.text(locale()) if isinstance(error, normalise.InvalidValue) else str(error)


def _amount_input(value: Any = "", mark: str | None = None) -> ParsedInput:
    """An amount as dealers write it: 259800, ¥259,800, 25.98万."""
    return ParsedInput(tr("opp.amount"), normalise.amount, _explained, value="" if value is None else str(value),
                       placeholder=tr("opp.amount_hint"), mark=mark)


def _close_input(value: date | None = None, mark: str | None = None) -> ParsedInput:
    """An expected close date, typed (2027-01-15, 2027/1/15, 2027年1月15日) or picked."""
    return ParsedInput(tr("opp.expected_close"), normalise.day, _explained,
                       value=value.isoformat() if value else "", placeholder="2027-01-31", picker=True, mark=mark)


# -- board and list ---------------------------------------------------------------------------------------------------
def opportunities_page() -> None:
    with frame("nav.opportunities", "/opportunities", "opportunities") as principal:
        filters: dict[str, Any] = {"q": "", "unit_id": None, "mine": False, "pipeline_id": None, "status": "open"}
        with unit_of_work() as session:
            pipelines = {p.id: p.name for p, _ in opportunities.list_pipelines(session, principal)}
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
        filters["pipeline_id"] = next(iter(pipelines))
        with ui.row().classes("w-full items-center gap-3"):
            with ui.tabs(on_change=lambda e: show(e.value)).props("dense no-caps active-color=primary") as tabs:
                ui.tab("board", label=tr("opp.board"), icon="view_kanban")
                ui.tab("list", label=tr("opp.list"), icon="list")
            if len(pipelines) > 1:
                ui.select(pipelines, value=filters["pipeline_id"], label=tr("opp.pipeline"),
                          on_change=lambda e: apply("pipeline_id", e.value)).props("outlined dense").classes("w-48")
            ui.input(placeholder=tr("opp.search"), on_change=lambda e: apply("q", e.value)).props(
                "outlined dense clearable debounce=300").classes("w-72")
            if units and len(units) > 1:
                ui.select(units, label=tr("users.unit"), clearable=True, with_input=True,
                          on_change=lambda e: apply("unit_id", e.value)).props("outlined dense").classes("w-56")
            if principal.user_id and principal.depth("opportunities", "read") != "own":
                ui.checkbox(tr("leads.mine"), on_change=lambda e: apply("mine", e.value))
            status_filter = ui.select({"open": tr("opp.status.open"), "won": tr("opp.status.won"),
                                       "lost": tr("opp.status.lost"), "": tr("opp.status.all")}, value="open",
                                      label=tr("opp.status"), on_change=lambda e: apply("status", e.value)).props(
                "outlined dense").classes("w-32")
            ui.space()
            if principal.can("opportunities", "create"):
                ui.button(tr("opp.new"), icon="add", on_click=lambda: _new_dialog(principal)).props(
                    'data-test="new-opportunity"')
        area = ui.column().classes("w-full")
        state: dict[str, Any] = {"view": "board", "dragged": None, "table": None}

        def owner() -> int | None:
            return principal.user_id if filters["mine"] else None

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            show(state["view"])

        def show(view: str) -> None:
            state["view"] = view
            status_filter.set_visibility(view == "list")  # the board shows open deals and the won column
            area.clear()
            with area:
                if view == "board":
                    draw_board()
                else:
                    draw_list()

        def draw_board() -> None:
            try:
                with unit_of_work() as session:
                    result = opportunities.board(session, principal, pipeline_id=filters["pipeline_id"],
                                                 unit_id=filters["unit_id"], owner_id=owner(), q=filters["q"] or None,
                                                 per_stage=30)
                    cards = [c for column in result["columns"] for c in column["cards"]]
                    people = opportunities.people_named(session, principal, [c.profile_id for c in cards
                                                                             if c.profile_id])
                    owners, _ = cdp_service.names_for(session, user_ids={c.owner_id for c in cards if c.owner_id},
                                                      unit_ids=set())
                    columns = [(c["stage"].id, c["stage"].key, opportunities.stage_name(c["stage"], locale()),
                                c["stage"].probability, c["stage"].is_won, c["count"], c["amount"], c["weighted"],
                                [(o.id, o.title, people.get(o.profile_id or 0), o.amount, o.expected_close_on,
                                  owners.get(o.owner_id or 0), o.status) for o in c["cards"]])
                               for c in result["columns"]]
            except KehuError as error:
                notify_error(error)
                return
            if not any(column[5] for column in columns) and not filters["q"]:
                empty_state("handshake", tr("opp.empty_title"), tr("opp.empty_text"))
            today = date.today()
            with ui.row().classes("w-full items-center gap-3"):
                ui.label(tr("opp.board_help")).classes("text-sm text-grey-7")
                ui.space()
                lost = ui.row().classes("px-4 py-2 rounded-lg border-2 border-dashed border-grey-5 items-center "
                                        "text-grey-7 gap-2").props('data-test="stage-lost"')
                with lost:
                    ui.icon("thumb_down_off_alt").classes("text-xl")
                    ui.label(tr("opp.drop_lost")).classes("text-sm")
                lost.on("dragover.prevent", lambda _=None: lost.classes(add="ring-2 ring-negative"))
                lost.on("dragleave", lambda _=None: lost.classes(remove="ring-2 ring-negative"))
                lost.on("drop", lambda _=None: dropped_lost())
            with ui.row().classes("w-full no-wrap gap-3 overflow-x-auto items-start pb-4"):
                for _stage_id, key, name, probability, is_won, count, amount, weighted, items in columns:
                    column = ui.column().classes(
                        # the columns share the width (seven fit beside the navigation at 1440 px), never narrower
                        # than a card can be read at
                        "flex-1 min-w-[8.5rem] gap-2 p-2 rounded-lg " + ("bg-green-1" if is_won else "bg-blue-grey-1"))
                    column.props(f'data-test="stage-{key}"')
                    with column:
                        with ui.column().classes("w-full gap-0 px-1"):
                            with ui.row().classes("w-full items-center no-wrap gap-1"):
                                ui.label(name).classes("font-medium whitespace-nowrap truncate")
                                ui.space()
                                ui.badge(f"{probability}%").props("color=grey-5 text-color=grey-9 rounded")
                                ui.label(f"{count:,}").classes("text-grey-8 text-sm")
                            ui.label(tr("opp.column_sum", amount=money(amount), weighted=money(weighted))).classes(
                                "text-xs text-grey-7")
                        cards_area = ui.column().classes("w-full gap-2 overflow-y-auto max-h-[calc(100vh-300px)]")
                        with cards_area:
                            for o_id, title, who, o_amount, close_on, o_owner, _status in items:
                                late = close_on is not None and close_on < today and not is_won
                                card = ui.card().classes("w-full p-2 gap-1 cursor-grab shadow-1").props("draggable")
                                card.props(f'data-test="card-{o_id}"')
                                card.on("dragstart", lambda _=None, i=o_id, k=key: state.update(dragged=i, came_from=k))
                                card.on("click", lambda _=None, i=o_id: ui.navigate.to(f"/opportunities/{i}"))
                                with card:
                                    ui.label(title).classes("text-sm font-medium leading-tight")
                                    ui.label(who or "—").classes("text-xs text-grey-7")
                                    with ui.row().classes("w-full items-center gap-x-2 gap-y-0 text-xs"):
                                        ui.label(money(o_amount)).classes("font-medium text-primary whitespace-nowrap")
                                        ui.space()
                                        if close_on:
                                            ui.label(close_on.isoformat()).classes(
                                                "whitespace-nowrap " + ("text-negative font-medium" if late
                                                                        else "text-grey-7"))
                                    ui.label(o_owner or tr("leads.unassigned")).classes("text-xs text-grey-6")
                        if count > len(items):
                            ui.label(tr("opp.more", count=count - len(items))).classes("text-xs text-grey-7 px-1")
                    column.on("dragover.prevent", lambda _=None, c=column: c.classes(add="ring-2 ring-primary"))
                    column.on("dragleave", lambda _=None, c=column: c.classes(remove="ring-2 ring-primary"))
                    column.on("drop", lambda _=None, k=key: dropped(k))

        def dropped(stage_key: str) -> None:
            opportunity_id, state["dragged"] = state["dragged"], None
            if opportunity_id is None:
                return
            if state.get("came_from") == stage_key:  # put back where it was: nothing moved, nothing to say
                show("board")
                return
            run_action(lambda s: opportunities.move_stage(s, principal, opportunity_id, schemas.StageMove(
                stage_key=stage_key)), tr("opp.moved"))
            show("board")  # on success the card moves; on a refusal it goes back, with the reason shown

        def dropped_lost() -> None:
            opportunity_id, state["dragged"] = state["dragged"], None
            if opportunity_id is not None:
                _lost_dialog(principal, opportunity_id, lambda: show("board"))
            else:
                show("board")

        def draw_list() -> None:
            def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
                with unit_of_work() as session:
                    result = opportunities.page_opportunities(
                        session, principal, status=filters["status"] or None, pipeline_id=filters["pipeline_id"],
                        unit_id=filters["unit_id"],
                        owner_id=owner(), q=filters["q"] or None, sort=sort or "expected_close_on",
                        descending=descending, page=page_no, per_page=per_page)
                    return _rows(session, principal, result.items), result.total

            columns = [
                {"name": "title", "label": tr("opp.title"), "field": "title", "align": "left", "sortable": True},
                {"name": "customer", "label": tr("leads.customer"), "field": "customer", "align": "left"},
                {"name": "stage", "label": tr("opp.stage"), "field": "stage", "align": "left"},
                {"name": "status", "label": tr("opp.status"), "field": "status", "align": "left"},
                {"name": "amount", "label": tr("opp.amount"), "field": "amount_text", "sortable": True},
                {"name": "probability", "label": tr("opp.probability"), "field": "probability", "sortable": True},
                {"name": "expected_close_on", "label": tr("opp.expected_close"), "field": "expected_close_on",
                 "align": "left", "sortable": True},
                {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                {"name": "owner", "label": tr("customers.owner"), "field": "owner", "align": "left"},
                {"name": "created_at", "label": tr("opp.created"), "field": "created", "align": "left",
                 "sortable": True},
            ]
            table = ServerTable(columns, fetch, tr=tr, sort_by="expected_close_on", empty_text=tr("opp.empty_text"),
                                on_row_click=lambda row: ui.navigate.to(f"/opportunities/{row['id']}"))
            add_status_slot(table.table, "status", {s: tr(f"opp.status.{s}") for s in STATUS_COLOURS},
                            STATUS_COLOURS)
            state["table"] = table

        tabs.set_value("board")
        show("board")


def _rows(session: Any, principal: Any, deals: list[Any]) -> list[dict[str, Any]]:
    people = opportunities.people_named(session, principal, [d.profile_id for d in deals if d.profile_id])
    owners, units = cdp_service.names_for(session, user_ids={d.owner_id for d in deals if d.owner_id},
                                          unit_ids={d.unit_id for d in deals})
    stages = opportunities.all_stages(session, principal.org_id)
    return [{"id": d.id, "title": d.title, "customer": people.get(d.profile_id or 0) or "—",
             "stage": opportunities.stage_name(stages[d.stage_id], locale()) if d.stage_id in stages else "",
             "status": d.status, "amount_text": money(d.amount), "probability": f"{d.probability}%",
             "expected_close_on": d.expected_close_on.isoformat() if d.expected_close_on else "—",
             "unit": units.get(d.unit_id, ""), "owner": owners.get(d.owner_id or 0, "—"),
             "created": format_local(d.created_at, principal.timezone)} for d in deals]


# -- dialogs ---------------------------------------------------------------------------------------------------
def _lost_dialog(principal: Any, opportunity_id: int, done: Any) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[420px]"):
        ui.label(tr("opp.lose_title")).classes("text-lg font-medium")
        reason = ui.select({r: tr(f"opp.lost.{r}") for r in LOST_REASONS}, label=tr("opp.lost_reason")).props(
            "outlined dense").classes("w-full").props('data-test="lost-reason"')
        note = ui.input(tr("leads.note")).props("outlined dense").classes("w-full")

        def save() -> None:
            if not reason.value:
                ui.notify(tr("opp.lost_reason"), type="warning")
                return
            if run_action(lambda s: opportunities.close(s, principal, opportunity_id, schemas.Close(
                    outcome="lost", reason=reason.value, note=note.value or "")), tr("opp.closed_lost")) is not None:
                dialog.close()
                done()

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=lambda: (dialog.close(), done())).props("flat")
            ui.button(tr("opp.lose"), on_click=save).props("color=negative").props('data-test="lost-save"')
    dialog.open()


def _new_dialog(principal: Any, profile_id: int | None = None) -> None:
    """A new deal: for a customer found by name or mobile, with amount and expected close date."""
    with ui.dialog() as dialog, ui.card().classes("w-[560px] max-w-full"):
        ui.label(tr("opp.new")).classes("text-lg font-medium")
        title = ui.input(tr("opp.title")).props("outlined dense").classes("w-full").props('data-test="opp-title"')
        found: dict[Any, str] = {}
        if profile_id is not None:
            with unit_of_work() as session:
                person = cdp_service.get_profile(session, principal, profile_id)
                found[profile_id] = person.name or f"#{profile_id}"
        with ui.row().classes("w-full gap-3 no-wrap"):
            query = ui.input(tr("opp.find_customer"), placeholder=tr("customers.search")).props(
                'outlined dense clearable debounce=300 data-test="opp-find"').classes("w-56")
            who = ui.select(dict(found), label=tr("opp.customer"), value=profile_id).props(
                'outlined dense data-test="opp-customer"').classes("flex-1")

        def search(text: str | None) -> None:
            """Customers the reader may see by name, pinyin or mobile; one hit is chosen at once."""
            text = (text or "").strip()
            if not text:
                return
            with unit_of_work() as session:
                hits = cdp_service.page_profiles(session, principal, q=text, per_page=20).items
                view = CustomerView.of(session, principal)
                options = {p.id: " · ".join(filter(None, [p.name, cdp_ui.readable_phone(
                    view.profile(p).mobile), p.city])) for p in hits}
            found.update(options)
            keep = {who.value: found[who.value]} if who.value in found else {}
            who.set_options({**keep, **options}, value=next(iter(options)) if len(options) == 1 else who.value)
            if not options:
                ui.notify(tr("opp.no_customer"), type="warning")

        query.on_value_change(lambda e: search(e.value))
        with ui.row().classes("w-full gap-3 no-wrap"):
            amount = _amount_input(mark="opp-amount").classes("flex-1")
            close_on = _close_input(mark="opp-close").classes("flex-1")
        method = ui.select({m: tr(f"opp.method.{m}") for m in SALES_METHODS}, value="direct",
                           label=tr("opp.sales_method")).props("outlined dense").classes("w-full")

        def save() -> None:
            (amount_ok, amount_value), (close_ok, close_value) = amount.read(), close_on.read()
            if not (amount_ok and close_ok):
                return
            data = validated(lambda: schemas.OpportunityCreate(
                title=title.value or "", profile_id=who.value, amount=amount_value,
                expected_close_on=close_value, sales_method=method.value))
            if data is None:
                return
            made = run_action(lambda s: opportunities.create_opportunity(s, principal, data).id,
                              tr("done.opp_created", title=data.title))
            if made is not None:
                dialog.close()
                ui.navigate.to(f"/opportunities/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).props('data-test="opp-save"')
    dialog.open()


def convert_dialog(principal: Any, lead_id: int, model: str | None) -> None:
    """Convert a lead: the customer's company (optional, new or existing), amount, expected close date."""
    with unit_of_work() as session:
        start = opportunities.conversion_defaults(session, principal, lead_id)
    with ui.dialog() as dialog, ui.card().classes("w-[520px] max-w-full"):
        ui.label(tr("opp.convert_title")).classes("text-lg font-medium")
        ui.label(tr("opp.convert_help")).classes("text-sm text-grey-7")
        title = ui.input(tr("opp.title"), value=start["title"]).props(
            'outlined dense data-test="convert-title"').classes("w-full")
        company = ui.input(tr("opp.new_account")).props("outlined dense").classes("w-full")
        with ui.row().classes("w-full gap-3 no-wrap"):
            amount = _amount_input(start["amount"], mark="convert-amount").classes("flex-1")
            close_on = _close_input(mark="convert-close").classes("flex-1")

        def save() -> None:
            (amount_ok, amount_value), (close_ok, close_value) = amount.read(), close_on.read()
            if not (amount_ok and close_ok):
                return
            data = validated(lambda: schemas.LeadConversion(
                title=title.value or None, new_account_name=company.value or None, amount=amount_value,
                expected_close_on=close_value))
            if data is None:
                return
            made = run_action(lambda s: opportunities.convert_lead(s, principal, lead_id, data)[1].id,
                              tr("opp.converted"))
            if made is not None:
                dialog.close()
                ui.navigate.to(f"/opportunities/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("opp.convert"), icon="handshake", on_click=save).props("color=positive").props(
                'data-test="convert-save"')
    dialog.open()


# -- one deal --------------------------------------------------------------------------------------------------
def opportunity_page(opportunity_id: int) -> None:
    with frame("nav.opportunities", "/opportunities", "opportunities") as principal:
        body = ui.column().classes("w-full gap-4")

        def draw() -> None:
            body.clear()
            try:
                with unit_of_work() as session:
                    deal = opportunities.detail(session, principal, int(opportunity_id))
                    stages = opportunities.stages_of(session, deal["pipeline_id"])
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
                    stage_names = {s.id: opportunities.stage_name(s, locale()) for s in stages}
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
                            ui.label(f"{opportunities.stage_name(stage, locale())} · {stage.probability}%")
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
                            ui.label(" · ".join(filter(None, [cdp_ui.readable_phone(shown.mobile), shown.city]))
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
                    known[p.id] = " · ".join(filter(None, [p.name, cdp_ui.readable_phone(view.profile(p).mobile)]))
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


def _customer_opportunities(principal: Any, profile_id: int) -> None:
    if not principal.can("opportunities"):
        return
    try:
        with unit_of_work() as session:
            deals = opportunities.opportunities_of(session, principal, profile_id)
            keys = opportunities.all_stages(session, principal.org_id)
            rows = [(d.id, d.title, d.status, opportunities.stage_name(keys[d.stage_id], locale()), d.amount,
                     d.expected_close_on) for d in deals]
    except KehuError:
        return
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-center"):
            ui.label(tr("opp.of_customer")).classes("text-lg font-medium")
            ui.space()
            if principal.can("opportunities", "create"):
                ui.button(tr("opp.new"), icon="add", on_click=lambda: _new_dialog(principal, profile_id)).props(
                    "flat dense no-caps")
        if not rows:
            ui.label(tr("opp.of_customer_none")).classes("text-grey-7 text-sm")
        for o_id, title, status, stage, amount, close_on in rows:
            with ui.row().classes("w-full items-center gap-2 text-sm cursor-pointer").on(
                    "click", lambda _=None, i=o_id: ui.navigate.to(f"/opportunities/{i}")):
                ui.badge(tr(f"opp.status.{status}")).props(f"color={STATUS_COLOURS[status]}")
                ui.label(title).classes("font-medium")
                ui.label(stage).classes("text-grey-7")
                ui.space()
                ui.label(money(amount))
                ui.label(close_on.isoformat() if close_on else "").classes("text-grey-6")


# -- sales reports ----------------------------------------------------------------------------------------------
def reports_page(unit_id: int | None = None) -> None:
    """Forecast, funnel and first-contact service levels for a unit (the reader's by default) and the units
    right under it; a row opens that unit's own report (drill down), the path above leads back up."""
    with frame("nav.sales_reports", "/sales/reports", "opportunities") as principal:
        try:
            with unit_of_work() as session:
                result = reports.forecast(session, principal, unit_id=unit_id, months=6)
                funnel = reports.funnel(session, principal, unit_id=unit_id)
                service_levels = reports.lead_service_levels(session, principal, unit_id=unit_id) \
                    if principal.can("leads") else None
                root = next(r for r in result["units"] if r.unit_id == result["root_id"])
                trail = [u for u in tenancy_service.list_units(session, principal)
                         if f"/{u.id}/" in root.path and u.id != root.unit_id] if principal.can("units") else []
                stage_labels = [opportunities.stage_name(s, locale()) for s in funnel["stages"]]
        except KehuError as error:
            notify_error(error)
            return
        with ui.row().classes("items-center gap-1 text-sm"):
            for unit in trail:
                ui.link(unit.name, f"/sales/reports?unit_id={unit.id}")
                ui.icon("chevron_right").classes("text-grey-6")
            ui.label(root.name).classes("font-medium").props('data-test="report-unit"')
        months = result["months"]
        totals = root.total
        weighted = [float(totals.get(m, {}).get("weighted", 0)) for m in months]
        won = [float(totals.get(m, {}).get("won", 0)) for m in months]
        pipeline = [float(totals.get(m, {}).get("pipeline", 0)) for m in months]
        overdue = totals.get("overdue", {})
        with ui.row().classes("w-full gap-4"):
            _stat(tr("report.weighted_6m"), money(sum(weighted)), "trending_up")
            _stat(tr("report.won_6m"), money(won[0]), "emoji_events")
            _stat(tr("report.overdue"), money(overdue.get("pipeline", 0)), "event_busy",
                  tr("report.overdue_hint", count=overdue.get("open_count", 0)))
            rates = reports.funnel_rates(funnel["units"][0].total, funnel["stages"])
            _stat(tr("report.win_rate"), f"{rates['win_rate']:.0%}" if rates["win_rate"] is not None else "—",
                  "percent", tr("report.days_to_win", days=f"{rates['days_to_win']:.0f}")
                  if rates["days_to_win"] is not None else "")
        with ui.card().classes("w-full"):
            ui.label(tr("report.forecast")).classes("text-lg font-medium")
            ui.label(tr("report.forecast_help")).classes("text-sm text-grey-7")
            ui.echart({
                "tooltip": {"trigger": "axis"},
                "legend": {"top": 0, "data": [tr("report.won"), tr("report.weighted"), tr("report.pipeline")]},
                "grid": {"left": 80, "right": 24, "top": 40, "bottom": 30},
                "xAxis": {"type": "category", "data": months},
                "yAxis": {"type": "value", "axisLabel": {":formatter": "v => (v / 10000).toLocaleString() + '万'"}
                          if locale() == "zh" else {}},
                "series": [
                    {"name": tr("report.won"), "type": "bar", "stack": "f", "data": won,
                     "itemStyle": {"color": "#2e7d32"}},
                    {"name": tr("report.weighted"), "type": "bar", "stack": "f", "data": weighted,
                     "itemStyle": {"color": "#1f4e79"}},
                    {"name": tr("report.pipeline"), "type": "line", "data": pipeline,
                     "itemStyle": {"color": "#c0392b"}, "lineStyle": {"type": "dashed"}}],
            }).classes("w-full h-72").props('data-test="forecast-chart"')
            children = reports.visible_rows(result["units"], root.unit_id, children_only=True)
            columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                       *({"name": m, "label": m, "field": m} for m in months),
                       {"name": "total", "label": tr("report.total"), "field": "total"}]
            rows = []
            for node in children:
                if node.unit_id == root.unit_id and not node.own:
                    continue  # nothing held at this level itself
                figures = node.own if node.unit_id == root.unit_id else node.total
                label = tr("report.own", unit=node.name) if node.unit_id == root.unit_id else node.name
                cells = {m: money(figures.get(m, {}).get("weighted", 0)) for m in months}
                rows.append({"id": node.unit_id, "unit": label, "drill": node.unit_id != root.unit_id, **cells,
                             "total": money(sum(float(figures.get(m, {}).get("weighted", 0)) for m in months))})
            table = ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full")
            table.props('data-test="forecast-table"')
            table.on("row-click", lambda e: ui.navigate.to(f"/sales/reports?unit_id={e.args[1]['id']}")
                     if e.args[1].get("drill") else None)
            table.classes("cursor-pointer")
        with ui.card().classes("w-full"):
            ui.label(tr("report.funnel")).classes("text-lg font-medium")
            ui.label(tr("report.funnel_help")).classes("text-sm text-grey-7")
            reached = [rates["reached"][s.key] for s in funnel["stages"]]
            ui.echart({
                "tooltip": {"trigger": "item"},
                "grid": {"left": 90, "right": 40, "top": 10, "bottom": 20},
                "xAxis": {"type": "value", "minInterval": 1},
                "yAxis": {"type": "category", "data": stage_labels[::-1]},
                "series": [{"type": "bar", "data": reached[::-1], "itemStyle": {"color": "#1f4e79"},
                            "label": {"show": True, "position": "right"}}],
            }).classes("w-full h-64").props('data-test="funnel-chart"')
            stage_cols = [{"name": s.key, "label": name, "field": s.key} for s, name in zip(
                funnel["stages"], stage_labels, strict=True)]
            columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                       {"name": "opened", "label": tr("report.opened"), "field": "opened"}, *stage_cols[1:],
                       {"name": "won", "label": tr("report.won_count"), "field": "won"},
                       {"name": "lost", "label": tr("report.lost_count"), "field": "lost"},
                       {"name": "win_rate", "label": tr("report.win_rate"), "field": "win_rate"},
                       {"name": "days", "label": tr("report.cycle"), "field": "days"}]
            rows = []
            for node in reports.visible_rows(funnel["units"], root.unit_id, children_only=True):
                figures = reports.funnel_rates(node.total, funnel["stages"])
                rows.append({"id": node.unit_id, "unit": node.name, "opened": figures["opened"],
                             **{s.key: (f"{figures['reached'][s.key]} · {figures['rates'][s.key]:.0%}"
                                        if figures["rates"].get(s.key) is not None else "—")
                                for s in funnel["stages"][1:]},
                             "won": figures["won"], "lost": figures["lost"],
                             "win_rate": f"{figures['win_rate']:.0%}" if figures["win_rate"] is not None else "—",
                             "days": f"{figures['days_to_win']:.1f}" if figures["days_to_win"] is not None else "—"})
            ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full").props(
                'data-test="funnel-table"')
            stays = rates["days_in_stage"]
            if stays:
                ui.label(tr("report.days_in_stage") + (": " if locale() == "en" else "：") + listed(
                    f"{name} {stays[s.key]:.1f}" for s, name in zip(funnel["stages"], stage_labels, strict=True)
                    if s.key in stays)).classes("text-sm text-grey-8")
        if service_levels is not None:
            with ui.card().classes("w-full"):
                ui.label(tr("report.sla")).classes("text-lg font-medium")
                ui.label(tr("report.sla_help")).classes("text-sm text-grey-7")
                columns = [{"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                           *({"name": k, "label": tr(f"report.sla.{k}"), "field": k} for k in (
                               "assigned", "in_time", "late", "waiting_late", "waiting", "escalated", "in_time_rate",
                               "hours_to_contact"))]
                rows = []
                for node in reports.visible_rows(service_levels["units"], root.unit_id, children_only=True):
                    figures = reports.service_level_rates(node.total)
                    rows.append({"id": node.unit_id, "unit": node.name, **{k: figures[k] for k in (
                        "assigned", "in_time", "late", "waiting_late", "waiting", "escalated")},
                        "in_time_rate": f"{figures['in_time_rate']:.0%}" if figures["in_time_rate"] is not None
                        else "—", "hours_to_contact": f"{figures['hours_to_contact']:.1f}"
                        if figures["hours_to_contact"] is not None else "—"})
                ui.table(columns=columns, rows=rows, row_key="id").props("flat dense").classes("w-full").props(
                    'data-test="sla-table"')


def _stat(label: str, value: str, icon: str, hint: str = "") -> None:
    with ui.card().classes("min-w-[220px] flex-1"), ui.row().classes("items-center gap-4 no-wrap"):
        ui.icon(icon).classes("text-4xl text-primary")
        with ui.column().classes("gap-0"):
            ui.label(value).classes("text-2xl font-bold text-grey-9")
            ui.label(label).classes("text-sm text-grey-7")
            if hint:
                ui.label(hint).classes("text-xs text-grey-6")


# -- pipeline settings -------------------------------------------------------------------------------------------
def pipelines_page() -> None:
    """Each pipeline's stages in order: names in both languages, probability, the fields a deal needs to
    enter, the won stage last. Stages are added, renamed, reordered; one that holds deals cannot go."""
    with frame("nav.pipelines", "/admin/pipelines", "settings.manage") as principal:
        may_edit = principal.has("settings.manage")
        area = ui.column().classes("w-full gap-4")

        def draw() -> None:
            area.clear()
            with unit_of_work() as session:
                pipelines = [(p.id, p.name, p.is_default, [
                    {"key": s.key, "name_zh": s.name_zh, "name_en": s.name_en, "probability": s.probability,
                     "is_won": s.is_won, "required_fields": list(s.required_fields or [])} for s in stages])
                    for p, stages in opportunities.list_pipelines(session, principal)]
            with area:
                if may_edit:
                    ui.button(tr("pipeline.new"), icon="add", on_click=lambda: edit(None, "", False, [
                        {"key": "start", "name_zh": "初步接洽", "name_en": "First contact", "probability": 10,
                         "is_won": False, "required_fields": []},
                        {"key": "won", "name_zh": "赢单", "name_en": "Won", "probability": 100, "is_won": True,
                         "required_fields": ["amount"]}])).props("outline no-caps")
                for pipeline_id, name, is_default, stages in pipelines:
                    with ui.card().classes("w-full"):
                        with ui.row().classes("w-full items-center"):
                            ui.label(name).classes("text-lg font-medium")
                            if is_default:
                                ui.badge(tr("pipeline.default_badge")).props("color=primary")
                            ui.space()
                            if may_edit:
                                ui.button(tr("common.edit"), icon="edit", on_click=lambda p=pipeline_id, n=name,
                                          d=is_default, s=stages: edit(p, n, d, s)).props("flat no-caps").props(
                                    f'data-test="pipeline-edit-{pipeline_id}"')
                        ui.table(columns=[
                            {"name": "n", "label": "#", "field": "n"},
                            {"name": "name", "label": tr("pipeline.stage"), "field": "name", "align": "left"},
                            {"name": "probability", "label": tr("opp.probability"), "field": "probability"},
                            {"name": "required", "label": tr("pipeline.required"), "field": "required",
                             "align": "left"}],
                            rows=[{"n": n + 1, "name": f"{s['name_zh']} / {s['name_en']}"
                                   + (aside(tr("pipeline.won_stage")) if s["is_won"] else ""),
                                   "probability": f"{s['probability']}%",
                                   "required": listed(tr(f"pipeline.field.{f}") for f in s["required_fields"])
                                   or "—"} for n, s in enumerate(stages)], row_key="n").props(
                            "flat dense").classes("w-full")

        def edit(pipeline_id: int | None, name: str, is_default: bool, stages: list[dict[str, Any]]) -> None:
            rows = [dict(s) for s in stages]
            with ui.dialog() as dialog, ui.card().classes("w-[900px] max-w-full"):
                ui.label(tr("pipeline.edit")).classes("text-lg font-medium")
                with ui.row().classes("w-full items-center gap-3"):
                    title = ui.input(tr("pipeline.name"), value=name).props("outlined dense").classes("w-64")
                    default = ui.checkbox(tr("pipeline.make_default"), value=is_default)
                ui.label(tr("pipeline.help")).classes("text-sm text-grey-7")
                lines = ui.column().classes("w-full gap-1")

                def draw_lines() -> None:
                    lines.clear()
                    with lines:
                        for n, row in enumerate(rows):
                            with ui.row().classes("w-full items-center gap-2 no-wrap"):
                                ui.input(tr("pipeline.key"), value=row["key"]).bind_value(row, "key").props(
                                    "outlined dense").classes("w-32")
                                ui.input("中文", value=row["name_zh"]).bind_value(row, "name_zh").props(
                                    "outlined dense").classes("w-32")
                                ui.input("English", value=row["name_en"]).bind_value(row, "name_en").props(
                                    "outlined dense").classes("w-32")
                                ui.number("%", value=row["probability"], min=0, max=100).bind_value(
                                    row, "probability").props("outlined dense").classes("w-20")
                                ui.select({f: tr(f"pipeline.field.{f}") for f in schemas.REQUIRABLE}, multiple=True,
                                          value=row["required_fields"], label=tr("pipeline.required")).bind_value(
                                    row, "required_fields").props("outlined dense use-chips").classes("flex-1")
                                ui.button(icon="arrow_upward", on_click=lambda i=n: move(i, -1)).props(
                                    "flat dense round").set_enabled(0 < n < len(rows) - 1)
                                ui.button(icon="delete", on_click=lambda i=n: drop(i)).props(
                                    "flat dense round color=negative").set_enabled(n < len(rows) - 1)

                def move(index: int, step: int) -> None:
                    rows[index + step], rows[index] = rows[index], rows[index + step]
                    draw_lines()

                def drop(index: int) -> None:
                    rows.pop(index)
                    draw_lines()

                def add() -> None:
                    rows.insert(len(rows) - 1, {"key": f"stage_{len(rows)}", "name_zh": "", "name_en": "",
                                                "probability": 50, "is_won": False, "required_fields": []})
                    draw_lines()

                def save() -> None:
                    data = validated(lambda: schemas.PipelineIn(name=title.value or "", is_default=default.value,
                                                                stages=[{**r, "probability": int(r["probability"] or 0)}
                                                                        for r in rows]))
                    if data is None:
                        return
                    if run_action(lambda s: opportunities.save_pipeline(s, principal, data, pipeline_id),
                                  tr("done.pipeline_saved", name=data.name)) is not None:
                        dialog.close()
                        draw()

                draw_lines()
                with ui.row().classes("w-full"):
                    ui.button(tr("pipeline.add_stage"), icon="add", on_click=add).props("flat no-caps")
                    ui.space()
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).props('data-test="pipeline-save"')
            dialog.open()

        draw()
