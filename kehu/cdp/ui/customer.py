"""Customer 360: the profile, identities, orders and vehicles, consent, merges, the timeline, and the panels
other domains add (their manifests' customer_panels)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import commerce, relations, schemas, service
from kehu.cdp import timeline as history
from kehu.cdp.ui import duplicates
from kehu.cdp.ui.common import EVENT_ICONS, display_name
from kehu.cdp.views import CustomerView
from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.tenancy.masking import is_masked
from kehu.ui.components import add_status_slot, localise_table, readable_phone
from kehu.ui.components.chart import chart
from kehu.ui.components.customers import STAGE_COLOURS, stage_label
from kehu.ui.shell import (
    empty_state,
    extensions,
    frame,
    locale,
    run_action,
    tr,
    unit_of_work,
    validated,
)


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
                duplicates.duplicates_panel(principal, profile.id)
                _identities_card(identities)
                for panel in extensions("customer_panels"):
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
                        chart({
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
                ui.label(display_name(out.name, out.id, out)).classes("text-2xl font-semibold").mark(
                    "customer-title")
                ui.badge(stage_label(out.lifecycle_stage), color=STAGE_COLOURS.get(out.lifecycle_stage, "grey-7"))
                if out.name_pinyin:
                    ui.label(out.name_pinyin).classes("text-grey-6")
            facts = [
                (tr("users.phone"), readable_phone(out.mobile)), (tr("users.email"), out.email),
                (tr("customers.gender"), tr(f"gender.{out.gender}") if out.gender else None),
                (tr("customers.birthday"), out.birthday),
                (tr("unit.city"), " ".join(dict.fromkeys(filter(None, [out.province, out.city]))) or None),
                (tr("customers.address"), out.address), (tr("customers.postcode"), out.postcode),
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
                rows = [(p.id, display_name(p.name, p.id, view.profile(p)), view.profile(p).mobile or "",
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

            duplicates.merge_side_by_side(principal, profile_id, other, title=tr("customers.merge_with"),
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
                            stream = history.streams()[item.kind]
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
