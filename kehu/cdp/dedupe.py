"""Probabilistic dedupe (疑似重复客户): a job fits the matching model on the organisation's live profiles
(``kehu.cdp.matching``), proposes the pairs above the review threshold for people to merge or dismiss, and
— when the organisation allows it — merges the pairs above the auto-merge threshold itself.

A pair is visible to whoever may read both customers, and decided by whoever may update both (as a merge by
hand). A dismissed pair is never proposed again; undoing a merge made from a pair dismisses the pair, so the
next run does not merge the two again."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import duckdb
from sqlalchemy import Select, and_, delete, func, or_, select, tuple_, update
from sqlalchemy.orm import Session

from kehu.cdp import fields as custom_fields
from kehu.cdp import identity, identity_rules, matching, schemas
from kehu.cdp.manifest import MERGE_UNDONE
from kehu.cdp.matching import config as matching_config
from kehu.cdp.matching.live import blocking_of
from kehu.cdp.models import DedupeSettings, DuplicateCandidate, Identity, Merge, Profile
from kehu.cdp.service import profile_filters
from kehu.cdp.views import CustomerView
from kehu.core import audit, events, jobs
from kehu.core import settings as kehu_settings
from kehu.core.db import Database, dialect_insert, utcnow
from kehu.core.errors import Conflict, NotFound, invalid
from kehu.core.pagination import OffsetPage, Page, keyset_page, offset_page
from kehu.tenancy.access import Principal, require_row, scope

DEDUPE_JOB = "cdp.dedupe"
OPEN, MERGED, DISMISSED = "open", "merged", "dismissed"
STORE_CHUNK = 5_000
MERGE_BATCH = 100  # automatic merges committed (with the job's progress) this many at a time


# -- settings and runs ---------------------------------------------------------------------------------------
def settings_of(session: Session, org_id: int) -> DedupeSettings:
    found = session.scalar(select(DedupeSettings).where(DedupeSettings.org_id == org_id))
    if found is None:
        found = DedupeSettings(org_id=org_id, review_threshold=0.8, auto_merge_threshold=None, status="idle",
                               figures={}, model={})
        session.add(found)
        session.flush()
    return found


def get_settings(session: Session, principal: Principal) -> DedupeSettings:
    principal.require("profiles", "read")
    return settings_of(session, principal.org_id)


def update_settings(session: Session, principal: Principal, *, review_threshold: float | None,
                    auto_merge_threshold: float | None, clear_auto_merge: bool = False) -> DedupeSettings:
    """New thresholds (probabilities): pairs from ``review_threshold`` up are proposed; from
    ``auto_merge_threshold`` up merged without asking (none: every pair waits for a person)."""
    principal.require_permission("settings.manage")
    found = settings_of(session, principal.org_id)
    review = found.review_threshold if review_threshold is None else review_threshold
    auto = None if clear_auto_merge else (found.auto_merge_threshold if auto_merge_threshold is None
                                          else auto_merge_threshold)
    if not 0.5 <= review < 1:
        raise invalid("review_threshold", "a probability from 0.5 up to (not including) 1", "out_of_range")
    if auto is not None and not review <= auto < 1:
        raise invalid("auto_merge_threshold", "a probability from the review threshold up to (not including) 1",
                      "out_of_range")
    before = {"review_threshold": found.review_threshold, "auto_merge_threshold": found.auto_merge_threshold}
    found.review_threshold, found.auto_merge_threshold = review, auto
    session.flush()
    audit.record(session, principal, action="update", entity="dedupe_settings", entity_id=found.id, before=before,
                 after={"review_threshold": review, "auto_merge_threshold": auto},
                 summary="Dedupe thresholds changed")
    return found


def request_run(session: Session, principal: Principal) -> DedupeSettings:
    """Queue a run (one at a time: asking while one waits or runs gives that one back). The records are read and
    each blocking rule's comparisons counted first: a run that would compare more pairs than
    KEHU_DEDUPE_MAX_PAIRS_PER_RECORD allows raises ``matching.TooManyComparisons`` instead of starting."""
    principal.require_permission("settings.manage")
    found = settings_of(session, principal.org_id)
    if found.status in ("queued", "running") and found.job_id:
        job = session.get(jobs.Job, found.job_id)
        if job is not None and job.status in (jobs.QUEUED, jobs.RUNNING):
            return found
    # Count what the run would compare first: one over the ceiling says so now (TooManyComparisons, 422)
    _, rules = matching.matching_of(session, principal.org_id)
    found.figures = {**found.figures, "plan": matching.check_plan(session, principal.org_id, rules=rules).as_list()}
    job = jobs.enqueue(session, kind=DEDUPE_JOB, org_id=principal.org_id, unit_id=principal.unit_id,
                       created_by_id=principal.user_id, created_by_api_key_id=principal.api_key_id,
                       payload={"org_id": principal.org_id})
    found.status, found.job_id = "queued", job.id
    session.flush()
    return found


# -- matching settings: what is compared, which pairs are (kehu.cdp.matching.config) ---------------------------
def _matching_out(session: Session, org_id: int, stored: dict[str, Any] | None) -> schemas.MatchingOut:
    shown = matching_config.effective(stored)
    fields = matching_config.custom_fields(session, org_id)
    return schemas.MatchingOut(
        is_default=not stored, comparisons=[schemas.ComparisonSetting(**c) for c in shown["comparisons"]],
        rules=[schemas.RuleSetting(**r) for r in shown["rules"]],
        options=schemas.MatchingOptions(
            comparisons=list(matching.COMPARISONS), rules=[rule.name for rule in matching.DEFAULT_RULES],
            rule_fields=list(matching_config.RULE_KEYS),
            custom_fields=[schemas.MatchingFieldOption(
                field=matching_config.ATTRIBUTE + f.key, label_zh=f.label_zh, label_en=f.label_en, type=f.type,
                is_pii=f.is_pii, kinds=matching_config.kinds_for(f)) for f in fields.values()]))


def get_matching(session: Session, principal: Principal) -> schemas.MatchingOut:
    """The organisation's matching settings (the defaults filled in where it chose nothing) and what it may pick."""
    principal.require("profiles", "read")
    return _matching_out(session, principal.org_id, settings_of(session, principal.org_id).matching)


