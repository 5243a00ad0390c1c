"""The template editor: content per language and channel (MJML or HTML e-mail, SMS, WeChat fields, push,
webhook payloads), dynamic blocks in the segment language, a live preview on a real customer of the reader's
scope, versions, test sends to oneself, and what the template's messages did.

Over 800 lines because it is one page's state (``_Editor``: the fields, their faults and the preview that follows
each keystroke share it); the pieces other pages use live in ``showing``, the list and library in ``templates``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Literal

from nicegui import ui
from pydantic import ValidationError

from kehu.cdp import fields as custom_fields
from kehu.cdp import service as cdp_service
from kehu.cdp.views import CustomerView
from kehu.channels import broadcasts, schemas, templates
from kehu.channels.models import CHANNELS, PURPOSES
from kehu.channels.ui.report import show_report
from kehu.channels.ui.showing import (
    _neutralised,
    channel_chip,
    channel_label,
    error_words,
    phone_bubble,
    push_card,
    sandboxed_html,
    wechat_card,
)
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.tenancy.access import Principal, within_depth
from kehu.ui.components import readable_phone
from kehu.ui.components.condition_builder import Builder, ConditionEditor
from kehu.ui.shell import empty_state, frame, notify_error, run_action, tr, unit_of_work, validated

PURPOSE_COLOURS = {"marketing": "deep-orange-7", "service": "teal-7", "transactional": "blue-grey-7"}
LANGS = ("zh", "en")
BLOCK_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# what each channel's message is made of: per language, and shared by both languages
PER_LANGUAGE = {"email": ("subject", "html", "text"), "sms": ("text",), "push": ("subject", "text"),
                "wechat": ("text",), "webhook": ("text",)}
SHARED = {"email": (), "sms": ("provider_template", "params"), "push": ("url",),
          "wechat": ("provider_template", "fields", "url"), "webhook": ("payload",)}

# the variables a template may use (kehu/channels/rendering.py), by group: (label key, what is inserted)
VARIABLES: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("customer", (("name_default", '{{ name | default("车主") }}'), ("name", "{{ name }}"),
                  ("gender", "{{ gender }}"), ("city", "{{ city }}"), ("province", "{{ province }}"),
                  ("address", "{{ address }}"), ("postcode", "{{ postcode }}"),
                  ("birthday", '{{ birthday | date("%m月%d日") }}'), ("mobile", "{{ mobile }}"),
                  ("email", "{{ email }}"), ("stage", "{{ lifecycle_stage }}"))),
    ("order", (("order_number", "{{ order.number }}"), ("order_total", "{{ order.total | money }}"),
               ("order_date", "{{ order.date | date }}"))),
    ("vehicle", (("vehicle_model", "{{ vehicle.model }}"), ("vehicle_year", "{{ vehicle.model_year }}"),
                 ("vehicle_plate", "{{ vehicle.plate }}"), ("vehicle_vin", "{{ vehicle.vin }}"),
                 ("vehicle_bought", "{{ vehicle.purchased_at | date }}"))),
    ("dealer", (("dealer_name", "{{ dealer.name }}"), ("dealer_city", "{{ dealer.city }}"),
                ("sales_name", "{{ salesperson.name }}"), ("sales_phone", "{{ salesperson.phone }}"),
                ("sales_email", "{{ salesperson.email }}"))),
    ("links", (("unsubscribe", "{{ unsubscribe_url }}"),)),
)

MJML_STARTER = {
    "zh": """<mjml>
  <mj-body background-color="#f4f5f7">
    <mj-section background-color="#1f4e79" padding="20px 24px">
      <mj-column>
        <mj-text color="#ffffff" font-size="20px" font-weight="bold">
          {{ dealer.name | default("示范汽车") }}
        </mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="28px 24px">
      <mj-column>
        <mj-text font-size="16px" line-height="26px">{{ name | default("车主") }}，您好：</mj-text>
        <mj-text font-size="15px" line-height="26px" color="#444444">
          感谢您一直以来的信任。本月到店保养，工时费享 8 折优惠，还可免费检测空调与轮胎。
        </mj-text>
        <!-- 把按钮的链接改为您的活动或预约页面 -->
        <mj-button background-color="#c0392b" border-radius="4px" font-size="15px"
                   href="https://example.com/booking">立即预约</mj-button>
        <mj-text font-size="14px" line-height="22px" color="#666666">
          {% if salesperson.name %}如有疑问，请联系您的销售顾问{{ salesperson.name }}（{{ salesperson.phone }}）。
          {% else %}如有疑问，欢迎致电{{ dealer.name | default("我们") }}。{% endif %}
        </mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 24px">
      <mj-column>
        <mj-text font-size="12px" line-height="18px" color="#888888" align="center">
          您收到这封邮件，是因为您是{{ dealer.name | default("我们") }}的客户。
          <a href="{{ unsubscribe_url }}" style="color:#888888">退订</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
""",
    "en": """<mjml>
  <mj-body background-color="#f4f5f7">
    <mj-section background-color="#1f4e79" padding="20px 24px">
      <mj-column>
        <mj-text color="#ffffff" font-size="20px" font-weight="bold">
          {{ dealer.name | default("Demo Motors") }}
        </mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#ffffff" padding="28px 24px">
      <mj-column>
        <mj-text font-size="16px" line-height="26px">Dear {{ name | default("customer") }},</mj-text>
        <mj-text font-size="15px" line-height="26px" color="#444444">
          Thank you for your trust. Service your car with us this month and save 20% on labour,
          with a free air-conditioning and tyre check.
        </mj-text>
        <!-- point the button at your campaign or booking page -->
        <mj-button background-color="#c0392b" border-radius="4px" font-size="15px"
                   href="https://example.com/booking">Book now</mj-button>
        <mj-text font-size="14px" line-height="22px" color="#666666">
          {% if salesperson.name %}Questions? Your sales consultant {{ salesperson.name }} is happy to help:
          {{ salesperson.phone }}.{% else %}Questions? Call {{ dealer.name | default("us") }}.{% endif %}
        </mj-text>
      </mj-column>
    </mj-section>
    <mj-section padding="16px 24px">
      <mj-column>
        <mj-text font-size="12px" line-height="18px" color="#888888" align="center">
          You receive this e-mail as a customer of {{ dealer.name | default("ours") }}.
          <a href="{{ unsubscribe_url }}" style="color:#888888">Unsubscribe</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
