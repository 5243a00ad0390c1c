"""疑似重复客户: the review queue of probable duplicates (merge, or "not the same person"), the run and its
thresholds, and what each piece of evidence weighs in the fitted model."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.cdp import dedupe, matching, schemas, service
from kehu.cdp.identity import further
from kehu.cdp.ui.matching_settings import custom_labels, level_label, matching_section
from kehu.cdp.views import CustomerView
from kehu.core.errors import KehuError
from kehu.core.jobs import Job
from kehu.core.timeutil import format_local
from kehu.tenancy import service as tenancy_service
from kehu.ui.components import ServerTable, readable_phone
from kehu.ui.components.chart import chart
from kehu.ui.shell import frame, notify_error, page, run_action, tr, unit_of_work

# The levels a reviewer reads, in the order they matter; each comparison's level 0 is "different".
SHOWN_LEVELS = [(c.name, level) for c in matching.DEFAULT_COMPARISONS for level in [*(lv for lv, _ in c.levels), 0]]
FIELDS = ("name", "mobile", "email", "birthday", "gender", "city", "address", "postcode", "lifecycle_stage", "unit",
          "owner", "first_seen_at")


def _evidence_label(comparison: str, level: int, labels: dict[str, str] | None = None,
                    model: dict[str, Any] | None = None) -> str:
    return level_label(comparison, level, labels=labels or {}, model=model or {})


def _percent(probability: float) -> str:
    return f"{probability * 100:.1f}%" if probability < 0.999 else ">99.9%"


def duplicates_page() -> None:
    with frame("nav.duplicates", "/customers/duplicates", "profiles") as principal:
        with unit_of_work() as session:
            state = schemas.DedupeSettingsOut.model_validate(dedupe.get_settings(session, principal))
            job = session.get(Job, state.job_id) if state.job_id else None
            progress = (job.progress, job.message) if job is not None else (0, "")
            units = {u.id: ("　" * u.depth) + u.name for u in tenancy_service.list_units(session, principal)} \
                if principal.can("units") else {}
            labels = custom_labels(session, principal)  # custom fields' evidence
        filters: dict[str, Any] = {"status": "open", "unit_id": None, "min_probability": None}
        with ui.row().classes("w-full gap-4 no-wrap items-start max-lg:flex-wrap"):
            with ui.column().classes("flex-1 min-w-0"):
                _run_card(principal, state, progress)
            if state.model.get("levels"):
                with ui.column().classes("w-[420px] shrink-0 max-lg:w-full"):
                    _weights_card(state.model, labels)
        if principal.has("settings.manage"):
            # drawn when first opened: the page of a reviewer who never opens it does not carry it
            with ui.expansion(tr("dedupe.matching.title"), icon="rule",
                              on_value_change=lambda e: open_matching() if e.value else None).classes(
                    "w-full bg-white rounded shadow-sm").props(
                    'header-class="text-lg font-medium" data-test="matching-settings"'):
                matching_box = ui.column().classes("w-full")

            def open_matching() -> None:
                if not matching_box.default_slot.children:
                    with matching_box:
                        matching_section(principal)
        with ui.row().classes("w-full items-center gap-3"):
            # opened on "open" without an on_change call: apply() is defined further down
            with ui.tabs(value="open", on_change=lambda e: apply("status", e.value)).props(
                    "dense no-caps active-color=primary indicator-color=primary"):
                for status in ("open", "merged", "dismissed"):
                    ui.tab(status, label=tr(f"dedupe.status.{status}"))
            ui.space()
            ui.select({None: tr("dedupe.any_probability"), 0.9: "≥ 90%", 0.95: "≥ 95%", 0.99: "≥ 99%"},
                      value=None, label=tr("dedupe.probability"),
                      on_change=lambda e: apply("min_probability", e.value)).props("outlined dense").classes("w-40")
            if units:
                ui.select(units, label=tr("users.unit"), clearable=True, with_input=True,
                          on_change=lambda e: apply("unit_id", e.value)).props("outlined dense").classes("w-56")
        table_box = ui.column().classes("w-full")

        def fetch(page_no: int, per_page: int, sort: str | None, descending: bool) -> tuple[list[dict], int]:
            with unit_of_work() as session:
                found = dedupe.page_candidates(session, principal, status=filters["status"],
                                               unit_id=filters["unit_id"], min_probability=filters["min_probability"],
                                               sort=sort or "probability", descending=descending, page=page_no,
                                               per_page=per_page)
                people = dedupe.profiles_of(session, found.items)
                view = CustomerView.of(session, principal)
                _, unit_names = service.names_for(session, user_ids=set(),
                                                  unit_ids={p.unit_id for p in people.values()})
                rows = []
                for c in found.items:
                    row: dict[str, Any] = {"id": c.id, "probability": c.probability,
                                           "probability_text": _percent(c.probability),
                                           "decided_at": format_local(c.decided_at, principal.timezone) or "—",
                                           "evidence": [{"label": _evidence_label(e["comparison"], e["level"], labels,
                                                                          state.model),
                                                         "for": (e["weight"] or 0) > 0}
                                                        for e in dedupe.evidence(state.model, c.levels)]}
                    for side, pid in (("a", c.profile_a_id), ("b", c.profile_b_id)):
                        person = people.get(pid)
                        out = view.profile(person) if person else None
                        row[side] = {"id": pid, "name": (out.name if out else None) or f"#{pid}",
                                     "contact": " · ".join(v for v in (
                                         readable_phone(out.mobile), out.birthday) if v) if out else "",
                                     "place": " · ".join(v for v in (
                                         out.city, unit_names.get(person.unit_id)) if v) if person and out else ""}
                    rows.append(row)
                return rows, found.total

        columns = [
            {"name": "probability", "label": tr("dedupe.probability"), "field": "probability", "sortable": True,
             "align": "left"},
            {"name": "a", "label": tr("dedupe.customer_a"), "field": "a", "align": "left"},
            {"name": "b", "label": tr("dedupe.customer_b"), "field": "b", "align": "left"},
            {"name": "evidence", "label": tr("dedupe.evidence"), "field": "evidence", "align": "left"},
            {"name": "actions", "label": "", "field": "id", "align": "right"},
        ]
        holder: dict[str, ServerTable] = {}

        def draw_table() -> None:
            table_box.clear()
            with table_box:
                empty = (tr("dedupe.empty_open") if principal.has("settings.manage") else tr(
                    "dedupe.empty_open_reviewer")) if filters["status"] == "open" else tr("dedupe.empty_decided")
                table = ServerTable(columns, fetch, sort_by="probability", descending=True, tr=tr, empty_text=empty)
                holder["table"] = table
                table.table.add_slot("body-cell-probability", """
                    <q-td :props="props">
                      <div class="text-weight-medium" :class="props.row.probability >= 0.95 ? 'text-positive'
                           : (props.row.probability >= 0.8 ? 'text-primary' : 'text-orange-8')">
                        {{ props.row.probability_text }}</div>
                      <q-linear-progress :value="props.row.probability" size="4px" rounded
                        :color="props.row.probability >= 0.95 ? 'positive' : (props.row.probability >= 0.8
                                ? 'primary' : 'orange')" style="width: 72px" />
                    </q-td>""")
                for side in ("a", "b"):
                    table.table.add_slot(f"body-cell-{side}", f"""
                        <q-td :props="props" style="white-space: normal; max-width: 240px">
                          <a :href="'/customers/' + props.row.{side}.id" class="text-primary text-weight-medium"
                             style="text-decoration: none">{{{{ props.row.{side}.name }}}}</a>
                          <div class="text-caption text-grey-8">{{{{ props.row.{side}.contact }}}}</div>
                          <div class="text-caption text-grey-6">{{{{ props.row.{side}.place }}}}</div>
                        </q-td>""")
                table.table.add_slot("body-cell-evidence", """
                    <q-td :props="props" style="white-space: normal; min-width: 240px; max-width: 320px">
                      <q-chip v-for="e in props.row.evidence" :key="e.label" dense square
                              :color="e.for ? 'green-1' : 'red-1'" :text-color="e.for ? 'green-9' : 'red-9'"
                              :icon="e.for ? 'check' : 'close'" :label="e.label" />
                    </q-td>""")
                if filters["status"] == "open" and principal.can("profiles", "update"):
                    table.table.add_slot("body-cell-actions", f"""
                        <q-td :props="props" auto-width>
                          <div class="column q-gutter-xs items-stretch">
                            <q-btn dense unelevated no-caps color="primary" icon="call_merge"
                                   label="{tr('dedupe.merge')}" @click.stop="$parent.$emit('merge', props.row)" />
                            <q-btn dense flat no-caps color="grey-8" icon="person_off" label="{tr('dedupe.dismiss')}"
                                   @click.stop="$parent.$emit('dismiss', props.row)" />
                          </div>
                        </q-td>""")
                    table.table.on("merge", lambda e: _merge_dialog(principal, e.args, after=reload))
                    table.table.on("dismiss", lambda e: dismiss(e.args))
                else:
                    table.table.add_slot("body-cell-actions", """
                        <q-td :props="props"><span class="text-caption text-grey-7">{{ props.row.decided_at }}</span>
                        </q-td>""")

        def reload() -> None:
            holder["table"].reload()

        def apply(key: str, value: Any) -> None:
            filters[key] = value
            if key == "status":
                draw_table()
            else:
                holder["table"].reload(first_page=True)

        def dismiss(row: dict[str, Any]) -> None:
            if run_action(lambda s: dedupe.dismiss_candidate(s, principal, row["id"]), tr("dedupe.dismissed")):
                reload()

        draw_table()


def _run_card(principal: Any, state: schemas.DedupeSettingsOut, progress: tuple[int, str]) -> None:
    figures = state.figures
    with ui.card().classes("w-full"):
        with ui.row().classes("w-full items-start gap-4 no-wrap"):
            with ui.column().classes("gap-1 flex-1"):
                ui.label(tr("dedupe.title")).classes("text-lg font-medium")
                ui.label(tr("dedupe.help")).classes("text-sm text-grey-7")
            if principal.has("settings.manage"):
                with ui.column().classes("gap-1 items-stretch shrink-0"):
                    ui.button(tr("dedupe.run"), icon="manage_search", on_click=lambda: start()).props(
                        "unelevated").mark("dedupe-run")
                    ui.button(tr("dedupe.settings"), icon="tune",
                              on_click=lambda: _settings_dialog(principal, state)).props("flat").mark("dedupe-settings")
        with ui.row().classes("w-full items-center gap-3 text-sm"):
            status = ui.label().classes("font-medium").mark("dedupe-status")
            bar = ui.linear_progress(value=0, show_value=False).props("rounded size=6px animation-speed=300")
            bar.classes("w-48")
        if not principal.has("settings.manage"):
            # the run's figures count the whole group's records and pairs; a dealer or region reviews its own
            ui.label(tr("dedupe.help_reviewer")).classes("text-sm text-grey-7")
        else:
            with ui.row().classes("w-full items-end gap-8"):
                for key, label in (("records", "dedupe.fig.records"), ("candidate_pairs", "dedupe.fig.compared"),
                                   ("proposed", "dedupe.fig.proposed"), ("merged", "dedupe.fig.merged")):
                    if key in figures:
                        with ui.column().classes("gap-0"):
                            ui.label(f"{figures[key]:,}").classes("text-xl font-medium text-primary")
                            ui.label(tr(label)).classes("text-xs text-grey-7")
                ui.space()
                thresholds = tr("dedupe.thresholds", review=_percent(state.review_threshold),
                                auto=_percent(state.auto_merge_threshold) if state.auto_merge_threshold
                                else tr("dedupe.auto_off"))
                ui.label(thresholds).classes("text-xs text-grey-7")

    def show(current: str, done: int, message: str) -> None:
        running = current in ("queued", "running")
        bar.set_visibility(running)
        bar.value = done / 100
        if running:
            status.text = tr("dedupe.running", progress=done, message=message)
        elif current == "failed":
            status.text = tr("dedupe.failed")
        elif current == "too_many":
            status.text = tr("dedupe.too_many_run")
        elif state.last_run_at:
            status.text = tr("dedupe.last_run", at=format_local(state.last_run_at, principal.timezone),
                             seconds=figures.get("seconds", "—"))
        else:
            status.text = tr("dedupe.never")
        timer.active = running

    def poll() -> None:
        with unit_of_work() as session:
            found = dedupe.get_settings(session, principal)
            job = session.get(Job, found.job_id) if found.job_id else None
            current, done, message = found.status, job.progress if job else 0, job.message if job else ""
        if current in ("done", "failed") and state.status in ("queued", "running"):
            ui.navigate.reload()  # the queue and the figures changed
            return
        show(current, done, message)

    def start() -> None:
        found = run_action(lambda s: dedupe.request_run(s, principal), tr("dedupe.queued"))
        if found is not None:
            state.status = "queued"
            show("queued", 0, "")

    timer = ui.timer(2.0, poll, active=False)
    show(state.status, progress[0], progress[1])


def _settings_dialog(principal: Any, state: schemas.DedupeSettingsOut) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[520px] max-w-full"):
        ui.label(tr("dedupe.settings")).classes("text-lg font-medium")
        ui.label(tr("dedupe.settings_help")).classes("text-sm text-grey-7")
        review = ui.number(tr("dedupe.review_threshold"), value=round(state.review_threshold * 100, 1), min=50,
                           max=99.9, step=1, suffix="%").props("outlined dense").classes("w-full").mark(
            "dedupe-review")
        auto_on = ui.switch(tr("dedupe.auto_merge"), value=state.auto_merge_threshold is not None).mark(
            "dedupe-auto-on")
        auto = ui.number(tr("dedupe.auto_merge_threshold"), value=round((state.auto_merge_threshold or 0.99) * 100, 1),
                         min=50, max=99.9, step=0.5, suffix="%").props("outlined dense").classes("w-full").mark(
            "dedupe-auto")
        auto.bind_visibility_from(auto_on, "value")
        ui.label(tr("dedupe.auto_merge_help")).classes("text-xs text-grey-7")

        def save() -> None:
            if review.value is None or (auto_on.value and auto.value is None):
                ui.notify(tr("dedupe.threshold_missing"), type="warning")
                return
            saved = run_action(lambda s: dedupe.update_settings(
                s, principal, review_threshold=review.value / 100,
                auto_merge_threshold=auto.value / 100 if auto_on.value else None,
                clear_auto_merge=not auto_on.value), tr("done.dedupe_settings_saved"))
            if saved is not None:
                dialog.close()
                ui.navigate.reload()

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("common.save"), on_click=save).mark("dedupe-save")
    dialog.open()


def _weights_card(model: dict[str, Any], labels: dict[str, str]) -> None:
    """How much each piece of evidence weighs (log2 of how much likelier it is between records of one person
    than between two random records): what the model learnt from this organisation's data."""
    levels = model["levels"]
    trained = set(model.get("trained", levels))  # a comparison no pair could teach keeps its guesses: not shown
    custom = [(c, int(lv)) for c in levels if c.startswith("cf_") for lv in levels[c]]  # the organisation's fields
    shown = [(c, lv) for c, lv in [*SHOWN_LEVELS, *custom] if c in trained and str(lv) in levels.get(c, {})]
    weights = [round(levels[c][str(lv)]["weight"], 1) for c, lv in shown]
    with ui.card().classes("w-full"):
        ui.label(tr("dedupe.weights")).classes("text-lg font-medium")
        ui.label(tr("dedupe.weights_help")).classes("text-xs text-grey-7")
        chart({
            "grid": {"left": 96, "right": 24, "top": 8, "bottom": 24},
            "tooltip": {"trigger": "axis", "axisPointer": {"type": "shadow"}},
            "xAxis": {"type": "value"},
            "yAxis": {"type": "category", "inverse": True,
                      "data": [_evidence_label(c, lv, labels, model) for c, lv in shown],
                      "axisLabel": {"fontSize": 11}},
            "series": [{"type": "bar", "data": [
                {"value": w, "itemStyle": {"color": "#2e7d32" if w > 0 else "#c0392b"}} for w in weights]}],
        }).classes("w-full").style(f"height: {40 + 22 * len(shown)}px")


