"""Lists: a file of mobiles, e-mails, customer numbers or any identity (a trade fair's visitors, a dealer's
call list) becomes a static segment's members, or the customers carrying a tag.

Every row is accounted for: it adds a customer, finds one already in the segment, or is rejected with its row
number and reason (a value that is not a valid mobile, no such customer among those the uploader may read, a
repeat of an earlier row). The whole file is one transaction: a failure adds nothing, and uploading the same
file twice adds nothing the second time."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import imports, normalise
from kehu.cdp.identity_rules import list_rules
from kehu.cdp.models import Identity, Profile
from kehu.cdp.views import identity_kind
from kehu.core import audit
from kehu.core.db import copy_rows, dialect_insert, one_of, utcnow
from kehu.core.errors import Conflict, FieldError, Forbidden, PayloadTooLarge, invalid
from kehu.core.files import CsvSheet
from kehu.core.i18n import t
from kehu.segments import tags
from kehu.segments.conditions import PII_REFUSED
from kehu.segments.models import ProfileTag, Segment, SegmentChange, SegmentMember
from kehu.tenancy.access import Principal, get_scoped, require_row, scope

MAX_LIST_BYTES = 20 * 1024 * 1024
UPLOAD_REQUEST_BYTES = MAX_LIST_BYTES + 1024 * 1024  # the list and the form around it
MAX_LIST_ROWS = 200_000
CHUNK = 5_000
CUSTOMER_ID = "customer_id"
# Column names that say what a column holds, so the uploader rarely has to name it.
COLUMN_NAMES = {
    CUSTOMER_ID: ("客户id", "客户编号", "customer_id", "customer id", "customer", "profile_id", "id"),
    "mobile": ("手机", "手机号", "手机号码", "移动电话", "电话", "mobile", "phone", "cell", "telephone"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "email", "e-mail", "mail"),
    "vin": ("vin", "车架号", "车辆识别代号"),
}


@dataclass
class Rejection:
    row: int
    value: str
    code: str
    reason: str


@dataclass
class ListUpload:
    rows: int = 0
    added: int = 0
    already: int = 0
    column: str = ""
    rejected: list[Rejection] = field(default_factory=list)


def match_kinds(session: Session, principal: Principal) -> list[str]:
    """What a list can be matched by: kehu's customer number or any identity kind of the organisation; without
    pii.read only the pseudonymous kinds. A list of mobiles is a question about each of them, and its answer
    (which rows found a customer) would confirm a masked number among 10,000 guesses in one upload."""
    kinds = [CUSTOMER_ID, *(r.kind for r in list_rules(session, principal.org_id))]
    return kinds if principal.has("pii.read") else [k for k in kinds if k == CUSTOMER_ID or identity_kind(k) is None]


def _column(headers: list[str], match_by: str, column: str | None) -> str:
    if column:
        if column not in headers:
            raise invalid("column", f"no column {column!r}; the file has {', '.join(headers)}", "unknown_column")
        return column
    names = {n.lower() for n in COLUMN_NAMES.get(match_by, ())} | {match_by.lower()}
    found = [h for h in headers if h.strip().lower() in names]
    if found:
        return found[0]
    if len(headers) == 1:
        return headers[0]
    raise invalid("column", f"name the column that holds the {match_by} values: {', '.join(headers)}", "required")


def _canonical(match_by: str, value: str) -> str:
    if match_by == CUSTOMER_ID:
        text = value.strip().lstrip("#")
        if not text.isdigit():
            raise normalise.InvalidValue("not_customer_number", value=value)
        return str(int(text))
    return normalise.identity_value(match_by, value)


def _match(session: Session, principal: Principal, *, filename: str, content: bytes, match_by: str,
           column: str | None, privilege: str) -> tuple[ListUpload, list[tuple[int, str, int]]]:
    """Read a list and find its customers among those the principal may ``privilege``: the outcome so far
    (rows, rejections) and the (row, value as written, customer) of every row that named one."""
    allowed = match_kinds(session, principal)
    if match_by not in allowed and identity_kind(match_by) is not None and not principal.has("pii.read"):
        raise Forbidden(f"{match_by} is personal data: without pii.read a list matches by "
                        f"{', '.join(allowed)}", errors=[FieldError("match_by", "personal data", PII_REFUSED)])
    if match_by not in allowed:
        raise invalid("match_by", f"match by one of {', '.join(allowed)}", "unknown")
    if len(content) > MAX_LIST_BYTES:
        raise PayloadTooLarge(f"Lists up to {MAX_LIST_BYTES // (1024 * 1024)} MB can be uploaded.")
    table, total = imports.read_table(content, filename)
    if total > MAX_LIST_ROWS:
        raise PayloadTooLarge(f"Lists up to {MAX_LIST_ROWS:,} rows can be uploaded; this one has {total:,}.")
    result = ListUpload(column=_column(table.headers, match_by, column))
    first_row: dict[str, int] = {}
    pending: list[tuple[int, str, str]] = []  # (row, value as written, canonical)
    for number, row in imports.rows(content, filename):
        result.rows += 1
        written = row.get(result.column, "")
        try:
            canonical = _canonical(match_by, written)
        except normalise.InvalidValue as error:
            result.rejected.append(Rejection(number, written, error.code, error.text(principal.locale)))
            continue
        if canonical in first_row:
            result.rejected.append(Rejection(number, written, "repeated", t(
                "segments.list.repeated", principal.locale, row=first_row[canonical])))
            continue
        first_row[canonical] = number
        pending.append((number, written, canonical))
    dialect = session.get_bind().dialect.name
    matched: list[tuple[int, str, int]] = []
    for start in range(0, len(pending), CHUNK):
        chunk = pending[start:start + CHUNK]
        found = _customers(session, principal, match_by, [c for _, _, c in chunk], dialect, privilege)
        for number, written, canonical in chunk:
            if canonical in found:
                matched.append((number, written, found[canonical]))
            else:
                result.rejected.append(Rejection(number, written, "not_found",
                                                 t("segments.list.not_found", principal.locale)))
    result.rejected.sort(key=lambda r: r.row)
    return result, matched


def add_from_file(session: Session, principal: Principal, segment_id: int, *, filename: str, content: bytes,
                  match_by: str, column: str | None = None) -> ListUpload:
    """Add the customers a file names to a static segment; see the module's description."""
    segment = get_scoped(session, principal, Segment, segment_id)
    require_row(session, principal, "segments", "update", unit_id=segment.unit_id, owner_id=segment.owner_id)
    principal.require("profiles", "read")
    if segment.kind != "static":
        raise Conflict("Only a static segment takes a list; a dynamic one follows its condition.")
    result, matched = _match(session, principal, filename=filename, content=content, match_by=match_by,
                             column=column, privilege="read")
    now = utcnow()
    dialect = session.get_bind().dialect.name
    for start in range(0, len(matched), CHUNK):
        ids = sorted({p for _, _, p in matched[start:start + CHUNK]})
        members = set(session.scalars(select(SegmentMember.profile_id).where(
            SegmentMember.segment_id == segment.id, one_of(SegmentMember.profile_id, ids, dialect))))
        new = [p for p in ids if p not in members]  # two values (a mobile, an old one) may name one customer
        copy_rows(session, SegmentMember, [{"segment_id": segment.id, "profile_id": p, "org_id": segment.org_id,
                                            "added_in": segment.refreshes, "leaving": False, "added_at": now}
                                           for p in new])
        copy_rows(session, SegmentChange, [{"org_id": segment.org_id, "segment_id": segment.id, "profile_id": p,
                                            "change": "entered", "refresh": segment.refreshes, "at": now}
                                           for p in new])
        result.added += len(new)
    result.already = len({p for _, _, p in matched}) - result.added
    segment.member_count += result.added
    audit.record(session, principal, action="add_members", entity="segments", entity_id=segment.id,
                 unit_id=segment.unit_id, after={"file": filename, "match_by": match_by, "rows": result.rows,
                                                 "added": result.added, "rejected": len(result.rejected)},
                 summary=f"Segment {segment.name}: {result.added} customers added from {filename}")
    session.flush()
    return result