def _proposed(session: Session, org_id: int, data: schemas.MatchingIn) -> dict[str, Any]:
    """Settings as given, checked (ValidationFailed naming every field at fault), kinds filled in."""
    proposed = data.model_dump(mode="json")
    matching_config.checked(proposed, matching_config.custom_fields(session, org_id))
    if proposed["comparisons"] is not None:
        proposed["comparisons"] = [{"field": c["field"], "kind": c["kind"] or matching_config.STANDARD}
                                   for c in proposed["comparisons"]]
    return proposed


def update_matching(session: Session, principal: Principal, *, data: schemas.MatchingIn) -> schemas.MatchingOut:
    """Choose the comparisons and blocking rules of the next runs (a part left null: its defaults; both null:
    back to the defaults). The fitted model stays until the next run fits one for them."""
    principal.require_permission("settings.manage")
    found = settings_of(session, principal.org_id)
    proposed = _proposed(session, principal.org_id, data)
    stored = None if proposed["comparisons"] is None and proposed["rules"] is None else proposed
    before = found.matching
    found.matching = stored
    session.flush()
    audit.record(session, principal, action="update", entity="dedupe_settings", entity_id=found.id,
                 before={"matching": before}, after={"matching": stored}, summary="Matching settings changed")
    return _matching_out(session, principal.org_id, stored)


def check_matching(session: Session, principal: Principal, *,
                   data: schemas.MatchingIn | None = None) -> schemas.MatchingCheckOut:
    """What a run would compare under ``data`` (not saved; None: the saved settings): each blocking rule's pairs
    as a run's plan counts them, and whether the run would stay under the ceiling."""
    principal.require_permission("settings.manage")
    if data is None:
        _, rules = matching.matching_of(session, principal.org_id)
    else:
        _, rules = matching_config.build(_proposed(session, principal.org_id, data),
                                         matching_config.custom_fields(session, principal.org_id))
    try:
        chosen = matching.check_plan(session, principal.org_id, rules=rules)
    except matching.TooManyComparisons as error:  # each rule at its tightest: what the admin should loosen
        counts = error.extra["rules"]
        return schemas.MatchingCheckOut(
            records=error.extra["records"], ceiling=error.extra["ceiling"], pairs=error.extra["pairs"],
            over_ceiling=True, rules=[schemas.RulePlanOut(
                rule=rule.name, keys=[matching_config.public_name(k) for k in rule.variants[-1]],
                pairs=counts[rule.name], tightened=len(rule.variants) > 1) for rule in rules])
    return schemas.MatchingCheckOut(
        records=chosen.records, ceiling=chosen.ceiling, pairs=chosen.pairs, over_ceiling=False,
        rules=[schemas.RulePlanOut(**{**row, "keys": [matching_config.public_name(k) for k in row["keys"]]})
               for row in chosen.as_list()])


