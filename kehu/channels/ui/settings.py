"""Channels and their rules (settings managers): which provider each channel of a unit sends through (its own,
one inherited from a unit above, or the outbox), the communication rules (caps, quiet hours, approval) that a
unit may only tighten, and the suppression list."""

from __future__ import annotations

from typing import Any, cast

from nicegui import ui

from kehu.channels import api as channels_api
from kehu.channels import control, schemas, service
from kehu.channels.dispatch import account_for
from kehu.channels.models import CHANNELS, PROVIDERS
from kehu.channels.ui.outbox import provider_label
from kehu.channels.ui.showing import CHANNEL_ICONS, channel_label
from kehu.core.errors import KehuError
from kehu.core.timeutil import format_local
from kehu.tenancy.access import writable_units
from kehu.ui.shell import empty_state, frame, notify_error, page, run_action, tr, unit_of_work, validated

# the settings each provider asks for beyond REQUIRED's (label keys under channels.settings.field.*)
OPTIONAL = {"smtp": ("security", "username", "password", "from_name", "reply_to", "messages_per_connection"),
            "tencent_sms": ("region",), "aliyun_sms": ("region",), "wechat_mp": ("server_token", "encoding_aes_key"),
            "jpush": ("apns_production",)}
SECRETS = {"smtp": ("password",), "wechat_mp": ("encoding_aes_key",)}
WITH_RECEIPTS = ("tencent_sms", "aliyun_sms", "wechat_mp")
CAP_KEYS = ("email", "sms", "wechat", "push", "all")


def register() -> None:
    page("/admin/channels")(settings_page)


def settings_page(unit_id: int | None = None) -> None:
    with frame("nav.channels", "/admin/channels", "settings.manage") as principal:
        with unit_of_work() as session:
            units = {u.id: ("　" * u.depth) + u.name for u in writable_units(session, principal, "messages", "update")}
        if not units:
            empty_state("lock", tr("shell.no_access_title"), tr("shell.no_access_text"))
            return
        chosen = unit_id if unit_id in units else (principal.unit_id if principal.unit_id in units else next(
            iter(units)))
        with ui.row().classes("w-full items-center gap-3"):
            ui.label(tr("channels.settings.intro")).classes("text-grey-7")
            ui.space()
            ui.select(units, value=chosen, label=tr("channels.settings.unit"), with_input=True,
                      on_change=lambda e: ui.navigate.to(f"/admin/channels?unit_id={e.value}")).props(
                "outlined dense").classes("w-72").props("data-testid=settings-unit")
        with ui.tabs().classes("w-full") as tabs:
            ui.tab("channels", label=tr("channels.settings.channels"), icon="settings_input_antenna")
            ui.tab("rules", label=tr("channels.settings.rules"), icon="rule").props("data-testid=rules-tab")
            ui.tab("suppressions", label=tr("channels.settings.suppressions"), icon="block").props(
                "data-testid=suppressions-tab")
        with ui.tab_panels(tabs, value="channels", animated=False).classes("w-full"):
            with ui.tab_panel("channels").classes("px-0"):
                _channels(principal, chosen)
            with ui.tab_panel("rules").classes("px-0").props("data-testid=channel-rules"):
                _rules(principal, chosen)
            with ui.tab_panel("suppressions").classes("px-0"):
                _suppressions(principal)


def _done(action: Any, *args: Any) -> bool:
    """A service call that returns nothing, as run_action's 'it worked'."""
    action(*args)
    return True


# -- channel accounts ----------------------------------------------------------------------------------------------
def _channels(principal: Any, unit_id: int) -> None:
    with unit_of_work() as session:
        own = {a.channel: service.account_out(a) for a in service.list_accounts(session, principal)
               if a.unit_id == unit_id}
        in_use = {c: account_for(session, principal.org_id, unit_id, c) for c in CHANNELS}
    with ui.grid(columns=2).classes("w-full gap-4 max-lg:grid-cols-1"):
        for channel in CHANNELS:
            account = own.get(channel)
            used = in_use[channel]
            with ui.card().classes("w-full").props(f"data-testid=channel-{channel}"):
                with ui.row().classes("w-full items-center gap-2"):
                    ui.icon(CHANNEL_ICONS[channel]).classes("text-2xl text-primary")
                    ui.label(channel_label(channel)).classes("text-lg font-medium")
                    ui.space()
                    if account:
                        state = provider_label(account.provider)
                    elif used.id is not None:
                        state = tr("channels.settings.inherited", provider=provider_label(used.provider))
                    else:
                        state = tr("channels.settings.in_outbox")
                    ui.badge(state).props("outline").props(f"data-testid=channel-state-{channel}")
                _account_form(principal, unit_id, channel, account)


