"""HTTP doors of the CDP: Segment-compatible ingestion under /v1 and the customer REST API."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse

from kehu.cdp import commerce, dedupe, exports, fields, identity_rules, imports, ingest, schemas, service
from kehu.cdp.views import CustomerView
from kehu.core import files
from kehu.core.errors import BadRequest, FieldError, Unauthorized, ValidationFailed
from kehu.core.http import decoded_body, validated_json
from kehu.core.input_guard import json_input_errors
from kehu.tenancy.access import Principal
from kehu.tenancy.deps import CredentialsDep, Cursor, Limit, PrincipalDep, SessionDep, in_one_hop, reads_only
from kehu.tenancy.schemas import Page

ingestion = APIRouter(prefix="/v1", tags=["ingestion (Segment spec)"])
router = APIRouter(prefix="/api/v1")

SINGLE_CALLS = ("identify", "track", "page", "screen", "group", "alias")


def _write_key(request: Request, body: Any) -> str:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, _password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("The Authorization header is not valid Basic credentials.") from exc
        if user:
            return user
    if isinstance(body, dict) and isinstance(body.get("writeKey"), str):
        return body["writeKey"]
    raise Unauthorized("Send the source's write key as the Basic auth user name (empty password).")


async def _json_body(request: Request, limit: int) -> Any:
    """The JSON a call sent, unpacked first if the client compressed it (limit: the path's, unpacked)."""
    raw = decoded_body(await request.body(), request.headers.get("content-encoding"), limit, ingest.CallTooLarge)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The request body is not valid JSON: {exc}",
                         errors=[FieldError("body", "not valid JSON", "json_invalid")]) from exc
    if errors := json_input_errors(body, int64=False):  # properties are the sender's: any number, but no NUL
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors),
                               errors=[FieldError(**e) for e in errors])
    return body


def _answer(result: ingest.Accepted) -> JSONResponse:
    return JSONResponse({"success": True, "accepted": result.accepted, "rejected": result.rejected})


@ingestion.post("/batch", summary="Send up to 500 KB of calls at once")
@ingestion.post("/b", include_in_schema=False)  # analytics.js's and the mobile libraries' batching path
@ingestion.post("/import", include_in_schema=False)  # Segment's older name for a batch, still used by old clients
async def batch(request: Request) -> JSONResponse:
    body = await _json_body(request, ingest.MAX_BATCH_BYTES)
    if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
        raise BadRequest("A batch body is an object with a `batch` array.",
                         errors=[FieldError("batch", "expected an array of calls", "type")])
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    calls = [(call, None) for call in body["batch"]]
    return await _store(request, body, calls, context, single=False)


async def _store(request: Request, body: Any, calls: list[tuple[Any, str | None]], context: dict[str, Any] | None,
                 *, single: bool) -> JSONResponse:
    from starlette.concurrency import run_in_threadpool

    def work() -> ingest.Accepted:
        with request.app.state.database.unit_of_work() as session:
            source = service.source_for_write_key(session, _write_key(request, body))
            result = ingest.accept(session, source, calls, context)
            if single and result.rejected:
                reason = result.rejected[0]["reason"]
                raise BadRequest(f"The call was not accepted: {reason}", errors=[FieldError(
                    reason.split(":")[0] if ":" in reason else "body", reason, "invalid")])
            return result

    return _answer(await run_in_threadpool(work))  # committed before we answer: durably stored


