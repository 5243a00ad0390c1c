"""How a reader sees customer records: the one way to render a profile, its identities, vehicles, events and the
rows of a customer file for a principal, with personal data masked by its kind unless they hold ``pii.read``.

Which values are personal data is said here once: the standard fields (``Profile.__pii__``), the organisation's
custom fields flagged PII (their kind follows their type), the traits that carry personal data wherever they
appear (a ``phone`` in an event's context, an ``address`` trait) and every identity kind that is not a
pseudonymous id. A ``CustomerView`` is made from a session, so it always knows the custom fields: there is no
way to render a profile without them (the mistake that once showed every PII custom field in clear).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kehu.cdp import schemas
from kehu.cdp.fields import definitions
from kehu.cdp.models import Account, CustomField, Identity, Profile, Vehicle
from kehu.tenancy import masking
from kehu.tenancy.access import Principal

# The custom field types and the kind of personal data their values are.
FIELD_KINDS = {"text": masking.TEXT, "number": masking.NUMBER, "date": masking.DATE, "boolean": masking.BOOLEAN,
               "option": masking.OPTION, "multi_option": masking.MULTI_OPTION}
# Traits that are personal data under these names wherever they appear: profile attributes nobody defined, event
# properties, an event's context (analytics.js sends a form's traits there), a file's columns.
PERSONAL_TRAITS = {"phone": masking.MOBILE, "mobile": masking.MOBILE, "email": masking.EMAIL,
                   "birthday": masking.BIRTHDAY, "address": masking.TEXT, "vin": masking.TEXT,
                   "plate": masking.TEXT, "ip": masking.TEXT}
# Identity kinds that name a person only to the system that issued them (shown as they are); every other kind,
# a custom one included, is masked as text unless it is a mobile or an e-mail.
PSEUDONYMOUS_IDENTITIES = frozenset({"anonymous_id", "user_id", "wechat_openid", "wechat_unionid",
                                     "dealer_customer_no", "push_token"})


def identity_kind(kind: str) -> str | None:
    """The kind of personal data an identity of ``kind`` is (None: a pseudonymous id, shown as it is)."""
    if kind in PSEUDONYMOUS_IDENTITIES:
        return None
    return {"mobile": masking.MOBILE, "email": masking.EMAIL}.get(kind, masking.TEXT)


@dataclass(frozen=True)
class PersonalData:
    """Which of an organisation's customer values are personal data, and of what kind (None: not personal)."""

    defined: dict[str, CustomField]

    @classmethod
    def of(cls, session: Session, org_id: int) -> PersonalData:
        return cls(definitions(session, org_id))

    @classmethod
    def detached(cls, session: Session, org_id: int) -> PersonalData:
        """As ``of``, with copies of the fields that belong to no session: it is kept with a principal, read by
        concurrent requests, and outlives the session it was read in."""
        columns = CustomField.__table__.columns.keys()
        return cls({key: CustomField(**{c: getattr(f, c) for c in columns})
                    for key, f in definitions(session, org_id).items()})

    def of_attribute(self, key: str) -> str | None:
        field = self.defined.get(key)
        if field is not None:
            return FIELD_KINDS.get(field.type, masking.TEXT) if field.is_pii else None
        return PERSONAL_TRAITS.get(key)

    def of_field(self, name: str) -> str | None:
        """A segment condition's field: a standard one (``mobile``) or ``attributes.<key>``."""
        if name.startswith("attributes."):
            return self.of_attribute(name[len("attributes."):])
        return Profile.__pii__.get(name)

    def of_identity(self, kind: str) -> str | None:
        return identity_kind(kind)

    def of_import_target(self, target: str | None) -> str | None:
        """A file column mapped to ``target`` (``mobile``, ``attribute:key``, ``identity:vin``…; None: not
        mapped, so nobody knows what it holds and it counts as personal)."""
        if not target:
            return masking.TEXT
        if target.startswith("attribute:"):
            return self.of_attribute(target.split(":", 1)[1])
        if target.startswith("identity:"):
            return self.of_identity(target.split(":", 1)[1])
        return Profile.__pii__.get(target)