def _account_form(principal: Any, unit_id: int, channel: str, account: Any | None) -> None:
    provider = ui.select({p: provider_label(p) for p in PROVIDERS[channel]},
                         value=account.provider if account else "outbox", label=tr("channels.settings.provider"),
                         on_change=lambda: draw()).props("outlined dense").classes("w-full").props(
                             f"data-testid=provider-{channel}")
    fields_area = ui.column().classes("w-full gap-1")
    inputs: dict[str, Any] = {}
    secret_inputs: dict[str, Any] = {}
    errors: dict[str, Any] = {}

    def draw() -> None:
        fields_area.clear()
        inputs.clear()
        secret_inputs.clear()
        errors.clear()
        name = provider.value
        config_keys, secret_keys = service.REQUIRED.get(name, ((), ()))
        saved = dict(account.config) if account and account.provider == name else {}
        with fields_area:
            # the required settings first (secrets among them), then the optional ones in the order they read
            optional = OPTIONAL.get(name, ())
            secrets = {*secret_keys, *SECRETS.get(name, ())}
            for key in (*config_keys, *secret_keys, *optional):
                label = tr(f"channels.settings.field.{key}") + (" *" if key not in optional else "")
                if key in secrets:
                    kept = account is not None and key in account.secret_names and account.provider == name
                    secret_inputs[key] = ui.input(label, password=True, placeholder=tr(
                        "channels.settings.secret_kept") if kept else "").props(
                        f"outlined dense data-testid={channel}-{key}").classes("w-full")
                    errors[f"secrets.{key}"] = ui.label().classes("text-negative text-xs")
                    continue
                if key == "security":
                    inputs[key] = ui.select({"none": "—", "starttls": "STARTTLS", "ssl": "SSL/TLS"},
                                            value=saved.get(key, "none"), label=label).props(
                        "outlined dense").classes("w-full")
                elif key == "apns_production":
                    inputs[key] = ui.switch(label, value=bool(saved.get(key, False)))
                else:
                    inputs[key] = ui.input(label, value=str(saved.get(key, "") or "")).props(
                        "outlined dense").classes("w-full").props(f"data-testid={channel}-{key}")
                errors[f"config.{key}"] = ui.label().classes("text-negative text-xs")
            if name != "outbox":
                rate = ui.number(tr("channels.settings.rate"), value=account.rate_per_second if account else 0,
                                 min=0).props("outlined dense").classes("w-48")
                inputs["__rate"] = rate
            if account and name in WITH_RECEIPTS and account.provider == name:
                ui.label(tr("channels.settings.receipts")).classes("text-xs text-grey-7")
                ui.label(channels_api.receipts_address(account.id)).classes("text-xs font-mono break-all")
            errors["provider"] = ui.label().classes("text-negative text-xs")

    def save() -> None:
        for label in errors.values():
            label.text = ""
        config: dict[str, Any] = {}
        for key, element in inputs.items():
            if key == "__rate" or element.value in (None, ""):
                continue
            value = element.value
            if key in ("port", "messages_per_connection"):
                if not str(value).strip().isdigit():
                    errors[f"config.{key}"].text = tr("channels.settings.whole_number")
                    continue
                value = int(value)
            config[key] = value
        if any(label.text for label in errors.values()):
            return
        secrets = {k: v.value for k, v in secret_inputs.items() if v.value}
        rate = inputs.get("__rate")
        data = validated(lambda: schemas.ChannelAccountIn(
            channel=cast(schemas.Channel, channel), provider=provider.value, unit_id=unit_id, config=config,
            secrets=secrets or None, rate_per_second=float(rate.value or 0) if rate else 0.0))
        if data is None:
            return
        try:
            with unit_of_work() as session:
                service.save_account(session, principal, data)
        except KehuError as error:
            shown = [problem for problem in error.errors if problem.field in errors]
            for problem in shown:
                errors[problem.field].text = tr("channels.settings.required") if problem.code == "required" \
                    else problem.message
            if shown:
                ui.notify(tr("channels.settings.fix_fields"), type="negative")
            else:
                notify_error(error)
            return
        ui.notify(tr("channels.settings.saved", channel=channel_label(channel)), type="positive")
        ui.navigate.reload()

    def remove() -> None:
        if account and run_action(lambda s: _done(service.delete_account, s, principal, account.id),
                                  tr("channels.settings.removed")):
            ui.navigate.reload()

    draw()
    with ui.row().classes("w-full justify-end"):
        if account:
            ui.button(tr("channels.settings.remove"), on_click=remove).props("flat color=negative")
        ui.button(tr("common.save"), on_click=save).props(f"data-testid=save-{channel}")