def _single(call_type: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> JSONResponse:
        body = await _json_body(request, ingest.MAX_MESSAGE_BYTES)
        return await _store(request, body, [(body, call_type)], None, single=True)

    endpoint.__name__ = f"ingest_{call_type}"
    return endpoint


for _call in SINGLE_CALLS:
    ingestion.post(f"/{_call}", summary=f"Segment {_call} call")(_single(_call))
    # analytics.js (Segment's browser library) posts each call to its type's first letter: /v1/t, /v1/i, …
    ingestion.post(f"/{_call[0]}", include_in_schema=False)(_single(_call))


@ingestion.get("/projects/{write_key}/settings", summary="Settings for Segment's analytics.js")
def browser_settings(write_key: str, request: Request, session: SessionDep) -> dict[str, Any]:
    """What analytics.js loads from its CDN before it sends anything: with its ``cdnURL`` set to kehu's
    address it reads here to send every call to kehu (and to nobody else: no other destination, no metrics)."""
    service.source_for_write_key(session, write_key)
    scheme, _, host = str(request.base_url).rstrip("/").partition("://")
    return {"integrations": {"Segment.io": {"apiKey": write_key, "apiHost": f"{host}/v1", "protocol": scheme,
                                            "addBundledMetadata": False, "unbundledIntegrations": []}},
            "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                     "identify": {"__default": {"enabled": True}}, "group": {"__default": {"enabled": True}}},
            "analyticsNextEnabled": True, "middlewareSettings": {}, "enabledMiddleware": {},
            "metrics": {"sampleRate": 0}, "legacyVideoPluginsEnabled": False, "remotePlugins": []}


@ingestion.get("/sourceConfig", summary="Source configuration for RudderStack's JavaScript SDK")
@ingestion.get("/sourceConfig/", include_in_schema=False)
def rudderstack_source_config(request: Request, session: SessionDep,
                              write_key: Annotated[str | None, Query(alias="writeKey")] = None) -> dict[str, Any]:
    """What RudderStack's JavaScript SDK loads before it sends anything, with its ``configUrl`` set to kehu's
    ``…/v1``: the source, enabled, with no destination of its own (the SDK then sends every call to its
    ``dataPlaneUrl``, kehu) and no error or metrics reports. The write key comes as Basic auth or ``?writeKey=``."""
    key = _write_key(request, {"writeKey": write_key})
    source = service.source_for_write_key(session, key)
    return {"isHosted": False, "source": {
        "id": str(source.id), "name": source.name, "writeKey": key, "enabled": True,
        "workspaceId": str(source.org_id), "destinations": [],
        "config": {"statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}}}}


# -- sources ---------------------------------------------------------------------------------------
@router.get("/sources", response_model=list[schemas.SourceOut], tags=["sources"])
def list_sources(session: SessionDep, principal: PrincipalDep) -> Any:
    return service.list_sources(session, principal)


@router.post("/sources", response_model=schemas.SourceCreated, status_code=status.HTTP_201_CREATED,
             tags=["sources"])
def create_source(data: schemas.SourceCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """The response carries the write key, once. Point a Segment or RudderStack library at this host with it."""
    source, key = service.create_source(session, principal, data=data)
    return {**schemas.SourceOut.model_validate(source).model_dump(), "write_key": key}


@router.patch("/sources/{source_id}", response_model=schemas.SourceOut, tags=["sources"])
def set_source_active(source_id: int, is_active: bool, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.set_source_active(session, principal, source_id, is_active)


# -- customers -------------------------------------------------------------------------------------
Stage = Literal["visitor", "prospect", "lead", "opportunity", "customer", "owner", "churned"]


@router.get("/customers", response_model=Page[schemas.ProfileOut], tags=["customers"])
@reads_only
async def list_customers(session: SessionDep, credentials: CredentialsDep, limit: Limit = 50, cursor: Cursor = None,
                         q: Annotated[str | None, Query(description="Name, pinyin, mobile, e-mail, VIN or any "
                                                                   "identity")] = None,
                         unit_id: int | None = None, stage: Stage | None = None) -> Any:
    def answer(principal: Principal) -> Response:
        page = service.list_profiles(session, principal, q=q, unit_id=unit_id, stage=stage, limit=limit,
                                     cursor=cursor)
        view = CustomerView.of(session, principal)
        return validated_json(Page[schemas.ProfileOut](items=[view.profile(p) for p in page.items],
                                                       next_cursor=page.next_cursor))

    return await in_one_hop(session, credentials, answer)


@router.post("/customers", response_model=schemas.ProfileOut, status_code=status.HTTP_201_CREATED,
             tags=["customers"])
def create_customer(data: schemas.ProfileCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    profile = service.create_profile(session, principal, data=data)
    return CustomerView.of(session, principal).profile(profile)


INCLUDES = {"identities", "merges", "events", "timeline", "consents", "accounts", "orders", "vehicles"}


@router.get("/customers/{profile_id}", response_model=schemas.Customer360, response_model_exclude_none=True,
            tags=["customers"])
@reads_only
async def get_customer(profile_id: int, session: SessionDep, credentials: CredentialsDep,
                       include: Annotated[str, Query(description="Comma-separated: identities, merges, events, "
                                                                 "timeline, consents, accounts, orders, "
                                                                 "vehicles")] = "",
                       limit: Limit = 50, cursor: Cursor = None) -> Any:
    """Customer 360: the profile card, and on request its identities, merge history and timeline."""
    wanted = {part.strip() for part in include.split(",") if part.strip()}
    unknown = wanted - INCLUDES
    if unknown:
        raise BadRequest(f"Unknown include: {', '.join(sorted(unknown))}",
                         errors=[FieldError("include", f"one or more of {', '.join(sorted(INCLUDES))}", "enum")])
    return await in_one_hop(session, credentials, lambda principal: validated_json(service.customer_360(
        session, principal, profile_id, include=wanted, limit=limit, cursor=cursor), exclude_none=True))


@router.get("/customers/{profile_id}/timeline", response_model=schemas.TimelinePage, tags=["customers"])
@reads_only
def get_customer_timeline(profile_id: int, session: SessionDep, principal: PrincipalDep, limit: Limit = 50,
                          cursor: Cursor = None) -> Any:
    """What the customer did and what was done to their record, newest first; page with ``next_cursor``."""
    return service.timeline_page(session, principal, profile_id, limit=limit, cursor=cursor)


@router.patch("/customers/{profile_id}", response_model=schemas.ProfileOut, tags=["customers"])
def update_customer(profile_id: int, data: schemas.ProfileUpdate, session: SessionDep,
                    principal: PrincipalDep) -> Any:
    profile = service.update_profile(session, principal, profile_id, data=data)
    return CustomerView.of(session, principal).profile(profile)


@router.post("/customers/merges", response_model=schemas.MergeOut, status_code=status.HTTP_201_CREATED,
             tags=["customers"])
def merge_customers(data: schemas.MergeRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.merge_by_hand(session, principal, data=data)


@router.post("/customers/merges/{merge_id}/undo", response_model=schemas.ProfileOut, tags=["customers"])
def undo_merge(merge_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Unmerge: the merged-away customer comes back with its identities, events and linked records."""
    profile = service.unmerge(session, principal, merge_id)
    return CustomerView.of(session, principal).profile(profile)


@router.post("/customers/assign", tags=["customers"])
def assign_customers(data: schemas.AssignRequest, session: SessionDep, principal: PrincipalDep) -> dict[str, int]:
    """Give customers to a salesperson; their unit follows the new owner."""
    return {"assigned": service.assign_profiles(session, principal, profile_ids=data.profile_ids,
                                                owner_id=data.owner_id)}


# -- product catalogue -------------------------------------------------------------------------------
@router.get("/products", response_model=list[schemas.ProductOut], tags=["orders"])
def list_products(session: SessionDep, principal: PrincipalDep, q: str | None = None,
                  kind: schemas.ProductKind | None = None, active: bool | None = None) -> Any:
    """Vehicle models, parts, services and accessories with their list prices (CNY)."""
    return commerce.list_products(session, principal, q=q, kind=kind, active=active)


@router.post("/products", response_model=schemas.ProductOut, status_code=status.HTTP_201_CREATED, tags=["orders"])
def create_product(data: schemas.ProductCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return commerce.create_product(session, principal, data.model_dump())


@router.patch("/products/{product_id}", response_model=schemas.ProductOut, tags=["orders"])
def update_product(product_id: int, data: schemas.ProductUpdate, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    changes = {k: v for k, v in data.model_dump(exclude_unset=True).items() if v is not None or k == "price"}
    return commerce.update_product(session, principal, product_id, changes)


# -- exports ---------------------------------------------------------------------------------------
@router.post("/customers/exports", response_model=schemas.ExportOut, status_code=status.HTTP_202_ACCEPTED,
             tags=["customers"])
def export_customers(data: schemas.ExportRequest, session: SessionDep, principal: PrincipalDep) -> Any:
    """Export the customers you may export (with the list's filters) to CSV or XLSX, as a job. Personal data
    is masked unless you hold pii.read. Poll ``GET /exports/{id}``, then download."""
    row = exports.request_export(session, principal, format=data.format, filters=exports.ExportFilters(
        q=data.q, unit_id=data.unit_id, stage=data.stage))
    return exports.export_state(session, row)


@router.get("/exports", response_model=list[schemas.ExportOut], tags=["customers"])
def list_exports(session: SessionDep, principal: PrincipalDep) -> Any:
    return [exports.export_state(session, row) for row in exports.list_exports(session, principal)]


@router.get("/exports/{export_id}", response_model=schemas.ExportOut, tags=["customers"])
def get_export(export_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return exports.export_state(session, exports.get_export(session, principal, export_id))


@router.get("/exports/{export_id}/download", tags=["customers"],
            responses={200: {"content": {media: {} for media in exports.FORMATS.values()}}})
def download_export(export_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    filename, media_type, content = exports.download(session, principal, export_id)
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- imports ---------------------------------------------------------------------------------------
def _import_out(session: Any, run: Any) -> schemas.ImportOut:
    from kehu.core.jobs import Job

    job = session.get(Job, run.job_id) if run.job_id else None
    return schemas.ImportOut(
        id=run.id, kind=run.kind, filename=run.filename, encoding=run.encoding, headers=run.headers,
        mapping=run.mapping,
        status=run.status, job_id=run.job_id, job_status=job.status if job else None,
        progress=job.progress if job else 0, total_rows=run.total_rows, accepted_rows=run.accepted_rows,
        rejected_rows=run.rejected_rows, profiles_created=run.profiles_created,
        orders_created=run.orders_created, warnings=run.warnings, created_at=run.created_at)


@router.post("/imports", response_model=schemas.ImportOut, status_code=status.HTTP_201_CREATED, tags=["imports"])
def upload_import(session: SessionDep, principal: PrincipalDep,
                  file: Annotated[UploadFile, File(description="CSV (UTF-8 or GBK) or XLSX, first row = headers")],
                  unit_id: int | None = None,
                  kind: Annotated[Literal["profiles", "orders"], Query(description="What the file holds")]
                  = "profiles") -> Any:
    """Upload a file of profiles, or of orders (one row per order line; rows sharing an order number are one
    order). The answer suggests a column mapping; check it, then start the import."""
    run = imports.upload(session, principal, filename=file.filename or "upload.csv", content=file.file.read(),
                         unit_id=unit_id, kind=kind)
    return _import_out(session, run)


@router.get("/imports", response_model=Page[schemas.ImportOut], tags=["imports"])
def list_imports(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None) -> Any:
    page = imports.list_runs(session, principal, limit=limit, cursor=cursor)
    return {"items": [_import_out(session, r) for r in page.items], "next_cursor": page.next_cursor}


@router.get("/imports/{import_id}", response_model=schemas.ImportOut, tags=["imports"])
def get_import(import_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return _import_out(session, imports.get_run(session, principal, import_id))


@router.put("/imports/{import_id}/mapping", response_model=schemas.ImportOut, tags=["imports"])
def set_import_mapping(import_id: int, data: schemas.ImportMapping, session: SessionDep,
                       principal: PrincipalDep) -> Any:
    return _import_out(session, imports.set_mapping(session, principal, import_id, data.mapping))


@router.get("/imports/{import_id}/preview", response_model=list[schemas.PreviewRowOut], tags=["imports"])
def preview_import(import_id: int, session: SessionDep, principal: PrincipalDep,
                   limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Any:
    return [schemas.PreviewRowOut(**vars(r)) for r in imports.preview(session, principal, import_id, limit, "en")]


@router.post("/imports/{import_id}/start", response_model=schemas.ImportOut, tags=["imports"])
def start_import(import_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return _import_out(session, imports.start(session, principal, import_id))


@router.get("/imports/{import_id}/rejections.csv", tags=["imports"], response_class=Response)
def import_rejections(import_id: int, session: SessionDep, principal: PrincipalDep,
                      lang: Annotated[Literal["zh", "en"], Query(description="Language of the reasons")] = "en",
                      ) -> Response:
    """Every rejected row with its row number and reason, as CSV (UTF-8 with BOM, opens in Excel)."""
    return Response(imports.rejections_csv(session, principal, import_id, lang),
                    media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-rejected.csv"'})


@router.get("/imports/{import_id}/warnings", response_model=Page[schemas.ImportWarningOut], tags=["imports"])
def import_warnings(import_id: int, session: SessionDep, principal: PrincipalDep, limit: Limit = 50,
                    cursor: Cursor = None,
                    lang: Annotated[Literal["zh", "en"], Query(description="Language of the reasons")] = "en",
                    ) -> Any:
    """The values of accepted rows that were left out (a wrong birthday, an e-mail beside a good mobile…), by
    row number: the row was imported without them."""
    page = imports.warnings(session, principal, import_id, locale=lang, limit=limit, cursor=cursor)
    return {"items": [schemas.ImportWarningOut(**vars(w)) for w in page.items], "next_cursor": page.next_cursor}


@router.get("/imports/{import_id}/warnings.{format}", tags=["imports"], response_class=Response,
            responses={200: {"content": {"text/csv": {}, files.XlsxSheet.media_type: {}}}})
def import_warnings_file(import_id: int, format: Literal["csv", "xlsx"], session: SessionDep, principal: PrincipalDep,
                         lang: Annotated[Literal["zh", "en"], Query(description="Language of the reasons")] = "en",
                         ) -> Response:
    """Every warning (row number, column, value as written, reason) as CSV (UTF-8 with BOM) or XLSX."""
    media = "text/csv; charset=utf-8" if format == "csv" else files.XlsxSheet.media_type
    return Response(imports.warnings_file(session, principal, import_id, lang, format), media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="import-{import_id}-warnings.{format}"'})


@router.post("/customers/{profile_id}/consents", response_model=schemas.ConsentOut,
             status_code=status.HTTP_201_CREATED, tags=["customers"])
def record_consent(profile_id: int, data: schemas.ConsentCreate, session: SessionDep,
                   principal: PrincipalDep) -> Any:
    """Record a consent decision (PIPL): channel, purpose, granted or withdrawn, and the evidence."""
    record = service.record_consent(session, principal, profile_id, data=data)
    return schemas.ConsentOut(channel=record.channel, purpose=record.purpose, status=record.status, ts=record.ts,
                              evidence=record.evidence)


@router.get("/accounts", response_model=Page[schemas.AccountOut], tags=["accounts"])
def list_accounts(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
                  q: str | None = None) -> Any:
    page = service.list_accounts(session, principal, q=q, limit=limit, cursor=cursor)
    view = CustomerView.of(session, principal)
    return {"items": [view.account(a) for a in page.items], "next_cursor": page.next_cursor}


@router.get("/accounts/{account_id}", tags=["accounts"])
def get_account(account_id: int, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    """An account and those of its members the caller may see."""
    account, members = service.get_account(session, principal, account_id)
    view = CustomerView.of(session, principal)
    return {"account": view.account(account).model_dump(mode="json"),
            "members": [view.profile(p).model_dump(mode="json") for p in members]}


@router.post("/orders", response_model=schemas.OrderOut, status_code=status.HTTP_201_CREATED, tags=["orders"])
def create_order(data: schemas.OrderCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    return service.create_order(session, principal, data=data)


@router.get("/orders", tags=["orders"])
def list_orders(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
                profile_id: int | None = None) -> dict[str, Any]:
    page = service.list_orders(session, principal, profile_id=profile_id, limit=limit, cursor=cursor)
    return {"items": [service.order_out(o, []).model_dump(mode="json", exclude={"lines"}) for o in page.items],
            "next_cursor": page.next_cursor}


@router.post("/customers/{profile_id}/vehicles", response_model=schemas.VehicleOut,
             status_code=status.HTTP_201_CREATED, tags=["customers"])
def register_vehicle(profile_id: int, data: schemas.VehicleIn, session: SessionDep,
                     principal: PrincipalDep) -> Any:
    """Register a car (VIN) to this customer; a VIN registered before moves to its new owner."""
    return service.register_vehicle(session, principal, profile_id, data=data)


@router.get("/custom-fields", response_model=list[schemas.CustomFieldOut], tags=["custom fields"])
def list_custom_fields(session: SessionDep, principal: PrincipalDep) -> Any:
    return fields.list_fields(session, principal)


@router.post("/custom-fields", response_model=schemas.CustomFieldOut, status_code=status.HTTP_201_CREATED,
             tags=["custom fields"])
def create_custom_field(data: schemas.CustomFieldCreate, session: SessionDep, principal: PrincipalDep) -> Any:
    """Define a customer field of your own; its values live in `attributes[key]` and are validated by type."""
    return fields.create_field(session, principal, data.model_dump(mode="json"))


@router.patch("/custom-fields/{field_id}", response_model=schemas.CustomFieldOut, tags=["custom fields"])
def update_custom_field(field_id: int, data: schemas.CustomFieldUpdate, session: SessionDep,
                        principal: PrincipalDep) -> Any:
    return fields.update_field(session, principal, field_id, data.model_dump(mode="json", exclude_unset=True))


@router.get("/identity-rules", response_model=list[schemas.IdentityRuleOut], tags=["one id"])
def list_identity_rules(session: SessionDep, principal: PrincipalDep) -> Any:
    """One ID rules: identity kinds by priority (strongest first) and how many one profile may hold."""
    principal.require("profiles", "read")
    return [vars(r) for r in identity_rules.list_rules(session, principal.org_id)]


@router.put("/identity-rules/{kind}", response_model=schemas.IdentityRuleOut, tags=["one id"])
def set_identity_rule(kind: str, data: schemas.IdentityRuleIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return vars(identity_rules.set_rule(session, principal, kind=kind, **data.model_dump()))


# -- probabilistic dedupe ------------------------------------------------------------------------------------
@router.get("/dedupe", response_model=schemas.DedupeSettingsOut, tags=["dedupe"])
def get_dedupe(session: SessionDep, principal: PrincipalDep) -> Any:
    """Thresholds, the last run's figures and the fitted model."""
    return dedupe.get_settings(session, principal)


@router.put("/dedupe", response_model=schemas.DedupeSettingsOut, tags=["dedupe"])
def update_dedupe(data: schemas.DedupeSettingsIn, session: SessionDep, principal: PrincipalDep) -> Any:
    return dedupe.update_settings(session, principal, review_threshold=data.review_threshold,
                                  auto_merge_threshold=data.auto_merge_threshold,
                                  clear_auto_merge=data.clear_auto_merge)


@router.get("/dedupe/matching", response_model=schemas.MatchingOut, tags=["dedupe"])
def get_matching(session: SessionDep, principal: PrincipalDep) -> Any:
    """Matching settings: which comparisons take part (standard ones and custom fields with a comparison kind) and
    which blocking rules are on — the defaults (made for Chinese consumer data) where nothing was chosen — and the
    options: standard comparisons, default rules, custom fields with the kinds their types allow."""
    return dedupe.get_matching(session, principal)


@router.put("/dedupe/matching", response_model=schemas.MatchingOut, tags=["dedupe"],
            responses={422: {"description": "validation-failed (problem+json): `errors` names each field at fault — "
                                            "an unknown standard or custom field (`unknown_field`), a kind its type "
                                            "cannot take (`wrong_type`), no comparison left (`empty`), a rule that "
                                            "would compare every pair (`every_pair`), an unknown rule"}})
def update_matching(data: schemas.MatchingIn, session: SessionDep, principal: PrincipalDep) -> Any:
    """Choose the comparisons and blocking rules of the next runs (needs settings.manage). A part sent as null is
    its defaults; `{}` restores every default."""
    return dedupe.update_matching(session, principal, data=data)


@router.post("/dedupe/matching/check", response_model=schemas.MatchingCheckOut, tags=["dedupe"],
             responses={422: {"description": "validation-failed: as PUT /dedupe/matching"}})
def check_matching(session: SessionDep, principal: PrincipalDep, data: schemas.MatchingIn | None = None) -> Any:
    """Before saving or running: each blocking rule's pairs under the proposed settings (no body: the saved ones),
    counted as a run's plan counts them, and whether the run would stay under the ceiling. Nothing is saved."""
    return dedupe.check_matching(session, principal, data=data)


@router.post("/dedupe/run", response_model=schemas.DedupeSettingsOut, status_code=status.HTTP_202_ACCEPTED,
             tags=["dedupe"], responses={422: {"description": "too-many-comparisons: the blocking rules would "
                                                             "compare more pairs than KEHU_DEDUPE_MAX_PAIRS_PER_RECORD "
                                                             "allows (problem+json with pairs, ceiling, rules)"}})
def run_dedupe(session: SessionDep, principal: PrincipalDep) -> Any:
    """Find probable duplicates now (a job; one at a time). Each blocking rule's comparisons are counted first;
    a run over the ceiling answers 422 instead of starting."""
    return dedupe.request_run(session, principal)


@router.get("/duplicates", tags=["dedupe"])
def list_duplicates(session: SessionDep, principal: PrincipalDep, limit: Limit = 50, cursor: Cursor = None,
                    status_: Annotated[Literal["open", "merged", "dismissed"], Query(alias="status")] = "open",
                    min_probability: Annotated[float | None, Query(ge=0, le=1)] = None,
                    unit_id: int | None = None) -> dict[str, Any]:
    """Pairs of customers that are probably one person, most probable first; only pairs whose two customers
    you may both read."""
    page = dedupe.list_candidates(session, principal, status=status_, min_probability=min_probability,
                                  unit_id=unit_id, limit=limit, cursor=cursor)
    return {"items": [d.model_dump(mode="json") for d in dedupe.candidates_out(session, principal, page.items)],
            "next_cursor": page.next_cursor}


@router.get("/duplicates/{candidate_id}", response_model=schemas.DuplicateOut, tags=["dedupe"])
def get_duplicate(candidate_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    return dedupe.candidates_out(session, principal, [dedupe.get_candidate(session, principal, candidate_id)])[0]


@router.post("/duplicates/{candidate_id}/merge", response_model=schemas.MergeOut, status_code=status.HTTP_201_CREATED,
             tags=["dedupe"])
def merge_duplicate(candidate_id: int, session: SessionDep, principal: PrincipalDep,
                    data: schemas.DuplicateMergeIn | None = None) -> Any:
    """The same person: merge the two (undo it like any merge, which also dismisses the pair)."""
    return dedupe.merge_candidate(session, principal, candidate_id, winner_id=data.winner_id if data else None,
                                  fields=data.fields if data else None)


@router.post("/duplicates/{candidate_id}/dismiss", response_model=schemas.DuplicateOut, tags=["dedupe"])
def dismiss_duplicate(candidate_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    """Not the same person: the pair is never proposed again."""
    return dedupe.candidates_out(session, principal, [dedupe.dismiss_candidate(session, principal, candidate_id)])[0]


@router.get("/customers/{profile_id}/duplicates", response_model=list[schemas.DuplicateOut], tags=["dedupe"])
def customer_duplicates(profile_id: int, session: SessionDep, principal: PrincipalDep) -> Any:
    profile = service.get_profile(session, principal, profile_id)
    return dedupe.candidates_out(session, principal, dedupe.candidates_of(session, principal, profile.id))
