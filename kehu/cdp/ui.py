"""Customer pages: the customer list (search, filters, server-side paging) and Customer 360; data sources.

Over 800 lines: the customer list, the Customer 360 and its panels, and the data-source, product and field
settings pages; to split next are the settings pages into cdp/settings_ui.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nicegui import ui

from kehu.cdp import commerce, dedupe_ui, exports, fields, identity_rules, imports, relations, schemas, service
from kehu.cdp import timeline as history
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.i18n import t
from kehu.core.jobs import Job
from kehu.core.timeutil import format_local
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.masking import is_masked
from kehu.ui.components import ServerTable, add_status_slot, localise_table, readable_phone
from kehu.ui.shell import (
    empty_state,
    frame,
    locale,
    notify_error,
    page,
    run_action,
    tr,
    unit_of_work,
    validated,
)

STAGES = ("visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned")
STAGE_COLOURS = {"visitor": "grey-6", "prospect": "blue-grey-6", "lead": "light-blue-8", "opportunity": "indigo-6",
                 "customer": "green-7", "owner": "teal-8", "churned": "red-6"}
# Panels other domains add to the Customer 360 (segments, later leads and cases): called with the principal and
# the customer's id, in the side column. Lets the 360 show them without the CDP depending on those domains.
CUSTOMER_PANELS: list[Callable[[Any, int], None]] = []
# Other domains' actions on customers picked in the list (put them in a segment, tag them): each adds its
# buttons, given the principal, a function returning the picked ids and one that clears the pick.
SELECTION_ACTIONS: list[Callable[[Any, Callable[[], list[int]], Callable[[], None]], None]] = []
# What a reader may do about a person the group already knows (a new customer's mobile or e-mail in use): sales
# offers to record an inquiry for them, the way a dealer takes up a customer held elsewhere. Called with the
# principal and what the form held (name, mobile, email, city).
INQUIRY_ACTIONS: list[Callable[[Any, dict[str, str | None]], None]] = []
EVENT_ICONS = {"page": "web", "screen": "smartphone", "identify": "badge", "group": "groups", "alias": "link",
               "track": "bolt"}


def register() -> None:
    page("/admin/custom-fields")(custom_fields_page)
    page("/admin/products")(products_page)
    page("/customers/import")(import_page)
    dedupe_ui.register()  # before /customers/{profile_id}, which would take "duplicates" for an id
    page("/customers")(customers_page)
    page("/customers/{profile_id}")(customer_page)
    page("/admin/sources")(sources_page)


def _stage_label(stage: str) -> str:
    return tr(f"stage.{stage}")


def _display_name(name: str | None, profile_id: int, out: schemas.ProfileOut | None = None) -> str:
    """The name, or for a customer who left none how to tell them apart (a mobile's last digits, an e-mail as
    the reader sees it); only someone who left nothing is an anonymous visitor."""
    if name:
        return name
    if out is not None and out.mobile:
        return tr("customers.nameless_mobile", tail=out.mobile[-4:])
    if out is not None and out.email:
        return tr("customers.nameless", contact=out.email)
    return tr("customers.anonymous", id=profile_id)


def _stage_slot(table: ui.table, column: str = "stage") -> None:
    add_status_slot(table, column, {s: _stage_label(s) for s in STAGES}, colours=STAGE_COLOURS)


# -- the list ------------------------------------------------------------------------------------------
def customers_page() -> None:
    with frame("nav.customers", "/customers", "profiles") as principal:
        filters: dict[str, Any] = {"q": "", "stage": None, "unit_id": None}
        with unit_of_work() as session:
            counts = service.profile_counts(session, principal)
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
        total = sum(counts.values())
        with ui.row().classes("w-full gap-2 items-center"):
            chip_all = ui.chip(f"{tr('customers.all')} {total:,}", on_click=lambda: pick_stage(None)).props(
                "clickable color=primary text-color=white")
            for stage in STAGES:
                if counts.get(stage):
                    ui.chip(f"{_stage_label(stage)} {counts[stage]:,}",
                            on_click=lambda s=stage: pick_stage(s)).props(
                        f"clickable outline color={STAGE_COLOURS[stage]}")
        with ui.row().classes("w-full items-center gap-3"):
            ui.input(placeholder=tr("customers.search"), on_change=lambda e: apply("q", e.value)).props(
                "outlined dense clearable debounce=300").classes("w-96").mark("customer-search")
            if units:
                ui.select(units, label=tr("users.unit"), clearable=True, with_input=True,
                          on_change=lambda e: apply("unit_id", e.value)).props("outlined dense").classes("w-56")
            ui.space()
            if principal.can("profiles", "export"):
                ui.button(tr("export.button"), icon="download", on_click=lambda: export_dialog(principal, filters)
                          ).props("outline")
            if principal.can("imports", "create"):
                ui.button(tr("imports.button"), icon="upload_file",
                          on_click=lambda: ui.navigate.to("/customers/import")).props("outline")
            if principal.can("profiles", "create"):
                ui.button(tr("customers.new"), icon="person_add", on_click=lambda: new_customer()).mark(
                    "new-customer")

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
            with unit_of_work() as session:
                result = service.page_profiles(session, principal, q=filters["q"] or None, stage=filters["stage"],
                                               unit_id=filters["unit_id"], sort=sort or "last_seen_at",
                                               descending=descending, page=page_no, per_page=per_page)
                owners, unit_names = service.names_for(
                    session, user_ids={p.owner_id for p in result.items if p.owner_id},
                    unit_ids={p.unit_id for p in result.items})
                view = CustomerView.of(session, principal)
                rows = []
                for p in result.items:
                    out = view.profile(p)
                    rows.append({"id": p.id, "name": _display_name(p.name, p.id, out),
                                 "mobile": readable_phone(out.mobile) or "—",
                                 "city": p.city or "—", "stage": p.lifecycle_stage,
                                 "owner": owners.get(p.owner_id, "—") if p.owner_id else "—",
                                 "unit": unit_names.get(p.unit_id, ""),
                                 "last_seen_at": format_local(p.last_seen_at, principal.timezone) or "—"})
                return rows, result.total

        columns = [
            {"name": "name", "label": tr("customers.name"), "field": "name", "sortable": True, "align": "left"},
            {"name": "mobile", "label": tr("users.phone"), "field": "mobile", "align": "left"},
            {"name": "city", "label": tr("unit.city"), "field": "city", "sortable": True, "align": "left"},
            {"name": "stage", "label": tr("customers.stage"), "field": "stage", "sortable": True, "align": "left"},
            {"name": "owner", "label": tr("customers.owner"), "field": "owner", "align": "left"},
            {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
            {"name": "last_seen_at", "label": tr("customers.last_seen"), "field": "last_seen_at", "sortable": True,
             "align": "left"},
        ]
        picked: list[int] = []
        picked_bar = ui.row().classes("w-full items-center gap-2 bg-blue-1 rounded px-3 py-1").mark("picked-bar")
        with picked_bar:
            picked_label = ui.label().classes("font-medium")
            for add_actions in SELECTION_ACTIONS:
                add_actions(principal, lambda: list(picked), lambda: clear_pick())
            ui.space()
            ui.button(tr("customers.clear_pick"), icon="close", on_click=lambda: clear_pick()).props("flat dense")
        picked_bar.set_visibility(False)

        def on_pick(rows: list[dict[str, Any]]) -> None:
            picked[:] = [r["id"] for r in rows]
            picked_label.text = tr("customers.picked", count=len(picked))
            picked_bar.set_visibility(bool(picked))

        def clear_pick() -> None:
            table.table.selected = []
            on_pick([])

        table = ServerTable(columns, fetch, sort_by="last_seen_at", descending=True, tr=tr,
                            empty_text=tr("customers.empty"),
                            on_row_click=lambda row: ui.navigate.to(f"/customers/{row['id']}"),
                            on_select=on_pick if SELECTION_ACTIONS else None)
        _stage_slot(table.table)

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            table.reload(first_page=True)

        def pick_stage(stage: str | None) -> None:
            chip_all.props(remove="outline") if stage is None else chip_all.props("outline")
            apply("stage", stage)

        def new_customer() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[480px]"):
                ui.label(tr("customers.new")).classes("text-lg font-medium")
                name = ui.input(tr("customers.name")).classes("w-full").mark("customer-name")
                mobile = ui.input(tr("users.phone")).classes("w-full").mark("customer-mobile")
                email = ui.input(tr("users.email")).classes("w-full")
                gender = ui.select({"male": tr("gender.male"), "female": tr("gender.female")}, clearable=True,
                                   label=tr("customers.gender")).classes("w-full")
                city = ui.input(tr("unit.city")).classes("w-full")
                address = ui.input(tr("customers.address")).classes("w-full")
                stage = ui.select({s: _stage_label(s) for s in STAGES}, value="prospect",
                                  label=tr("customers.stage")).classes("w-full")

                in_use = ui.column().classes("w-full gap-1")

                def record_inquiry(held: dict[str, str | None]) -> None:
                    dialog.close()
                    INQUIRY_ACTIONS[0](principal, held)

                def taken(error: KehuError, held: dict[str, str | None]) -> None:
                    """The mobile or e-mail is a customer's already: say so (naming them only if the reader may
                    open them) and offer what to do instead."""
                    in_use.clear()
                    with in_use, ui.card().props("flat bordered").classes("w-full bg-orange-1"):
                        ui.label(error.detail).classes("text-negative font-medium").props(
                            "data-testid=customer-in-use")
                        ui.label(str(error.extra.get("hint", ""))).classes("text-sm text-grey-8")
                        with ui.row().classes("w-full justify-end gap-2"):
                            if "existing_id" in error.extra:
                                ui.button(tr("customers.open_existing"), on_click=lambda: ui.navigate.to(
                                    f"/customers/{error.extra['existing_id']}")).props("flat")
                            if INQUIRY_ACTIONS and principal.can("leads", "create"):
                                ui.button(tr("customers.record_inquiry"), icon="person_search",
                                          on_click=lambda: record_inquiry(held)).props(
                                    "data-testid=customer-record-inquiry")

                def save() -> None:
                    data = validated(lambda: schemas.ProfileCreate(
                        name=name.value or None, mobile=mobile.value or None, email=email.value or None,
                        gender=gender.value, city=city.value or None, address=address.value or None,
                        lifecycle_stage=stage.value))
                    if data is None:
                        return
                    try:
                        with unit_of_work() as session:
                            created_id = service.create_profile(session, principal, data=data).id
                    except KehuError as error:
                        if error.errors and error.errors[0].code == "in_use":
                            taken(error, {"name": data.name, "mobile": data.mobile, "email": data.email,
                                          "city": data.city})
                        else:
                            notify_error(error)
                        return
                    ui.notify(tr("done.customer_created", name=data.name or data.mobile or data.email or ""),
                              type="positive", group="kehu-done")
                    dialog.close()
                    ui.navigate.to(f"/customers/{created_id}")

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                    ui.button(tr("common.save"), on_click=save).mark("customer-save")
            dialog.open()


# -- customer 360 ----------------------------------------------------------------------------------------
def export_dialog(principal: Any, filters: dict[str, Any]) -> None:
    """Export what the list shows (its search, stage and unit, or a segment's members), as a job; the file
    arrives in the dialog."""
    state: dict[str, Any] = {"format": "xlsx", "id": None}
    with ui.dialog() as dialog, ui.card().classes("w-[520px]"):
        ui.label(tr("export.title")).classes("text-lg font-medium")
        ui.label(tr("export.help")).classes("text-sm text-grey-7")
        with ui.row().classes("items-center gap-3"):
            ui.label(tr("export.format")).classes("text-grey-8")
            ui.toggle({"xlsx": "Excel (.xlsx)", "csv": "CSV"}, value="xlsx",
                      on_change=lambda e: state.__setitem__("format", e.value)).props("no-caps")
        status = ui.label().classes("text-grey-8")
        bar = ui.linear_progress(value=0, show_value=False).props("size=12px rounded animation-speed=300")
        bar.set_visibility(False)
        actions = ui.row().classes("w-full justify-end gap-2")

        def poll() -> None:
            with unit_of_work() as session:
                row = exports.get_export(session, principal, state["id"])
                job = session.get(Job, row.job_id) if row.job_id else None
                done, rows = row.status == "done", row.row_count
                failed = job is not None and job.status == "failed"
                error = job.error if failed and job else ""
            if done or failed:
                timer.deactivate()
                bar.set_visibility(False)
                status.set_text(tr("export.done", rows=f"{rows:,}") if done else tr("export.failed", error=error))
                if done:
                    with actions:
                        ui.button(tr("export.download"), icon="download", on_click=fetch).mark("export-download")

        def fetch() -> None:
            with unit_of_work() as session:
                filename, media_type, content = exports.download(session, principal, state["id"])
            ui.download.content(content, filename, media_type)

        def start() -> None:
            row = run_action(lambda s: exports.request_export(s, principal, format=state["format"],
                                                              filters=exports.ExportFilters(
                                                                  q=filters.get("q") or None,
                                                                  unit_id=filters.get("unit_id"),
                                                                  stage=filters.get("stage"),
                                                                  extra={k: v for k, v in filters.items()
                                                                         if k not in exports.LIST_FILTERS})))
            if row is not None:
                state["id"] = row.id
                start_button.disable()
                status.set_text(tr("export.running"))
                bar.set_visibility(True)
                bar.props("indeterminate")
                timer.activate()

        timer = ui.timer(0.7, poll, active=False)
        with actions:
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
            start_button = ui.button(tr("export.start"), icon="download", on_click=start).mark("export-start")
    dialog.open()


def customer_page(profile_id: int) -> None:
    with frame("customers.360", "/customers", "profiles") as principal:
        try:
            with unit_of_work() as session:
                profile = service.get_profile(session, principal, profile_id)
        except Exception:
            empty_state("person_off", tr("customers.not_found"), tr("customers.not_found_text"))
            return
        if profile.id != profile_id:
            ui.navigate.to(f"/customers/{profile.id}")
            return
        with unit_of_work() as session:
            profile = service.get_profile(session, principal, profile_id)
            view = CustomerView.of(session, principal)
            out = view.profile(profile)
            identities = [view.identity(i) for i in service.identities_of(session, profile)]
            merges = service.merges_of(session, profile)
            months = service.activity_by_month(session, principal, profile)
            consents = relations.current_consents(session, profile)
            orders = service.orders_of(session, principal, profile)
            vehicles = service.customer_360(session, principal, profile.id, include={"vehicles"}).vehicles or []
            accounts = [(a.name or a.external_id, a.kind) for a in relations.accounts_of(session, profile)]
            owners, units = service.names_for(session, user_ids={profile.owner_id} if profile.owner_id else set(),
                                              unit_ids={profile.unit_id})
            defined = view.personal.defined
        _profile_card(principal, out, owners, units)
        with ui.row().classes("w-full gap-4 no-wrap items-start max-lg:flex-wrap"):
            with ui.column().classes("w-[420px] shrink-0 gap-4 max-lg:w-full"):
                dedupe_ui.duplicates_panel(principal, profile.id)
                _identities_card(identities)
                for panel in CUSTOMER_PANELS:
                    panel(principal, profile.id)
                _consent_card(principal, profile_id, consents)
                if accounts:
                    with ui.card().classes("w-full"):
                        ui.label(tr("customers.accounts")).classes("text-lg font-medium")
                        for name, kind in accounts:
                            with ui.row().classes("items-center gap-2 text-sm"):
                                ui.icon("business" if kind == "company" else "home").classes("text-primary")
                                ui.label(name)
                                ui.badge(tr(f"account.kind.{kind}")).props("outline")
                _merges_card(principal, profile_id, merges)
                if out.attributes:
                    with ui.card().classes("w-full"):
                        ui.label(tr("customers.attributes")).classes("text-lg font-medium")
                        for key, value in sorted(out.attributes.items(), key=lambda kv: (kv[0] not in defined, kv[0])):
                            label, text = _attribute_text(defined.get(key), key, value)
                            with ui.row().classes("w-full text-sm no-wrap"):
                                ui.label(label).classes("text-grey-7 w-40 shrink-0")
                                ui.label(text).classes("break-all")
            with ui.column().classes("flex-1 min-w-0 gap-4"):
                if orders or vehicles:
                    _orders_card(principal, orders, vehicles)
                if months:
                    with ui.card().classes("w-full"):
                        ui.label(tr("customers.activity")).classes("text-lg font-medium")
                        ui.echart({
                            "grid": {"left": 40, "right": 16, "top": 16, "bottom": 28},
                            "tooltip": {"trigger": "axis"},
                            "xAxis": {"type": "category", "data": [m for m, _ in months]},
                            "yAxis": {"type": "value", "minInterval": 1},
                            "series": [{"type": "bar", "data": [c for _, c in months],
                                        "itemStyle": {"color": "#1f4e79"}}],
                        }).classes("w-full h-40")
                _timeline(principal, profile_id)


def _attribute_text(field: Any, key: str, value: Any) -> tuple[str, str]:
    """A custom attribute's label and value in the reader's language."""
    if field is None:
        return key, str(value)
    label = field.label_en if locale() == "en" else field.label_zh
    options = {o["value"]: (o["en"] if locale() == "en" else o["zh"]) for o in field.options}
    if is_masked(value):
        return label, str(value)  # hidden whole: not the yes, the option or the date it stands for
    if field.type == "boolean":
        return label, tr("common.yes") if value else tr("common.no")
    if field.type in ("option", "multi_option"):
        values = value if isinstance(value, list) else [value]
        return label, "、".join(options.get(v, str(v)) for v in values)
    return label, str(value)


def _profile_card(principal: Any, out: schemas.ProfileOut, owners: dict[int, str], units: dict[int, str]) -> None:
    with ui.card().classes("w-full"), ui.row().classes("w-full items-start gap-6"):
        ui.avatar((out.name or "?")[:1], color="primary", text_color="white", size="64px")
        with ui.column().classes("gap-1 flex-1"):
            with ui.row().classes("items-center gap-3"):
                ui.label(_display_name(out.name, out.id, out)).classes("text-2xl font-semibold").mark(
                    "customer-title")
                ui.badge(_stage_label(out.lifecycle_stage), color=STAGE_COLOURS.get(out.lifecycle_stage, "grey-7"))
                if out.name_pinyin:
                    ui.label(out.name_pinyin).classes("text-grey-6")
            facts = [
                (tr("users.phone"), readable_phone(out.mobile)), (tr("users.email"), out.email),
                (tr("customers.gender"), tr(f"gender.{out.gender}") if out.gender else None),
                (tr("customers.birthday"), out.birthday),
                (tr("unit.city"), " ".join(dict.fromkeys(filter(None, [out.province, out.city]))) or None),
                (tr("customers.address"), out.address),
                (tr("customers.owner"), owners.get(out.owner_id) if out.owner_id else None),
                (tr("users.unit"), units.get(out.unit_id)), (tr("customers.source"), out.source),
                (tr("customers.first_seen"), format_local(out.first_seen_at, principal.timezone)),
                (tr("customers.last_seen"), format_local(out.last_seen_at, principal.timezone)),
            ]
            with ui.grid(columns=4).classes("w-full gap-x-8 gap-y-1 text-sm max-md:grid-cols-2"):
                for label, value in facts:
                    with ui.column().classes("gap-0"):
                        ui.label(label).classes("text-grey-6 text-xs")
                        ui.label(value or "—")


def _identities_card(identities: list[schemas.IdentityOut]) -> None:
    with ui.card().classes("w-full"):
        ui.label(tr("customers.identities", count=len(identities))).classes("text-lg font-medium")
        if not identities:
            ui.label(tr("customers.no_identities")).classes("text-grey-7 text-sm")
        for identity in identities:
            with ui.row().classes("w-full no-wrap text-sm items-center gap-2 py-1 border-b border-gray-100"):
                ui.badge(t(f"identity.{identity.kind}", locale(), default=identity.kind)).props("outline")
                value = readable_phone(identity.value) if identity.kind == "mobile" else identity.value
                ui.label(value).classes("break-all flex-1 font-mono text-xs")


def _orders_card(principal: Any, orders: list[schemas.OrderOut], vehicles: list[schemas.VehicleOut]) -> None:
    with ui.card().classes("w-full"):
        ui.label(tr("customers.orders_vehicles")).classes("text-lg font-medium")
        for vehicle in vehicles:
            with ui.row().classes("items-center gap-2 text-sm"):
                ui.icon("directions_car").classes("text-primary text-xl")
                ui.label(vehicle.model or "—").classes("font-medium")
                ui.label(vehicle.vin).classes("font-mono text-xs")
                if vehicle.purchased_at:
                    ui.label(tr("customers.delivered_on", date=vehicle.purchased_at.isoformat())).classes(
                        "text-grey-6 text-xs")
        if orders:
            rows = [{"id": o.id, "number": o.external_id, "at": format_local(o.ordered_at, principal.timezone),
                     "items": "、".join(f"{line.name}×{line.quantity}" for line in o.lines) or "—",
                     "total": f"¥{o.total:,.2f}", "status": o.status} for o in orders]
            table = ui.table(columns=[
                {"name": "number", "label": tr("orders.number"), "field": "number", "align": "left"},
                {"name": "at", "label": tr("orders.date"), "field": "at", "align": "left"},
                {"name": "items", "label": tr("orders.items"), "field": "items", "align": "left"},
                {"name": "total", "label": tr("orders.total"), "field": "total", "align": "right"},
                {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
            ], rows=rows, pagination=5).classes("w-full").props("flat dense")
            localise_table(table, tr)
            add_status_slot(table, "status", {s: tr(f"order.status.{s}") for s in commerce.STATUSES},
                            colours={"placed": "indigo-6", "paid": "blue-7", "delivered": "positive",
                                     "cancelled": "grey-6", "refunded": "orange-8"})


def _consent_card(principal: Any, profile_id: int, consents: list[Any]) -> None:
    with ui.card().classes("w-full"):
        ui.label(tr("customers.consent")).classes("text-lg font-medium")
        if not consents:
            ui.label(tr("customers.no_consent")).classes("text-grey-7 text-sm")
        for state in consents:
            with ui.row().classes("w-full no-wrap items-center gap-2 text-sm py-1 border-b border-gray-100"):
                granted = state.status == "granted"
                ui.icon("check_circle" if granted else "block").classes(
                    "text-positive" if granted else "text-negative")
                ui.label(f"{tr('channel.' + state.channel)} · {tr('purpose.' + state.purpose)}").classes("flex-1")
                ui.label(format_local(state.ts, principal.timezone)).classes("text-xs text-grey-6")
                ui.icon("info").classes("text-grey-5").tooltip(state.evidence)
        if principal.can("profiles", "update"):
            ui.button(tr("customers.record_consent"), icon="verified_user",
                      on_click=lambda: _consent_dialog(principal, profile_id)).props("flat").classes("mt-2")


def _consent_dialog(principal: Any, profile_id: int) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[460px]"):
        ui.label(tr("customers.record_consent")).classes("text-lg font-medium")
        channel = ui.select({c: tr(f"channel.{c}") for c in relations.CHANNELS}, value="sms",
                            label=tr("consent.channel")).classes("w-full")
        purpose = ui.select({p: tr(f"purpose.{p}") for p in relations.PURPOSES}, value="marketing",
                            label=tr("consent.purpose")).classes("w-full")
        granted = ui.toggle({True: tr("consent.granted"), False: tr("consent.withdrawn")}, value=True)
        evidence = ui.input(tr("consent.evidence"), placeholder=tr("consent.evidence_hint")).classes("w-full")

        def save() -> None:
            saved = validated(lambda: run_action(lambda s: service.record_consent(
                s, principal, profile_id, data=schemas.ConsentCreate(
                    channel=channel.value, purpose=purpose.value, granted=granted.value,
                    evidence=evidence.value or "")),
                tr("done.consent_granted" if granted.value else "done.consent_withdrawn")))
            if saved is not None:
                dialog.close()
                ui.navigate.reload()

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save)
    dialog.open()


def _merges_card(principal: Any, profile_id: int, merges: list[Any]) -> None:
    with ui.card().classes("w-full"):
        ui.label(tr("customers.merges")).classes("text-lg font-medium")
        if not merges:
            ui.label(tr("customers.no_merges")).classes("text-grey-7 text-sm")
        for merge in merges:
            with ui.row().classes("w-full no-wrap text-sm items-center gap-2 py-1 border-b border-gray-100"):
                ui.icon("call_merge").classes("text-primary")
                with ui.column().classes("gap-0 flex-1"):
                    other = merge.loser_id if merge.winner_id == profile_id else merge.winner_id
                    ui.label(tr("customers.merge_line", other=other, reason=tr(f"merge.reason.{merge.reason}")))
                    ui.label(format_local(merge.created_at, principal.timezone) + (
                        " · " + tr("customers.undone") if merge.undone_at else "")).classes("text-grey-6 text-xs")
                if merge.undone_at is None and merge.winner_id == profile_id and principal.can("profiles", "update"):
                    ui.button(tr("customers.unmerge"), on_click=lambda m=merge.id: _undo(principal, m)).props(
                        "flat dense color=negative")
        if principal.can("profiles", "update"):
            ui.button(tr("customers.merge_with"), icon="call_merge",
                      on_click=lambda: _merge_dialog(principal, profile_id)).props("flat").classes("mt-2")


def _undo(principal: Any, merge_id: int) -> None:
    restored = run_action(lambda s: service.unmerge(s, principal, merge_id), tr("customers.unmerged"))
    if restored is not None:
        ui.navigate.reload()


def _merge_dialog(principal: Any, profile_id: int) -> None:
    chosen: dict[str, Any] = {"id": None}
    with ui.dialog() as dialog, ui.card().classes("w-[560px]"):
        ui.label(tr("customers.merge_with")).classes("text-lg font-medium")
        ui.label(tr("customers.merge_help")).classes("text-grey-7 text-sm")
        results = ui.column().classes("w-full")

        def search(text: str | None) -> None:
            results.clear()
            if not text or len(text.strip()) < 2:
                return
            with unit_of_work() as session:
                found = service.page_profiles(session, principal, q=text, per_page=8).items
                view = CustomerView.of(session, principal)
                rows = [(p.id, _display_name(p.name, p.id, view.profile(p)), view.profile(p).mobile or "",
                         p.city or "") for p in found if p.id != profile_id]
            with results:
                if not rows:
                    ui.label(tr("customers.empty")).classes("text-grey-7 text-sm")
                for pid, name, mobile, city in rows:
                    ui.radio({pid: f"#{pid} {name} {mobile} {city}"}, on_change=lambda e: chosen.update(
                        id=e.value)).props("dense")

        ui.input(placeholder=tr("customers.search"), on_change=lambda e: search(e.value)).props(
            "outlined dense debounce=300 autofocus").classes("w-full")

        def compare() -> None:
            if chosen["id"] is None:
                ui.notify(tr("customers.pick_one"), type="warning")
                return
            other = chosen["id"]
            dialog.close()

            def merge(session: Any, winner: int, fields: dict[str, str]) -> Any:
                return service.merge_by_hand(session, principal, data=schemas.MergeRequest(
                    winner_id=winner, loser_id=other if winner == profile_id else profile_id, fields=fields))

            def after() -> None:
                ui.navigate.reload()

            dedupe_ui.merge_side_by_side(principal, profile_id, other, title=tr("customers.merge_with"),
                                         merge=merge, after=after)

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("customers.merge_compare"), icon="compare_arrows", on_click=compare).props(
                'color=primary data-test="merge-compare"')
    dialog.open()


CHANGE_ICONS = {"create": "person_add", "update": "edit_note", "merge": "call_merge", "unmerge": "call_split",
                "consent": "verified_user", "register_vehicle": "directions_car", "assign": "assignment_ind"}


def _change_title(item: schemas.TimelineItemOut) -> str:
    action = item.action or ""
    if item.entity == "orders" and action == "create":
        return tr("timeline.order_created", number=(item.changes or {}).get("external_id", ""))
    return t(f"timeline.action.{action}", locale(), default=item.summary or action)


def _change_text(item: schemas.TimelineItemOut) -> str:
    parts = [f"{t(f'field.{k}', locale(), default=k)}: {_change_value(k, v)}" for k, v in (item.changes or {}).items()
             if v != "" and not k.endswith("_id") and not (item.entity == "orders" and k == "external_id")]
    return " · ".join(parts[:6])


def _change_value(key: str, value: Any) -> Any:
    """A recorded code in words: a merge's reason "manual" is 手工合并."""
    return t(f"timeline.{key}.{value}", locale(), default=str(value)) if key == "reason" else value


def _event_details(item: schemas.TimelineItemOut) -> str:
    """An event's properties as a line: an imported row says which file and row it came from."""
    properties = dict(item.properties or {})
    if "import_id" in properties:
        rows = properties.pop("rows", None) or [properties.pop("row", "")]
        origin = tr("timeline.imported_from", file=properties.pop("file", "") or "—",
                    rows=", ".join(str(r) for r in rows[:5]))
        properties.pop("import_id")
        properties.pop("products", None)
        rest = [f"{t(f'field.{k}', locale(), default=k)}: {v}" for k, v in properties.items()
                if not isinstance(v, dict | list)]
        return " · ".join([origin, *rest][:6])
    return ", ".join(f"{k}: {v}" for k, v in list(properties.items())[:6] if not isinstance(v, dict | list))


def _timeline(principal: Any, profile_id: int) -> None:
    state: dict[str, Any] = {"cursor": None}
    with ui.card().classes("w-full"):
        ui.label(tr("customers.timeline")).classes("text-lg font-medium")
        box = ui.column().classes("w-full gap-0").props("data-testid=timeline")
        more = ui.button(tr("customers.load_more"), icon="expand_more").props("flat")

        def load() -> None:
            with unit_of_work() as session:
                page_ = service.timeline_page(session, principal, profile_id, limit=30, cursor=state["cursor"])
            state["cursor"] = page_.next_cursor
            with box:
                if not page_.items and not box.default_slot.children:
                    ui.label(tr("customers.no_events")).classes("text-grey-7 text-sm")
                for item in page_.items:
                    change = item.kind == "change"
                    with ui.row().classes("w-full no-wrap items-start gap-3 py-2 border-b border-gray-100"):
                        if item.kind not in ("event", "change"):  # another domain's entry: a segment, a lead
                            stream = history.TIMELINE_STREAMS[item.kind]
                            icon, colour = stream.icons.get(item.action or "", stream.icons.get("", ("history", "")))
                            ui.icon(icon).classes(f"text-xl mt-1 {colour}")
                            with ui.column().classes("gap-0 flex-1 min-w-0"):
                                title = stream.title(item, locale())
                                ui.link(title, f"/{item.entity}/{item.entity_id}").classes("font-medium text-grey-9")
                                if item.actor and item.actor != "system":
                                    ui.label(tr("timeline.by", actor=item.actor)).classes("text-xs text-grey-7")
                            ui.label(format_local(item.ts, principal.timezone)).classes(
                                "text-xs text-grey-6 shrink-0")
                            continue
                        if change:
                            ui.icon(CHANGE_ICONS.get(item.action or "", "history")).classes(
                                "text-xl text-amber-8 mt-1")
                        else:
                            ui.icon(EVENT_ICONS.get(item.type or "", "bolt")).classes("text-xl text-primary mt-1")
                        with ui.column().classes("gap-0 flex-1 min-w-0"):
                            if change:
                                title = _change_title(item)
                                details = _change_text(item)
                                ui.label(title).classes("font-medium")
                                ui.label(tr("timeline.by", actor=item.actor or tr("timeline.system"))
                                         + (f" · {details}" if details else "")).classes(
                                    "text-xs text-grey-7 truncate")
                            else:
                                ui.label(t(f"event.{item.event}", locale(), default=item.event or "")).classes(
                                    "font-medium")
                                details = _event_details(item)
                                if details:
                                    ui.label(details).classes("text-xs text-grey-7 truncate")
                        ui.label(format_local(item.ts, principal.timezone)).classes("text-xs text-grey-6 shrink-0")
            more.set_visibility(state["cursor"] is not None)

        more.on_click(load)
        load()


# -- data sources ------------------------------------------------------------------------------------
def _connect_snippets(key: str, address: str, kind: str) -> None:
    """How to send data with the new key: each library as verified against kehu (see README), opened on the one
    that fits the source's kind."""
    host = address.split("://", 1)[-1]
    snippets = {
        "analytics.js": ("javascript", "// npm install @segment/analytics-next\n"
                         'import { AnalyticsBrowser } from "@segment/analytics-next";\n'
                         "export const analytics = AnalyticsBrowser.load({\n"
                         f'  writeKey: "{key}",\n  cdnURL: "{address}",\n}});\n'
                         'analytics.track("test_drive_booked", { model: "ID.4" });'),
        "RudderStack JS": ("javascript", "// npm install @rudderstack/analytics-js\n"
                           'import { RudderAnalytics } from "@rudderstack/analytics-js";\n'
                           "const analytics = new RudderAnalytics();\n"
                           f'analytics.load("{key}", "{address}", {{\n  configUrl: "{address}/v1",\n}});'),
        "Python": ("python", "# pip install segment-analytics-python\n"
                   "import segment.analytics as analytics\n\n"
                   f'analytics.write_key = "{key}"\nanalytics.host = "{address}"\n'
                   'analytics.track("u1", "test_drive_booked", {"model": "ID.4"})'),
        "curl": ("bash", f"curl -u '{key}:' -H 'Content-Type: application/json' \\\n"
                 f"  -d '{{\"userId\": \"u1\", \"event\": \"test_drive_booked\"}}' \\\n  {address}/v1/track"),
    }
    first = {"web": "analytics.js", "server": "Python"}.get(kind, "curl")
    ui.label(tr("sources.connect", host=host)).classes("text-sm text-grey-8 mt-2")
    with ui.tabs().props("dense no-caps align=left active-color=primary").classes("w-full") as tabs:
        for name in snippets:
            ui.tab(name)
    with ui.tab_panels(tabs, value=first).classes("w-full").mark("source-snippets"):
        for name, (language, code) in snippets.items():
            with ui.tab_panel(name).classes("p-0"):
                ui.code(code, language=language).classes("w-full text-xs")


def sources_page() -> None:
    with frame("nav.sources", "/admin/sources", "sources") as principal:
        ui.label(tr("sources.help")).classes("text-grey-7")
        request = ui.context.client.request
        kehu_address = str(request.base_url).rstrip("/") if request is not None else "https://kehu.example.com"

        @ui.refreshable
        def source_table() -> None:
            with unit_of_work() as session:
                sources = service.list_sources(session, principal)
                _, units = service.names_for(session, user_ids=set(), unit_ids={s.unit_id for s in sources})
                rows = [{"id": s.id, "name": s.name, "kind": tr(f"source.kind.{s.kind}"),
                         "unit": units.get(s.unit_id, ""), "key": f"{service.WRITE_KEY_PREFIX}{s.write_key_prefix}_…",
                         "status": "active" if s.is_active else "inactive",
                         "created_at": format_local(s.created_at, principal.timezone)} for s in sources]
            if not rows:
                empty_state("input", tr("sources.empty_title"), tr("sources.empty_text"))
                return
            table = ui.table(columns=[
                {"name": "name", "label": tr("api_keys.name"), "field": "name", "sortable": True, "align": "left"},
                {"name": "kind", "label": tr("sources.kind"), "field": "kind", "align": "left"},
                {"name": "unit", "label": tr("users.unit"), "field": "unit", "align": "left"},
                {"name": "key", "label": tr("sources.write_key"), "field": "key", "align": "left"},
                {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
                {"name": "created_at", "label": tr("common.created_at"), "field": "created_at", "align": "left"},
                {"name": "actions", "label": "", "field": "id"},
            ], rows=rows, pagination=20).classes("w-full").props("flat bordered")
            localise_table(table, tr)
            add_status_slot(table, "status", {"active": tr("status.active"), "inactive": tr("status.inactive")})
            table.add_slot("body-cell-actions", f"""
                <q-td :props="props">
                  <q-btn flat dense :label="props.row.status === 'active' ? '{tr('sources.disable')}'
                         : '{tr('sources.enable')}'" @click="() => $parent.$emit('toggle', props.row)" />
                </q-td>""")
            table.on("toggle", lambda e: toggle(e.args["id"], e.args["status"] != "active"))

        def toggle(source_id: int, active: bool) -> None:
            run_action(lambda s: service.set_source_active(s, principal, source_id, active),
                       tr("done.source_enabled" if active else "done.source_disabled"))
            source_table.refresh()

        def create() -> None:
            with ui.dialog() as dialog, ui.card().classes("w-[620px]"):
                ui.label(tr("sources.new")).classes("text-lg font-medium")
                name = ui.input(tr("api_keys.name")).classes("w-full")
                kind = ui.select({k: tr(f"source.kind.{k}") for k in ("web", "app", "server", "import")},
                                 value="web", label=tr("sources.kind")).classes("w-full")
                result = ui.column().classes("w-full")

                def save() -> None:
                    created = validated(lambda: run_action(lambda s: service.create_source(
                        s, principal, data=schemas.SourceCreate(name=name.value or "", kind=kind.value))))
                    if created:
                        _source, key = created
                        result.clear()
                        with result:
                            ui.label(tr("api_keys.shown_once")).classes("text-warning font-medium")
                            shown = ui.input(value=key).props("readonly outlined").classes("w-full font-mono")
                            _connect_snippets(key, kehu_address, kind.value)
                        # the key selected, ready to copy (and the focus off the tabs, which it would mark)
                        ui.timer(0.1, lambda: shown.run_method("select"), once=True)
                        save_button.disable()
                        source_table.refresh()

                with ui.row().classes("w-full justify-end"):
                    ui.button(tr("common.close"), on_click=dialog.close).props("flat")
                    save_button = ui.button(tr("api_keys.create"), on_click=save)
            dialog.open()

        if principal.can("sources", "create"):
            ui.button(tr("sources.new"), icon="add", on_click=create)
        source_table()



# -- import --------------------------------------------------------------------------------------------
def _target_options(header: str, defined: dict[str, Any], kind: str = "profiles") -> dict[str, str]:
    options = {"": tr("imports.ignore")}
    if kind == "orders":
        options.update({f: tr(f"imports.order.{f}") for f in imports.ORDER_FIELDS})
        options.update({f: tr(f"field.{f}") for f in imports.ORDER_CUSTOMER_FIELDS})
        options.update({f"identity:{k}": t(f"identity.{k}", locale(), default=k) for k in imports.IDENTITY_KINDS})
        return options
    options.update({f: tr(f"field.{f}") for f in imports.STANDARD_FIELDS})
    options.update({f"identity:{k}": t(f"identity.{k}", locale(), default=k) for k in imports.IDENTITY_KINDS})
    options.update({f"attribute:{k}": tr("imports.custom_field", label=f.label_en if locale() == "en" else f.label_zh)
                    for k, f in defined.items()})
    options.setdefault(f"attribute:{header}", tr("imports.as_attribute", header=header))
    return options


def import_page() -> None:
    with frame("imports.title", "/customers", "imports") as principal:
        state: dict[str, Any] = {"run_id": None, "kind": "profiles"}
        help_text = ui.label(tr("imports.help")).classes("text-grey-7")
        steps = ui.column().classes("w-full gap-4")

        def pick_kind(kind: str) -> None:
            state["kind"] = kind
            help_text.set_text(tr("imports.help_orders" if kind == "orders" else "imports.help"))

        async def uploaded(event: Any) -> None:
            content = await event.file.read()
            run = run_action(lambda s: imports.upload(s, principal, filename=event.file.name, content=content,
                                                      kind=state["kind"]))
            if run is not None:
                state["run_id"] = run.id
                show_mapping()

        def show_mapping() -> None:
            with unit_of_work() as session:
                run = imports.get_run(session, principal, state["run_id"])
                headers, mapping, total, filename = list(run.headers), dict(run.mapping), run.total_rows, run.filename
                kind = run.kind
                samples = imports.preview(session, principal, run.id, limit=3)
                defined = fields.definitions(session, run.org_id)
            steps.clear()
            with steps, ui.card().classes("w-full"):
                ui.label(tr("imports.mapping_title", file=filename, rows=total)).classes("text-lg font-medium")
                with ui.grid(columns=3).classes("w-full gap-x-6 gap-y-2 items-center"):
                    for label in (tr("imports.column"), tr("imports.samples"), tr("imports.target")):
                        ui.label(label).classes("text-xs text-grey-7 font-medium")
                    for header in headers:
                        ui.label(header).classes("font-medium")
                        ui.label(" · ".join(filter(None, (r.values.get(header, "") for r in samples))) or "—"
                                 ).classes("text-sm text-grey-8 truncate")
                        ui.select(_target_options(header, defined, kind), value=mapping.get(header, ""),
                                  on_change=lambda e, h=header: mapping.__setitem__(h, e.value)).props(
                            "dense outlined options-dense").classes("w-64")
                preview_box = ui.column().classes("w-full mt-4")

                def check() -> bool:
                    saved = run_action(lambda s: imports.set_mapping(s, principal, state["run_id"], mapping))
                    if saved is None:
                        return False
                    with unit_of_work() as session:
                        rows_ = imports.preview(session, principal, state["run_id"], limit=10, locale=locale())
                    preview_box.clear()
                    with preview_box:
                        ui.label(tr("imports.preview")).classes("font-medium")
                        for row in rows_:
                            with ui.row().classes("w-full no-wrap items-start gap-2 text-sm"):
                                icon, colour = (("error", "text-negative") if not row.ok else
                                                ("warning", "text-warning") if row.warnings else
                                                ("check_circle", "text-positive"))
                                ui.icon(icon).classes(colour)
                                ui.label(tr("imports.row", n=row.row_number)).classes("w-16 shrink-0 text-grey-7")
                                with ui.column().classes("gap-0"):
                                    ui.label(row.reason or " · ".join(v for v in row.values.values() if v)).classes(
                                        "text-negative" if not row.ok else "text-grey-8")
                                    if row.warnings:
                                        ui.label(row.warnings).classes("text-orange-9")
                    return True

                def begin() -> None:
                    if check():
                        started = run_action(lambda s: imports.start(s, principal, state["run_id"]))
                        if started is not None:
                            show_progress()

                with ui.row().classes("gap-2 mt-2"):
                    ui.button(tr("imports.check"), icon="fact_check", on_click=check).props("outline")
                    ui.button(tr("imports.start"), icon="play_arrow", on_click=begin).mark("import-start")

        def show_progress() -> None:
            steps.clear()
            with steps, ui.card().classes("w-full"):
                title = ui.label(tr("imports.running")).classes("text-lg font-medium")
                bar = ui.linear_progress(value=0, show_value=False).props("size=18px rounded animation-speed=300")
                counts = ui.label().classes("text-grey-8").mark("import-result")
                actions = ui.row()
                warnings_box = ui.column().classes("w-full")

                def poll() -> None:
                    from kehu.core.jobs import Job

                    with unit_of_work() as session:
                        run = imports.get_run(session, principal, state["run_id"])
                        job = session.get(Job, run.job_id)
                        progress, job_status = (job.progress, job.status) if job else (0, "queued")
                        accepted, rejected, created = run.accepted_rows, run.rejected_rows, run.profiles_created
                        orders, kind, warned = run.orders_created, run.kind, run.warnings
                        error = job.error if job else None
                    bar.set_value(progress / 100)
                    counts.set_text(tr("imports.counts_orders" if kind == "orders" else "imports.counts",
                                       accepted=accepted, rejected=rejected, created=created, orders=orders))
                    if job_status in ("succeeded", "failed"):
                        timer.deactivate()
                        title.set_text(tr("imports.done") if job_status == "succeeded" else
                                       tr("imports.failed", error=error or ""))
                        with actions:
                            if rejected:
                                ui.button(tr("imports.download_rejected"), icon="download",
                                          on_click=download_rejected).props("outline")
                            ui.button(tr("imports.another"), icon="upload_file",
                                      on_click=lambda: ui.navigate.to("/customers/import")).props("flat")
                        if warned:
                            with warnings_box:
                                _import_warnings(principal, state["run_id"], warned)

                timer = ui.timer(1.0, poll)

        def download_rejected() -> None:
            with unit_of_work() as session:
                data = imports.rejections_csv(session, principal, state["run_id"], locale())
            ui.download.content(data, f"import-{state['run_id']}-rejected.csv", "text/csv")

        with steps, ui.card().classes("w-full"):
            ui.label(tr("imports.upload_title")).classes("text-lg font-medium")
            with ui.row().classes("items-center gap-3"):
                ui.label(tr("imports.kind")).classes("text-grey-8")
                ui.toggle({k: tr(f"imports.kind.{k}") for k in imports.KINDS}, value="profiles",
                          on_change=lambda e: pick_kind(e.value)).props("no-caps").mark("import-kind")
            ui.upload(label=tr("imports.choose"), auto_upload=True, on_upload=uploaded,
                      max_file_size=imports.MAX_FILE_BYTES).props('accept=".csv,.xlsx,.xlsm,.txt"').classes(
                "w-full max-w-xl").mark("import-upload")
        _recent_imports(principal)


WARNINGS_SHOWN = 20


def _import_warnings(principal: Any, run_id: int, count: int) -> None:
    """The values an import left out of accepted rows: the first of them, and all of them to download."""
    with unit_of_work() as session:
        shown = imports.warnings(session, principal, run_id, locale=locale(), limit=WARNINGS_SHOWN).items
    with ui.row().classes("items-center gap-2 mt-2"):
        ui.icon("warning").classes("text-warning text-xl")
        ui.label(tr("imports.warnings_count", count=count)).classes("font-medium").mark("import-warnings")
    ui.label(tr("imports.warnings_help")).classes("text-grey-7 text-sm")
    table = ui.table(columns=[
        {"name": "row", "label": tr("imports.warning.row_number"), "field": "row", "align": "left"},
        {"name": "column", "label": tr("imports.warning.column"), "field": "column", "align": "left"},
        {"name": "value", "label": tr("imports.warning.value"), "field": "value", "align": "left"},
        {"name": "reason", "label": tr("imports.warning.reason"), "field": "reason", "align": "left"},
    ], rows=[{"id": i, "row": w.row_number, "column": w.column, "value": w.value, "reason": w.reason}
             for i, w in enumerate(shown)], row_key="id").classes("w-full").props("flat dense bordered")
    localise_table(table, tr)
    if count > len(shown):
        ui.label(tr("imports.more_warnings", count=count - len(shown))).classes("text-grey-7 text-sm")

    def download() -> None:
        with unit_of_work() as session:
            data = imports.warnings_file(session, principal, run_id, locale())
        ui.download.content(data, f"import-{run_id}-warnings.csv", "text/csv")

    ui.button(tr("imports.download_warnings"), icon="download", on_click=download).props("outline")


def _recent_imports(principal: Any) -> None:
    with unit_of_work() as session:
        runs = imports.list_runs(session, principal, limit=10).items
        rows = [{"id": r.id, "file": r.filename, "kind": tr(f"imports.kind.{r.kind}"),
                 "status": tr(f"imports.status.{r.status}"), "rows": r.total_rows, "accepted": r.accepted_rows,
                 "rejected": r.rejected_rows, "warnings": r.warnings, "created": r.profiles_created,
                 "orders": r.orders_created if r.kind == "orders" else "—",
                 "at": format_local(r.created_at, principal.timezone)} for r in runs]
    if not rows:
        return
    with ui.card().classes("w-full"):
        ui.label(tr("imports.recent")).classes("text-lg font-medium")
        table = ui.table(columns=[
            {"name": "file", "label": tr("imports.file"), "field": "file", "align": "left"},
            {"name": "kind", "label": tr("imports.kind"), "field": "kind", "align": "left"},
            {"name": "status", "label": tr("users.status"), "field": "status", "align": "left"},
            {"name": "rows", "label": tr("imports.rows"), "field": "rows"},
            {"name": "accepted", "label": tr("imports.accepted"), "field": "accepted"},
            {"name": "rejected", "label": tr("imports.rejected"), "field": "rejected"},
            {"name": "warnings", "label": tr("imports.warnings"), "field": "warnings"},
            {"name": "created", "label": tr("imports.created"), "field": "created"},
            {"name": "orders", "label": tr("imports.orders_created"), "field": "orders"},
            {"name": "at", "label": tr("common.created_at"), "field": "at", "align": "left"},
        ], rows=rows, row_key="id").classes("w-full").props("flat dense")
        localise_table(table, tr)
        table.on("rowClick", lambda e: _recent_import_warnings(principal, e.args[1]))


def _recent_import_warnings(principal: Any, row: dict[str, Any]) -> None:
    """A past import's values left out, opened from the list of recent imports."""
    if not row.get("warnings"):
        return
    with ui.dialog() as dialog, ui.card().classes("w-[900px] max-w-full"):
        ui.label(row["file"]).classes("text-lg font-medium")
        _import_warnings(principal, row["id"], row["warnings"])
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.close"), on_click=dialog.close).props("flat")
    dialog.open()


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
