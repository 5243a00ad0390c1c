"""Factories for organisations, units and staff. They go through the services, so every rule applies."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import factory
from sqlalchemy.orm import Session

from kehu.tenancy import schemas, service
from kehu.tenancy.access import Principal
from kehu.tenancy.models import BusinessUnit, Organization, User

PASSWORD = "correct-horse-1"
_seq = itertools.count(1)


class UserCreateFactory(factory.Factory):
    class Meta:
        model = schemas.UserCreate

    email = factory.Sequence(lambda n: f"staff{n}@example.com")
    name = factory.Sequence(lambda n: f"员工{n}")
    password = PASSWORD
    unit_id = 0
    roles = factory.LazyFunction(lambda: ["dealer_sales"])


def make_org(session: Session, name: str = "示范汽车集团") -> tuple[Organization, Principal]:
    org = service.create_organization(session, name=name, slug=f"org{next(_seq)}")
    return org, service.system_principal(session, org.id)


def make_unit(session: Session, principal: Principal, parent: BusinessUnit, name: str, kind: str,
              code: str | None = None) -> BusinessUnit:
    data = schemas.UnitCreate(parent_id=parent.id, name=name, kind=kind, code=code or f"U{next(_seq)}")
    return service.create_unit(session, principal, data=data)


def make_user(session: Session, principal: Principal, unit: BusinessUnit, *roles: str, **kw: object) -> User:
    data = UserCreateFactory(unit_id=unit.id, roles=list(roles) or ["dealer_sales"], **kw)
    return service.create_user(session, principal, data=data)


@dataclass
class OrgTree:
    org: Organization
    system: Principal
    hq: BusinessUnit
    east: BusinessUnit
    north: BusinessUnit
    dealer_a: BusinessUnit
    dealer_b: BusinessUnit
    dealer_c: BusinessUnit
    admin: User
    east_manager: User
    a_manager: User
    a_sales: User
    a_sales2: User
    b_sales: User
    c_sales: User
    other_org_admin: User
    extra: dict[str, object] = field(default_factory=dict)

    def principal(self, session: Session, user: User) -> Principal:
        return service.principal_for_user(session, user.id)


def build_org_tree(session: Session) -> OrgTree:
    org, system = make_org(session)
    hq = service.root_unit(session, org.id)
    east = make_unit(session, system, hq, "华东大区", "region", "EAST")
    north = make_unit(session, system, hq, "华北大区", "region", "NORTH")
    dealer_a = make_unit(session, system, east, "上海浦东店", "dealer", "SH001")
    dealer_b = make_unit(session, system, east, "杭州西湖店", "dealer", "HZ001")
    dealer_c = make_unit(session, system, north, "北京朝阳店", "dealer", "BJ001")
    other, other_system = make_org(session, "另一个集团")
    other_hq = service.root_unit(session, other.id)
    return OrgTree(
        org=org, system=system, hq=hq, east=east, north=north, dealer_a=dealer_a, dealer_b=dealer_b,
        dealer_c=dealer_c,
        admin=make_user(session, system, hq, "org_admin", email="admin@example.com", name="管理员"),
        east_manager=make_user(session, system, east, "region_manager", email="east@example.com", name="王大区"),
        a_manager=make_user(session, system, dealer_a, "dealer_manager", email="a.manager@example.com", name="李店长"),
        a_sales=make_user(session, system, dealer_a, "dealer_sales", email="a.sales@example.com", name="张销售",
                          phone="+8613812345678"),
        a_sales2=make_user(session, system, dealer_a, "dealer_sales", email="a.sales2@example.com", name="赵销售"),
        b_sales=make_user(session, system, dealer_b, "dealer_sales", email="b.sales@example.com", name="陈销售"),
        c_sales=make_user(session, system, dealer_c, "dealer_sales", email="c.sales@example.com", name="刘销售"),
        other_org_admin=make_user(session, other_system, other_hq, "org_admin", email="boss@other.example.com",
                                  name="外部管理员"),
    )
