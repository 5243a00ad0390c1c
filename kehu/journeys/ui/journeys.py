"""Journeys (营销旅程): the list — each journey's status, trigger and how many customers it holds — and one journey:
its controls (publish, pause, resume, stop), what keeps its draft from going live, and its path node by node with
how many wait at each node now and how many passed it (a split: by branch). Drawing on a canvas comes next; until
then a journey's path is edited through the API (README: Journeys)."""

from __future__ import annotations

import json
from typing import Any

from nicegui import ui
from sqlalchemy import select

from kehu.channels.models import Template
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.journeys import approval, schemas, service
from kehu.journeys import results as journey_results
from kehu.journeys.ui import templates as template_ui
from kehu.journeys.ui.canvas import JourneyEditor
from kehu.journeys.ui.test_run import open_test_run
from kehu.journeys.ui.texts import date_fields_of, trigger_text
from kehu.segments.models import Segment
from kehu.tenancy.models import BusinessUnit
from kehu.ui.components import add_status_slot, localise_table
from kehu.ui.components.chart import chart
from kehu.ui.shell import (
    empty_state,
    frame,
    notify_error,
    page,
    run_action,
    stat_card,
    tr,
    unit_of_work,
    validated,
)

FOLLOW_SECONDS = 5.0  # how often a running journey's page reads its counts again
STATUS_COLOURS = {"draft": "grey-6", "live": "positive", "paused": "deep-orange-6", "stopped": "grey-5"}


def register() -> None:
    page("/journeys")(journeys_page)
    page("/journeys/{journey_id}")(journey_page)


def _names(session: Any, definitions: list[dict[str, Any]]) -> dict[str, dict[int, str]]:
    """The segments and templates the definitions name, by id (one read each)."""
    segment_ids = {(d.get("trigger") or {}).get("segment_id") for d in definitions} - {None}
    template_ids = {n.get("template_id") for d in definitions for n in d.get("nodes", [])} - {None}
    return {"segments": dict(session.execute(select(Segment.id, Segment.name).where(Segment.id.in_(segment_ids))).all())
            if segment_ids else {},
            "templates": dict(session.execute(select(Template.id, Template.name)
                                              .where(Template.id.in_(template_ids))).all()) if template_ids else {}}


# -- the list -------------------------------------------------------------------------------------------------------
def journeys_page() -> None:
    with frame("nav.journeys", "/journeys", "journeys") as principal:
        with unit_of_work() as session:
            found = service.list_journeys(session, principal, limit=500).items
            counts = journey_results.summaries(session, principal, [j.id for j in found])
            units = dict(session.execute(select(BusinessUnit.id, BusinessUnit.name).where(
                BusinessUnit.id.in_({j.unit_id for j in found}))).all()) if found else {}
            names = _names(session, [j.draft or {} for j in found])
            date_fields = date_fields_of(session, principal)
        def marked(j: Any) -> str:
            return j.name + (f" · {tr(f'journeys.review.{j.review_status}')}" if j.review_status else "") \
                + (f" · {tr('journeys.template.badge')}" if j.is_template else "")

        rows = [{"id": j.id, "name": marked(j), "unit": units.get(j.unit_id, "—"), "status": j.status,
                 "version": j.version or "—", "trigger": trigger_text(j.draft or {}, names["segments"], date_fields),
                 "entered": counts.get(j.id, (0, 0))[0], "active": counts.get(j.id, (0, 0))[1],
                 "updated": format_local(j.updated_at, principal.timezone)} for j in found]
        with ui.row().classes("w-full items-center"):
            ui.label(tr("journeys.intro")).classes("text-grey-7")
            ui.space()
            template_ui.offered_button(principal)
            if principal.can("journeys", "create"):
                ui.button(tr("journeys.import"), icon="upload_file", on_click=lambda: _import_dialog(principal)) \
                    .props("outline data-testid=import-journey")
                ui.button(tr("journeys.new"), icon="add", on_click=lambda: _new_dialog(principal)).props(
                    "data-testid=new-journey")
        if not rows:
            empty_state("alt_route", tr("journeys.empty_title"), tr("journeys.empty_text"))
            return
        columns: list[dict[str, Any]] = [
            {"name": "name", "label": tr("journeys.col.name"), "field": "name", "sortable": True, "align": "left"},
            {"name": "unit", "label": tr("journeys.col.unit"), "field": "unit", "sortable": True, "align": "left"},
            {"name": "status", "label": tr("journeys.col.status"), "field": "status", "sortable": True,
             "align": "left"},
            {"name": "trigger", "label": tr("journeys.col.trigger"), "field": "trigger", "align": "left"},
            {"name": "version", "label": tr("journeys.col.version"), "field": "version", "sortable": True},
            {"name": "entered", "label": tr("journeys.col.entered"), "field": "entered", "sortable": True},
            {"name": "active", "label": tr("journeys.col.active"), "field": "active", "sortable": True},
            {"name": "updated", "label": tr("journeys.col.updated"), "field": "updated", "sortable": True,
             "align": "left"},
        ]
        table = ui.table(columns=columns, rows=rows, row_key="id", pagination=20).classes("w-full").props(
            "flat bordered hover data-testid=journeys-table")
        localise_table(table, tr)
        add_status_slot(table, "status", {s: tr(f"journeys.status.{s}") for s in STATUS_COLOURS}, STATUS_COLOURS)
        table.on("row-click", lambda e: ui.navigate.to(f"/journeys/{e.args[1]['id']}"))


