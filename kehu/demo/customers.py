"""Demo customers for 示范汽车集团, sent through the real ingestion path (sources → inbox → One ID), so the
demo shows merged profiles the way production builds them. Deterministic for a given seed and size."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta
from itertools import cycle

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import ingest, normalise, schemas, service
from kehu.cdp.identity import drain_inbox
from kehu.cdp.models import Event, Profile
from kehu.core.db import utcnow
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.access import Principal
from kehu.tenancy.models import BusinessUnit, Role, User

# Common surnames, most frequent first; their shares fall off roughly like a Zipf distribution.
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈")
SURNAME_WEIGHTS = [1 / (rank + 1) ** 0.8 for rank in range(len(SURNAMES))]
GIVEN_MALE = "伟 强 磊 军 洋 勇 杰 涛 明 超 刚 平 辉 鹏 建华 志强 浩然 宇轩 子豪 俊杰 晓东 国庆 海波 文博".split()
GIVEN_FEMALE = "芳 娜 敏 静 丽 艳 娟 霞 秀英 桂英 玲 婷 雪 丹 欣怡 梓涵 思琪 雨桐 晓燕 海燕 佳怡 诗涵 慧敏 梦洁".split()
MOBILE_PREFIXES = ["130", "131", "132", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
                   "158", "159", "166", "176", "177", "178", "180", "181", "182", "185", "186", "187", "188", "189",
                   "198", "199"]
MODELS = [("ID.3", 159_900), ("ID.4", 199_900), ("ID.6", 259_900), ("Tiguan L", 219_900), ("Passat", 189_900),
          ("Magotan", 209_900), ("Lavida", 119_900)]
MAIL_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "outlook.com"]
COMPANIES = [("91310000MA1", "上海浦江物流有限公司"), ("91330100MA2", "杭州云栖软件有限公司"),
             ("91440300MA3", "深圳前海科技有限公司"), ("91110000MA4", "北京朝阳出行服务有限公司"),
             ("91120000MA5", "天津港汽车租赁有限公司")]


# Deliberate duplicates: the same person met at another touchpoint, written down differently.
SIMILAR = dict(zip("伟静丽娜明杰军敏涛婷磊艳芳洋", "玮婧莉那铭洁君民滔亭垒燕方阳", strict=True))
TRADITIONAL = dict(zip("张刘陈杨黄赵吴孙马郑谢冯邓韩叶苏吕丁沈伟丽军娟红华国东晓龙静艳洁凤",
                       "張劉陳楊黃趙吳孫馬鄭謝馮鄧韓葉蘇呂丁瀋偉麗軍娟紅華國東曉龍靜豔潔鳳", strict=True))



def noisy_name(rng: random.Random, name: str) -> str:
    """How another touchpoint writes the same person's name: a similar character, pinyin in either order,
    traditional characters — or the name as it is."""
    family, given = name[:1], name[1:]
    way = rng.choice(["typo", "pinyin", "swapped", "traditional", "same"])
    if way == "typo" and any(c in SIMILAR for c in given):
        return family + "".join(SIMILAR.get(c, c) for c in given)
    if way in ("pinyin", "swapped"):
        spelled = (normalise.pinyin(family) or "").title(), (normalise.pinyin(given) or "").title()
        return f"{spelled[0]} {spelled[1]}" if way == "pinyin" else f"{spelled[1]} {spelled[0]}"
    if way == "traditional":
        return "".join(TRADITIONAL.get(c, c) for c in name)
    return name


# The first four digits of a city's postcodes (province, postal area, city); the district adds the last two.
CITY_POSTCODES = {"上海": "2000", "北京": "1000", "广州": "5100", "深圳": "5180", "杭州": "3100", "南京": "2100",
                  "苏州": "2150", "宁波": "3150", "天津": "3000", "成都": "6100", "武汉": "4300", "重庆": "4000",
                  "西安": "7100", "长沙": "4100", "郑州": "4500", "济南": "2500", "青岛": "2660", "合肥": "2300",
                  "福州": "3500", "厦门": "3610", "东莞": "5230", "佛山": "5280", "沈阳": "1100", "大连": "1160"}


def postcode(city: str | None, district: int) -> str:
    """A Chinese postcode for an address in ``city``'s ``district`` (the n-th of DISTRICTS): six digits, the city's
    own where known, otherwise four digits stable per city."""
    name = (city or "").removesuffix("市")
    prefix = CITY_POSTCODES.get(name) or f"{int(hashlib.sha1(name.encode()).hexdigest(), 16) % 8000 + 1000:04d}"
    return f"{prefix}{district + 1:02d}"


VIN_VALUES = {**{str(d): d for d in range(10)}, **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
              **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
              **dict(zip("STUVWXYZ", range(2, 10), strict=True))}
VIN_WEIGHTS = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]


def vin_check_digit(vin_17: str) -> str:
    """The check digit (9th character) of a VIN by the ISO 3779 / FMVSS 115 weights."""
    total = sum(VIN_VALUES[c] * w for c, w in zip(vin_17.upper(), VIN_WEIGHTS, strict=True)) % 11
    return "X" if total == 10 else str(total)


def vin(rng: random.Random) -> str:
    """A VIN with a valid check digit, Chinese-market WMI 'LSV'."""
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    body = "LSV" + "".join(rng.choice(alphabet) for _ in range(5)) + "0" + rng.choice("LMNPR") + \
        rng.choice(alphabet) + f"{rng.randrange(10**6):06d}"
    return body[:8] + vin_check_digit(body) + body[9:]


def _person(rng: random.Random) -> dict[str, object]:
    gender = rng.choice(["male", "female"])
    name = rng.choices(SURNAMES, SURNAME_WEIGHTS)[0] + rng.choice(GIVEN_MALE if gender == "male" else GIVEN_FEMALE)
    mobile = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
    year = rng.randint(1965, 2002)
    return {"name": name, "gender": gender, "mobile": mobile,
            "birthday": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "email": f"{mobile[-6:]}{rng.randint(10, 99)}@{rng.choice(MAIL_DOMAINS)}" if rng.random() < 0.4 else None}


def seed_customers(session: Session, org_id: int, *, customers: int, seed: int = 2026) -> int:
    """Create ``customers`` people's worth of calls across web, app and dealer showroom sources, resolve them
    and hand each dealer's customers to its sales consultants. Returns the number of live profiles."""
    if customers <= 0:
        return 0
    rng = random.Random(seed)
    system = tenancy_service.system_principal(session, org_id)
    dealers = list(session.scalars(select(BusinessUnit).where(
        BusinessUnit.org_id == org_id, BusinessUnit.kind == "dealer").order_by(BusinessUnit.code)))
    web, _ = service.create_source(session, system, data=schemas.SourceCreate(name="官网", kind="web"))
    app, _ = service.create_source(session, system, data=schemas.SourceCreate(name="车主 App", kind="app"))
    showrooms = {d.id: service.create_source(session, system, data=schemas.SourceCreate(
        name=f"{d.name} 展厅", kind="server", unit_id=d.id))[0] for d in dealers}
    outbox: dict[int, list[dict[str, object]]] = {web.id: [], app.id: [], **{s.id: [] for s in showrooms.values()}}
    sources = {web.id: web, app.id: app, **{s.id: s for s in showrooms.values()}}
    hotline, _ = service.create_source(session, system, data=schemas.SourceCreate(name="客服热线", kind="server"))
    outbox[hotline.id], sources[hotline.id] = [], hotline
    # Some showroom customers call the hotline later from another phone and the agent takes their name down by
    # ear: a second record of the same person sharing no identity, for probabilistic dedupe to find. A rng of
    # its own, so the rest of the demo is the same with or without them.
    callers = random.Random(seed + 1)
    # Who agreed to marketing e-mail at the showroom: a rng of its own too, for the same reason
    mail_consent = random.Random(seed + 2)
    now = utcnow()
    counter = 0

    def emit(source_id: int, kind: str, ts, **fields: object) -> None:  # type: ignore[no-untyped-def]
        nonlocal counter
        counter += 1
        ts = min(ts, now)  # a journey that would run past today stops at today, not in the future
        outbox[source_id].append({"type": kind, "messageId": f"demo-{seed}-{counter}", "timestamp": ts.isoformat(),
                                  **fields})

    for n in range(customers):
        person = _person(rng)
        dealer = rng.choice(dealers)
        showroom = showrooms[dealer.id]
        start = now - timedelta(days=rng.randint(5, 540), hours=rng.randint(0, 23))
        anon = f"demo-anon-{seed}-{n}"
        model, price = rng.choice(MODELS)
        bought_at = start
        traits = {"name": person["name"], "gender": person["gender"], "phone": person["mobile"],
                  "province": dealer.province, "city": dealer.city}
        if person["email"]:
            traits["email"] = person["email"]
        ts = start
        for _ in range(rng.randint(1, 4)):  # browsing the website anonymously
            emit(web.id, "page", ts, anonymousId=anon, name="车型详情", properties={"model": model})
            ts += timedelta(hours=rng.randint(1, 60))
        stage = "prospect"
        if rng.random() < 0.7:  # leaves a phone number on a form
            emit(web.id, "track", ts, anonymousId=anon, event="test_drive_booked",
                 properties={"model": model, "dealer": dealer.code}, context={"traits": traits})
            stage = "lead"
            ts += timedelta(days=rng.randint(1, 10))
        if rng.random() < 0.6:  # comes to the showroom: the dealer's system knows them by phone and number
            dms_no = f"{dealer.code}-{n:06d}"
            consent = {"sms": {"marketing": rng.random() < 0.7, "service": True},
                       "wechat": {"marketing": rng.random() < 0.5}, "phone": {"service": True},
                       "email": {"marketing": mail_consent.random() < 0.6, "service": True}}
            emit(showroom.id, "identify", ts, userId=None, anonymousId=f"dms-{dms_no}",
                 traits={**traits, "dealer_customer_no": dms_no, "birthday": person["birthday"],
                         "lifecycle_stage": "opportunity", "consent": consent})
            if rng.random() < 0.08:  # buys for a company fleet
                company = rng.choice(COMPANIES)
                emit(showroom.id, "group", ts, anonymousId=f"dms-{dms_no}", groupId=f"co-{company[0]}",
                     traits={"name": company[1], "kind": "company", "city": dealer.city})
            emit(showroom.id, "track", ts + timedelta(minutes=30), anonymousId=f"dms-{dms_no}",
                 event="showroom_visit", properties={"model": model})
            if callers.random() < 0.05:
                other_phone = callers.choice(MOBILE_PREFIXES) + f"{callers.randrange(10**8):08d}"
                emit(hotline.id, "identify", ts + timedelta(days=callers.randint(3, 60)), anonymousId=f"cc-{seed}-{n}",
                     traits={"name": noisy_name(callers, str(person["name"])), "birthday": person["birthday"],
                             "phone": other_phone, "city": dealer.city, "province": dealer.province,
                             "lifecycle_stage": "prospect"})
            stage = "opportunity"
            if rng.random() < 0.5:
                emit(showroom.id, "track", ts + timedelta(hours=1), anonymousId=f"dms-{dms_no}",
                     event="test_drive_completed", properties={"model": model})
            if rng.random() < 0.35:
                order_ts = ts + timedelta(days=rng.randint(2, 30))
                bought_at = order_ts
                if order_ts < now:
                    emit(showroom.id, "track", order_ts, anonymousId=f"dms-{dms_no}", event="order_placed",
                         properties={"order_id": f"SO-{dms_no}", "model": model, "amount": price,
                                     "currency": "CNY"})
                    emit(showroom.id, "identify", order_ts, anonymousId=f"dms-{dms_no}",
                         traits={"lifecycle_stage": "customer"})
                    stage = "customer"
                    delivered = order_ts + timedelta(days=rng.randint(7, 40))
                    if delivered < now:
                        emit(showroom.id, "track", delivered, anonymousId=f"dms-{dms_no}", event="vehicle_delivered",
                             properties={"order_id": f"SO-{dms_no}", "vin": vin(rng), "model": model})
        if stage == "customer" and rng.random() < 0.6:  # new owners install the app
            user_id = f"app-{seed}-{n}"
            app_ts = min(now, bought_at + timedelta(days=rng.randint(10, 60)))
            emit(app.id, "identify", app_ts, userId=user_id, traits={"phone": person["mobile"],
                                                                    "lifecycle_stage": "owner"})
            emit(app.id, "track", app_ts, userId=user_id, event="app_login")
        elif stage in ("prospect", "lead"):
            emit(web.id, "identify", ts, anonymousId=anon, traits={"lifecycle_stage": stage})

    for source_id, calls in outbox.items():
        for start in range(0, len(calls), 500):
            ingest.accept(session, sources[source_id], [(c, None) for c in calls[start:start + 500]])
    session.flush()
    while drain_inbox(session, limit=50):
        pass
    _assign_to_sales(session, system, org_id, {d: s.id for d, s in showrooms.items()})
    return len(list(session.scalars(select(Profile.id).where(Profile.org_id == org_id,
                                                             Profile.merged_into_id.is_(None)))))