def tag_from_file(session: Session, principal: Principal, tag_id: int, *, filename: str, content: bytes,
                  match_by: str, column: str | None = None) -> ListUpload:
    """Put a (manual) tag on the customers a file names, among those the uploader may update."""
    tag = tags.get_tag(session, principal, tag_id)
    principal.require("profiles", "update")
    if tag.segment_id is not None or tag.rule is not None:
        raise Conflict("This tag is put on by a rule (a segment, RFM); change the rule instead.")
    result, matched = _match(session, principal, filename=filename, content=content, match_by=match_by,
                             column=column, privilege="update")
    now = utcnow()
    ids = sorted({p for _, _, p in matched})
    for start in range(0, len(ids), CHUNK):
        statement = dialect_insert(session)(ProfileTag).on_conflict_do_nothing().returning(ProfileTag.profile_id)
        result.added += len(session.execute(statement, [
            {"tag_id": tag.id, "profile_id": p, "org_id": tag.org_id, "origin": "manual",
             "added_by_id": principal.user_id, "added_at": now} for p in ids[start:start + CHUNK]]).all())
    result.already = len(ids) - result.added
    audit.record(session, principal, action="tag", entity="tags", entity_id=tag.id,
                 after={"file": filename, "match_by": match_by, "rows": result.rows, "added": result.added,
                        "rejected": len(result.rejected)},
                 summary=f"Tag {tag.name} put on {result.added} customer(s) from {filename}")
    session.flush()
    return result


def _customers(session: Session, principal: Principal, match_by: str, values: list[str],
               dialect: str, privilege: str) -> dict[str, int]:
    """canonical value → the live customer it names, among those the principal may ``privilege``."""
    readable = (scope(principal, Profile, privilege), Profile.merged_into_id.is_(None))
    if match_by == CUSTOMER_ID:
        ids = [int(v) for v in values]
        return {str(p): p for p in session.scalars(select(Profile.id).where(one_of(Profile.id, ids, dialect),
                                                                             *readable))}
    rows = session.execute(select(Identity.value, Identity.profile_id).join(Profile, Profile.id == Identity.profile_id)
                           .where(Identity.org_id == principal.org_id, Identity.kind == match_by,
                                  one_of(Identity.value, values, dialect), *readable))
    return {value: profile_id for value, profile_id in rows}


def rejections_csv(upload: ListUpload, locale: str | None) -> bytes:
    """The rejected rows as a CSV the uploader can fix and upload again (UTF-8 with BOM: Excel reads it)."""
    out = CsvSheet()
    out.write([t("segments.list.row", locale), upload.column or t("segments.value", locale),
               t("segments.list.reason", locale)])
    for rejection in upload.rejected:
        out.write([rejection.row, rejection.value, rejection.reason])
    return out.content()