@jobs.poller
def enqueue_due_runs(database: Database, limit: int = 10) -> bool:
    """An organisation that has looked for duplicates before gets a new run every ``dedupe_refresh_hours``
    (and one whose run was left waiting on a job that failed for good). The update that queues it checks it
    is still due, so two workers looking at once queue it once."""
    hours = kehu_settings.get_settings().dedupe_refresh_hours
    if hours <= 0:
        return False
    due_before = utcnow() - timedelta(hours=hours)
    dead_jobs = select(jobs.Job.id).where(jobs.Job.status.in_((jobs.FAILED, jobs.CANCELLED)))
    due = or_(and_(DedupeSettings.status.in_(("done", "failed", "too_many")),
                  DedupeSettings.last_run_at < due_before),
              and_(DedupeSettings.status.in_(("queued", "running")), DedupeSettings.job_id.in_(dead_jobs)))
    with database.unit_of_work() as session:
        found = session.execute(select(DedupeSettings.id, DedupeSettings.org_id, DedupeSettings.job_id).where(
            due).order_by(DedupeSettings.last_run_at).limit(limit)).all()
        queued = 0
        for settings_id, org_id, job_id in found:
            job = jobs.enqueue(session, kind=DEDUPE_JOB, org_id=org_id, payload={"org_id": org_id})
            claimed = session.execute(update(DedupeSettings).where(
                DedupeSettings.id == settings_id,
                DedupeSettings.job_id.is_(None) if job_id is None else DedupeSettings.job_id == job_id, due,
            ).values(status="queued", job_id=job.id).execution_options(synchronize_session=False)).rowcount
            if claimed:
                queued += 1
            else:  # another worker queued it first
                session.delete(job)
        return queued > 0


def store_candidates(session: Session, org_id: int, pairs: list[tuple[int, int, float, dict[str, int]]],
                     *, found_at: datetime, replace: bool = True) -> dict[str, int]:
    """Put this run's pairs in the queue: new pairs open, open pairs get their new figures, decided pairs
    stay as they were; open pairs this run no longer finds leave the queue (``replace``: a full run; live matching
    of a few customers keeps the others' pairs). Returns the counts."""
    table = DuplicateCandidate.__table__
    insert = dialect_insert(session)(table)
    statement = insert.on_conflict_do_update(
        index_elements=["org_id", "profile_a_id", "profile_b_id"],
        set_={"probability": insert.excluded.probability, "levels": insert.excluded.levels,
              "found_at": insert.excluded.found_at},
        where=table.c.status == OPEN)
    for start in range(0, len(pairs), STORE_CHUNK):
        session.execute(statement, [
            {"org_id": org_id, "profile_a_id": a, "profile_b_id": b, "probability": round(p, 6), "levels": levels,
             "status": OPEN, "found_at": found_at}
            for a, b, p, levels in pairs[start:start + STORE_CHUNK]])
    if not replace:
        return {}
    gone = session.execute(delete(DuplicateCandidate).where(
        DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == OPEN,
        DuplicateCandidate.found_at < found_at)).rowcount or 0
    return {"open": _open_count(session, org_id), "no_longer_found": gone}


def _open_count(session: Session, org_id: int) -> int:
    return session.scalar(select(func.count()).select_from(DuplicateCandidate).where(
        DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == OPEN)) or 0


def _live(session: Session, profile_id: int) -> Profile | None:
    profile = session.get(Profile, profile_id)
    hops = 0
    while profile is not None and profile.merged_into_id is not None and hops < 50:
        profile, hops = session.get(Profile, profile.merged_into_id), hops + 1
    return profile


