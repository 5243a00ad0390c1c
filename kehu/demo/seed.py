"""示范汽车集团: a deterministic demo automotive group — HQ, 3 regions, 12 dealers with teams, ~40 staff."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.tenancy import schemas, service
from kehu.tenancy.models import Organization

DEMO_SLUG = "demo"
DEMO_PASSWORD = "kehu-demo-2026"
ADMIN_EMAIL = "admin@demo.kehu.dev"

# region code, name, [(dealer code, name, province, city)]
REGIONS = [
    ("EAST", "华东大区", [
        ("SH001", "上海浦东4S店", "上海", "上海"), ("SH002", "上海闵行4S店", "上海", "上海"),
        ("HZ001", "杭州西湖4S店", "浙江", "杭州"), ("NJ001", "南京江宁4S店", "江苏", "南京"),
    ]),
    ("SOUTH", "华南大区", [
        ("GZ001", "广州天河4S店", "广东", "广州"), ("SZ001", "深圳南山4S店", "广东", "深圳"),
        ("XM001", "厦门思明4S店", "福建", "厦门"), ("NN001", "南宁青秀4S店", "广西", "南宁"),
    ]),
    ("NORTH", "华北大区", [
        ("BJ001", "北京朝阳4S店", "北京", "北京"), ("BJ002", "北京海淀4S店", "北京", "北京"),
        ("TJ001", "天津河西4S店", "天津", "天津"), ("SY001", "沈阳和平4S店", "辽宁", "沈阳"),
    ]),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
         "霞", "平", "刚", "桂英", "华", "建国", "晓东", "海燕", "志强", "雪", "丹", "鹏"]


@dataclass
class DemoResult:
    org: Organization
    created: bool
    users: int


def _name(i: int) -> str:
    return SURNAMES[(i * 7) % len(SURNAMES)] + GIVEN[(i * 11) % len(GIVEN)]


def seed_demo(session: Session) -> DemoResult:
    """Create the demo group once; a second call finds it and changes nothing."""
    existing = session.scalar(select(Organization).where(Organization.slug == DEMO_SLUG))
    if existing is not None:
        return DemoResult(existing, created=False, users=0)
    org = service.create_organization(session, name="示范汽车集团", slug=DEMO_SLUG, hq_name="示范汽车集团总部")
    system = service.system_principal(session, org.id)
    hq = service.root_unit(session, org.id)
    counter = iter(range(1, 1000))

    def unit(parent_id: int, code: str, name: str, kind: str, province: str | None = None,
             city: str | None = None) -> int:
        return service.create_unit(session, system, data=schemas.UnitCreate(
            parent_id=parent_id, code=code, name=name, kind=kind, province=province, city=city)).id

    def user(unit_id: int, email: str, role: str, name: str | None = None) -> None:
        i = next(counter)
        service.create_user(session, system, data=schemas.UserCreate(
            email=email, name=name or _name(i), password=DEMO_PASSWORD, unit_id=unit_id, roles=[role],
            phone=f"+86139{(20260000 + i * 7919) % 100000000:08d}"))

    user(hq.id, ADMIN_EMAIL, "org_admin", "系统管理员")
    marketing = unit(hq.id, "HQ-MKT", "总部市场部", "team")
    user(marketing, "marketing1@demo.kehu.dev", "hq_marketing")
    user(marketing, "marketing2@demo.kehu.dev", "hq_marketing")
    user(marketing, "analyst@demo.kehu.dev", "hq_analyst")
    call_centre = unit(hq.id, "HQ-CC", "全国客服中心", "team")
    for n in range(1, 4):
        user(call_centre, f"agent{n}@demo.kehu.dev", "call_centre_agent")
    for region_code, region_name, dealers in REGIONS:
        region = unit(hq.id, region_code, region_name, "region")
        user(region, f"{region_code.lower()}.manager@demo.kehu.dev", "region_manager")
        for d, (code, name, province, city) in enumerate(dealers):
            dealer = unit(region, code, name, "dealer", province, city)
            sales = unit(dealer, f"{code}-S", f"{name}销售组", "team", province, city)
            service_team = unit(dealer, f"{code}-A", f"{name}售后组", "team", province, city)
            user(dealer, f"{code.lower()}.manager@demo.kehu.dev", "dealer_manager")
            if d == 0:  # the first dealer of each region runs its own campaigns
                user(dealer, f"{code.lower()}.marketing@demo.kehu.dev", "dealer_marketing")
            user(sales, f"{code.lower()}.sales1@demo.kehu.dev", "dealer_sales")
            if d % 2 == 0:
                user(sales, f"{code.lower()}.sales2@demo.kehu.dev", "dealer_sales")
                user(service_team, f"{code.lower()}.service@demo.kehu.dev", "service_advisor")
    session.flush()
    return DemoResult(org, created=True, users=next(counter) - 1)
