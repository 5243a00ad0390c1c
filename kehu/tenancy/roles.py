"""The roles every new organisation starts with (editable afterwards, except the administrator)."""

from __future__ import annotations

import functools

from kehu.tenancy.access import OWN, PRIVILEGES, UNIT, UNIT_TREE, entities, permissions

ORG = "org"
BUSINESS = ("profiles", "accounts", "orders", "leads", "opportunities", "activities", "cases", "loyalty")
MARKETING = ("segments", "journeys", "messages")


def grant(entities: tuple[str, ...] | list[str], privileges: tuple[str, ...], depth: str) -> dict[str, str]:
    return {f"{e}.{p}": depth for e in entities for p in privileges}


def everything(depth: str) -> dict[str, str]:
    return grant(entities(), PRIVILEGES, depth)


READ = ("read",)
WORK = ("read", "create", "update")
MANAGE = ("read", "create", "update", "delete", "assign", "share", "export")

@functools.cache
def system_roles() -> dict[str, dict[str, object]]:
    """The built-in roles, made on first use: the administrator's grants every entity the domains declare."""
    return {
        "org_admin": {
            "zh": "系统管理员", "en": "Administrator",
            "description": "Full access to everything in the organisation.",
            "privileges": {**everything(ORG), **{p: ORG for p in permissions()}},
        },
        "hq_marketing": {
            "zh": "总部市场", "en": "HQ marketing",
            "description": "Segments, journeys and messages for the whole group; customers readable, PII masked.",
            "privileges": {
                **grant(BUSINESS, READ, ORG), **grant(MARKETING, MANAGE, ORG), **grant(["reports"], MANAGE, ORG),
                **grant(["profiles"], ("export",), ORG), **grant(["units", "users", "roles"], READ, ORG),
                # a campaign's journeys may set profile fields, record leads and give salespeople tasks
                "journeys.actions": ORG,
                **grant(["imports"], WORK, ORG), **grant(["profiles"], ("create", "update"), ORG),
                **grant(["jobs"], WORK, OWN), "messages.approve": ORG,
            },
        },
        "hq_analyst": {
            "zh": "总部分析师", "en": "HQ analyst",
            "description": "Reads everything for analysis and reports; PII masked.",
            "privileges": {
                **grant([*BUSINESS, *MARKETING], READ, ORG), **grant(["reports"], MANAGE, ORG),
                **grant(["units", "users", "roles"], READ, ORG), **grant(["jobs"], WORK, OWN),
            },
        },
        "region_manager": {
            "zh": "大区经理", "en": "Region manager",
            "description": "Oversees every dealer in the region: reads and reassigns their records.",
            "privileges": {
                **grant(BUSINESS, ("read", "update", "assign", "export"), UNIT_TREE),
                **grant(["units", "users"], READ, UNIT_TREE), **grant(["roles"], READ, ORG),
                **grant(["reports"], READ, UNIT_TREE), **grant(["audit"], READ, UNIT_TREE),
                **grant(["jobs"], WORK, UNIT_TREE), **grant(["segments"], READ, ORG),
                **grant(["messages", "journeys"], READ, UNIT_TREE), "pii.read": ORG,
            },
        },
        "dealer_manager": {
            "zh": "经销商总经理", "en": "Dealer manager",
            "description": "Runs one dealer: its staff, customers, leads and opportunities.",
            "privileges": {
                **grant(BUSINESS, MANAGE, UNIT_TREE), **grant(["users"], MANAGE, UNIT_TREE),
                **grant(["imports"], WORK, UNIT_TREE),
                **grant(["units"], ("read", "create", "update"), UNIT_TREE), **grant(["roles"], READ, ORG),
                **grant(["reports"], READ, UNIT_TREE), **grant(["audit"], READ, UNIT_TREE),
                **grant(["jobs"], WORK, UNIT_TREE), **grant(["segments"], READ, ORG),
                # the messages to their own customers only (HQ's templates and broadcasts that reach them show too), and
                # their own tree's journeys: another dealer's are its business
                **grant(["messages", "journeys"], READ, UNIT_TREE), "pii.read": ORG,
            },
        },
        "dealer_marketing": {
            "zh": "经销商市场专员", "en": "Dealer marketer",
            "description": "Segments, templates, broadcasts and journeys for one dealer's customers (HQ's segments "
                           "and templates usable for them); PII masked.",
            "privileges": {
                **grant(["profiles", "accounts", "orders"], READ, UNIT_TREE),
                **grant(["segments", "messages", "journeys"], MANAGE, UNIT_TREE), **grant(["segments"], READ, ORG),
                "journeys.actions": ORG,  # the dealer's journeys act on its own customers only
                **grant(["units", "users"], READ, UNIT),
                **grant(["jobs"], WORK, OWN),
            },
        },
        "dealer_sales": {
            "zh": "销售顾问", "en": "Sales consultant",
            "description": "Works their own customers, leads and opportunities at one dealer.",
            "privileges": {
                **grant(["profiles", "accounts", "leads", "opportunities", "activities", "orders"], WORK, OWN),
                **grant(["units", "users"], READ, UNIT), **grant(["jobs"], WORK, OWN), "pii.read": ORG,
            },
        },
        "service_advisor": {
            "zh": "服务顾问", "en": "Service advisor",
            "description": "After-sales: cases, maintenance visits and owners of one dealer.",
            "privileges": {
                **grant(["cases", "activities"], WORK, UNIT), **grant(["profiles", "orders", "loyalty"], READ, UNIT),
                **grant(["units", "users"], READ, UNIT), **grant(["jobs"], WORK, OWN), "pii.read": ORG,
            },
        },
        "call_centre_agent": {
            "zh": "呼叫中心坐席", "en": "Call-centre agent",
            "description": "Answers any customer of the group and creates leads and cases for the dealers.",
            "privileges": {
                **grant(["profiles"], ("read", "create", "update"), ORG),
                **grant(["leads", "cases"], ("read", "create"), ORG),
                **grant(["activities"], WORK, OWN), **grant(["units"], READ, ORG), **grant(["users"], READ, UNIT),
                **grant(["jobs"], WORK, OWN), "pii.read": ORG,
            },
        },
    }