def _merge_pair(session: Session, candidate: DuplicateCandidate, first: Profile, second: Profile, *,
                winner_id: int | None, actor: Any, detail: str, choices: dict[str, str] | None = None) -> Merge:
    """Merge the pair's two (live, different) customers; the older record survives unless ``winner_id`` says
    otherwise. A person's merge (``choices`` given, even empty) keeps the surviving record's values."""
    winner, loser = (first, second) if first.id < second.id else (second, first)
    if winner_id is not None and winner_id == loser.id:
        winner, loser = loser, winner
    merge = identity.merge_profiles(session, winner, loser, reason="dedupe", detail=detail, actor=actor,
                                    kept=choices is not None, choices=choices)
    candidate.status, candidate.merge_id, candidate.decided_at = MERGED, merge.id, utcnow()
    return merge


def _within_limits(session: Session, rules: identity_rules.Rules, first: int, second: int) -> bool:
    """Would one customer holding both records' identities stay within One ID's limits per kind (one app user
    id, three mobiles…)? An automatic merge never breaks them; a person may still merge such a pair."""
    held = Counter(session.execute(select(Identity.kind).where(Identity.profile_id.in_((first, second)))).scalars())
    return all(count <= rules.limit(kind) for kind, count in held.items())


def _merge_batch(session: Session, batch: list[DuplicateCandidate], rules: identity_rules.Rules, *, actor: Any,
                 held_back: set[int]) -> int:
    """Merge the open pairs of ``batch`` automatically (those beyond One ID's limits are added to ``held_back``,
    left for a person); how many merges were made."""
    merged = 0
    for candidate in batch:
        first, second = _live(session, candidate.profile_a_id), _live(session, candidate.profile_b_id)
        if first is None or second is None or first.id == second.id:  # one customer already
            candidate.status, candidate.decided_at = MERGED, utcnow()
        elif not _within_limits(session, rules, first.id, second.id):
            held_back.add(candidate.id)
        else:
            _merge_pair(session, candidate, first, second, winner_id=None, actor=actor,
                        detail=f"automatic: probability {candidate.probability:.3f}")
            merged += 1
    return merged


def merge_found(session: Session, org_id: int, pairs: list[tuple[int, int]], *, actor: Any) -> int:
    """Live matching's automatic merges: the open pairs among ``pairs`` (lower id, higher id) merged, most
    probable first, as a run merges those above the auto-merge threshold; how many were merged."""
    batch = list(session.scalars(select(DuplicateCandidate).where(
        DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == OPEN,
        tuple_(DuplicateCandidate.profile_a_id, DuplicateCandidate.profile_b_id).in_(pairs)).order_by(
        DuplicateCandidate.probability.desc(), DuplicateCandidate.id)))
    return _merge_batch(session, batch, identity_rules.rules_for(session, org_id), actor=actor, held_back=set())


def _find(session: Session, org_id: int, found: DedupeSettings, started: datetime) -> dict[str, Any]:
    """Fit and score (``matching``), queue the pairs, keep the model with its plan, and make the stored keys of
    live matching those of this run's records (``dedupe_live``): the customers changed while it ran are then
    matched again under the new model. Returns the figures."""
    from kehu.cdp import dedupe_live

    clock = time.perf_counter()
    comparisons, rules = matching.matching_of(session, org_id)  # the organisation's settings
    con = duckdb.connect()
    try:
        records = matching.load_records(session, org_id, con,
                                        attributes=matching_config.attributes_of(comparisons, rules))
        read = time.perf_counter() - clock
        result = matching.match_records(con, records, threshold=found.review_threshold, comparisons=comparisons,
                                        rules=rules)
        result.seconds = {"read": read, **result.seconds}
        # the settings' row first (as live matching takes it): then the queue and the keys
        session.execute(select(DedupeSettings.id).where(DedupeSettings.id == found.id).with_for_update())
        counts = store_candidates(session, org_id, result.pairs, found_at=started)
        assert result.plan is not None
        blocking = blocking_of(result.plan.chosen)
        found.model = {**result.model.to_dict(), "blocking": [[name, list(keys)] for name, keys in blocking],
                       "tf_totals": dedupe_live.tf_totals(con, comparisons)}
        mark = time.perf_counter()
        keys = dedupe_live.rebuild_keys(session, org_id, con, blocking, comparisons)
        result.seconds["keys"] = time.perf_counter() - mark
    finally:
        con.close()
    changed = set(session.scalars(select(Profile.id).where(Profile.org_id == org_id, Profile.updated_at >= started)))
    if changed:
        dedupe_live.follow(session, org_id, changed, force=True)
    result.seconds["total"] = time.perf_counter() - clock
    return {"records": result.model.records, "candidate_pairs": result.candidate_pairs,
            "proposed": len(result.pairs), **counts, **keys, "merged": 0,
            "seconds": round(time.perf_counter() - clock, 2), "blocking": result.blocking,
            "steps": {k: round(v, 2) for k, v in result.seconds.items()}}