def _assign_to_sales(session: Session, system: Principal, org_id: int, showroom_of: dict[int, int]) -> None:
    """Whoever visited a dealer's showroom becomes that dealer's customer, round-robin over its consultants
    (until lead routing does this for real, the way a dealer manager would by hand)."""
    sales_role = session.scalar(select(Role).where(Role.org_id == org_id, Role.code == "dealer_sales"))
    for dealer in session.scalars(select(BusinessUnit).where(BusinessUnit.org_id == org_id,
                                                              BusinessUnit.kind == "dealer")):
        consultants = list(session.scalars(
            select(User).join(BusinessUnit, User.unit_id == BusinessUnit.id)
            .where(BusinessUnit.path.startswith(dealer.path), User.roles.any(Role.id == sales_role.id))
            .order_by(User.id)))
        if not consultants or dealer.id not in showroom_of:
            continue
        customers = list(session.scalars(
            select(Profile.id).where(Profile.merged_into_id.is_(None), Profile.id.in_(
                select(Event.profile_id).where(Event.source_id == showroom_of[dealer.id]))).order_by(Profile.id)))
        buckets: dict[int, list[int]] = {u.id: [] for u in consultants}
        for profile_id, consultant in zip(customers, cycle(consultants), strict=False):
            buckets[consultant.id].append(profile_id)
        for owner_id, ids in buckets.items():
            if ids:
                service.assign_profiles(session, system, profile_ids=ids, owner_id=owner_id)
