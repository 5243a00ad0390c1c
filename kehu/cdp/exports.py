"""Export of customers to CSV or XLSX, as a job: only the rows the requester may export (the same scope
filter as every list), personal data masked as on screen unless they hold pii.read, every request, finish and
download audited. The file is written in one go at the end, so a job that dies half way simply runs again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import fields, schemas
from kehu.cdp.identity import LIFECYCLE_STAGES
from kehu.cdp.models import Export, Profile
from kehu.cdp.views import CustomerView
from kehu.core import audit, domains, files, jobs
from kehu.core.db import utcnow
from kehu.core.errors import Conflict, NotFound, ValidationFailed, invalid
from kehu.core.i18n import t
from kehu.core.timeutil import format_local
from kehu.tenancy.access import Principal, Ref, check_references, scope
from kehu.tenancy.models import BusinessUnit, User

EXPORT_JOB = "cdp.export_customers"
FORMATS = {"csv": "text/csv", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
XLSX_MAX_ROWS = 1_048_575  # a worksheet's rows, less the header
CHUNK = 5000
COLUMNS = ("id", "name", "mobile", "email", "gender", "birthday", "province", "city", "address", "postcode",
           "lifecycle_stage",
           "unit", "owner", "source", "first_seen_at", "last_seen_at", "created_at")


# Filters other domains add to exports (their manifests' ``export_filters``; segments: ``segment_id``): each checks
# the value for the requester (raising if they may not use it) and turns it into a clause on Profile. The CDP stays
# unaware of them.
FilterProvider = Callable[[Session, Principal, Any], Any]


def filter_providers() -> dict[str, FilterProvider]:
    return dict(domains.contributed("export_filters"))
LIST_FILTERS = ("q", "unit_id", "stage")


@dataclass
class ExportFilters:
    q: str | None = None
    unit_id: int | None = None
    stage: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # keys of filter_providers()

    def as_dict(self) -> dict[str, Any]:
        listed = {k: getattr(self, k) for k in LIST_FILTERS if getattr(self, k) not in (None, "")}
        return {**listed, **self.extra}


def request_export(session: Session, principal: Principal, *, format: str = "csv",
                   filters: ExportFilters | None = None) -> Export:
    principal.require("profiles", "export")
    if format not in FORMATS:
        raise invalid("format", f"one of {', '.join(FORMATS)}", "not_option")
    filters = filters or ExportFilters()
    check_references(session, principal, {"unit_id": Ref(BusinessUnit, filters.unit_id, None)})
    if filters.stage is not None and filters.stage not in LIFECYCLE_STAGES:
        raise invalid("stage", f"one of {', '.join(LIFECYCLE_STAGES)}", "not_option")
    providers = filter_providers()
    for key, value in filters.extra.items():
        if key not in providers:
            raise invalid(key, "not a filter of exports", "unknown")
        providers[key](session, principal, value)  # may the requester use it? (raises if not)
    row = Export(org_id=principal.org_id, unit_id=principal.unit_id, created_by_id=principal.user_id,
                 created_by_api_key_id=principal.api_key_id, kind="customers", format=format,
                 filters=filters.as_dict(), locale=principal.locale, status="queued")
    session.add(row)
    session.flush()
    job = jobs.enqueue(session, kind=EXPORT_JOB, org_id=principal.org_id, unit_id=principal.unit_id,
                       created_by_id=principal.user_id, created_by_api_key_id=principal.api_key_id,
                       payload={"export_id": row.id})
    row.job_id = job.id
    audit.record(session, principal, action="export", entity="profiles", unit_id=principal.unit_id,
                 after={"export_id": row.id, "format": format, "filters": row.filters},
                 summary=f"Export of customers requested ({format})")
    return row


def export_state(session: Session, row: Export) -> schemas.ExportOut:
    """The export as the API shows it (a failed job shows as a failed export, with its error)."""
    job = session.get(jobs.Job, row.job_id) if row.job_id else None
    failed = job is not None and job.status == "failed"
    return schemas.ExportOut(id=row.id, format=row.format, filters=row.filters or {},
                             status="failed" if failed else row.status, error=job.error if failed else None,
                             row_count=row.row_count, filename=row.filename, created_at=row.created_at,
                             finished_at=row.finished_at)


def _own(principal: Principal) -> Any:
    if principal.user_id is not None:
        return Export.created_by_id == principal.user_id
    return Export.created_by_api_key_id == principal.api_key_id


def list_exports(session: Session, principal: Principal, limit: int = 20) -> list[Export]:
    """The requester's own exports, newest first (an export is its maker's, like a download folder)."""
    return list(session.scalars(select(Export).where(Export.org_id == principal.org_id, _own(principal))
                                .order_by(Export.id.desc()).limit(limit)))


def get_export(session: Session, principal: Principal, export_id: int) -> Export:
    row = session.scalar(select(Export).where(Export.id == export_id, Export.org_id == principal.org_id,
                                              _own(principal)))
    if row is None:
        raise NotFound(f"No export with id {export_id}.")
    return row


def download(session: Session, principal: Principal, export_id: int) -> tuple[str, str, bytes]:
    """(file name, media type, bytes) of a finished export; the download is audited."""
    row = get_export(session, principal, export_id)
    if row.status != "done" or row.content is None:
        raise Conflict(f"The export is {row.status}; download it when it is done.")
    audit.record(session, principal, action="download", entity="profiles", unit_id=row.unit_id,
                 after={"export_id": row.id, "rows": row.row_count}, summary=f"Export {row.filename} downloaded")
    return row.filename, FORMATS[row.format], row.content


# -- the job ----------------------------------------------------------------------------------------
def _header(locale: str, defined: dict[str, Any]) -> list[str]:
    labels = [t(f"export.column.{c}", locale, default=c) for c in COLUMNS]
    return labels + [(f.label_en if locale == "en" else f.label_zh) for f in defined.values()]


def _rows(session: Session, principal: Principal, export: Export) -> Any:
    """The export's rows in id order, a chunk at a time (keyset), as the principal may see them."""
    from kehu.cdp.service import profile_filters

    filters = export.filters or {}
    where = profile_filters(principal, filters.get("q"), filters.get("unit_id"), filters.get("stage"))
    where.append(scope(principal, Profile, "export"))
    for key, value in filters.items():
        if key not in LIST_FILTERS:
            where.append(filter_providers()[key](session, principal, value))
    view = CustomerView.of(session, principal)
    defined = view.personal.defined
    units = dict(session.execute(select(BusinessUnit.id, BusinessUnit.name)
                                 .where(BusinessUnit.org_id == export.org_id)).all())
    people = dict(session.execute(select(User.id, User.name).where(User.org_id == export.org_id)).all())
    locale, tz = export.locale, principal.timezone
    last_id = 0
    while True:
        chunk = list(session.scalars(select(Profile).where(*where, Profile.id > last_id)
                                     .order_by(Profile.id).limit(CHUNK)))
        if not chunk:
            return
        for profile in chunk:
            out = view.profile(profile)
            values = [
                out.id, out.name or "", out.mobile or "", out.email or "",
                t(f"gender.{out.gender}", locale, default=out.gender or "") if out.gender else "",
                out.birthday or "", out.province or "", out.city or "", out.address or "",
                out.postcode or "",
                t(f"stage.{out.lifecycle_stage}", locale, default=out.lifecycle_stage or "")
                if out.lifecycle_stage else "",
                units.get(profile.unit_id, ""), people.get(profile.owner_id, ""), out.source or "",
                format_local(profile.first_seen_at, tz), format_local(profile.last_seen_at, tz),
                format_local(profile.created_at, tz),
            ]
            attributes = out.attributes or {}
            values += [_cell(attributes.get(key)) for key in defined]
            yield values
        last_id = chunk[-1].id
        session.expunge_all()  # a million profiles must not pile up in the identity map


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value