def run(session: Session, org_id: int, *, ctx: jobs.JobContext | None = None) -> dict[str, Any]:
    """The job's work: fit, score, queue the pairs; merge those above the auto-merge threshold. A run that
    dies after queueing resumes at the merging (each batch of merges commits with the job's checkpoint)."""
    found = settings_of(session, org_id)
    checkpoint = dict(ctx.checkpoint) if ctx else {}
    if checkpoint.get("stage") != "merging":
        found.status = "running"
        if ctx:
            ctx.save(progress=5, message="reading customers")
        started = utcnow()
        clock = time.perf_counter()
        try:
            found.figures = _find(session, org_id, found, started)
        except matching.TooManyComparisons as error:  # the data grew past the ceiling since the run was asked for
            found.status, found.last_run_at = "too_many", started
            found.figures = {"too_many": error.extra, "seconds": round(time.perf_counter() - clock, 2)}
            session.flush()
            return dict(found.figures)
        found.last_run_at = started
        checkpoint = {"stage": "merging"}
        if ctx:
            ctx.save(progress=60, message=f"{found.figures['proposed']} pairs proposed", checkpoint=checkpoint)
    merged = int(found.figures.get("merged", 0))
    if found.auto_merge_threshold is not None:
        actor = ctx.principal if ctx else None
        to_merge = select(DuplicateCandidate).where(
            DuplicateCandidate.org_id == org_id, DuplicateCandidate.status == OPEN,
            DuplicateCandidate.probability >= found.auto_merge_threshold).order_by(
            DuplicateCandidate.probability.desc(), DuplicateCandidate.id)
        total = session.scalar(select(func.count()).select_from(to_merge.subquery())) or 0
        rules = identity_rules.rules_for(session, org_id)
        held_back = set(checkpoint.get("held_back", []))  # beyond One ID's limits: left for a person
        done = 0
        while batch := list(session.scalars(to_merge.where(DuplicateCandidate.id.not_in(held_back or [0]))
                                            .limit(MERGE_BATCH))):
            merged += _merge_batch(session, batch, rules, actor=actor, held_back=held_back)
            done += len(batch)
            checkpoint = {**checkpoint, "held_back": sorted(held_back)}
            found.figures = {**found.figures, "merged": merged, "held_back": len(held_back)}
            if ctx:
                ctx.save(progress=60 + 40 * done // max(total, 1), message=f"{merged} merged",
                         checkpoint=checkpoint)
            else:
                session.flush()
        found.figures = {**found.figures, "open": _open_count(session, org_id)}
    found.status = "done"
    session.flush()
    return dict(found.figures)


@jobs.job_handler(DEDUPE_JOB)
def _run_job(ctx: jobs.JobContext) -> dict[str, Any]:
    org_id = ctx.job.payload["org_id"]
    try:
        figures = run(ctx.session, org_id, ctx=ctx)
    except Exception:
        ctx.session.rollback()
        with ctx.worker.database.unit_of_work() as session:
            session.execute(update(DedupeSettings).where(DedupeSettings.org_id == org_id).values(status="failed"))
        raise
    audit.record(ctx.session, ctx.principal, org_id=org_id, action="compute", entity="dedupe_settings",
                 after=figures, summary=f"Dedupe run: {figures.get('proposed', 0)} pairs proposed, "
                                        f"{figures.get('merged', 0)} merged")
    return figures


@events.subscribe("cdp.review_again_after_unmerge", [MERGE_UNDONE], within=True)
def _review_again_after_unmerge(session: Session, undone: list[events.DomainEvent]) -> None:
    """Undoing a merge made from a pair takes back a decision, it does not make the opposite one: the pair goes
    back to the queue to be reviewed (dismiss it there if the two are different people). It vanished from every
    tab when undoing dismissed it silently."""
    for event in undone:
        if event.payload.get("reason") == "dedupe":
            session.execute(update(DuplicateCandidate).where(DuplicateCandidate.merge_id == event.entity_id).values(
                status=OPEN, decided_at=None, decided_by_id=None, merge_id=None))


