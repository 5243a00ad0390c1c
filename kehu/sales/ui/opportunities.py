"""Opportunities: the kanban board by stage (drag a card to move it; drop it on "lost" to close it) and the list,
the new-deal and lost dialogs, the conversion of a lead, the customer's deals on the 360, and the money, stage
and input helpers the other sales pages share (a deal's page: opportunity.py; reports.py; pipelines.py)."""

from __future__ import annotations

from datetime import date
from typing import Any

from nicegui import ui

from kehu.cdp import normalise
from kehu.cdp import service as cdp_service
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.sales import opportunities, schemas
from kehu.sales import pipelines as pipeline_service
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ParsedInput, ServerTable, add_status_slot, readable_phone
from kehu.ui.shell import empty_state, frame, locale, notify_error, page, run_action, tr, unit_of_work, validated

STATUS_COLOURS = {"open": "primary", "won": "positive", "lost": "grey-6"}
LOST_REASONS = ("price", "competitor", "no_budget", "no_decision", "product_fit", "timing", "no_response", "other")
SALES_METHODS = ("direct", "distribution", "agency", "fleet", "online")
INFLUENCE = ("high", "medium", "low")


def register() -> None:
    from kehu.sales.ui.opportunity import opportunity_page
    from kehu.sales.ui.pipelines import pipelines_page
    from kehu.sales.ui.reports import reports_page

    page("/opportunities")(opportunities_page)
    page("/opportunities/{opportunity_id}")(opportunity_page)
    page("/sales/reports")(reports_page)
    page("/admin/pipelines")(pipelines_page)


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
            pipelines = {p.id: p.name for p, _ in pipeline_service.list_pipelines(session, principal)}
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
                    columns = [(c["stage"].id, c["stage"].key, pipeline_service.stage_name(c["stage"], locale()),
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
             "stage": pipeline_service.stage_name(stages[d.stage_id], locale()) if d.stage_id in stages else "",
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
                options = {p.id: " · ".join(filter(None, [p.name, readable_phone(
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


def customer_opportunities(principal: Any, profile_id: int) -> None:
    if not principal.can("opportunities"):
        return
    try:
        with unit_of_work() as session:
            deals = opportunities.opportunities_of(session, principal, profile_id)
            keys = opportunities.all_stages(session, principal.org_id)
            rows = [(d.id, d.title, d.status, pipeline_service.stage_name(keys[d.stage_id], locale()), d.amount,
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
