"""Templates: the sandbox refuses what could reach Python's internals or run away, every fault is named by field
and line, versions are kept, the preview personalises for a customer of the reader's scope (masked where the
reader may not see personal data), dynamic blocks follow the segment language, and the language follows the
customer."""

from __future__ import annotations

import pytest

from kehu.channels import rendering, schemas, templates
from kehu.core.errors import ValidationFailed
from tests.channels.conftest import email_template


@pytest.mark.parametrize("source", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__class__ }}",
    "{{ snippet.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ range.__init__.__globals__['os'] }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ fields.update({'x': 1}) }}",  # nothing is changed in place
])
def test_the_sandbox_refuses_python_internals(source):
    with pytest.raises(rendering.RenderError):
        rendering.render(source, {"name": "张伟", "fields": {}, "snippet": lambda n: n})


@pytest.mark.parametrize("source", [
    "{{ 'x' * 1000000000 }}",
    "{{ [1] * 1000000000 }}",
    "{{ 10 ** 100000 }}",
    "{% for i in range(100000000) %}{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% for i in range(1000) %}{{ 'y' * 1000 }}{% endfor %}",
])
def test_rendering_is_bounded_in_size_and_time(source):
    with pytest.raises(rendering.RenderError):
        rendering.render(source, {})


def test_fallbacks_filters_and_missing_values():
    context = {"name": None, "order": {"total": 255000, "date": None}, "vehicle": {}}
    assert rendering.render('{{ name | default("车主", true) }}，{{ order.total | money }}', context) == \
        "车主，¥255,000.00"
    assert rendering.render("{{ vehicle.model }}|{{ nobody.knows }}", context) == "|"
    assert rendering.render("{{ '<b>' }}", {}, html=True) == "&lt;b&gt;"  # customer data is escaped in HTML
    # a customer without a name: the fallback as written (no `true` needed), and never the word "None"
    assert rendering.render('{{ name | default("车主") }}，您好', context) == "车主，您好"
    assert rendering.render("{{ name }}|{{ order.date }}|{{ name | d('客户') }}", context, html=True) == "||客户"


def test_every_fault_is_named_with_its_field_and_line(session, audience):
    hq = audience.principal(session, audience.hq_marketer)
    with pytest.raises(ValidationFailed) as failed:
        templates.create_template(session, hq, schemas.TemplateCreate(
            name="坏模板", channel="email", content=schemas.TemplateContent(
                zh=schemas.Variant(subject="{{ name ", html="<p>ok</p>\n{% if %}"),
                en=schemas.Variant(subject="Hi", text="{{ name }}")),
            blocks={"owners": {"type": "field", "field": "no_such_field", "op": "eq", "value": 1}}))
    fields = {e.field: e for e in failed.value.errors}
    assert set(fields) >= {"content.zh.subject", "content.zh.html", "blocks.owners.field"}
    assert "line 2" in fields["content.zh.html"].message


def test_a_change_is_a_new_version_and_the_old_one_stays(session, audience):
    hq = audience.principal(session, audience.hq_marketer)
    template = email_template(session, hq)
    templates.update_template(session, hq, template.id, schemas.TemplateUpdate(
        content=schemas.TemplateContent(zh=schemas.Variant(subject="新标题", text="正文")), note="换标题"))
    assert template.version == 2
    history = templates.versions(session, hq, template.id)
    assert [v.version for v in history] == [2, 1] and history[0].note == "换标题"
    assert templates.get_version(session, hq, template.id, 1).content["zh"]["subject"] == "{{ name }}，春季保养优惠"
    templates.update_template(session, hq, template.id, schemas.TemplateUpdate(name="改名"))
    assert template.version == 2  # a new name is no new content


def test_preview_personalises_masks_and_follows_the_customers_language(session, audience):
    hq = audience.principal(session, audience.hq_marketer)  # HQ marketing reads customers without pii.read
    template = templates.create_template(session, hq, schemas.TemplateCreate(
        name="双语", channel="sms", content=schemas.TemplateContent(
            zh=schemas.Variant(text="【示范汽车】{{ name }}您好，您的手机{{ mobile }}"
                                    "{% if show.owner %}，保养八折{% endif %}"),
            en=schemas.Variant(text="Hello {{ name }}")),
        blocks={"owner": {"type": "field", "field": "lifecycle_stage", "op": "eq", "value": "owner"}}))
    zhang = audience.customers["zhang"]
    rendered = templates.preview(session, hq, template.id, schemas.TemplatePreviewRequest(profile_id=zhang.id))
    assert rendered.text.startswith("【示范汽车】张伟您好，您的手机+86138****0001")  # masked for this reader
    assert "保养八折" not in rendered.text
    assert rendered.sms_parts == 1 and rendered.sms_length == len(rendered.text)
    zhang.lifecycle_stage = "owner"
    zhang.attributes = {"language": "en-GB"}
    session.flush()
    assert templates.preview(session, hq, template.id, schemas.TemplatePreviewRequest(profile_id=zhang.id)).text == \
        "Hello 张伟"
    zh = templates.preview(session, hq, template.id, schemas.TemplatePreviewRequest(profile_id=zhang.id, locale="zh"))
    assert "保养八折" in zh.text


def test_a_dealer_previews_only_its_own_customers(session, audience):
    a = audience.principal(session, audience.a_marketer)
    template = email_template(session, a, name="A店模板")
    with pytest.raises(ValidationFailed) as refused:
        templates.preview(session, a, template.id,
                          schemas.TemplatePreviewRequest(profile_id=audience.customers["wang"].id))
    assert refused.value.errors[0].field == "profile_id"
    mine = templates.preview(session, a, template.id, schemas.TemplatePreviewRequest())
    assert mine.profile_id in {audience.customers[k].id for k in ("zhang", "li", "zhao")}


def test_sms_parts_as_carriers_bill_them():
    assert templates.sms_parts("") == (0, 0)
    assert templates.sms_parts("好" * 70) == (70, 1)
    assert templates.sms_parts("好" * 71) == (71, 2)
    assert templates.sms_parts("好" * 134) == (134, 2)
    assert templates.sms_parts("好" * 135) == (135, 3)
    assert templates.sms_parts("a" * 160) == (160, 1)
    assert templates.sms_parts("a" * 161) == (161, 2)


def test_snippets_from_the_library(session, audience):
    hq = audience.principal(session, audience.hq_marketer)
    templates.save_content(session, hq, schemas.ContentItemIn(name="footer", body="<p>示范汽车 · 退订请回复TD</p>"))
    template = email_template(session, hq, name="带页脚", html="<p>{{ name }}</p>{{ snippet('footer') }}")
    out = templates.preview(session, hq, template.id, schemas.TemplatePreviewRequest(
        profile_id=audience.customers["zhang"].id))
    assert "<p>示范汽车 · 退订请回复TD</p>" in out.html  # the library's HTML is not escaped, the customer's is