# -- the review queue ----------------------------------------------------------------------------------------
def _readable(principal: Principal, *, live: bool) -> Select[Any]:
    """The organisation's pairs both of whose customers the principal may read (``live``: both unmerged)."""
    principal.require("profiles", "read")
    readable = select(Profile.id).where(scope(principal, Profile))
    if live:
        readable = readable.where(Profile.merged_into_id.is_(None))
    return select(DuplicateCandidate).where(
        DuplicateCandidate.org_id == principal.org_id, DuplicateCandidate.profile_a_id.in_(readable),
        DuplicateCandidate.profile_b_id.in_(readable))


def _filtered(session: Session, principal: Principal, *, status: str, min_probability: float | None,
              unit_id: int | None, profile_id: int | None = None) -> Select[Any]:
    """Pairs both of whose customers the principal may read (open pairs: both still live)."""
    if status not in (OPEN, MERGED, DISMISSED):
        raise invalid("status", "one of open, merged, dismissed", "not_option")
    stmt = _readable(principal, live=status == OPEN).where(DuplicateCandidate.status == status)
    if min_probability is not None:
        stmt = stmt.where(DuplicateCandidate.probability >= min_probability)
    if unit_id is not None:  # either customer held in that unit or under it
        in_unit = select(Profile.id).where(*profile_filters(principal, None, unit_id, None))
        stmt = stmt.where(or_(DuplicateCandidate.profile_a_id.in_(in_unit),
                              DuplicateCandidate.profile_b_id.in_(in_unit)))
    if profile_id is not None:
        stmt = stmt.where(or_(DuplicateCandidate.profile_a_id == profile_id,
                              DuplicateCandidate.profile_b_id == profile_id))
    return stmt


def list_candidates(session: Session, principal: Principal, *, status: str = OPEN,
                    min_probability: float | None = None, unit_id: int | None = None, limit: int = 50,
                    cursor: str | None = None) -> Page[DuplicateCandidate]:
    stmt = _filtered(session, principal, status=status, min_probability=min_probability, unit_id=unit_id)
    return keyset_page(session, stmt, id_column=DuplicateCandidate.id, sort_column=DuplicateCandidate.probability,
                       limit=limit, cursor=cursor)


SORTS = {"probability": DuplicateCandidate.probability, "found_at": DuplicateCandidate.found_at,
         "decided_at": DuplicateCandidate.decided_at}


def page_candidates(session: Session, principal: Principal, *, status: str = OPEN,
                    min_probability: float | None = None, unit_id: int | None = None, sort: str = "probability",
                    descending: bool = True, page: int = 1, per_page: int = 20) -> OffsetPage[DuplicateCandidate]:
    """A numbered page for the review table."""
    stmt = _filtered(session, principal, status=status, min_probability=min_probability, unit_id=unit_id)
    column = SORTS.get(sort, DuplicateCandidate.probability)
    order = [column.desc() if descending else column.asc(), DuplicateCandidate.id.desc()]
    return offset_page(session, stmt, order_by=order, page=page, per_page=per_page)


def candidates_of(session: Session, principal: Principal, profile_id: int) -> list[DuplicateCandidate]:
    """The open pairs a customer is in (for the Customer 360), most probable first."""
    stmt = _filtered(session, principal, status=OPEN, min_probability=None, unit_id=None, profile_id=profile_id)
    return list(session.scalars(stmt.order_by(DuplicateCandidate.probability.desc()).limit(20)))


def get_candidate(session: Session, principal: Principal, candidate_id: int) -> DuplicateCandidate:
    found = session.scalar(_readable(principal, live=False).where(DuplicateCandidate.id == candidate_id))
    if found is None:
        raise NotFound(f"No duplicate pair with id {candidate_id}.")
    return found


def profiles_of(session: Session, candidates: list[DuplicateCandidate]) -> dict[int, Profile]:
    ids = {c.profile_a_id for c in candidates} | {c.profile_b_id for c in candidates}
    return {p.id: p for p in session.scalars(select(Profile).where(Profile.id.in_(ids)))} if ids else {}


