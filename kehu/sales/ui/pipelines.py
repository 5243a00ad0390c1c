"""Pipeline settings: each pipeline's stages, their order, probabilities and the forecast category they count in."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from kehu.sales import pipelines as pipeline_service
from kehu.sales import schemas
from kehu.sales.ui.opportunities import aside, listed
from kehu.ui.shell import frame, run_action, tr, unit_of_work, validated


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
                    for p, stages in pipeline_service.list_pipelines(session, principal)]
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
                    if run_action(lambda s: pipeline_service.save_pipeline(s, principal, data, pipeline_id),
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
