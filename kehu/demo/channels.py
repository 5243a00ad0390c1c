"""Messages for the demo group: HQ's communication rules (quiet hours, frequency caps, approval of dealers'
broadcasts), a content library, templates for e-mail, SMS and WeChat (one with dynamic content for owners and
prospects), and broadcasts in every state — two going out as the server starts (into the outbox: no provider is
configured, so nothing leaves the machine), one from a dealer waiting for HQ's approval, one drafted for next
week."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.channels import broadcasts, control, schemas, templates
from kehu.core.db import utcnow
from kehu.core.timeutil import zone
from kehu.segments import schemas as segment_schemas
from kehu.segments import service as segment_service
from kehu.tenancy import service as tenancy_service
from kehu.tenancy.models import BusinessUnit, Organization, User

LOGO = ("data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHdpZHRoPSIxNjAiIGhlaWdodD0i"
        "NDAiPjxyZWN0IHdpZHRoPSIxNjAiIGhlaWdodD0iNDAiIHJ4PSI2IiBmaWxsPSIjMTk3NmQyIi8+PHRleHQgeD0iODAiIHk9IjI2IiBm"
        "b250LXNpemU9IjE4IiBmaWxsPSIjZmZmIiB0ZXh0LWFuY2hvcj0ibWlkZGxlIiBmb250LWZhbWlseT0ic2Fucy1zZXJpZiI+a2VodSBN"
        "b3RvcnM8L3RleHQ+PC9zdmc+")

SERVICE_MAIL = """<mjml>
  <mj-body background-color="#f4f6f8">
    <mj-section background-color="#ffffff" padding="16px">
      <mj-column><mj-image src="{{ image('logo') }}" alt="示范汽车" width="160px" align="left" /></mj-column>
    </mj-section>
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-text font-size="18px" font-weight="bold">{{ name | default("尊敬的客户", true) }}，您好</mj-text>
        {% if show.owner %}
        <mj-text>您的{{ vehicle.model | default("爱车", true) }}到了春季保养的时候。
          四月底前到{{ dealer.name }}保养，工时费八折，还送免费空调检测。</mj-text>
        <mj-button background-color="#1976d2" href="https://demo.kehu.dev/service">预约保养</mj-button>
        {% else %}
        <mj-text>春天最适合试驾。到{{ dealer.name }}试驾新款车型，即送精美车模一台。</mj-text>
        <mj-button background-color="#1976d2" href="https://demo.kehu.dev/test-drive">预约试驾</mj-button>
        {% endif %}
        <mj-text color="#555">您的专属顾问：{{ salesperson.name | default(dealer.name, true) }}
          {{ salesperson.phone | default("", true) }}</mj-text>
      </mj-column>
    </mj-section>
    <mj-section><mj-column><mj-text font-size="12px" color="#888">{{ snippet('footer') }}
      <a href="{{ unsubscribe_url }}">退订营销邮件</a></mj-text></mj-column></mj-section>
  </mj-body>
</mjml>"""

SERVICE_MAIL_EN = """<mjml>
  <mj-body background-color="#f4f6f8">
    <mj-section background-color="#ffffff"><mj-column>
      <mj-text font-size="18px" font-weight="bold">Hello {{ name | default("there", true) }},</mj-text>
      {% if show.owner %}<mj-text>Spring service at {{ dealer.name }}: 20% off labour until the end of April.</mj-text>
      {% else %}<mj-text>Spring is the time for a test drive at {{ dealer.name }}.</mj-text>{% endif %}
      <mj-button background-color="#1976d2" href="https://demo.kehu.dev/book">Book now</mj-button>
    </mj-column></mj-section>
    <mj-section><mj-column><mj-text font-size="12px" color="#888">
      <a href="{{ unsubscribe_url }}">Unsubscribe</a></mj-text></mj-column></mj-section>
  </mj-body>