""",
}

# the starter's subject when none is written yet (the template's own words, in its language)
STARTER_SUBJECT = {"zh": '{{ name | default("车主") }}，本月保养礼遇', "en": "{{ name | default(\"Dear customer\") }}, "
                   "this month's service offer"}




# -- the editor -------------------------------------------------------------------------------------------------
def editor_page(template_id: int | None = None, preview: int | None = None) -> None:
    """A new template, or (``template_id``) a saved one: its newest version in the editor (previewed on the
    customer ``preview``, the one the author chose before the first save)."""
    title = "channels.tpl.edit_title" if template_id else "channels.tpl.new_title"
    with frame(title, "/templates", "messages") as principal:
        if template_id is None and not principal.can("messages", "create"):
            empty_state("block", tr("channels.tpl.no_right"), tr("channels.tpl.no_right_text"))
            return
        saved: schemas.TemplateOut | None = None
        unit_name = ""
        editable = True
        if template_id is not None:
            try:
                with unit_of_work() as session:
                    found = templates.get_template(session, principal, template_id)
                    saved = templates.template_out(session, found)
                    _, units = cdp_service.names_for(session, user_ids=set(), unit_ids={found.unit_id})
                    unit_name = units.get(found.unit_id, "")
                    editable = within_depth(session, principal, principal.depth("messages", "update"),
                                            unit_id=found.unit_id, owner_id=found.owner_id)
            except KehuError:
                empty_state("search_off", tr("channels.tpl.not_found"), tr("channels.tpl.not_found_text"))
                return
        _Editor(principal, saved, unit_name=unit_name, editable=editable, preview_profile=preview).build()


def _variant(raw: dict[str, Any] | None) -> dict[str, str]:
    raw = raw or {}
    return {"subject": raw.get("subject") or "", "html": raw.get("html") or "", "text": raw.get("text") or ""}


class _Block:
    """One dynamic content block being edited: its name and its condition (a builder of its own)."""

    def __init__(self, name: str, builder: Builder | None, condition: dict[str, Any] | None = None) -> None:
        self.name = name
        self.builder = builder
        self.saved = condition  # shown as it is when the reader cannot edit conditions
        self.usage: ui.label | None = None

    def condition(self) -> dict[str, Any] | None:
        return self.builder.condition() if self.builder is not None else self.saved


class _Editor:
    def __init__(self, principal: Principal, saved: schemas.TemplateOut | None, *, unit_name: str,
                 editable: bool, preview_profile: int | None = None) -> None:
        self.principal = principal
        self.saved = saved
        self.template_id = saved.id if saved else None
        self.editable = editable
        self.unit_name = unit_name
        content = (saved.content if saved else None) or {}
        self.name = saved.name if saved else ""
        self.description = saved.description if saved else ""
        self.channel = saved.channel if saved else "email"
        self.purpose = saved.purpose if saved else "marketing"
        self.version = saved.version if saved else 0
        self.archived = saved.is_archived if saved else False
        self.variants = {lang: _variant(content.get(lang)) for lang in LANGS}
        self.provider_template = content.get("provider_template") or ""
        self.params: list[str] = list(content.get("params") or [])
        self.fields: list[list[str]] = [[k, v] for k, v in (content.get("fields") or {}).items()]
        self.url = content.get("url") or ""
        self.payload: list[list[str]] = [[k, v] for k, v in (content.get("payload") or {}).items()]
        self.note = ""
        self.dirty = False
        self.blocks: list[_Block] = []
        self.builder_refused = False
        for name, condition in ((saved.blocks if saved else None) or {}).items():
            self.blocks.append(_Block(name, self._builder(condition), condition))
        self.preview_profile: int | None = preview_profile
        self.preview_locale: Literal["zh", "en"] = "zh"
        self.customers: dict[int, str] = {}
        # where each field's fault is shown (a service error's ``field`` → a setter), and its name for the reader
        self.errors: dict[str, Callable[[str | None], None]] = {}
        self.labels: dict[str, str] = {}
        self.editables: list[Any] = []
        self.subject_inputs: dict[str, Any] = {}
        self.html_editors: dict[str, Any] = {}
        self.sms_counters: dict[str, Any] = {}
        with unit_of_work() as session:
            self.library = [(i.name, i.kind) for i in templates.list_content(session, principal)]
            defined = custom_fields.definitions(session, principal.org_id)
            self.custom = [(key, (f.label_zh if principal.locale == "zh" else f.label_en) or key)
                           for key, f in defined.items() if not f.is_pii or principal.has("pii.read")]

    def _builder(self, condition: dict[str, Any] | None = None) -> Builder | None:
        """A condition builder for a block, or None when the reader's roles cannot read what conditions name
        (segments, tags): the block's condition is then shown as saved."""
        if not self.editable:
            return None
        try:
            builder = Builder(self.principal)
        except KehuError:
            self.builder_refused = True
            return None
        builder.load(condition)
        return builder

    # -- the page --------------------------------------------------------------------------------------------
    def build(self) -> None:
        self._header()
        if not self.editable:
            with ui.row().classes("w-full items-center gap-2 rounded bg-blue-1 px-4 py-2 text-sm"):
                ui.icon("visibility").classes("text-primary")
                ui.label(tr("channels.tpl.read_only", unit=self.unit_name or "—"))
        with ui.row().classes("w-full gap-4 no-wrap items-start max-lg:flex-wrap"):
            with ui.column().classes("flex-1 min-w-0 gap-4"):
                self._basics()
                self.content_area = ui.column().classes("w-full gap-4")
                self._draw_content()
                self._blocks_card()
                if self.template_id is not None:
                    self.history_area = ui.column().classes("w-full")
                    self._history()
                    self._performance()
            with ui.column().classes("w-[480px] shrink-0 gap-4 max-lg:w-full"):
                self._preview_card()
                self._variables_card()
        self.timer = ui.timer(0.6, self.preview, active=False)
        self.preview()

    def changed(self) -> None:
        self.dirty = True
        self.timer.activate()  # the preview follows the last change, not every keystroke

    def _track(self, element: Any) -> Any:
        self.editables.append(element)
        if not self.editable:
            element.disable()
        return element

    def _header(self) -> None:
        with ui.row().classes("w-full items-center gap-3"):
            self.title_label = ui.label(self.name or tr("channels.tpl.untitled")).classes("text-xl font-medium")
            self.channel_slot = ui.row().classes("items-center gap-2")
            with self.channel_slot:
                channel_chip(self.channel)
            if self.template_id is not None:
                self.version_badge = ui.badge(tr("channels.tpl.version_n", n=self.version)).props(
                    "color=primary data-testid=template-version")
                self.archived_badge = ui.badge(tr("channels.tpl.archived")).props("color=grey-7")
                self.archived_badge.set_visibility(self.archived)
            ui.space()
            if self.template_id is not None and self.editable:
                self.archive_button = ui.button(on_click=lambda: self.archive()).props("flat")
                self._archive_label()
            if self.editable:
                if self.template_id is not None:
                    self.note_input = ui.input(placeholder=tr("channels.tpl.note"),
                                               on_change=lambda e: setattr(self, "note", e.value or "")).props(
                        "outlined dense data-testid=template-note").classes("w-60")
                ui.button(tr("channels.tpl.save"), icon="save", on_click=lambda: self.save()).props(
                    "data-testid=template-save")

    def _archive_label(self) -> None:
        self.archive_button.text = tr("channels.tpl.unarchive" if self.archived else "channels.tpl.archive")
        self.archive_button.props(f'icon={"unarchive" if self.archived else "archive"}')

    def _error_slot(self, path: str, label: str, element: Any = None) -> None:
        """Where a fault of ``path`` is shown: the input's own error line, or a line under the element."""
        self.labels[path] = label
        if element is not None and hasattr(element, "error"):
            def show(message: str | None, element: Any = element) -> None:
                element.error = message

            self.errors[path] = show
            return
        line = ui.label().classes("text-negative text-xs").props(f'data-testid="error-{path}"')
        line.set_visibility(False)

        def show_line(message: str | None) -> None:
            line.text = message or ""
            line.set_visibility(bool(message))

        self.errors[path] = show_line

    def _basics(self) -> None:
        with ui.card().classes("w-full gap-3"):
            with ui.row().classes("w-full gap-3 no-wrap max-md:flex-wrap"):
                name = self._track(ui.input(tr("channels.tpl.name"), value=self.name,
                                            on_change=lambda e: self._set("name", e.value)).props(
                    "outlined dense data-testid=template-name").classes("flex-1"))
                self._error_slot("name", tr("channels.tpl.name"), name)
                channel = ui.select({c: channel_label(c) for c in CHANNELS}, value=self.channel,
                                    label=tr("channels.tpl.channel"),
                                    on_change=lambda e: self._switch_channel(e.value)).props(
                    "outlined dense data-testid=template-channel").classes("w-44")
                if self.template_id is not None:
                    channel.disable()  # a template stays on its channel: its broadcasts were approved for it
                purpose = self._track(ui.select({p: tr(f"channels.tpl.purpose.{p}") for p in PURPOSES},
                                                value=self.purpose, label=tr("channels.tpl.purpose"),
                                                on_change=lambda e: self._set_purpose(e.value)).props(
                    "outlined dense").classes("w-44"))
                self._error_slot("purpose", tr("channels.tpl.purpose"), purpose)
            self._track(ui.input(tr("channels.tpl.description"), value=self.description,
                                 on_change=lambda e: self._set("description", e.value)).props(
                "outlined dense").classes("w-full"))
            self.purpose_help = ui.label(tr(f"channels.tpl.purpose_help.{self.purpose}")).classes(
                "text-xs text-grey-7")
            if self.template_id is None:
                ui.label(tr("channels.tpl.channel_help")).classes("text-xs text-grey-7")
            elif self.unit_name:
                ui.label(tr("channels.tpl.of_unit", unit=self.unit_name)).classes("text-xs text-grey-7")

    def _set(self, key: str, value: Any) -> None:
        setattr(self, key, value or "")
        if key == "name":
            self.title_label.text = value or tr("channels.tpl.untitled")
        self.dirty = True

    def _set_purpose(self, value: str) -> None:
        self.purpose = value
        self.purpose_help.text = tr(f"channels.tpl.purpose_help.{value}")
        self.dirty = True

    def _switch_channel(self, channel: str) -> None:
        self.channel = channel
        self.channel_slot.clear()
        with self.channel_slot:
            channel_chip(channel)
        self._draw_content()
        self._draw_preview_frame()
        self.mjml_hint.set_visibility(channel == "email")
        self.changed()

    # -- content ---------------------------------------------------------------------------------------------
    def _draw_content(self) -> None:
        self.content_area.clear()
        for path in [p for p in self.errors if p.startswith("content")]:
            self.errors.pop(path)
        with self.content_area, ui.card().classes("w-full gap-2"):
            with ui.row().classes("w-full items-center"):
                ui.label(tr("channels.tpl.content")).classes("text-lg font-medium")
                ui.space()
                ui.label(tr(f"channels.tpl.content_help.{self.channel}")).classes("text-xs text-grey-7")
            with ui.tabs().props("dense no-caps align=left active-color=primary").classes("text-grey-8") as tabs:
                self.lang_tabs = {"zh": ui.tab("zh", label="中文"), "en": ui.tab("en", label="English")}
            tabs.set_value(self.lang_tabs["zh"])
            with ui.tab_panels(tabs, value=self.lang_tabs["zh"]).classes("w-full").props("keep-alive"):
                for lang in LANGS:
                    with ui.tab_panel(self.lang_tabs[lang]).classes("px-0 py-2 gap-3"):
                        if lang == "en":
                            ui.label(tr("channels.tpl.en_help")).classes("text-xs text-grey-7")
                        self._variant_fields(lang)
            shared = SHARED[self.channel]
            if shared:
                ui.separator()
            if "provider_template" in shared:
                label = tr(f"channels.tpl.provider_template.{self.channel}")
                box = self._track(ui.input(label, value=self.provider_template,
                                           on_change=lambda e: self._shared("provider_template", e.value)).props(
                    "outlined dense").classes("w-full"))
                self._error_slot("content.provider_template", label, box)
                ui.label(tr(f"channels.tpl.provider_template_help.{self.channel}")).classes("text-xs text-grey-7")
            if "params" in shared:
                self.params_area = ui.column().classes("w-full gap-2")
                self._draw_params()
            if "fields" in shared:
                self.fields_area = ui.column().classes("w-full gap-2")
                self._draw_pairs("fields")
            if "payload" in shared:
                self.payload_area = ui.column().classes("w-full gap-2")
                self._draw_pairs("payload")
            if "url" in shared:
                label = tr("channels.tpl.url")
                box = self._track(ui.input(label, value=self.url, placeholder="https://",
                                           on_change=lambda e: self._shared("url", e.value)).props(
                    "outlined dense").classes("w-full"))
                self._error_slot("content.url", label, box)

    def _shared(self, key: str, value: Any) -> None:
        setattr(self, key, value or "")
        self.changed()

    def _variant_fields(self, lang: str) -> None:
        variant = self.variants[lang]
        where = f"content.{lang}"
        lang_name = "中文" if lang == "zh" else "English"

        def put(key: str, value: Any) -> None:
            variant[key] = value or ""
            if key == "text" and self.channel == "sms":
                self._count_sms(lang)
            self.changed()

        wanted = PER_LANGUAGE[self.channel]
        if "subject" in wanted:
            label = tr("channels.tpl.push_title" if self.channel == "push" else "channels.tpl.subject")
            box = self._track(ui.input(label, value=variant["subject"],
                                       on_change=lambda e: put("subject", e.value)).props(
                f"outlined dense data-testid=subject-{lang}").classes("w-full"))
            self._error_slot(f"{where}.subject", f"{lang_name} · {label}", box)
            self.subject_inputs[lang] = box
        if "html" in wanted:
            with ui.row().classes("w-full items-center gap-2"):
                ui.label(tr("channels.tpl.html")).classes("text-sm text-grey-8")
                ui.space()
                if self.editable:
                    ui.button(tr("channels.tpl.mjml_starter"), icon="auto_awesome",
                              on_click=lambda: self._starter(lang)).props(
                        f"flat dense no-caps data-testid=mjml-starter-{lang}")
            editor = self._track(ui.codemirror(variant["html"], language="HTML", line_wrapping=True,
                                               on_change=lambda e: put("html", e.value)).classes(
                "w-full rounded border").style("height: 340px").props(f"data-testid=html-{lang}"))
            self.html_editors[lang] = editor
            self._error_slot(f"{where}.html", f"{lang_name} · {tr('channels.tpl.html')}")
            ui.label(tr("channels.tpl.html_help")).classes("text-xs text-grey-7")
        if "text" in wanted:
            label = tr(f"channels.tpl.text.{self.channel}")
            box = self._track(ui.textarea(label, value=variant["text"], on_change=lambda e: put("text", e.value)
                                          ).props(f"outlined autogrow data-testid=text-{lang}").classes("w-full"))
            self._error_slot(f"{where}.text", f"{lang_name} · {label}", box)
            if self.channel == "sms":
                self.sms_counters[lang] = ui.label().classes("text-xs text-grey-8").props(
                    f"data-testid=sms-counter-{lang}")
                self._count_sms(lang)
                ui.label(tr("channels.tpl.sms_help")).classes("text-xs text-grey-7")

    def _count_sms(self, lang: str) -> None:
        counter = self.sms_counters.get(lang)
        if counter is None:
            return
        chars, parts = templates.sms_parts(self.variants[lang]["text"])
        counter.text = tr("channels.tpl.sms_counter", chars=chars, parts=parts)
        counter.classes(replace="text-xs " + ("text-warning" if parts > 1 else "text-grey-8"))

    def _starter(self, lang: str) -> None:
        """Fill the HTML with a responsive MJML layout (header, greeting, text, button, footer with the
        unsubscribe link); asks first when there is something to replace."""
        def fill() -> None:
            self.variants[lang]["html"] = MJML_STARTER[lang]
            self.html_editors[lang].value = MJML_STARTER[lang]
            if not self.variants[lang]["subject"]:
                self.variants[lang]["subject"] = STARTER_SUBJECT[lang]
                self.subject_inputs[lang].value = STARTER_SUBJECT[lang]
            self.changed()

        if not self.variants[lang]["html"].strip():
            fill()
            return
        with ui.dialog() as dialog, ui.card().classes("w-[420px]"):
            ui.label(tr("channels.tpl.starter_replace")).classes("text-grey-9")
            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("channels.tpl.starter_confirm"), on_click=lambda: _both(fill, dialog.close))
        dialog.open()

    def _draw_params(self) -> None:
        self.params_area.clear()
        for path in [p for p in self.errors if p.startswith("content.params")]:
            self.errors.pop(path)
        with self.params_area:
            ui.label(tr("channels.tpl.params")).classes("text-sm text-grey-8")
            for i, value in enumerate(self.params):
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    ui.badge(f"{{{i + 1}}}").props("outline color=grey-7")
                    label = tr("channels.tpl.param_n", n=i + 1)
                    box = self._track(ui.input(label, value=value, placeholder="{{ name }}",
                                               on_change=lambda e, i=i: self._param(i, e.value)).props(
                        "outlined dense").classes("flex-1"))
                    self._error_slot(f"content.params.{i}", label, box)
                    if self.editable:
                        ui.button(icon="close", on_click=lambda i=i: self._drop_param(i)).props("flat round dense")
            if self.editable and len(self.params) < 20:
                ui.button(tr("channels.tpl.add_param"), icon="add", on_click=self._add_param).props(
                    "flat dense no-caps")
            ui.label(tr("channels.tpl.params_help")).classes("text-xs text-grey-7")

    def _param(self, index: int, value: str) -> None:
        self.params[index] = value or ""
        self.changed()

    def _add_param(self) -> None:
        self.params.append("")
        self._draw_params()

    def _drop_param(self, index: int) -> None:
        self.params.pop(index)
        self._draw_params()
        self.changed()

    def _draw_pairs(self, kind: str) -> None:
        """WeChat's template fields or a webhook's payload: key → expression rows."""
        rows = self.fields if kind == "fields" else self.payload
        area = self.fields_area if kind == "fields" else self.payload_area
        area.clear()
        for path in [p for p in self.errors if p.startswith(f"content.{kind}")]:
            self.errors.pop(path)
        with area:
            ui.label(tr(f"channels.tpl.{kind}")).classes("text-sm text-grey-8")
            self._error_slot(f"content.{kind}", tr(f"channels.tpl.{kind}"))
            for i, (key, value) in enumerate(rows):
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    self._track(ui.input(tr("channels.tpl.pair_key"), value=key,
                                         placeholder="keyword1" if kind == "fields" else "coupon",
                                         on_change=lambda e, i=i: self._pair(rows, i, 0, e.value)).props(
                        "outlined dense").classes("w-40"))
                    box = self._track(ui.input(tr("channels.tpl.pair_value"), value=value,
                                               placeholder="{{ vehicle.model }}",
                                               on_change=lambda e, i=i: self._pair(rows, i, 1, e.value)).props(
                        "outlined dense").classes("flex-1"))
                    self._error_slot(f"content.{kind}.{key}", key, box)
                    if self.editable:
                        ui.button(icon="close", on_click=lambda i=i: self._drop_pair(kind, i)).props(
                            "flat round dense")
            if self.editable:
                ui.button(tr(f"channels.tpl.add_{kind}"), icon="add",
                          on_click=lambda: self._add_pair(kind)).props("flat dense no-caps")
            ui.label(tr(f"channels.tpl.{kind}_help")).classes("text-xs text-grey-7")

    def _pair(self, rows: list[list[str]], index: int, part: int, value: str) -> None:
        rows[index][part] = (value or "").strip() if part == 0 else (value or "")
        self.changed()

    def _add_pair(self, kind: str) -> None:
        (self.fields if kind == "fields" else self.payload).append(["", ""])
        self._draw_pairs(kind)

    def _drop_pair(self, kind: str, index: int) -> None:
        (self.fields if kind == "fields" else self.payload).pop(index)
        self._draw_pairs(kind)
        self.changed()

    def content(self) -> dict[str, Any]:
        """The content as the service takes it: only what the channel uses, an English version only when
        something of it was written."""
        wanted = PER_LANGUAGE[self.channel]
        out: dict[str, Any] = {}
        for lang in LANGS:
            variant = {k: v for k, v in self.variants[lang].items() if k in wanted}
            if lang == "en" and not any(v.strip() for v in variant.values()):
                continue
            out[lang] = {"subject": variant.get("subject") or None, "html": variant.get("html") or None,
                         "text": variant.get("text") or ""}
        shared = SHARED[self.channel]
        if "provider_template" in shared:
            out["provider_template"] = self.provider_template.strip() or None
        if "params" in shared:
            out["params"] = list(self.params)
        if "fields" in shared:
            out["fields"] = {k: v for k, v in self.fields if k}
        if "payload" in shared:
            out["payload"] = {k: v for k, v in self.payload if k}
        if "url" in shared:
            out["url"] = self.url.strip() or None
        return out

    # -- dynamic content ------------------------------------------------------------------------------------
    def _blocks_card(self) -> None:
        with ui.card().classes("w-full gap-2"):
            with ui.row().classes("w-full items-center"):
                ui.label(tr("channels.tpl.blocks")).classes("text-lg font-medium")
                ui.space()
                if self.editable:
                    ui.button(tr("channels.tpl.add_block"), icon="add", on_click=self._add_block).props(
                        "outline dense no-caps data-testid=add-block")
            ui.label(tr("channels.tpl.blocks_help")).classes("text-xs text-grey-7")
            self.mjml_hint = ui.label(tr("channels.tpl.blocks_mjml")).classes("text-xs text-grey-7 font-mono")
            self.mjml_hint.set_visibility(self.channel == "email")
            if self.builder_refused:
                ui.label(tr("channels.tpl.blocks_refused")).classes("text-xs text-warning")
            self.blocks_area = ui.column().classes("w-full gap-3")
            self._draw_blocks()

    def _draw_blocks(self) -> None:
        self.blocks_area.clear()
        for path in [p for p in self.errors if p.startswith("blocks")]:
            self.errors.pop(path)
        with self.blocks_area:
            if not self.blocks:
                ui.label(tr("channels.tpl.no_blocks")).classes("text-sm text-grey-7")
            for index, block in enumerate(self.blocks):
                with ui.column().classes("w-full gap-2 rounded border p-3").style(
                        "border-left: 4px solid #1f4e79"):
                    with ui.row().classes("w-full items-center gap-2 no-wrap"):
                        name = self._track(ui.input(tr("channels.tpl.block_name"), value=block.name,
                                                    placeholder="vip",
                                                    on_change=lambda e, b=block: self._rename_block(b, e.value)
                                                    ).props("outlined dense").classes("w-56"))
                        self._error_slot(f"blocks.{block.name}", tr("channels.tpl.block_name"), name)
                        block.usage = ui.label(_usage(block.name)).classes(
                            "font-mono text-xs text-primary whitespace-nowrap")
                        ui.space()
                        if self.editable:
                            ui.button(icon="delete", on_click=lambda i=index: self._drop_block(i)).props(
                                "flat round dense color=negative").tooltip(tr("channels.tpl.remove_block"))
                    if block.builder is not None:
                        editor = ConditionEditor(block.builder, on_change=self.changed)
                        editor.draw()
                    elif block.saved:
                        ui.code(json.dumps(block.saved, ensure_ascii=False, indent=2), language="json").classes(
                            "w-full text-xs")

    def _add_block(self) -> None:
        taken = {b.name for b in self.blocks}
        name = next(f"block{i}" for i in range(1, 100) if f"block{i}" not in taken)
        builder = self._builder()
        if builder is None:
            ui.notify(tr("channels.tpl.blocks_refused"), type="warning")
            return
        self.blocks.append(_Block(name, builder))
        self._draw_blocks()
        self._draw_variables()
        self.dirty = True

    def _rename_block(self, block: _Block, value: str) -> None:
        block.name = (value or "").strip()
        if block.usage is not None:
            block.usage.text = _usage(block.name)
        self._draw_variables()
        self.changed()

    def _drop_block(self, index: int) -> None:
        self.blocks.pop(index)
        self._draw_blocks()
        self._draw_variables()
        self.changed()

    def block_conditions(self, *, strict: bool) -> dict[str, Any] | None:
        """The blocks' conditions by name. ``strict`` (saving): a bad name or an empty condition is shown at its
        block and nothing is returned; otherwise such blocks are left out of the preview."""
        out: dict[str, Any] = {}
        ok = True
        for block in self.blocks:
            condition = block.condition()
            problem = None
            if not BLOCK_NAME.fullmatch(block.name):
                problem = tr("channels.tpl.block_name_invalid")
            elif block.name in out:
                problem = tr("channels.tpl.block_name_taken")
            elif condition is None:
                problem = tr("channels.tpl.block_empty")
            if problem is not None:
                if strict:
                    self._show(f"blocks.{block.name}", problem)
                ok = False
                continue
            out[block.name] = condition
        return out if ok or not strict else None

    # -- versions --------------------------------------------------------------------------------------------
    def _history(self) -> None:
        assert self.template_id is not None
        self.history_area.clear()
        with unit_of_work() as session:
            saved = templates.versions(session, self.principal, self.template_id)
            people, _ = cdp_service.names_for(session, user_ids={v.created_by_id for v in saved if v.created_by_id},
                                              unit_ids=set())
            rows = [(v.version, people.get(v.created_by_id or 0, tr("audit.system")),
                     format_local(v.created_at, self.principal.timezone), v.note) for v in saved]
        with self.history_area, ui.card().classes("w-full gap-1").props("data-testid=versions"):
            ui.label(tr("channels.tpl.versions")).classes("text-lg font-medium")
            for number, author, at, note in rows:
                with ui.row().classes("w-full items-center gap-3 text-sm no-wrap"):
                    ui.badge(tr("channels.tpl.version_n", n=number)).props(
                        "color=primary" if number == self.version else "outline color=grey-7")
                    ui.label(author).classes("w-28 shrink-0")
                    ui.label(at).classes("text-grey-7 w-36 shrink-0")
                    ui.label(note or (tr("channels.tpl.first_version") if number == 1 else "")).classes(
                        "flex-1 min-w-0 ellipsis text-grey-8")
                    ui.button(tr("channels.tpl.view_version"), icon="visibility",
                              on_click=lambda n=number: self._show_version(n)).props("flat dense no-caps")

    def _performance(self) -> None:
        """What the template's messages did, across the broadcasts that used it (shown once it has sent any)."""
        assert self.template_id is not None
        try:
            with unit_of_work() as session:
                report = broadcasts.template_report(session, self.principal, self.template_id)
        except KehuError:
            return
        with ui.card().classes("w-full gap-3").props("data-testid=template-performance"):
            ui.label(tr("channels.tpl.performance")).classes("text-lg font-medium")
            if not report.total:
                ui.label(tr("channels.tpl.performance_none")).classes("text-sm text-grey-7")
                return
            show_report(self.principal, report)

    def _show_version(self, number: int) -> None:
        assert self.template_id is not None
        with unit_of_work() as session:
            found = templates.get_version(session, self.principal, self.template_id, number)
            content, blocks = dict(found.content or {}), dict(found.blocks or {})
            at = format_local(found.created_at, self.principal.timezone)
        with ui.dialog() as dialog, ui.card().classes("w-[860px] max-w-full"):
            with ui.row().classes("w-full items-center"):
                ui.label(tr("channels.tpl.version_title", n=number, at=at)).classes("text-lg font-medium")
                ui.space()
                ui.badge(tr("channels.tpl.read_only_badge")).props("outline color=grey-7")
            for lang in LANGS:
                variant = content.get(lang)
                if not variant:
                    continue
                ui.label("中文" if lang == "zh" else "English").classes("text-sm font-medium text-primary pt-2")
                if variant.get("subject"):
                    _read_only_line(tr("channels.tpl.subject"), variant["subject"])
                if variant.get("html"):
                    ui.code(variant["html"], language="html").classes("w-full max-h-72 overflow-auto text-xs")
                if variant.get("text"):
                    _read_only_line(tr(f"channels.tpl.text.{self.channel}"), variant["text"])
            if content.get("provider_template"):
                _read_only_line(tr(f"channels.tpl.provider_template.{self.channel}"), content["provider_template"])
            for i, param in enumerate(content.get("params") or []):
                _read_only_line(tr("channels.tpl.param_n", n=i + 1), param)
            for key, value in (content.get("fields") or {}).items():
                _read_only_line(key, value)
            for key, value in (content.get("payload") or {}).items():
                _read_only_line(key, value)
            if content.get("url"):
                _read_only_line(tr("channels.tpl.url"), content["url"])
            for name, condition in blocks.items():
                ui.label(tr("channels.tpl.block_named", name=name)).classes("text-sm font-medium pt-2")
                ui.code(json.dumps(condition, ensure_ascii=False, indent=2), language="json").classes(
                    "w-full text-xs")
            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.close"), on_click=dialog.close).props("flat")
                if self.editable and number != self.version:
                    ui.button(tr("channels.tpl.load_version"), icon="restore",
                              on_click=lambda: _both(lambda: self._load_version(content, blocks), dialog.close))
        dialog.open()

    def _load_version(self, content: dict[str, Any], blocks: dict[str, Any]) -> None:
        """An earlier version's content into the editor, to be saved as the next version."""
        self.variants = {lang: _variant(content.get(lang)) for lang in LANGS}
        self.provider_template = content.get("provider_template") or ""
        self.params = list(content.get("params") or [])
        self.fields = [[k, v] for k, v in (content.get("fields") or {}).items()]
        self.url = content.get("url") or ""
        self.payload = [[k, v] for k, v in (content.get("payload") or {}).items()]
        self.blocks = [_Block(name, self._builder(condition), condition) for name, condition in blocks.items()]
        self._draw_content()
        self._draw_blocks()
        self._draw_variables()
        ui.notify(tr("channels.tpl.version_loaded"), type="info")
        self.changed()

    # -- the preview -----------------------------------------------------------------------------------------
    def _preview_card(self) -> None:
        with ui.card().classes("w-full gap-2"):
            with ui.row().classes("w-full items-center"):
                ui.label(tr("channels.tpl.preview")).classes("text-lg font-medium")
                ui.space()
                ui.toggle({"zh": "中文", "en": "English"}, value=self.preview_locale,
                          on_change=lambda e: self._preview_in(e.value)).props(
                    "dense no-caps unelevated toggle-color=primary data-testid=preview-locale")
            if self.principal.can("profiles"):
                with ui.row().classes("w-full gap-2 no-wrap"):
                    search = ui.input(placeholder=tr("channels.tpl.find_customer")).props(
                        "outlined dense clearable debounce=300 data-testid=preview-search").classes("w-44")
                    self.who = ui.select({}, label=tr("channels.tpl.preview_customer"),
                                         on_change=lambda e: self._preview_for(e.value)).props(
                        "outlined dense data-testid=preview-customer").classes("flex-1 min-w-0")
                search.on_value_change(lambda e: self._find(e.value))
            else:
                ui.label(tr("channels.tpl.preview_sample")).classes("text-xs text-grey-7")
            self.preview_meta = ui.column().classes("w-full gap-0 text-sm")
            self.preview_problem = ui.column().classes("w-full gap-1").props("data-testid=preview-problem")
            self.preview_body = ui.column().classes("w-full gap-2").props("data-testid=preview-body")
            self._draw_preview_frame()
            if self.template_id is not None and self.principal.can("messages", "create"):
                with ui.row().classes("w-full items-center gap-2 no-wrap"):
                    ui.label(tr("channels.tpl.test_help")).classes("text-xs text-grey-7 flex-1 min-w-0")
                    ui.button(tr("channels.tpl.test_send"), icon="send", on_click=lambda: self.test_send()).props(
                        "outline no-caps data-testid=test-send")

    def _draw_preview_frame(self) -> None:
        """The parts of the preview that depend on the channel (the e-mail's frame is made once and refilled)."""
        self.preview_body.clear()
        self.email_frame: ui.element | None = None

    def _find(self, text: str | None) -> None:
        """Customers of the reader's scope by name, pinyin or mobile; one hit is previewed at once."""
        text = (text or "").strip()
        if not text:
            return
        with unit_of_work() as session:
            hits = cdp_service.page_profiles(session, self.principal, q=text, per_page=20).items
            view = CustomerView.of(session, self.principal)
            found = {p.id: " · ".join(filter(None, [p.name or tr("customers.anonymous", id=p.id),
                                                     readable_phone(view.profile(p).mobile), p.city]))
                     for p in hits}
        if not found:
            ui.notify(tr("channels.tpl.no_customer"), type="warning")
            return
        self.customers.update(found)
        keep = {self.preview_profile: self.customers[self.preview_profile]} \
            if self.preview_profile in self.customers else {}
        self.who.set_options({**found, **keep}, value=next(iter(found)) if len(found) == 1 else self.who.value)

    def _preview_for(self, profile_id: int | None) -> None:
        if profile_id is not None and profile_id != self.preview_profile:
            self.preview_profile = profile_id
            self.preview()

    def _preview_in(self, lang: str) -> None:
        self.preview_locale = "en" if lang == "en" else "zh"
        self.preview()

    def preview(self) -> None:
        self.timer.deactivate()
        try:
            request = schemas.TemplatePreviewRequest.model_validate({
                "profile_id": self.preview_profile, "locale": self.preview_locale, "content": self.content(),
                "blocks": self.block_conditions(strict=False) or {}})
        except ValidationError:
            self._problem([], [tr("channels.tpl.preview_incomplete")])
            return
        try:
            with unit_of_work() as session:
                rendered = templates.preview(session, self.principal, self.template_id, request,
                                             channel=self.channel)
                who = None
                if rendered.profile_id is not None and rendered.profile_id not in self.customers:
                    person = cdp_service.get_profile(session, self.principal, rendered.profile_id)
                    view = CustomerView.of(session, self.principal)
                    who = " · ".join(filter(None, [person.name or tr("customers.anonymous", id=person.id),
                                                   readable_phone(view.profile(person).mobile), person.city]))
        except KehuError as error:
            self._faults(error, live=True)
            return
        self._clear_faults()
        if who is not None and rendered.profile_id is not None:
            self.customers[rendered.profile_id] = who
        if rendered.profile_id is not None and hasattr(self, "who"):
            self.preview_profile = rendered.profile_id
            options = dict(self.customers)
            if self.who.options != options or self.who.value != rendered.profile_id:
                self.who.set_options(options, value=rendered.profile_id)
        self._render(rendered)

    def _render(self, rendered: schemas.Rendered) -> None:
        self.preview_meta.clear()
        with self.preview_meta:
            if rendered.locale != self.preview_locale:
                ui.label(tr("channels.tpl.no_english")).classes("text-xs text-warning")
            if rendered.address:
                _meta_line(tr("channels.tpl.to"), rendered.address)
            elif rendered.profile_id is not None and self.channel != "webhook":
                _meta_line(tr("channels.tpl.to"), tr("channels.tpl.no_address"))
            if rendered.subject is not None and self.channel == "email":
                _meta_line(tr("channels.tpl.subject"), rendered.subject, mark="preview-subject")
        if self.channel == "email":
            if self.email_frame is None:
                self.preview_body.clear()
                with self.preview_body:
                    self.email_frame = sandboxed_html(rendered.html or "", height="620px")
                    self.email_frame.props["data-testid"] = "preview-frame"
                    self.email_text = ui.label().classes("text-xs text-grey-7 whitespace-pre-wrap")
            else:
                self.email_frame.props["srcdoc"] = _neutralised(rendered.html or "")
            if not rendered.html:
                self.email_frame.props["srcdoc"] = _neutralised(
                    f"<pre style='font-family:sans-serif;white-space:pre-wrap'>{_escape(rendered.text)}</pre>")
            return
        self.preview_body.clear()
        with self.preview_body:
            if self.channel == "sms":
                phone_bubble(rendered.text)
                ui.label(tr("channels.tpl.sms_counter", chars=rendered.sms_length or 0,
                            parts=rendered.sms_parts or 0)).classes("text-sm text-center w-full").props(
                    "data-testid=preview-sms-counter")
                if rendered.params:
                    ui.label(tr("channels.tpl.params_rendered")).classes("text-xs text-grey-7")
                    with ui.row().classes("gap-1"):
                        for i, value in enumerate(rendered.params):
                            ui.chip(f"{{{i + 1}}} {value}").props("dense square")
            elif self.channel == "wechat":
                wechat_card(list(rendered.fields.items()), template=self.provider_template, url=rendered.url)
                if rendered.text:
                    ui.label(tr("channels.tpl.wechat_fallback", text=rendered.text)).classes(
                        "text-xs text-grey-7 whitespace-pre-wrap")
            elif self.channel == "push":
                push_card(rendered.subject, rendered.text)
                if rendered.url:
                    _meta_line(tr("channels.tpl.url"), rendered.url)
            else:
                ui.label(rendered.text or "—").classes("text-sm whitespace-pre-wrap")
                ui.label(tr("channels.tpl.webhook_preview")).classes("text-xs text-grey-7")

    def _problem(self, lines: list[str], hints: list[str] | None = None) -> None:
        """Faults (red) and what is still to be written (a neutral hint) above the preview."""
        self.preview_problem.clear()
        with self.preview_problem:
            for line, fault in [*((line, True) for line in lines), *((hint, False) for hint in hints or [])]:
                with ui.row().classes("w-full items-start gap-2 no-wrap text-sm"):
                    ui.icon("error_outline" if fault else "info").classes(
                        "text-negative" if fault else "text-grey-6")
                    ui.label(line).classes("break-all " + ("text-negative" if fault else "text-grey-7"))

    def _clear_faults(self) -> None:
        self.preview_body.classes(remove="opacity-40")
        self.preview_meta.classes(remove="opacity-40")
        for show in self.errors.values():
            show(None)
        for tab in getattr(self, "lang_tabs", {}).values():
            tab.props.pop("alert", None)
        self.preview_problem.clear()

    def _show(self, path: str, message: str) -> bool:
        """Show ``message`` at the field ``path`` (or the nearest registered field above it); False when none."""
        probe = path
        while probe:
            if probe in self.errors:
                self.errors[probe](message)
                return True
            probe = probe.rpartition(".")[0]
        return False

    def _faults(self, error: KehuError, *, live: bool) -> None:
        """A service's errors under the fields at fault. While typing (``live``) a field still to be filled is
        only listed as missing; an error that belongs to no field is shown in the preview pane."""
        self._clear_faults()
        missing: list[str] = []
        elsewhere: list[str] = []
        for fault in error.errors:
            if live and fault.code == "required":
                missing.append(self.labels.get(fault.field, fault.field))
                continue
            words = error_words(fault.code, fault.message)
            lang = fault.field.split(".")[1] if fault.field.startswith("content.") else ""
            if lang in self.lang_tabs:
                self.lang_tabs[lang].props["alert"] = "negative"  # a dot on the language the fault is in
            if not self._show(fault.field, words):
                elsewhere.append(words)
            elif fault.field.startswith("content.en") and live:
                elsewhere.append(f"English · {self.labels.get(fault.field, '')}: {words}")
        if not error.errors:
            elsewhere.append(error.detail or error.title)
        faulty = [f.field for f in error.errors if not (live and f.code == "required")]
        if faulty and not elsewhere:
            elsewhere.insert(0, tr("channels.tpl.preview_fix"))
        if faulty or missing:  # what is shown is the last content that rendered: it says so by fading
            self.preview_body.classes(add="opacity-40")
            self.preview_meta.classes(add="opacity-40")
        self._problem(elsewhere, [tr("channels.tpl.preview_missing", fields="、".join(missing))] if missing else [])

    # -- saving, archiving, testing ----------------------------------------------------------------------
    def save(self) -> None:
        self._clear_faults()
        if not self.name.strip():
            self._show("name", tr("channels.tpl.name_required"))
            ui.notify(tr("channels.tpl.fix_first"), type="warning")
            return
        blocks = self.block_conditions(strict=True)
        if blocks is None:
            ui.notify(tr("channels.tpl.fix_first"), type="warning")
            return
        content = self.content()
        if self.template_id is None:
            create = validated(lambda: schemas.TemplateCreate.model_validate({
                "name": self.name.strip(), "description": self.description, "channel": self.channel,
                "purpose": self.purpose, "content": content, "blocks": blocks}))
            if create is None:
                return
            try:
                with unit_of_work() as session:
                    made = templates.create_template(session, self.principal, create)
                    made_id = made.id
            except KehuError as error:
                self._saving_failed(error)
                return
            ui.notify(tr("channels.tpl.created", name=create.name), type="positive")
            ui.navigate.to(f"/templates/{made_id}" + (f"?preview={self.preview_profile}" if self.preview_profile
                                                      else ""))
            return
        update = validated(lambda: schemas.TemplateUpdate.model_validate({
            "name": self.name.strip(), "description": self.description, "purpose": self.purpose,
            "content": content, "blocks": blocks, "note": self.note.strip()}))
        if update is None:
            return
        template_id = self.template_id
        try:
            with unit_of_work() as session:
                version = templates.update_template(session, self.principal, template_id, update).version
        except KehuError as error:
            self._saving_failed(error)
            return
        ui.notify(tr("channels.tpl.saved_version", n=version) if version != self.version
                  else tr("channels.tpl.saved_same", n=version), type="positive")
        self.version = version
        self.version_badge.text = tr("channels.tpl.version_n", n=version)
        self.dirty = False
        self.note_input.value = ""
        self._history()

    def _saving_failed(self, error: KehuError) -> None:
        self._faults(error, live=False)
        if error.errors and all(self._field_known(f.field) for f in error.errors):
            ui.notify(tr("channels.tpl.fix_first"), type="warning")
        else:
            notify_error(error)

    def _field_known(self, path: str) -> bool:
        while path:
            if path in self.errors:
                return True
            path = path.rpartition(".")[0]
        return False

    def archive(self) -> None:
        assert self.template_id is not None
        template_id, archived = self.template_id, not self.archived
        done = run_action(lambda s: templates.update_template(s, self.principal, template_id,
                                                              schemas.TemplateUpdate(is_archived=archived)),
                          tr("channels.tpl.archived_done" if archived else "channels.tpl.unarchived_done",
                             name=self.name))
        if done is None:
            return
        self.archived = archived
        self.archived_badge.set_visibility(archived)
        self._archive_label()

    def test_send(self, address: str | None = None) -> None:
        assert self.template_id is not None
        if self.dirty:
            ui.notify(tr("channels.tpl.save_before_test"), type="warning")
            return
        template_id = self.template_id
        try:
            data = schemas.TestSend(address=address, profile_id=self.preview_profile, locale=self.preview_locale)
            with unit_of_work() as session:
                sent_to = templates.test_send(session, self.principal, template_id, data).address
        except ValidationError:
            ui.notify(tr("channels.tpl.test_address_invalid"), type="negative")
            return
        except KehuError as error:
            if any(f.field == "address" for f in error.errors):
                self._ask_address()
            else:
                self._faults(error, live=False)
                notify_error(error)
            return
        ui.notify(tr("channels.tpl.test_sent", address=sent_to or ""), type="positive", multi_line=True)

    def _ask_address(self) -> None:
        with ui.dialog() as dialog, ui.card().classes("w-[440px]"):
            ui.label(tr("channels.tpl.test_where")).classes("text-lg font-medium")
            ui.label(tr(f"channels.tpl.test_where_help.{self.channel}")).classes("text-sm text-grey-7")
            address = ui.input(tr("channels.tpl.test_address")).props("outlined dense autofocus").classes("w-full")

            def send() -> None:
                if (address.value or "").strip():
                    dialog.close()
                    self.test_send((address.value or "").strip())

            with ui.row().classes("w-full justify-end"):
                ui.button(tr("common.cancel"), on_click=dialog.close).props("flat")
                ui.button(tr("channels.tpl.test_send"), icon="send", on_click=send)
        dialog.open()

    # -- what a template may use ------------------------------------------------------------------------
    def _variables_card(self) -> None:
        with ui.card().classes("w-full gap-2"):
            ui.label(tr("channels.tpl.variables")).classes("text-lg font-medium")
            ui.label(tr("channels.tpl.variables_help")).classes("text-xs text-grey-7")
            self.variables_area = ui.column().classes("w-full gap-2")
            self._draw_variables()

    def _draw_variables(self) -> None:
        if not hasattr(self, "variables_area"):
            return
        self.variables_area.clear()
        groups = [(tr(f"channels.tpl.vars.{group}"), [(tr(f"channels.tpl.var.{key}"), code) for key, code in items])
                  for group, items in VARIABLES]
        if self.custom:
            groups.insert(1, (tr("channels.tpl.vars.fields"),
                              [(label, f"{{{{ fields.{key} }}}}") for key, label in self.custom]))
        named = [b.name for b in self.blocks if BLOCK_NAME.fullmatch(b.name)]
        if named:
            groups.append((tr("channels.tpl.vars.blocks"), [(name, f"{{% if show.{name} %}}{{% endif %}}")
                                                           for name in named]))
        if self.library:
            groups.append((tr("channels.tpl.vars.library"), [
                (name, f'{{{{ snippet("{name}") }}}}' if kind == "snippet" else f'{{{{ image("{name}") }}}}')
                for name, kind in self.library]))
        groups.append((tr("channels.tpl.vars.filters"), [
            (tr("channels.tpl.var.default"), ' | default("")'), (tr("channels.tpl.var.date"), ' | date("%Y-%m-%d")'),
            (tr("channels.tpl.var.money"), " | money")]))
        with self.variables_area:
            for title, items in groups:
                ui.label(title).classes("text-xs text-grey-7 uppercase pt-1")
                with ui.row().classes("gap-1"):
                    for label, code in items:
                        _insert_chip(label, code)
            ui.link(tr("channels.tpl.library_link"), "/templates?tab=library").classes("text-sm")