def _merge_dialog(principal: Any, row: dict[str, Any], *, after: Any) -> None:
    """The pair's two records side by side, to merge from the review queue."""
    try:
        with unit_of_work() as session:
            candidate = dedupe.get_candidate(session, principal, row["id"])
    except KehuError as error:  # decided or out of reach since the table was drawn
        notify_error(error)
        after()
        return
    merge_side_by_side(
        principal, candidate.profile_a_id, candidate.profile_b_id,
        title=tr("dedupe.merge_title", probability=_percent(candidate.probability)),
        merge=lambda s, winner, fields: dedupe.merge_candidate(s, principal, row["id"], winner_id=winner,
                                                                fields=fields),
        after=after)


# The fields a person chooses between when merging (unit, owner and first seen are shown, not chosen: they
# follow the kept record).
CHOSEN = ("name", "mobile", "email", "birthday", "gender", "city", "address", "postcode", "lifecycle_stage")


def _kept_rule(field: str, kept: Any, other: Any) -> str:
    """Which side a field takes unless the person says otherwise: the kept record's value, the other's when the
    kept one has none, and the further life-cycle stage."""
    if kept in (None, ""):
        return "other" if other not in (None, "") else "kept"
    if field == "lifecycle_stage" and other and further(other, kept):
        return "other"
    return "kept"