# -- communication rules ----------------------------------------------------------------------------------------------
def _rules(principal: Any, unit_id: int) -> None:
    try:
        with unit_of_work() as session:
            policy = control.get_policy(session, principal, unit_id)
    except KehuError as error:
        notify_error(error)
        return
    own = policy.own or schemas.PolicyIn(quiet_start=None, quiet_end=None)
    ui.label(tr("channels.settings.rules_help")).classes("text-sm text-grey-7")
    if policy.approval_required:
        ui.label(tr("channels.settings.approval_above")).classes("text-sm text-orange-9")
    caps: dict[str, dict[str, Any]] = {"per_day": {}, "per_week": {}}
    errors: dict[str, Any] = {}
    with ui.card().classes("w-full"):
        with ui.grid(columns=6).classes("w-full items-center gap-2"):
            ui.label("")
            for key in CAP_KEYS:
                ui.label(tr("channels.settings.all_channels") if key == "all" else channel_label(key)).classes(
                    "text-sm font-medium")
            for period in ("per_day", "per_week"):
                ui.label(tr(f"channels.settings.{period}")).classes("text-sm")
                for key in CAP_KEYS:
                    mine = getattr(getattr(own, period), key)
                    above = getattr(getattr(policy.inherited, period), key)
                    with ui.column().classes("gap-0"):
                        caps[period][key] = ui.number(value=mine, min=0, format="%.0f",
                                                      placeholder=str(above) if above is not None else "∞"
                                                      ).props("outlined dense").classes("w-24").props(
                                                          f"data-testid=cap-{period}-{key}")
                        errors[f"{period}.{key}"] = ui.label().classes("text-negative text-xs")
        ui.label(tr("channels.settings.caps_help")).classes("text-xs text-grey-7")
    with ui.card().classes("w-full"), ui.row().classes("items-center gap-4"):
        ui.label(tr("channels.settings.quiet")).classes("text-sm font-medium")
        quiet_start = ui.input(tr("channels.settings.quiet_start"), value=own.quiet_start or "").props(
            "outlined dense type=time").classes("w-36").props("data-testid=quiet-start")
        quiet_end = ui.input(tr("channels.settings.quiet_end"), value=own.quiet_end or "").props(
            "outlined dense type=time").classes("w-36").props("data-testid=quiet-end")
        if policy.inherited.quiet_start:
            ui.label(tr("channels.settings.quiet_above", start=policy.inherited.quiet_start,
                        end=policy.inherited.quiet_end)).classes("text-xs text-grey-7")
        errors["quiet_start"] = ui.label().classes("text-negative text-xs")
        errors["quiet_end"] = ui.label().classes("text-negative text-xs")
    ui.label(tr("channels.settings.quiet_help", start=control.DEFAULT_QUIET[0], end=control.DEFAULT_QUIET[1])
             ).classes("text-xs text-grey-7")
    approval = ui.switch(tr("channels.settings.approval"), value=own.approval_required).props(
        "data-testid=approval-switch")

    def save() -> None:
        for label in errors.values():
            label.text = ""
        data = validated(lambda: schemas.PolicyIn(
            per_day=schemas.Caps(**{k: int(v.value) for k, v in caps["per_day"].items() if v.value is not None}),
            per_week=schemas.Caps(**{k: int(v.value) for k, v in caps["per_week"].items() if v.value is not None}),
            quiet_start=quiet_start.value or None, quiet_end=quiet_end.value or None,
            approval_required=approval.value))
        if data is None:
            return
        try:
            with unit_of_work() as session:
                control.set_policy(session, principal, unit_id, data)
        except KehuError as error:
            if not error.errors:
                notify_error(error)
                return
            for problem in error.errors:
                if problem.field in errors:
                    errors[problem.field].text = _rule_problem(policy.inherited, problem)
            ui.notify(tr("channels.settings.rules_refused"), type="negative")
            return
        ui.notify(tr("channels.settings.rules_saved"), type="positive")

    with ui.row().classes("w-full justify-end"):
        ui.button(tr("common.save"), on_click=save).props("data-testid=rules-save")


