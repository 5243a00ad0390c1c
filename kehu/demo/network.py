"""A dealer network at the size of a national car maker: up to several hundred dealers in real provinces and
cities, grouped in regions, each with a manager, sales consultants and service advisors. Used by
`kehu generate --dealers N` to grow the demo group before customers are spread over it."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kehu.cdp.normalise import pinyin
from kehu.core import audit
from kehu.core.security import hash_password
from kehu.demo.seed import DEMO_PASSWORD, _name
from kehu.tenancy import schemas, service
from kehu.tenancy.models import BusinessUnit, Role, User

# region code, name, [(province, city)] — cities roughly in the order a brand opens dealers in them.
REGIONS = [
    ("EAST", "华东大区", [("上海", "上海"), ("浙江", "杭州"), ("江苏", "南京"), ("江苏", "苏州"), ("浙江", "宁波"),
                          ("江苏", "无锡"), ("山东", "青岛"), ("山东", "济南"), ("安徽", "合肥"), ("浙江", "温州"),
                          ("江苏", "常州"), ("江苏", "南通"), ("浙江", "绍兴"), ("浙江", "金华"), ("山东", "烟台"),
                          ("山东", "潍坊"), ("江苏", "徐州"), ("安徽", "芜湖"), ("浙江", "嘉兴"), ("山东", "临沂")]),
    ("SOUTH", "华南大区", [("广东", "广州"), ("广东", "深圳"), ("广东", "东莞"), ("广东", "佛山"), ("福建", "厦门"),
                           ("福建", "福州"), ("广西", "南宁"), ("海南", "海口"), ("福建", "泉州"), ("广东", "珠海"),
                           ("广东", "惠州"), ("广东", "中山"), ("广西", "柳州"), ("广东", "汕头"), ("广西", "桂林")]),
    ("NORTH", "华北大区", [("北京", "北京"), ("天津", "天津"), ("辽宁", "沈阳"), ("辽宁", "大连"), ("河北", "石家庄"),
                           ("山西", "太原"), ("内蒙古", "呼和浩特"), ("吉林", "长春"), ("黑龙江", "哈尔滨"),
                           ("河北", "唐山"), ("河北", "保定"), ("内蒙古", "包头"), ("吉林", "吉林"),
                           ("黑龙江", "大庆"), ("河北", "廊坊")]),
    ("CENTRAL", "华中大区", [("湖北", "武汉"), ("湖南", "长沙"), ("河南", "郑州"), ("江西", "南昌"), ("河南", "洛阳"),
                             ("湖北", "宜昌"), ("湖南", "株洲"), ("江西", "赣州"), ("湖北", "襄阳"), ("河南", "南阳"),
                             ("湖南", "岳阳"), ("江西", "九江")]),
    ("WEST", "西部大区", [("四川", "成都"), ("重庆", "重庆"), ("陕西", "西安"), ("云南", "昆明"), ("贵州", "贵阳"),
                          ("甘肃", "兰州"), ("新疆", "乌鲁木齐"), ("宁夏", "银川"), ("青海", "西宁"), ("四川", "绵阳"),
                          ("西藏", "拉萨"), ("云南", "大理")]),
]


def grow_network(session: Session, org_id: int, *, dealers: int) -> int:
    """Add dealers (round the regions, then round each region's cities) until the organisation has
    ``dealers``; returns how many were added. Staff share one password hash (the demo's), so hundreds of
    accounts take seconds rather than minutes of argon2."""
    system = service.system_principal(session, org_id)
    have = session.scalar(select(func.count()).select_from(BusinessUnit).where(
        BusinessUnit.org_id == org_id, BusinessUnit.kind == "dealer")) or 0
    if have >= dealers:
        return 0
    hq = service.root_unit(session, org_id)
    roles = {r.code: r for r in session.scalars(select(Role).where(Role.org_id == org_id))}
    password_hash = hash_password(DEMO_PASSWORD)
    regions = {}
    for code, name, _ in REGIONS:
        unit = session.scalar(select(BusinessUnit).where(BusinessUnit.org_id == org_id, BusinessUnit.code == code))
        regions[code] = unit or service.create_unit(session, system, data=schemas.UnitCreate(
            parent_id=hq.id, code=code, name=name, kind="region"))
    slots = itertools.cycle([(code, city) for city_index in range(max(len(c) for _, _, c in REGIONS))
                             for code, _, cities in REGIONS if city_index < len(cities)
                             for city in [cities[city_index]]])
    taken = set(session.scalars(select(BusinessUnit.code).where(BusinessUnit.org_id == org_id)))
    per_city: dict[str, int] = {}
    added = 0
    people = itertools.count(10_000 + have * 10)
    while have + added < dealers:
        region_code, (province, city) = next(slots)
        per_city[city] = per_city.get(city, 0) + 1
        code = f"{(pinyin(city) or 'x').upper()}{per_city[city]:03d}"
        if code in taken:
            continue
        taken.add(code)
        name = f"{city}{_branch(per_city[city])}4S店"  # e.g. 杭州东区4S店
        dealer = service.create_unit(session, system, data=schemas.UnitCreate(
            parent_id=regions[region_code].id, code=code, name=name, kind="dealer", province=province, city=city))
        sales = service.create_unit(session, system, data=schemas.UnitCreate(
            parent_id=dealer.id, code=f"{code}-S", name=f"{name}销售组", kind="team", province=province, city=city))
        after_sales = service.create_unit(session, system, data=schemas.UnitCreate(
            parent_id=dealer.id, code=f"{code}-A", name=f"{name}售后组", kind="team", province=province, city=city))
        staff = [(dealer.id, "manager", "dealer_manager")]
        staff += [(sales.id, f"sales{n}", "dealer_sales") for n in range(1, 2 + added % 3 + 1)]
        staff += [(after_sales.id, f"service{n}", "service_advisor") for n in range(1, 1 + added % 2 + 1)]
        for unit_id, login, role in staff:
            number = next(people)
            session.add(User(org_id=org_id, unit_id=unit_id, email=f"{code.lower()}.{login}@demo.kehu.dev",
                             name=_name(number), phone=f"+86139{(20260000 + number * 7919) % 100000000:08d}",
                             password_hash=password_hash, roles=[roles[role]]))
        added += 1
    session.flush()
    audit.record(session, system, org_id=org_id, action="create", entity="units",
                 after={"dealers_added": added}, summary=f"Dealer network grown by {added} dealers with their staff")
    return added


BRANCHES = ("中心", "东区", "西区", "南区", "北区", "新城", "高新", "开发区", "城东", "城西")


def _branch(n: int) -> str:
    """中心, 东区 … for the dealers of one city, then numbers."""
    return BRANCHES[n - 1] if n <= len(BRANCHES) else f"{n}号"