def merge_side_by_side(principal: Any, first_id: int, second_id: int, *, title: str, merge: Any,
                       after: Any) -> None:
    """Two customers side by side: the person picks the record that stays and, field by field where the two
    differ, whose value it keeps — prefilled with the kept record's values, the other's where it has none and
    the further life-cycle stage. ``merge(session, winner_id, fields)`` does it."""
    try:
        with unit_of_work() as session:
            pair = [service.get_profile(session, principal, first_id), service.get_profile(session, principal,
                                                                                            second_id)]
            owners, units = service.names_for(session, user_ids={p.owner_id for p in pair if p.owner_id},
                                              unit_ids={p.unit_id for p in pair})
            view = CustomerView.of(session, principal)
            outs = [view.profile(p) for p in pair]
    except KehuError as error:
        notify_error(error)
        after()
        return
    raw = [{k: getattr(out, k) for k in CHOSEN} for out in outs]
    shown = []
    for person, out in zip(pair, outs, strict=True):
        shown.append({"name": out.name, "mobile": readable_phone(out.mobile), "email": out.email,
                      "birthday": str(out.birthday) if out.birthday else None,
                      "gender": tr(f"gender.{out.gender}") if out.gender else None, "city": out.city,
                      "address": out.address, "postcode": out.postcode,
                      "lifecycle_stage": tr(f"stage.{out.lifecycle_stage}") if out.lifecycle_stage else None,
                      "unit": units.get(person.unit_id), "owner": owners.get(person.owner_id) if person.owner_id
                      else None, "first_seen_at": format_local(person.first_seen_at, principal.timezone)})
    state: dict[str, Any] = {"keep": 0, "picks": {}}
    with ui.dialog() as dialog, ui.card().classes("w-[760px] max-w-full"):
        ui.label(title).classes("text-lg font-medium")
        ui.label(tr("dedupe.merge_help")).classes("text-sm text-grey-7")
        grid = ui.column().classes("w-full gap-0")

        def draw() -> None:
            grid.clear()
            keep = state["keep"]
            with grid, ui.grid(columns="140px 1fr 1fr").classes("w-full gap-x-4 gap-y-1 items-center text-sm"):
                ui.label("")
                for side in (0, 1):
                    ui.radio({side: tr("dedupe.keep_this")}, value=side if side == keep else None,
                             on_change=lambda e, side=side: choose_record(side) if e.value == side else None).props(
                        f'dense data-test="keep-{side}"')
                for key in FIELDS:
                    left, right = shown[0][key], shown[1][key]
                    ui.label(tr(f"dedupe.field.{key}")).classes("text-grey-7")
                    if key not in CHOSEN:
                        for value in (left, right):
                            ui.label(value or "—")
                        continue
                    taken = state["picks"].get(key)
                    if taken is None:
                        rule = _kept_rule(key, raw[keep][key], raw[1 - keep][key])
                        taken = keep if rule == "kept" else 1 - keep
                    same = left is not None and left == right
                    for side, value in ((0, left), (1, right)):
                        if same or value in (None, ""):
                            ui.label(value or "—").classes("font-medium text-positive" if same else "text-grey-6")
                        else:
                            ui.radio({side: value}, value=taken if taken == side else None,
                                     on_change=lambda e, key=key, side=side: pick(key, side) if e.value == side
                                     else None).props(f'dense data-test="pick-{key}-{side}"').classes(
                                "font-medium" if taken == side else "text-grey-7")

        def choose_record(side: int) -> None:
            state["keep"], state["picks"] = side, {}
            draw()

        def pick(key: str, side: int) -> None:
            state["picks"][key] = side
            draw()

        draw()
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")

            def confirm() -> None:
                keep = state["keep"]
                fields = {}
                for key in CHOSEN:
                    side = state["picks"].get(key)
                    if side is None:
                        rule = _kept_rule(key, raw[keep][key], raw[1 - keep][key])
                        side = keep if rule == "kept" else 1 - keep
                    fields[key] = "winner" if side == keep else "loser"
                winner = pair[keep].id
                merged = run_action(lambda s: merge(s, winner, fields), tr("customers.merged"))
                if merged is not None:
                    dialog.close()
                    after()

            ui.button(tr("customers.merge_confirm"), icon="call_merge", on_click=confirm).props(
                "color=primary").mark("dedupe-merge-confirm")
    dialog.open()