@jobs.job_handler(EXPORT_JOB)
def _run_export(ctx: jobs.JobContext) -> dict[str, Any]:
    session = ctx.session
    export = session.get(Export, ctx.job.payload["export_id"])
    assert export is not None
    export_id, fmt, locale = export.id, export.format, export.locale
    principal = ctx.principal
    if principal is None:
        raise ValidationFailed("An export runs with the rights of whoever asked for it; nobody did.")
    export.status = "running"
    defined = fields.definitions(session, export.org_id)
    header = _header(locale, defined)
    count = 0
    out = files.sheet(fmt, t("export.sheet", locale, default="customers"))
    out.write(header)
    for values in _rows(session, principal, export):
        count += 1
        if fmt == "xlsx" and count > XLSX_MAX_ROWS:
            raise invalid("format", f"a worksheet holds at most {XLSX_MAX_ROWS} rows; export as CSV")
        out.write(values)
    content = out.content()
    export = session.get(Export, export_id)  # expunged with the chunks
    assert export is not None
    stamp = utcnow()
    export.content, export.row_count, export.status, export.finished_at = content, count, "done", stamp
    export.filename = f"customers-{stamp:%Y%m%d-%H%M%S}-{export_id}.{fmt}"
    audit.record(session, principal, action="export_ready", entity="profiles", unit_id=export.unit_id,
                 after={"export_id": export_id, "rows": count, "bytes": len(content)},
                 summary=f"Export {export.filename}: {count} customers")
    session.flush()
    return {"rows": count, "bytes": len(content)}