def _insert_chip(label: str, code: str) -> None:
    """A chip that types ``code`` where the cursor is in the field being edited (it keeps the field's focus)."""
    chip = ui.chip(label).props("dense clickable outline color=primary").tooltip(code)
    chip.on("mousedown", js_handler="(e) => e.preventDefault()")
    chip.on("click", lambda: ui.notify(tr("channels.tpl.insert_where"), type="info"),
            js_handler=f"() => {{ if (!document.execCommand('insertText', false, {json.dumps(code)})) emit(); }}")


def _usage(block: str) -> str:
    return "{% if show." + (block or "…") + " %}…{% endif %}"



def _both(first: Callable[[], Any], then: Callable[[], Any]) -> None:
    first()
    then()


def _meta_line(label: str, value: str, *, mark: str | None = None) -> None:
    with ui.row().classes("w-full no-wrap gap-2"):
        ui.label(label).classes("text-grey-7 w-14 shrink-0")
        shown = ui.label(value).classes("break-all font-medium")
        if mark:
            shown.props(f"data-testid={mark}")


def _read_only_line(label: str, value: str) -> None:
    with ui.row().classes("w-full no-wrap gap-3 text-sm"):
        ui.label(label).classes("text-grey-7 w-32 shrink-0")
        ui.label(value).classes("whitespace-pre-wrap break-all")


def _escape(text: str) -> str:
    import html

    return html.escape(text or "")