def _new_dialog(principal: Any) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[28rem]"):
        ui.label(tr("journeys.new")).classes("text-lg font-medium")
        name = ui.input(tr("journeys.col.name")).props("outlined dense autofocus data-testid=journey-name") \
            .classes("w-full")
        description = ui.textarea(tr("journeys.description")).props("outlined dense").classes("w-full")
        template = ui.checkbox(tr("journeys.template.new_as")).props("dense data-testid=journey-as-template")
        ui.label(tr("journeys.template.new_as_text")).classes("text-xs text-grey-7")

        def create() -> None:
            data = validated(lambda: schemas.JourneyCreate(name=name.value or "", description=description.value or "",
                                                           template=bool(template.value)))
            if data is None:
                return
            made = run_action(lambda session: service.create_journey(session, principal, data).id,
                              tr("journeys.created", name=data.name))
            if made is not None:
                dialog.close()
                ui.navigate.to(f"/journeys/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("journeys.create"), on_click=create).props("data-testid=create-journey")
    dialog.open()


IMPORT_BYTES = 1_000_000  # a journey file: 200 nodes and their conditions fit many times over


def _import_dialog(principal: Any) -> None:
    """A journey file (kehu.journey, as exported) becomes a new draft, under the name given."""
    chosen: dict[str, Any] = {}
    with ui.dialog() as dialog, ui.card().classes("w-[30rem]"):
        ui.label(tr("journeys.import_title")).classes("text-lg font-medium")
        ui.label(tr("journeys.import_text")).classes("text-grey-8 text-sm")
        name = ui.input(tr("journeys.col.name")).props("outlined dense data-testid=import-name").classes("w-full")

        async def uploaded(event: Any) -> None:
            content = await event.file.read()
            try:
                chosen["file"] = json.loads(content.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                chosen.pop("file", None)
                ui.notify(tr("journeys.import_unreadable"), type="negative")
                return
            if isinstance(chosen["file"], dict) and not name.value:
                name.value = str(chosen["file"].get("name") or "")[:200]

        ui.upload(label=tr("journeys.import_choose"), auto_upload=True, on_upload=uploaded,
                  max_file_size=IMPORT_BYTES).props('accept=".json" data-testid=import-file').classes("w-full")

        def create() -> None:
            if "file" not in chosen:
                ui.notify(tr("journeys.import_no_file"), type="warning")
                return
            data = validated(lambda: schemas.JourneyImport.model_validate(
                {**chosen["file"], "name": name.value or ""} if isinstance(chosen["file"], dict) else chosen["file"]))
            if data is None:
                return
            made = run_action(lambda session: service.import_journey(session, principal, data).id,
                              tr("journeys.created", name=data.name))
            if made is not None:
                dialog.close()
                ui.navigate.to(f"/journeys/{made}")

        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("journeys.import_create"), on_click=create).props("data-testid=import-create")
    dialog.open()


def _export(principal: Any, journey_id: int) -> None:
    with unit_of_work() as session:
        exported = service.export_journey(session, principal, journey_id)
    ui.download.content(exported.model_dump_json(indent=2).encode(), f"journey-{journey_id}.json",
                        "application/json")


# -- one journey ----------------------------------------------------------------------------------------------------
def journey_page(journey_id: int) -> None:
    with frame("nav.journeys", "/journeys", "journeys") as principal:
        try:
            with unit_of_work() as session:
                journey = service.get_journey(session, principal, journey_id)
                report = journey_results.report(session, principal, journey_id)
                may_change = service.may_change(session, principal, journey)
                needs_approval = service.needs_approval(session, principal, journey)
                names = _names(session, [journey.draft or {}])
                date_fields = date_fields_of(session, principal)
        except KehuError as error:  # not found, or not theirs: the same answer
            if error.status != 404:
                notify_error(error)
            empty_state("search_off", tr("journeys.not_found_title"), tr("journeys.not_found_text"))
            return

        @ui.refreshable
        def controls() -> None:
            if may_change:
                _controls(principal, journey, editor, needs_approval)

        @ui.refreshable
        def problems() -> None:
            said = [*editor.general_problems, *(f"{_node_name(editor.definition, node_id)}：{text}"
                                                for node_id, found in editor.node_problems.items() for text in found)]
            if not may_change or not said:
                return
            with ui.card().classes("w-full border-l-4 border-orange-7").props("data-testid=journey-problems"):
                ui.label(tr("journeys.problems", count=len(said))).classes("font-medium text-orange-9")
                for text in said[:12]:
                    ui.label(text).classes("text-grey-8")
                if len(said) > 12:
                    ui.label(tr("journeys.more_problems", count=len(said) - 12)).classes("text-grey-7")

        def changed() -> None:
            controls.refresh()
            problems.refresh()
            who_enters.set_text(trigger_text(editor.definition, editor.segments, editor.date_fields))  # as drawn

        waiting = journey.review_status == "submitted"  # what is approved is what was submitted: not edited now
        editor = JourneyEditor(principal, journey, report, editable=may_change and not waiting, on_saved=changed)
        editor.on_change = changed
        with ui.row().classes("w-full items-center gap-3"):
            ui.link(tr("journeys.back"), "/journeys").classes("text-primary")
            ui.label(journey.name).classes("text-xl font-medium").props("data-testid=journey-title")
            ui.badge(tr(f"journeys.status.{journey.status}"), color=STATUS_COLOURS.get(journey.status, "grey-7")) \
                .props("data-testid=journey-status")
            ui.label(tr("journeys.version", version=journey.version) if journey.version else tr("journeys.never"))\
                .classes("text-grey-7")
            ui.space()
            if principal.can("profiles"):
                ui.button(tr("journeys.test.button"), icon="science",
                          on_click=lambda: open_test_run(principal, journey_id, editor)).props(
                    "flat data-testid=journey-test-run")
            ui.button(tr("journeys.export"), icon="download", on_click=lambda: _export(principal, journey_id)) \
                .props("flat data-testid=journey-export")
            controls()
        if journey.description:
            ui.label(journey.description).classes("text-grey-8")
        who_enters = ui.label(trigger_text(journey.draft or {}, names["segments"], date_fields)).classes(
            "text-grey-8").props("data-testid=journey-trigger")
        if journey.review_status:
            _review_card(principal, journey)
        template_ui.template_card(principal, journey)

        @ui.refreshable
        def stats(report: schemas.JourneyReport) -> None:
            with ui.row().classes("w-full gap-4"):
                stat_card(tr("journeys.stats.entered"), report.entered, "group_add")
                stat_card(tr("journeys.stats.active"), report.active, "directions_walk")
                stat_card(tr("journeys.stats.completed"), report.completed, "flag")
                stat_card(tr("journeys.stats.exited"), report.exited, "logout")

        def follow() -> None:
            with unit_of_work() as session:
                fresh = journey_results.report(session, principal, journey_id)
            if fresh != shown[0]:
                shown[0] = fresh
                stats.refresh(fresh)
                editor.set_counts(fresh)

        shown = [report]
        if not journey.is_template:  # a template enrols nobody: its dealers' journeys do (its card above)
            stats(report)
        problems()
        editor.build()
        if journey.version and not journey.is_template:
            _results(principal, journey.id)
        if journey.status in ("live", "paused"):  # the customers move on while the page is open
            ui.timer(FOLLOW_SECONDS, follow)


def _node_name(definition: dict[str, Any], node_id: str) -> str:
    node: dict[str, Any] = next((n for n in definition.get("nodes", []) if n.get("id") == node_id), {})
    return tr("journeys.node_named", name=node.get("label") or node_id)


def _act(fn: Any, done: str) -> None:
    if run_action(fn, done) is not None:
        ui.navigate.reload()


def _review_card(principal: Any, journey: Any) -> None:
    """Where the journey stands in its approval: waiting (and, for an approver other than its author, approve or
    send back with a comment) or sent back with the reviewer's words."""
    waiting = journey.review_status == "submitted"
    colour = "border-orange-7" if waiting else "border-red-7"
    with ui.card().classes(f"w-full border-l-4 {colour}").props("data-testid=journey-review"):
        with ui.row().classes("items-center gap-2"):
            ui.badge(tr(f"journeys.review.{journey.review_status}"), color="orange-8" if waiting else "negative")
            ui.label(tr("journeys.review.submitted_text", at=format_local(journey.submitted_at, principal.timezone))
                     if waiting else tr("journeys.review.rejected_text", comment=journey.review_comment)) \
                .classes("text-grey-8")
        reviewer = principal.has("messages.approve") and principal.user_id not in (journey.owner_id,
                                                                                   journey.submitted_by_id)
        if not waiting or not reviewer:
            return
        comment = ui.input(tr("journeys.review.comment")).props(
            "outlined dense maxlength=500 data-testid=journey-review-comment").classes("w-full")
        with ui.row().classes("gap-2"):
            ui.button(tr("journeys.review.approve"), icon="check", on_click=lambda: _act(
                lambda s: approval.review(s, principal, journey.id, schemas.Review(approve=True,
                                                                                   comment=comment.value or "")),
                tr("journeys.review.approved"))).props("data-testid=journey-approve")
            ui.button(tr("journeys.review.reject"), icon="undo", on_click=lambda: _act(
                lambda s: approval.review(s, principal, journey.id, schemas.Review(approve=False,
                                                                                   comment=comment.value or "")),
                tr("journeys.review.rejected_done"))).props("outline color=negative data-testid=journey-reject")


def _controls(principal: Any, journey: Any, editor: JourneyEditor, needs_approval: bool) -> None:
    act = _act
    if journey.review_status == "submitted":
        ui.button(tr("journeys.review.withdraw"), icon="undo", on_click=lambda: act(
            lambda s: approval.withdraw(s, principal, journey.id), tr("journeys.review.withdrawn"))).props(
            "outline data-testid=journey-withdraw")
    else:
        _publish_button(principal, journey, editor, needs_approval)
    if journey.status == "live":
        ui.button(tr("journeys.pause"), icon="pause", on_click=lambda: act(
            lambda s: service.pause(s, principal, journey.id), tr("journeys.paused"))).props(
            "outline data-testid=journey-pause")
    if journey.status == "paused":
        ui.button(tr("journeys.resume"), icon="play_arrow", on_click=lambda: act(
            lambda s: service.resume(s, principal, journey.id), tr("journeys.resumed"))).props(
            "outline data-testid=journey-resume")
    if journey.status in ("live", "paused"):
        ui.button(tr("journeys.stop"), icon="stop", on_click=lambda: _stop_dialog(principal, journey, act)).props(
            "outline color=negative data-testid=journey-stop")


def _publish_button(principal: Any, journey: Any, editor: JourneyEditor, needs_approval: bool) -> None:
    label = tr("journeys.review.submit") if needs_approval else tr("journeys.publish_again") if journey.version \
        else tr("journeys.publish")
    button = ui.button(label, icon="rocket_launch",
                       on_click=lambda: _publish_dialog(principal, journey, editor, _act, needs_approval)).props(
        "data-testid=journey-publish")
    if editor.problem_count():
        button.disable()
        button.tooltip(tr("journeys.fix_first"))


def _publish_dialog(principal: Any, journey: Any, editor: JourneyEditor, act: Any, needs_approval: bool) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[30rem]"):
        ui.label(tr("journeys.publish_title")).classes("text-lg font-medium")
        ui.label(tr("journeys.publish_text")).classes("text-grey-8")
        if needs_approval:
            ui.label(tr("journeys.review.needed")).classes("text-orange-9")
        if editor.is_dirty():
            ui.label(tr("journeys.publish_saves")).classes("text-orange-9")
        move = ui.checkbox(tr("journeys.move_people"), value=False).props("data-testid=journey-move-people") \
            if journey.version else None
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")

            def publish() -> None:
                dialog.close()
                if editor.is_dirty() and not editor.save():
                    return
                act(lambda s: service.publish_version(s, principal, journey.id, schemas.Publish(
                    move_people=bool(move and move.value))),
                    tr("journeys.review.submitted_done") if needs_approval else tr("journeys.published"))

            ui.button(tr("journeys.review.submit") if needs_approval else tr("journeys.publish"), on_click=publish) \
                .props("data-testid=journey-publish-confirm")
    dialog.open()


def _stop_dialog(principal: Any, journey: Any, act: Any) -> None:
    with ui.dialog() as dialog, ui.card().classes("w-[30rem]"):
        ui.label(tr("journeys.stop_title", name=journey.name)).classes("text-lg font-medium")
        ui.label(tr("journeys.stop_text")).classes("text-grey-8")
        with ui.row().classes("w-full justify-end"):
            ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
            ui.button(tr("journeys.stop"), on_click=lambda: (dialog.close(), act(
                lambda s: service.stop(s, principal, journey.id), tr("journeys.stopped")))).props(
                "color=negative data-testid=journey-stop-confirm")
    dialog.open()


def _results(principal: Any, journey_id: int) -> None:
    """Conversion to the goal, and each random split's groups against the control group, with a chart."""
    with unit_of_work() as session:
        found = journey_results.results(session, principal, journey_id)
    with ui.card().classes("w-full").props("data-testid=journey-results"):
        ui.label(tr("journeys.results.title")).classes("text-lg font-medium")
        if found.goal is None:
            ui.label(tr("journeys.results.no_goal")).classes("text-grey-7")
            return
        ui.label(tr("journeys.results.goal", event=found.goal.event, days=found.goal.within_days)) \
            .classes("text-grey-8")
        ui.label(tr("journeys.results.overall", converted=found.converted, entered=found.entered,
                    rate=f"{found.rate:.1%}")).classes("text-base").props("data-testid=results-overall")
        for split in found.splits:
            _split_results(split)
        for path in found.paths:
            _path_results(path)
        if len(found.units) > 1:
            _unit_results(found.units)


def _unit_results(units: list[schemas.UnitResult]) -> None:
    """Each dealer's customers and conversion, side by side (HQ's view of a journey that reaches several)."""
    ui.separator()
    ui.label(tr("journeys.results.by_unit")).classes("font-medium")
    rows = [{"unit": u.unit, "customers": u.entered, "converted": u.converted, "rate": round(u.rate * 100, 1)}
            for u in units]  # the rate as a number (a percentage), so that it sorts as one
    labels = {"unit": "unit", "customers": "customers", "converted": "converted", "rate": "rate_pct"}
    columns = [{"name": key, "label": tr(f"journeys.results.col.{labels[key]}"), "field": key, "sortable": True,
                "align": "left" if key == "unit" else "right"} for key in ("unit", "customers", "converted", "rate")]
    with ui.row().classes("w-full gap-4 items-start no-wrap"):
        table = ui.table(columns=columns, rows=rows, row_key="unit", pagination=10).classes("flex-1").props(
            "flat bordered dense data-testid=results-units")
        localise_table(table, tr)
        top = units[:12]
        chart({
            "grid": {"left": 40, "right": 10, "top": 20, "bottom": 60},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "category", "data": [u.unit for u in top], "axisLabel": {"rotate": 30}},
            "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
            "series": [{"type": "bar", "name": tr("journeys.results.col.rate"),
                        "data": [round(u.rate * 100, 2) for u in top], "itemStyle": {"color": "#1f4e79"}}],
        }).classes("w-96 h-56")


