"""Tags (标签) and tag groups: on customers by hand, or by rule (a tag bound to a segment follows its members)."""

from __future__ import annotations

from sqlalchemy import delete, exists, func, literal, select
from sqlalchemy.orm import Session

from kehu.cdp import service as cdp_service
from kehu.cdp.models import Profile
from kehu.core import audit
from kehu.core.db import dialect_insert, utcnow
from kehu.core.errors import Conflict, NotFound
from kehu.segments import schemas
from kehu.segments.models import ProfileTag, Segment, SegmentMember, Tag, TagGroup
from kehu.tenancy.access import Principal, Ref, check_references, scope


def list_groups(session: Session, principal: Principal) -> list[TagGroup]:
    principal.require("segments", "read")
    return list(session.scalars(select(TagGroup).where(TagGroup.org_id == principal.org_id).order_by(TagGroup.name)))


def create_group(session: Session, principal: Principal, name: str) -> TagGroup:
    principal.require("segments", "create")
    if session.scalar(select(TagGroup.id).where(TagGroup.org_id == principal.org_id, TagGroup.name == name)):
        raise Conflict(f"A tag group named {name!r} exists already.")
    group = TagGroup(org_id=principal.org_id, name=name)
    session.add(group)
    session.flush()
    audit.record(session, principal, action="create", entity="tag_groups", entity_id=group.id, after={"name": name},
                 summary=f"Tag group {name} created")
    return group


def list_tags(session: Session, principal: Principal, *, tag_id: int | None = None) -> list[tuple[Tag, int]]:
    """Every tag of the organisation (or the one ``tag_id``) with how many of the reader's customers carry it."""
    principal.require("segments", "read")
    carried = select(ProfileTag.tag_id, func.count().label("n")).join(
        Profile, Profile.id == ProfileTag.profile_id).where(
        ProfileTag.org_id == principal.org_id, scope(principal, Profile),
        *([ProfileTag.tag_id == tag_id] if tag_id else [])).group_by(ProfileTag.tag_id).subquery()
    rows = session.execute(select(Tag, func.coalesce(carried.c.n, 0)).outerjoin(carried, carried.c.tag_id == Tag.id)
                           .where(scope(principal, Tag), *([Tag.id == tag_id] if tag_id else []))
                           .order_by(Tag.group_id, Tag.name))
    return [(tag, count) for tag, count in rows]


def all_tags(session: Session, principal: Principal) -> list[Tag]:
    """Every tag of the organisation by name, without counting who carries them (pickers)."""
    principal.require("segments", "read")
    return list(session.scalars(select(Tag).where(scope(principal, Tag)).order_by(Tag.name)))


def manual_tags(session: Session, principal: Principal) -> list[Tag]:
    """The tags people put on by hand (those a rule puts on are the rule's), by name."""
    principal.require("segments", "read")
    return list(session.scalars(select(Tag).where(scope(principal, Tag), Tag.segment_id.is_(None), Tag.rule.is_(None))
                                .order_by(Tag.name)))


def get_tag(session: Session, principal: Principal, tag_id: int) -> Tag:
    principal.require("segments", "read")
    tag = session.scalar(select(Tag).where(Tag.id == tag_id, scope(principal, Tag)))
    if tag is None:
        raise NotFound(f"No tag with id {tag_id}.")
    return tag


def create_tag(session: Session, principal: Principal, data: schemas.TagCreate) -> Tag:
    principal.require("segments", "create")
    if session.scalar(select(Tag.id).where(Tag.org_id == principal.org_id, Tag.name == data.name)):
        raise Conflict(f"A tag named {data.name!r} exists already.")
    check_references(session, principal, {"group_id": Ref(TagGroup, data.group_id, None),
                                          "segment_id": Ref(Segment, data.segment_id)})
    tag = Tag(org_id=principal.org_id, group_id=data.group_id, name=data.name, colour=data.colour,
              segment_id=data.segment_id, created_by_id=principal.user_id)
    session.add(tag)
    session.flush()
    audit.record(session, principal, action="create", entity="tags", entity_id=tag.id,
                 after={"name": tag.name, "segment_id": tag.segment_id}, summary=f"Tag {tag.name} created")
    if tag.segment_id is not None:
        sync_rule_tags(session, tag.segment_id)
    return tag


