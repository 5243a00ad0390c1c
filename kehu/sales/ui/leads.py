"""Lead pages: the work queue (status tabs, overdue and unassigned counts, search), a lead's panel with its
customer, life-cycle moves, assignment and history; new inquiries; the customer's leads on the 360."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import service as cdp_service
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.timeutil import aware, format_local
from kehu.sales import activities, schemas, scoring, service
from kehu.sales.models import OPEN_STATUSES, STATUSES
from kehu.sales.ui import opportunities as opportunities_ui
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ServerTable, add_status_slot, readable_phone
from kehu.ui.shell import frame, notify_error, run_action, tr, unit_of_work

STATUS_COLOURS = {"inquiry": "blue-grey-6", "mql": "light-blue-8", "sal": "indigo-6", "sql": "deep-purple-6",
                  "converted": "positive", "disqualified": "grey-6", "recycled": "orange-8"}
SOURCES = ("call_centre", "showroom", "web", "app", "wechat", "event", "manual")
ACTIVITY_KINDS = ("call", "visit", "test_drive", "quote", "wechat", "sms", "email", "task")
REASONS = ("no_budget", "no_response", "bought_elsewhere", "not_interested", "duplicate", "invalid_contact", "other")


def _status_slot(table: ui.table) -> None:
    add_status_slot(table, "status", {s: tr(f"lead.status.{s}") for s in STATUSES}, STATUS_COLOURS)


def leads_page(lead_id: int | None = None) -> None:
    """The queue; with ``lead_id`` (a link from a customer's timeline) that lead's panel opens on it."""
    with frame("nav.leads", "/leads", "leads") as principal:
        filters: dict[str, Any] = {"status": "open", "q": "", "unit_id": None, "overdue": False,
                                   "unassigned": False, "mine": False}
        with unit_of_work() as session:
            totals = service.counts(session, principal)
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
        with ui.row().classes("w-full items-center gap-2"):
            # opened on "open" without an on_change call: pick() is defined further down
            tabs = ui.tabs(value="open", on_change=lambda e: pick(e.value)).props(
                "dense no-caps active-color=primary").classes("text-grey-8")
            with tabs:
                tab_of = {"open": ui.tab("open", label=tr("leads.open", count=f"{totals.get('open', 0):,}"))}
                for status in STATUSES:
                    tab_of[status] = ui.tab(status, label=f"{tr(f'lead.status.{status}')} {totals.get(status, 0):,}")
        with ui.row().classes("w-full items-center gap-3"):
            ui.input(placeholder=tr("leads.search"), on_change=lambda e: apply("q", e.value)).props(
                "outlined dense clearable debounce=300").classes("w-80")
            if units and len(units) > 1:
                ui.select(units, label=tr("users.unit"), clearable=True, with_input=True,
                          on_change=lambda e: apply("unit_id", e.value)).props("outlined dense").classes("w-56")
            overdue_box = ui.checkbox(tr("leads.overdue_only", count=totals.get("overdue", 0)),
                                      on_change=lambda e: apply("overdue", e.value)).mark("leads-overdue")
            unassigned_box = ui.checkbox(tr("leads.unassigned_only", count=totals.get("unassigned", 0)),
                                         on_change=lambda e: apply("unassigned", e.value))
            if principal.user_id and principal.depth("leads", "read") != "own":
                ui.checkbox(tr("leads.mine"), on_change=lambda e: apply("mine", e.value))
            ui.space()
            if principal.can("leads", "create"):
                ui.button(tr("leads.new"), icon="add_call", on_click=lambda: new_lead()).mark("new-lead")

        todo_area = ui.column().classes("w-full")

        def draw_todo() -> None:
            """The reader's planned follow-ups, overdue ones first: the day's to-do list."""
            todo_area.clear()
            if not (principal.user_id and principal.can("activities")):
                return
            with unit_of_work() as session:
                mine = activities.page(session, principal, mine_open=True, per_page=8)
                people = service.customers_of(session, principal, mine.items)
                items = [(a.id, a.lead_id, a.kind, a.subject, a.due_at, activities.out(a)["overdue"],
                          (people.get(a.profile_id).name if people.get(a.profile_id) else None)) for a in mine.items]
                total = mine.total
            if not items:
                return
            with todo_area, ui.card().classes("w-full bg-amber-1 shadow-none"):
                ui.label(tr("activities.todo", count=total)).classes("font-medium").mark("todo")
                for a_id, a_lead, a_kind, a_subject, a_due, a_late, who in items:
                    with ui.row().classes("w-full no-wrap items-center gap-2 text-sm"):
                        ui.icon("alarm" if a_late else "schedule").classes(
                            "text-negative" if a_late else "text-grey-7")
                        ui.label(format_local(a_due, principal.timezone) if a_due else "—").classes(
                            "w-32 shrink-0 " + ("text-negative" if a_late else "text-grey-7"))
                        text = " · ".join(filter(None, [tr(f"activity.kind.{a_kind}"), who, a_subject]))
                        if a_lead:
                            ui.link(text).on("click", lambda _=None, i=a_lead: lead_panel(
                                principal, i, changed)).classes("flex-1 cursor-pointer")
                        else:
                            ui.label(text).classes("flex-1")
                        ui.button(tr("activities.done"), on_click=lambda i=a_id: finish(i)).props(
                            "flat dense no-caps")

        def finish(activity_id: int) -> None:
            if run_action(lambda s: activities.complete(s, principal, activity_id), tr("done.activity_completed")):
                draw_todo()

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
            with unit_of_work() as session:
                result = service.page_leads(session, principal, status=filters["status"], q=filters["q"] or None,
                                            unit_id=filters["unit_id"], overdue=filters["overdue"],
                                            unassigned=filters["unassigned"],
                                            owner_id=principal.user_id if filters["mine"] else None,
                                            page=page_no, per_page=per_page)
                return _rows(session, principal, result.items), result.total

        columns = [
            {"name": "customer", "label": tr("leads.customer"), "field": "customer", "align": "left"},
            {"name": "mobile", "label": tr("users.phone"), "field": "mobile", "align": "left"},
            {"name": "model", "label": tr("leads.model"), "field": "model", "align": "left"},
            {"name": "source", "label": tr("leads.source"), "field": "source", "align": "left"},
            {"name": "status", "label": tr("leads.status"), "field": "status", "align": "left"},
            {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
            {"name": "owner", "label": tr("customers.owner"), "field": "owner", "align": "left"},
            {"name": "inquiries", "label": tr("leads.inquiries"), "field": "inquiries"},
            {"name": "last_inquiry", "label": tr("leads.last_inquiry"), "field": "last_inquiry", "align": "left"},
            {"name": "due", "label": tr("leads.due"), "field": "due", "align": "left"},
        ]
        table = ServerTable(columns, fetch, tr=tr, empty_text=tr("leads.empty"),
                            on_row_click=lambda row: lead_panel(principal, row["id"], changed))
        _status_slot(table.table)
        table.table.add_slot("body-cell-due", """
            <q-td :props="props"><span :class="props.row.overdue ? 'text-negative text-weight-bold' : ''">
              <q-icon v-if="props.row.overdue" name="alarm" class="q-mr-xs" />{{ props.value }}</span></q-td>""")

        def recount() -> None:
            """The tabs' and filters' counts after a change made on this page (they went stale until a reload)."""
            with unit_of_work() as session:
                now = service.counts(session, principal)
            for status, tab in tab_of.items():
                label = tr("leads.open", count=f"{now.get('open', 0):,}") if status == "open" else \
                    f"{tr(f'lead.status.{status}')} {now.get(status, 0):,}"
                tab.props(f'label="{label}"')
            overdue_box.set_text(tr("leads.overdue_only", count=now.get("overdue", 0)))
            unassigned_box.set_text(tr("leads.unassigned_only", count=now.get("unassigned", 0)))

        def changed() -> None:
            table.reload()
            recount()

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            table.reload(first_page=True)

        def pick(status: str) -> None:
            apply("status", status)

        def new_lead() -> None:
            _new_lead_dialog(principal, lambda: (table.reload(first_page=True), recount()))

        draw_todo()
        if lead_id is not None:
            lead_panel(principal, int(lead_id), changed)


def _rows(session: Any, principal: Any, leads: list[Any]) -> list[dict[str, Any]]:
    profiles = service.customers_of(session, principal, leads)
    view = CustomerView.of(session, principal)
    owners, units = cdp_service.names_for(session, user_ids={lead.owner_id for lead in leads if lead.owner_id},
                                          unit_ids={lead.unit_id for lead in leads})
    rows = []
    for lead in leads:
        profile = profiles.get(lead.profile_id)
        mobile = view.profile(profile).mobile if profile else None
        rows.append({"id": lead.id, "customer": (profile.name if profile else None) or f"#{lead.profile_id}",
                     "mobile": readable_phone(mobile) or "—", "model": lead.model_interest or "—",
                     "source": tr(f"lead.source.{lead.source}"), "status": lead.status,
                     "unit": units.get(lead.unit_id, ""), "owner": owners.get(lead.owner_id, "—")
                     if lead.owner_id else tr("leads.unassigned"), "inquiries": lead.inquiries,
                     "last_inquiry": format_local(lead.last_inquiry_at, principal.timezone),
                     "due": format_local(lead.first_contact_due_at, principal.timezone)
                     if lead.first_contact_due_at and lead.first_contacted_at is None
                     and lead.status in OPEN_STATUSES else "—",
                     "overdue": service.is_overdue(lead)})
    return rows


def offer_inquiry(principal: Any, held: dict[str, str | None]) -> None:
    """A new customer's mobile or e-mail is already the group's: record an inquiry for the person instead (the
    customer form offers it, through the manifest's inquiry actions)."""
    _new_lead_dialog(principal, lambda: ui.navigate.to("/leads"), held)


def _new_lead_dialog(principal: Any, done: Any, held: dict[str, str | None] | None = None) -> None:
    """A call or a walk-in: who (found by mobile or e-mail when known), what they want, where from. ``held``:
    what another form already knows of the person (a new customer whose mobile the group knows)."""
    held = held or {}
    with ui.dialog() as dialog, ui.card().classes("w-[560px] max-w-full"):
        ui.label(tr("leads.new")).classes("text-lg font-medium")
        ui.label(tr("leads.new_help")).classes("text-sm text-grey-7")
        with ui.row().classes("w-full gap-3 no-wrap"):
            name = ui.input(tr("customers.name"), value=held.get("name") or "").props("outlined dense").classes(
                "flex-1").mark("lead-name")
            mobile = ui.input(tr("users.phone"), value=held.get("mobile") or "").props("outlined dense").classes(
                "flex-1").mark("lead-mobile")
        email = ui.input(tr("users.email"), value=held.get("email") or "").props("outlined dense").classes(
            "w-full").mark("lead-email")
        with ui.row().classes("w-full gap-3 no-wrap"):
            city = ui.input(tr("unit.city"), value=held.get("city") or "").props("outlined dense").classes(
                "flex-1").mark("lead-city")
            model = ui.input(tr("leads.model"), placeholder="ID.4").props("outlined dense").classes("flex-1")
        source = ui.select({s: tr(f"lead.source.{s}") for s in SOURCES},
                           value="showroom" if principal.depth("leads", "create") == "own" else "call_centre",
                           label=tr("leads.source")).props("outlined dense").classes("w-full")
        note = ui.textarea(tr("leads.note")).props("outlined dense autogrow").classes("w-full")

        def save() -> None:
            try:
                data = schemas.LeadCreate(name=name.value or None, mobile=mobile.value or None,
                                          email=email.value or None, city=city.value or None,
                                          model_interest=model.value or None, source=source.value,
                                          note=note.value or "")
            except ValidationError:
                ui.notify(tr("leads.need_mobile"), type="warning")
                return
            made = run_action(lambda s: service.create_lead(s, principal, data))
            if made is None:
                return
            _lead, created = made
            ui.notify(tr("leads.created" if created else "leads.updated"), type="positive")
            dialog.close()
            done()

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).mark("lead-save")
    dialog.open()


def lead_panel(principal: Any, lead_id: int, changed: Any) -> None:
    """One lead in a side dialog: its customer, where it stands, the moves it may make, its history."""
    with ui.dialog().props("position=right maximized") as dialog, ui.card().classes("w-[560px] h-full"):
        body = ui.column().classes("w-full gap-3")

        def draw() -> None:
            body.clear()
            try:
                with unit_of_work() as session:
                    lead = service.get_lead(session, principal, lead_id)
                    profile = service.customers_of(session, principal, [lead]).get(lead.profile_id)
                    shown = CustomerView.of(session, principal).profile(profile) if profile else None
                    owners, units = cdp_service.names_for(session, user_ids={lead.owner_id} - {None},
                                                          unit_ids={lead.unit_id})
                    placed_at = units.get(lead.unit_id, "")
                    placed_with = owners.get(lead.owner_id or 0, tr("leads.unassigned"))
                    history = service.history(session, principal, lead_id)
                    score, parts = lead.score, scoring.explain(session, principal, lead)
                    done_things = [(a.id, a.kind, a.subject, a.note, a.outcome, a.due_at, a.done_at,
                                    activities.out(a)["overdue"]) for a in activities.page(
                        session, principal, lead_id=lead_id, per_page=100).items] \
                        if principal.can("activities") else []
                    actors = {h.id: h.actor if h.actor != "system" else tr("timeline.system") for h in history}
                    may_assign = principal.can("leads", "assign")
                    people = {u.id: u.name for u in tenancy_service.list_users(
                        session, principal, unit_id=lead.unit_id, active=True, limit=200).items} \
                        if may_assign and principal.can("users") else {}
                    may_update = principal.can("leads", "update")
                    facts = (lead.status, lead.source, lead.model_interest, lead.inquiries, lead.note,
                             lead.first_contact_due_at, lead.first_contacted_at, service.is_overdue(lead),
                             lead.disqualify_reason, lead.profile_id)
            except KehuError as error:
                notify_error(error)
                dialog.close()
                return
            status, source, model, inquiries, note, due, contacted, overdue, reason, profile_id = facts
            with body:
                with ui.row().classes("w-full items-center"):
                    ui.label(tr("leads.lead", id=lead_id)).classes("text-xl font-medium")
                    ui.badge(tr(f"lead.status.{status}")).props(f"color={STATUS_COLOURS[status]}").mark(
                        "lead-status")
                    ui.space()
                    ui.button(icon="close", on_click=dialog.close).props("flat round dense")
                with ui.card().classes("w-full bg-grey-1 shadow-none"):
                    if shown is not None:
                        ui.link(shown.name or f"#{profile_id}", f"/customers/{profile_id}").classes(
                            "text-lg font-medium")
                        ui.label(" · ".join(filter(None, [readable_phone(shown.mobile), shown.city]))).classes(
                            "text-grey-8")
                    ui.label(tr("leads.facts", source=tr(f"lead.source.{source}"), model=model or "—",
                                count=inquiries)).classes("text-sm text-grey-8")
                    ui.label(tr("leads.placed", unit=placed_at, owner=placed_with)).classes("text-sm text-grey-8")
                    if due and not contacted and status in OPEN_STATUSES:
                        ui.label(tr("leads.due_at", at=format_local(due, principal.timezone))).classes(
                            "text-sm " + ("text-negative font-medium" if overdue else "text-grey-8"))
                    if reason:
                        ui.label(tr("leads.reason_was", reason=tr(f"lead.reason.{reason}"))).classes("text-sm")
                    with ui.row().classes("items-center gap-2 text-sm"):
                        ui.icon("speed").classes("text-primary")
                        ui.label(tr("leads.score", score=score)).classes("font-medium").mark("lead-score")
                        if parts:
                            ui.label("（" + "，".join(f"{p['rule']} {p['points']:+d}" for p in parts) + "）"
                                     ).classes("text-grey-7")
                    if note:
                        ui.label(note).classes("text-sm whitespace-pre-line")
                if may_update and status in OPEN_STATUSES and not contacted:
                    ui.button(tr("leads.contacted"), icon="phone_in_talk", on_click=lambda: act(
                        lambda s: service.mark_contacted(s, principal, lead_id),
                        tr("done.lead_contacted"))).props("outline").mark(
                        "lead-contacted")
                moves = service.TRANSITIONS[status]
                if may_update and moves:
                    ui.label(tr("leads.move")).classes("font-medium")
                    with ui.row().classes("gap-2"):
                        for to in moves:
                            if to == "disqualified":
                                continue
                            ui.button(tr(f"lead.status.{to}"), on_click=lambda s=to: act(
                                lambda ses: service.change_status(ses, principal, lead_id,
                                                                  schemas.StatusChange(status=s)),
                                tr("done.lead_status", status=tr(f"lead.status.{s}")))).props(
                                f"unelevated no-caps color={STATUS_COLOURS[to]}").mark(f"lead-to-{to}")
                        if status in OPEN_STATUSES and principal.can("opportunities", "create"):
                            ui.button(tr("opp.convert"), icon="handshake", on_click=lambda: (
                                dialog.close(), opportunities_ui.convert_dialog(principal, lead_id, model))).props(
                                "outline no-caps color=positive").props('data-test="lead-convert"')
                    if "disqualified" in moves:
                        with ui.row().classes("items-center gap-2"):
                            why = ui.select({r: tr(f"lead.reason.{r}") for r in REASONS}, label=tr("leads.reason"))\
                                .props("outlined dense").classes("w-48")
                            ui.button(tr("leads.disqualify"), icon="block", on_click=lambda: act(
                                lambda ses: service.change_status(ses, principal, lead_id, schemas.StatusChange(
                                    status="disqualified", reason=why.value)),
                                tr("done.lead_status", status=tr("lead.status.disqualified")))
                            if why.value else ui.notify(
                                tr("leads.reason"), type="warning")).props("flat color=negative no-caps")
                if people and status in OPEN_STATUSES:
                    with ui.row().classes("items-center gap-2"):
                        who = ui.select(people, label=tr("leads.assign_to"), with_input=True).props(
                            "outlined dense").classes("w-56")
                        ui.button(tr("leads.assign"), icon="person_add", on_click=lambda: act(
                            lambda ses: service.assign(ses, principal, lead_id, schemas.Assignment(
                                owner_id=who.value)), tr("done.assigned", name=people.get(who.value, "")))
                            if who.value else None).props("flat no-caps")
                if principal.can("activities", "create") and status in OPEN_STATUSES:
                    ui.label(tr("activities.log")).classes("font-medium")
                    with ui.row().classes("w-full items-center gap-2"):
                        kind = ui.select({k: tr(f"activity.kind.{k}") for k in ACTIVITY_KINDS}, value="call").props(
                            "outlined dense").classes("w-28").mark("activity-kind")
                        subject = ui.input(tr("activities.subject")).props("outlined dense").classes(
                            "flex-1").mark("activity-subject")
                        due = ui.input(tr("activities.due"), placeholder="2026-12-01 10:00").props(
                            "outlined dense").classes("w-40")
                        ui.button(tr("activities.save"), icon="add_task", on_click=lambda: log()).props(
                            "flat no-caps").mark("activity-save")
                        state["activity"] = (kind, subject, due)
                if done_things:
                    ui.label(tr("activities.title")).classes("font-medium")
                    for a_id, a_kind, a_subject, a_note, a_outcome, a_due, a_done, a_late in done_things:
                        with ui.row().classes("w-full no-wrap items-center gap-2 text-sm py-1"):
                            ui.icon("task_alt" if a_done else ("alarm" if a_late else "schedule")).classes(
                                "text-positive" if a_done else ("text-negative" if a_late else "text-grey-7"))
                            ui.label(" · ".join(filter(None, [tr(f"activity.kind.{a_kind}"), a_subject, a_note,
                                                              a_outcome]))).classes("flex-1")
                            when = a_done or a_due
                            ui.label(format_local(when, principal.timezone) if when else "").classes(
                                "text-grey-6 shrink-0")
                            if not a_done:
                                ui.button(tr("activities.done"), on_click=lambda i=a_id: act(
                                    lambda ses: activities.complete(ses, principal, i),
                                    tr("done.activity_completed"))).props("flat dense no-caps")
                ui.separator()
                ui.label(tr("leads.history")).classes("font-medium")
                for h in history:
                    with ui.row().classes("w-full no-wrap gap-3 text-sm py-1 border-b border-gray-100"):
                        ui.label(format_local(h.at, principal.timezone)).classes("text-grey-6 w-32 shrink-0")
                        ui.label(_history_text(h)).classes("flex-1")
                        ui.label(actors.get(h.id, "")).classes("text-grey-7 shrink-0")

        def act(fn: Any, done: str) -> None:
            if run_action(fn, done) is not None:
                draw()
                changed()

        def log() -> None:
            inputs = state.get("activity")
            if not inputs:
                return
            kind, subject, due = inputs
            try:
                due_at = aware(datetime.fromisoformat(due.value.strip()), principal.timezone) \
                    if (due.value or "").strip() else None
                data = schemas.ActivityIn(lead_id=lead_id, kind=kind.value, subject=subject.value or "",
                                          due_at=due_at)
            except (ValueError, ValidationError):
                ui.notify(tr("activities.bad_due"), type="warning")
                return
            act(lambda ses: activities.log(ses, principal, data), tr("done.activity_logged"))

        state: dict[str, Any] = {}

        draw()
    dialog.open()


def _history_text(change: Any) -> str:
    if change.kind == "status":
        return tr("timeline.lead_status", **{"from": tr(f"lead.status.{change.from_status}"),
                                             "to": tr(f"lead.status.{change.to_status}")}) + (
            f" · {tr(f'lead.reason.{change.reason}')}" if change.reason in REASONS else "")
    return tr(f"timeline.lead_{change.kind}")


# -- on the Customer 360 -----------------------------------------------------------------------------------
def customer_leads(principal: Any, profile_id: int) -> None:
    if not principal.can("leads"):
        return
    try:
        with unit_of_work() as session:
            leads = service.leads_of(session, principal, profile_id)
            owners, _ = cdp_service.names_for(session, user_ids={lead.owner_id for lead in leads if lead.owner_id},
                                              unit_ids=set())
            rows = [(lead.id, lead.status, lead.model_interest, owners.get(lead.owner_id or 0),
                     format_local(lead.last_inquiry_at, principal.timezone)) for lead in leads]
    except KehuError:
        return
    with ui.card().classes("w-full"):
        ui.label(tr("leads.of_customer")).classes("text-lg font-medium")
        if not rows:
            ui.label(tr("leads.of_customer_none")).classes("text-grey-7 text-sm")
        for lead_id, status, model, owner, at in rows:
            with ui.row().classes("w-full items-center gap-2 text-sm cursor-pointer").on(
                    "click", lambda _=None, i=lead_id: lead_panel(principal, i, lambda: None)):
                ui.badge(tr(f"lead.status.{status}")).props(f"color={STATUS_COLOURS[status]}")
                ui.label(model or "—")
                ui.label(owner or tr("leads.unassigned")).classes("text-grey-7")
                ui.space()
                ui.label(at).classes("text-grey-6")