def _rule_problem(above: schemas.PolicyIn, problem: Any) -> str:
    """A refused rule in the reader's words: what the units above allow at most."""
    if problem.code == "looser" and problem.field == "quiet_start":
        return tr("channels.settings.looser_quiet", start=above.quiet_start, end=above.quiet_end)
    if problem.code == "looser":
        period, key = problem.field.split(".")
        return tr("channels.settings.looser_cap", limit=getattr(getattr(above, period), key))
    if problem.code == "required":
        return tr("channels.settings.quiet_both")
    return str(problem.message)


# -- suppressions ------------------------------------------------------------------------------------------------
def _suppressions(principal: Any) -> None:
    if not principal.has("pii.read") or not control.may_manage_suppressions(principal):
        ui.label(tr("channels.settings.suppressions_pii")).classes("text-grey-7")
        return
    with ui.row().classes("w-full items-center gap-2"):
        channel = ui.select({c: channel_label(c) for c in CHANNELS}, value="email",
                            label=tr("channels.outbox.channel")).props("outlined dense").classes("w-32")
        address = ui.input(tr("channels.outbox.address")).props("outlined dense").classes("w-72").props(
            "data-testid=suppression-address")
        reason = ui.select({r: tr(f"channels.settings.reason.{r}") for r in
                            ("unsubscribed", "complained", "hard_bounce", "invalid")}, value="unsubscribed",
                           label=tr("channels.settings.reason")).props("outlined dense").classes("w-40")
        ui.button(tr("channels.settings.suppress"), icon="block", on_click=lambda: add()).props(
            "data-testid=suppression-add")
        ui.button(tr("channels.settings.find"), icon="search", on_click=lambda: draw(address.value or None)).props(
            "flat")
    listing = ui.column().classes("w-full gap-1")

    def draw(only: str | None = None) -> None:
        listing.clear()
        with unit_of_work() as session:
            rows = [(s.id, s.channel, s.address, s.reason, s.evidence, s.created_at) for s in
                    control.list_suppressions(session, principal, address=only, limit=200)]
        with listing:
            if not rows:
                ui.label(tr("channels.settings.no_suppressions")).classes("text-grey-7 text-sm")
            for row_id, row_channel, row_address, row_reason, evidence, at in rows:
                with ui.row().classes("w-full items-center gap-3 no-wrap border-b py-1"):
                    ui.icon(CHANNEL_ICONS.get(row_channel, "mail")).classes("text-grey-7")
                    ui.label(row_address).classes("w-64 shrink-0 font-mono text-sm")
                    ui.badge(tr(f"channels.settings.reason.{row_reason}")).props("outline")
                    ui.label(tr("channels.settings.added_by", name=evidence[len("added by "):])
                             if evidence.startswith("added by ") else evidence).classes(
                        "text-xs text-grey-7 flex-1 ellipsis")
                    ui.label(format_local(at, principal.timezone)).classes("text-xs text-grey-7")
                    ui.button(icon="undo", on_click=lambda _, i=row_id: lift(i)).props("flat round dense").tooltip(
                        tr("channels.settings.lift"))

    def add() -> None:
        if not (address.value or "").strip():
            ui.notify(tr("channels.settings.bad_address", channel=channel_label(channel.value)), type="negative")
            return
        data = validated(lambda: schemas.SuppressionIn(channel=channel.value, address=address.value,
                                                       reason=reason.value))
        if data is None:
            return
        try:
            with unit_of_work() as session:
                control.add_suppression(session, principal, data)
        except KehuError as error:
            if any(problem.field == "address" for problem in error.errors):
                ui.notify(tr("channels.settings.bad_address", channel=channel_label(channel.value)),
                          type="negative")
            else:
                notify_error(error)
            return
        ui.notify(tr("channels.settings.suppressed"), type="positive")
        address.value = ""
        draw()

    def lift(suppression_id: int) -> None:
        if run_action(lambda s: _done(control.remove_suppression, s, principal, suppression_id),
                      tr("channels.settings.lifted")):
            draw()

    draw()