def delete_tag(session: Session, principal: Principal, tag_id: int) -> None:
    tag = get_tag(session, principal, tag_id)
    principal.require("segments", "delete")
    session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id))
    audit.record(session, principal, action="delete", entity="tags", entity_id=tag.id, before={"name": tag.name},
                 summary=f"Tag {tag.name} deleted")
    session.delete(tag)
    session.flush()


def tag_customers(session: Session, principal: Principal, tag_id: int, profile_ids: list[int], *,
                  remove: bool = False) -> int:
    """Put a tag on (or take it off) customers the principal may update; returns how many changed."""
    tag = get_tag(session, principal, tag_id)
    if tag.segment_id is not None or tag.rule is not None:
        raise Conflict("This tag is put on by a rule (a segment, RFM); change the rule instead.")
    wanted = sorted(set(profile_ids))
    check_references(session, principal, {"profile_ids": Ref(Profile, wanted, "update",
                                                              Profile.merged_into_id.is_(None))})
    if remove:
        changed = session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id,
                                                           ProfileTag.profile_id.in_(wanted))).rowcount
    else:
        now = utcnow()
        statement = dialect_insert(session)(ProfileTag).on_conflict_do_nothing().returning(ProfileTag.profile_id)
        # RETURNING counts the rows written (those already tagged return nothing), on both databases
        changed = len(session.execute(statement, [
            {"tag_id": tag.id, "profile_id": p, "org_id": tag.org_id, "origin": "manual",
             "added_by_id": principal.user_id, "added_at": now} for p in wanted]).all())
    audit.record(session, principal, action="untag" if remove else "tag", entity="tags", entity_id=tag.id,
                 after={"profile_ids": wanted[:100], "count": len(wanted)},
                 summary=f"Tag {tag.name} {'removed from' if remove else 'put on'} {len(wanted)} customer(s)")
    return changed


def tags_of(session: Session, principal: Principal, profile_id: int) -> list[tuple[Tag, ProfileTag]]:
    profile = cdp_service.get_profile(session, principal, profile_id)
    if not principal.can("segments", "read"):
        return []
    return [(tag, mark) for tag, mark in session.execute(
        select(Tag, ProfileTag).join(ProfileTag, ProfileTag.tag_id == Tag.id).where(
            ProfileTag.profile_id == profile.id, scope(principal, Tag)).order_by(Tag.name))]


def follow_rule_tags(session: Session, segment_id: int, *, entering: list[int], leaving: list[int]) -> None:
    """Tags bound to the segment follow a few customers who entered or left it (``sync_rule_tags`` for all)."""
    now = utcnow()
    for tag in session.scalars(select(Tag).where(Tag.segment_id == segment_id)):
        if entering:
            session.execute(dialect_insert(session)(ProfileTag).values([
                {"tag_id": tag.id, "profile_id": i, "org_id": tag.org_id, "origin": "rule", "added_at": now}
                for i in entering]).on_conflict_do_nothing())
        if leaving:
            session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id,
                                                     ProfileTag.profile_id.in_(leaving)))


def sync_rule_tags(session: Session, segment_id: int) -> None:
    """Tags bound to the segment are on exactly its members: two set statements per tag."""
    now = utcnow()
    for tag in session.scalars(select(Tag).where(Tag.segment_id == segment_id)):
        members = select(literal(tag.id), SegmentMember.profile_id, literal(tag.org_id), literal("rule"),
                         literal(now, type_=ProfileTag.added_at.type)).where(SegmentMember.segment_id == segment_id)
        session.execute(dialect_insert(session)(ProfileTag).from_select(
            ["tag_id", "profile_id", "org_id", "origin", "added_at"], members).on_conflict_do_nothing())
        session.execute(delete(ProfileTag).where(ProfileTag.tag_id == tag.id, ~exists().where(
            SegmentMember.segment_id == segment_id, SegmentMember.profile_id == ProfileTag.profile_id)))