</mjml>"""


def _user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == email))
    assert user is not None, email
    return user


def _yesterday_at_ten(session: Session, org_id: int) -> datetime:
    org = session.get(Organization, org_id)
    tz = zone(org.timezone if org else "Asia/Shanghai")
    local = (utcnow() - timedelta(days=1)).astimezone(tz).replace(hour=10, minute=0, second=0, microsecond=0)
    return local.astimezone(UTC)


def seed_channels(session: Session, org_id: int) -> int:
    """Returns how many broadcasts were made."""
    system = tenancy_service.system_principal(session, org_id)
    hq = tenancy_service.root_unit(session, org_id)
    control.set_policy(session, system, hq.id, schemas.PolicyIn(
        per_day=schemas.Caps(all=2, sms=1), per_week=schemas.Caps(all=5), quiet_start="21:00", quiet_end="09:00",
        approval_required=True))
    marketer = tenancy_service.principal_for_user(session, _user(session, "marketing1@demo.kehu.dev").id)
    templates.save_content(session, marketer, schemas.ContentItemIn(
        name="footer", body="示范汽车集团 · 全国服务热线 400-820-2026 · 上海市浦东新区世纪大道 100 号"))
    templates.save_content(session, marketer, schemas.ContentItemIn(name="logo", kind="image", body=LOGO))
    owner = segment_schemas.condition_adapter.validate_python(
        {"type": "field", "field": "lifecycle_stage", "op": "in", "value": ["customer", "owner"]})
    spring = templates.create_template(session, marketer, schemas.TemplateCreate(
        name="春季保养节", description="车主看到保养优惠，潜客看到试驾邀请", channel="email", purpose="marketing",
        content=schemas.TemplateContent(
            zh=schemas.Variant(subject="{{ name | default('您', true) }}，春季保养节专属礼遇", html=SERVICE_MAIL),
            en=schemas.Variant(subject="{{ name | default('Hello', true) }}, our spring offer", html=SERVICE_MAIL_EN)),
        blocks={"owner": owner}))
    sms = templates.create_template(session, marketer, schemas.TemplateCreate(
        name="周末试驾邀请", description="短信：周末到店试驾", channel="sms", purpose="marketing",
        content=schemas.TemplateContent(
            zh=schemas.Variant(text="【示范汽车】{{ name | default('您好', true) }}，"
                                    "本周末{{ dealer.name }}新车试驾日，到店即送车模。回复TD退订"),
            provider_template="1873562", params=["{{ name | default('客户', true) }}", "{{ dealer.name }}"])))
    templates.create_template(session, marketer, schemas.TemplateCreate(
        name="保养到期提醒", description="微信服务通知", channel="wechat", purpose="service",
        content=schemas.TemplateContent(
            zh=schemas.Variant(text="{{ name }}，您的车辆保养即将到期"), provider_template="TM00001-maintenance",
            fields={"first": "{{ name | default('尊敬的车主', true) }}，您的爱车该保养了",
                    "keyword1": "{{ vehicle.plate | default(vehicle.model, true) }}",
                    "keyword2": "{{ dealer.name }}", "remark": "点击预约，到店免排队"},
            url="https://demo.kehu.dev/service")))
    with_sms = segment_service.create_segment(session, marketer, segment_schemas.SegmentCreate(
        name="同意短信营销的潜客", description="短信营销授权 + 线索或商机阶段", kind="dynamic",
        condition=segment_schemas.condition_adapter.validate_python({"type": "all", "conditions": [
            {"type": "consent", "channel": "sms", "purpose": "marketing", "op": "granted"},
            {"type": "field", "field": "lifecycle_stage", "op": "in", "value": ["lead", "opportunity"]}]})))
    with_mail = segment_service.create_segment(session, marketer, segment_schemas.SegmentCreate(
        name="有邮箱的客户", description="留了邮箱的客户", kind="dynamic",
        condition=segment_schemas.condition_adapter.validate_python(
            {"type": "field", "field": "email", "op": "is_set"})))
    for segment in (with_sms, with_mail):  # members now, so the broadcasts below find their audience at once
        segment_service.refresh_members(session, segment)
    # The e-mail went out yesterday morning (its messages are due already, so the outbox fills as soon as the
    # server's worker starts, whatever the hour); the SMS goes when the worker starts — or, at night, when the
    # quiet hours end, as its report then says.
    spring_mail = broadcasts.create_broadcast(session, marketer, schemas.BroadcastCreate(
        name="春季保养节 · 全国", template_id=spring.id, segment_id=with_mail.id))
    broadcasts.submit(session, marketer, spring_mail.id)
    yesterday = _yesterday_at_ten(session, org_id)
    spring_mail.status, spring_mail.started_at = "sending", yesterday
    spring_mail.audience = broadcasts.make_messages(session, spring_mail, now=yesterday)
    weekend = broadcasts.create_broadcast(session, marketer, schemas.BroadcastCreate(
        name="周末试驾日 · 短信", template_id=sms.id, segment_id=with_sms.id))
    broadcasts.submit(session, marketer, weekend.id)  # HQ's own: no approval needed, goes when due
    made = 2
    next_week = utcnow() + timedelta(days=7)
    broadcasts.create_broadcast(session, marketer, schemas.BroadcastCreate(
        name="五一车主关怀（草稿）", template_id=spring.id, segment_id=with_mail.id, scheduled_at=next_week))
    made += 1
    # the first region's first dealer's marketer (SH001's): the first one made
    dealer_marketer = session.scalar(select(User).join(BusinessUnit, BusinessUnit.id == User.unit_id).where(
        User.org_id == org_id, User.email.like("%.marketing@demo.kehu.dev")).order_by(User.id))
    if dealer_marketer is not None:
        dealer = tenancy_service.principal_for_user(session, dealer_marketer.id)
        local = broadcasts.create_broadcast(session, dealer, schemas.BroadcastCreate(
            name="本店周末试驾日", template_id=sms.id, segment_id=with_sms.id,
            scheduled_at=utcnow() + timedelta(days=2)))
        broadcasts.submit(session, dealer, local.id)  # waits for HQ: dealers' broadcasts need an approval
        made += 1
    session.flush()
    return made