def duplicates_panel(principal: Any, profile_id: int) -> None:
    """On the Customer 360: the customers this one is probably the same person as."""
    with unit_of_work() as session:
        pairs = dedupe.candidates_of(session, principal, profile_id)
        people = dedupe.profiles_of(session, pairs)
        others = [(c, people.get(c.profile_b_id if c.profile_a_id == profile_id else c.profile_a_id)) for c in pairs]
        view = CustomerView.of(session, principal)
        rows = [(c.probability, other.id, view.profile(other)) for c, other in others if other]
    if not rows:
        return
    with ui.card().classes("w-full border-l-4 border-orange-400").mark("duplicates-panel"):
        with ui.row().classes("w-full items-center"):
            ui.icon("content_copy").classes("text-orange-8")
            ui.label(tr("dedupe.panel_title", count=len(rows))).classes("text-lg font-medium")
        for probability, other_id, out in rows:
            with ui.row().classes("w-full items-center text-sm no-wrap gap-2"):
                ui.link(out.name or f"#{other_id}", f"/customers/{other_id}").classes("font-medium")
                ui.label(" · ".join(v for v in (readable_phone(out.mobile), out.birthday, out.city) if v)).classes(
                    "text-grey-7 flex-1 truncate")
                ui.badge(_percent(probability)).props("outline color=orange-9")
        ui.link(tr("dedupe.review_link"), "/customers/duplicates").classes("text-sm")


def register() -> None:
    page("/customers/duplicates")(duplicates_page)