def _path_results(path: schemas.PathResult) -> None:
    """Conversion along each way of a split or a wait for an event (observed, not randomised: said so)."""
    ui.separator()
    ui.label(tr("journeys.results.path", name=path.label)).classes("font-medium")
    ui.label(tr("journeys.results.observed")).classes("text-xs text-grey-7")

    def label(way: schemas.WayResult) -> str:
        return tr(f"journeys.way.{way.way}") if way.way in (schemas.ELSE, schemas.HAPPENED, schemas.TIMED_OUT) \
            else way.label

    rows = [{"way": label(w), "customers": w.customers, "converted": w.converted, "rate": f"{w.rate:.1%}"}
            for w in path.ways]
    columns = [{"name": key, "label": tr(f"journeys.results.col.{key}"), "field": key,
                "align": "left" if key == "way" else "right"} for key in ("way", "customers", "converted", "rate")]
    table = ui.table(columns=columns, rows=rows, row_key="way").classes("w-full").props(
        f"flat bordered dense data-testid=results-path-{path.node}")
    localise_table(table, tr)


def _split_results(split: schemas.SplitResult) -> None:
    ui.separator()
    ui.label(tr("journeys.results.split", name=split.label)).classes("font-medium")

    def percent(value: float | None) -> str:
        return "—" if value is None else f"{value * 100:+.1f}"

    rows = [{"group": g.label + (f"（{tr('journeys.control')}）" if g.control else ""), "customers": g.customers,
             "converted": g.converted, "rate": f"{g.rate:.1%}",
             "uplift": "—" if g.uplift is None else
             f"{percent(g.uplift)} [{percent(g.uplift_low)}, {percent(g.uplift_high)}]",
             "p": "—" if g.p_value is None else f"{g.p_value:.3f}",
             "verdict": tr("journeys.results.significant") if g.significant else
             ("—" if g.group == split.compared_with else tr("journeys.results.not_yet"))} for g in split.groups]
    columns = [{"name": key, "label": tr(f"journeys.results.col.{key}"), "field": key,
                "align": "left" if key in ("group", "uplift", "verdict") else "right"}
               for key in ("group", "customers", "converted", "rate", "uplift", "p", "verdict")]
    with ui.row().classes("w-full gap-4 items-start no-wrap"):
        table = ui.table(columns=columns, rows=rows, row_key="group").classes("flex-1").props(
            f"flat bordered dense data-testid=results-{split.node}")
        localise_table(table, tr)
        chart({
            "grid": {"left": 40, "right": 10, "top": 20, "bottom": 30},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "category", "data": [g.label for g in split.groups]},
            "yAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
            "series": [{"type": "bar", "name": tr("journeys.results.col.rate"),
                        "data": [{"value": round(g.rate * 100, 2),
                                  "itemStyle": {"color": "#90a4ae" if g.control else "#1f4e79"}}
                                 for g in split.groups]}],
        }).classes("w-80 h-56")
    if split.winner:
        winner = next(g.label for g in split.groups if g.group == split.winner)
        ui.label(tr("journeys.results.winner", group=winner)).classes("text-positive font-medium")
    else:
        ui.label(tr("journeys.results.no_winner")).classes("text-grey-7")
