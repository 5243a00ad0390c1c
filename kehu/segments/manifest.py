"""Segments (人群), tags, lists and RFM. What they tell other domains: a refresh (or a person's pick) changed who
is in a segment. Who entered and who left is the stream of ``segment_changes`` rows (``SegmentChange``, read by
transaction like the customers' events: ``events.subscribe(..., stream=SegmentChange, wanted=...)``); the domain
event says that it happened and how many, for consumers that react to the segment rather than to each person."""

from __future__ import annotations

from kehu.core import events
from kehu.core.domains import Domain, NavEntry

MEMBERS_CHANGED = events.declare(
    "segments.members_changed",
    "Customers entered or left a segment: entity_id is the segment; payload: refresh, entered, left (counts). "
    "The people are the segment_changes rows of that refresh.")

DOMAIN = Domain(
    name="segments",
    models="kehu.segments.models",
    services=("kehu.segments.service", "kehu.segments.rfm"),
    events=(MEMBERS_CHANGED,),
    entities=("segments",),
    routers=("kehu.segments.api:router",),
    body_limits=(("/api/v1/segments/", "kehu.segments.lists:UPLOAD_REQUEST_BYTES"),
                 ("/api/v1/tags/", "kehu.segments.lists:UPLOAD_REQUEST_BYTES")),
    pages=("kehu.segments.ui:register",),
    navigation=(NavEntry("nav.segments", "filter_alt", "/segments", "segments", "marketing", 10),),
    customer_panels=("kehu.segments.ui:customer_segments",),
    timeline_streams=("kehu.segments.service:TIMELINE_STREAM",),
    export_filters=(("segment_id", "kehu.segments.service:members_filter"),),
    selection_actions=("kehu.segments.ui:picked_customers_actions",),
)