class CustomerView:
    """Customer records as one principal may see them (API, pages, exports and files alike)."""

    def __init__(self, principal: Principal, personal: PersonalData) -> None:
        self.principal = principal
        self.personal = personal
        self.sees_all = principal.has("pii.read")

    @classmethod
    def of(cls, session: Session, principal: Principal) -> CustomerView:
        personal = principal.memo.get("personal_data")
        if personal is None:  # once per principal: a field's change makes the principal anew (fields.py)
            personal = principal.memo["personal_data"] = PersonalData.detached(session, principal.org_id)
        return cls(principal, personal)

    def value(self, kind: str | None, value: Any) -> Any:
        return value if kind is None or self.sees_all else masking.mask_value(kind, value)

    def profile(self, profile: Profile) -> schemas.ProfileOut:
        pii = Profile.__pii__
        return schemas.ProfileOut(
            id=profile.id, name=profile.name, name_pinyin=profile.name_pinyin, gender=profile.gender,
            birthday=self.value(pii["birthday"], profile.birthday.isoformat() if profile.birthday else None),
            mobile=self.value(pii["mobile"], profile.mobile), email=self.value(pii["email"], profile.email),
            province=profile.province, city=profile.city, address=self.value(pii["address"], profile.address),
            postcode=profile.postcode, source=profile.source,
            lifecycle_stage=profile.lifecycle_stage, unit_id=profile.unit_id, owner_id=profile.owner_id,
            attributes=self.attributes(profile.attributes or {}), first_seen_at=profile.first_seen_at,
            last_seen_at=profile.last_seen_at, created_at=profile.created_at, updated_at=profile.updated_at,
        )

    def attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        return {key: self.value(self.personal.of_attribute(key), value) for key, value in attributes.items()}

    def identity(self, row: Identity) -> schemas.IdentityOut:
        return schemas.IdentityOut(id=row.id, kind=row.kind, value=self.value(self.personal.of_identity(row.kind),
                                                                              row.value) or "",
                                   source_id=row.source_id, first_seen_at=row.first_seen_at,
                                   last_seen_at=row.last_seen_at)

    def vehicle(self, vehicle: Vehicle) -> schemas.VehicleOut:
        return schemas.VehicleOut(id=vehicle.id, vin=self.value(PERSONAL_TRAITS["vin"], vehicle.vin),
                                  model=vehicle.model, model_year=vehicle.model_year,
                                  plate=self.value(PERSONAL_TRAITS["plate"], vehicle.plate),
                                  purchased_at=vehicle.purchased_at, unit_id=vehicle.unit_id)

    def account(self, account: Account) -> schemas.AccountOut:
        """A company or household; its traits (a household's phone…) masked as an event's properties are."""
        out = schemas.AccountOut.model_validate(account)
        out.traits = self.properties(out.traits or {})
        return out

    def properties(self, data: dict[str, Any]) -> dict[str, Any]:
        """An event's properties or context, personal traits masked at any depth (``context.traits.phone``)."""
        if self.sees_all:
            return data
        return {key: self._property(key, value) for key, value in data.items()}

    def _property(self, key: str, value: Any) -> Any:
        kind = self.personal.of_attribute(key)
        if kind is not None:
            return masking.mask_value(kind, value)
        if isinstance(value, dict):
            return self.properties(value)
        if isinstance(value, list):
            return [self.properties(v) if isinstance(v, dict) else v for v in value]
        return value

    def file_row(self, mapping: dict[str, str], row: dict[str, str]) -> dict[str, str]:
        """A row of an uploaded customer or order file (column → cell), each column masked by what it is
        mapped to; a column mapped to nothing may hold anything, so it is masked as text."""
        if self.sees_all:
            return row
        return {column: self.value(self.personal.of_import_target(mapping.get(column)), value)
                for column, value in row.items()}

    def file_problems(self, mapping: dict[str, str], problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A file row's stored problems with the values they quote masked as the column's cells are."""
        if self.sees_all:
            return problems
        out = []
        for problem in problems:
            kind = self.personal.of_import_target(mapping.get(str(problem.get("column") or "")))
            params = {k: (self.value(kind, v) if k == "value" else v) for k, v in (problem.get("params") or {}).items()}
            out.append({**problem, "params": params})
        return out


def file_view(session: Session, principal: Principal, *, uploaded_by: int | None) -> CustomerView:
    """How a reader sees the cells of an uploaded file (its preview, its rejected rows): whole for the person
    who uploaded it — they hold the file, and need its rows as they were to fix and import them again — and
    for holders of ``pii.read``; masked by what each column is mapped to for everyone else."""
    view = CustomerView.of(session, principal)
    if principal.user_id is not None and principal.user_id == uploaded_by:
        view.sees_all = True
    return view