def _decidable(session: Session, principal: Principal, candidate_id: int) -> tuple[DuplicateCandidate,
                                                                                     list[Profile]]:
    candidate = get_candidate(session, principal, candidate_id)
    if candidate.status != OPEN:
        raise Conflict(f"This pair was already decided ({candidate.status}).")
    people = [session.get(Profile, candidate.profile_a_id), session.get(Profile, candidate.profile_b_id)]
    for profile in people:
        if profile is None or profile.merged_into_id is not None:
            raise Conflict("One of these customers has been merged since; the pair is out of date.")
        require_row(session, principal, "profiles", "update", unit_id=profile.unit_id, owner_id=profile.owner_id)
    return candidate, people


def checked_choices(session: Session, org_id: int, fields: dict[str, str] | None) -> None:
    """A person's picks name fields customers have (standard or the organisation's own), each "winner" or
    "loser"."""
    known = {*identity.PROFILE_FIELDS, *custom_fields.definitions(session, org_id)}
    for key, side in (fields or {}).items():
        if key not in known:
            raise invalid(f"fields.{key}", "not a field of customers", "unknown")
        if side not in ("winner", "loser"):
            raise invalid(f"fields.{key}", "winner or loser", "not_option")


def merge_candidate(session: Session, principal: Principal, candidate_id: int, *,
                    winner_id: int | None = None, fields: dict[str, str] | None = None) -> Merge:
    """Merge the pair's two customers; ``winner_id`` (one of the two) is the record that stays, with its values
    unless ``fields`` picks the other record's ({field: "winner"|"loser"}); what it lacks it takes."""
    candidate, people = _decidable(session, principal, candidate_id)
    if winner_id is not None and winner_id not in {p.id for p in people}:
        raise invalid("winner_id", "one of the pair's two customers", "not_in_pair")
    checked_choices(session, principal.org_id, fields)
    merge = _merge_pair(session, candidate, *people, winner_id=winner_id, actor=principal, choices=fields or {},
                        detail=f"duplicate pair {candidate.id} (probability {candidate.probability:.3f}), "
                               f"confirmed by {principal.display}")
    candidate.decided_by_id = principal.user_id
    session.flush()
    return merge


def dismiss_candidate(session: Session, principal: Principal, candidate_id: int) -> DuplicateCandidate:
    """Not the same person: the pair leaves the queue and is never proposed again."""
    candidate, _ = _decidable(session, principal, candidate_id)
    candidate.status, candidate.decided_at, candidate.decided_by_id = DISMISSED, utcnow(), principal.user_id
    session.flush()
    audit.record(session, principal, action="dismiss", entity="duplicate_candidates", entity_id=candidate.id,
                 after={"profiles": [candidate.profile_a_id, candidate.profile_b_id]},
                 summary=f"Customers {candidate.profile_a_id} and {candidate.profile_b_id} are not the same person")
    return candidate


def evidence(model: dict[str, Any], levels: dict[str, Any]) -> list[dict[str, Any]]:
    """Each comparison's level with the model's weight for it (log2 of how much likelier among matches),
    strongest first; unknown levels are left out (they weigh nothing)."""
    found = []
    for comparison, level in levels.items():
        if int(level) < 0:
            continue
        weight = model.get("levels", {}).get(comparison, {}).get(str(level), {}).get("weight")
        # a custom field's comparison as settings name it (attributes.<key>): its level, never its values
        found.append({"comparison": matching_config.public_name(comparison), "level": int(level), "weight": weight})
    return sorted(found, key=lambda e: -(e["weight"] or 0))


def candidates_out(session: Session, principal: Principal,
                   candidates: list[DuplicateCandidate]) -> list[schemas.DuplicateOut]:
    """The pairs as the principal may see them: both customers (PII masked without pii.read), the evidence."""
    people = profiles_of(session, candidates)
    model = settings_of(session, principal.org_id).model if candidates else {}
    view = CustomerView.of(session, principal)
    return [schemas.DuplicateOut(
        id=c.id, probability=c.probability, status=c.status, found_at=c.found_at, decided_at=c.decided_at,
        decided_by_id=c.decided_by_id, merge_id=c.merge_id,
        evidence=[schemas.EvidenceOut(**e) for e in evidence(model, c.levels)],
        customers=[view.profile(people[pid]) for pid in (c.profile_a_id, c.profile_b_id) if pid in people])
        for c in candidates]
