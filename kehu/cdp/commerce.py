"""Orders, products and vehicles. Orders arrive from Segment's e-commerce calls (`Order Completed`, or our
`order_placed`) or the API; a `vehicle_delivered` call registers the car (VIN) for its new owner."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kehu.cdp import normalise
from kehu.cdp.models import Order, OrderLine, Product, Profile, Source, Vehicle
from kehu.core import audit
from kehu.core.db import one_of
from kehu.core.errors import Conflict, NotFound, invalid

ORDER_PLACED = {"Order Completed", "order_placed", "order_completed"}
ORDER_STATUS = {"Order Cancelled": "cancelled", "order_cancelled": "cancelled", "Order Refunded": "refunded",
                "order_refunded": "refunded", "order_paid": "paid", "vehicle_delivered": "delivered"}
ORDER_EVENTS = ORDER_PLACED | set(ORDER_STATUS)
STATUSES = ("placed", "paid", "delivered", "cancelled", "refunded")


def money(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() and abs(amount) < Decimal("1e12") else None


def _quantity(item: dict[str, Any]) -> int:
    text = str(item.get("quantity") or 1)
    return max(int(text), 1) if text.isdigit() else 1


def _products(session: Session, org_id: int, items: list[dict[str, Any]]) -> dict[str, Product]:
    """The products named by a batch's order lines, created on first sight (SKU is the key)."""
    wanted = {str(i.get("sku") or i.get("product_id")): i for i in items if i.get("sku") or i.get("product_id")}
    if not wanted:
        return {}
    dialect = session.get_bind().dialect.name
    found = {p.sku: p for p in session.scalars(select(Product).where(
        Product.org_id == org_id, one_of(Product.sku, list(wanted), dialect)))}
    for sku, item in wanted.items():
        if sku not in found:
            found[sku] = Product(org_id=org_id, sku=sku[:100], name=str(item.get("name") or sku)[:200],
                                 kind=str(item.get("category") or "vehicle_model")[:20], price=money(item.get("price")))
            session.add(found[sku])
    session.flush()
    return found


def _items(props: dict[str, Any]) -> list[dict[str, Any]]:
    """An order call's lines: Segment's ``products``, or the one vehicle model it names."""
    items = [i for i in (props.get("products") or []) if isinstance(i, dict)]
    if not items and props.get("model"):
        total = props.get("total") or props.get("revenue") or props.get("amount") or props.get("value")
        items = [{"sku": props["model"], "name": props["model"], "price": total, "quantity": 1}]
    return items


def orders_from_calls(session: Session, source: Source, calls: list[tuple[dict[str, Any], datetime, Profile]]
                      ) -> list[str]:
    """Create or update orders (and vehicles) from a batch's e-commerce calls; returns notes on bad values."""
    calls = [c for c in calls if c[0]["type"] == "track" and c[0]["event"] in ORDER_EVENTS]
    if not calls:
        return []
    notes: list[str] = []
    dialect = session.get_bind().dialect.name

    def external_id(message: dict[str, Any]) -> str:
        props = message.get("properties") or {}
        given = props.get("order_id") or props.get("orderId")
        return str(given)[:100] if given else f"{source.id}:{message['message_id']}"[:100]

    ids = list({external_id(m) for m, _, _ in calls})
    orders = {o.external_id: o for o in session.scalars(select(Order).where(
        Order.org_id == source.org_id, one_of(Order.external_id, ids, dialect)))}
    lines = [i for m, _, _ in calls if m["event"] in ORDER_PLACED for i in _items(m.get("properties") or {})]
    products = _products(session, source.org_id, lines)
    for message, ts, profile in sorted(calls, key=lambda c: c[1]):
        props = message.get("properties") or {}
        key = external_id(message)
        order = orders.get(key)
        if message["event"] in ORDER_PLACED and order is None:
            total = money(props.get("total") or props.get("revenue") or props.get("amount") or props.get("value"))
            status = str(props.get("status") or "placed")
            order = Order(org_id=source.org_id, unit_id=message.get("unit_id") or source.unit_id,
                          owner_id=profile.owner_id, profile_id=profile.id, external_id=key,
                          status=status if status in STATUSES else "placed", ordered_at=ts,
                          total=total or Decimal("0"), currency=str(props.get("currency") or "CNY")[:3].upper(),
                          source_id=source.id)
            session.add(order)
            items = _items(props)
            for item in items:
                sku = str(item.get("sku") or item.get("product_id") or "") or None
                session.add(OrderLine(order=order, sku=sku, name=str(item.get("name") or sku or "?")[:200],
                                      quantity=_quantity(item), unit_price=money(item.get("price")) or Decimal("0"),
                                      product=products.get(sku or "")))
            if not total:  # no total given: the sum of the lines
                order.total = sum(((money(i.get("price")) or Decimal("0")) * _quantity(i) for i in items),
                                  Decimal("0"))
            orders[key] = order
        elif message["event"] in ORDER_STATUS and order is not None:
            order.status = ORDER_STATUS[message["event"]]
        if message["event"] == "vehicle_delivered" and props.get("vin"):
            try:
                vin = normalise.identity_value("vin", props["vin"])
            except normalise.InvalidValue as error:
                notes.append(f"vin: {error}")
                continue
            register_vehicle(session, profile, vin=vin, model=props.get("model"), unit_id=source.unit_id,
                             purchased_at=ts.date())
    session.flush()
    return notes


def register_vehicle(session: Session, profile: Profile, *, vin: str, model: Any = None, unit_id: int | None,
                     purchased_at: Any = None, plate: Any = None, model_year: Any = None) -> Vehicle:
    """The car with this VIN now belongs to ``profile`` (a resale moves it; the VIN stays unique)."""
    vehicle = session.scalar(select(Vehicle).where(Vehicle.org_id == profile.org_id, Vehicle.vin == vin))
    if vehicle is None:
        vehicle = Vehicle(org_id=profile.org_id, vin=vin, profile_id=profile.id, unit_id=unit_id)
        session.add(vehicle)
    vehicle.profile_id = profile.id
    if model:
        vehicle.model = str(model)[:100]
    if purchased_at:
        vehicle.purchased_at = purchased_at
    if plate:
        vehicle.plate = str(plate)[:20]
    if model_year and str(model_year).isdigit():
        vehicle.model_year = int(model_year)
    session.flush()
    return vehicle


def create_order(session: Session, actor: audit.Actor, profile: Profile, *, external_id: str, ordered_at: datetime,
                 unit_id: int, owner_id: int | None, lines: list[dict[str, Any]], status: str = "placed") -> Order:
    if status not in STATUSES:
        raise invalid("status", f"one of {', '.join(STATUSES)}")
    if session.scalar(select(Order.id).where(Order.org_id == profile.org_id, Order.external_id == external_id)):
        raise Conflict(f"An order numbered {external_id!r} exists.")
    products = _products(session, profile.org_id, lines)
    order = Order(org_id=profile.org_id, unit_id=unit_id, owner_id=owner_id, profile_id=profile.id,
                  external_id=external_id, status=status, ordered_at=ordered_at, total=Decimal("0"))
    session.add(order)
    for item in lines:
        price = money(item.get("price")) or Decimal("0")
        quantity = _quantity(item)
        order.total += price * quantity
        sku = str(item.get("sku") or "") or None
        session.add(OrderLine(order=order, sku=sku, name=str(item.get("name") or sku)[:200], quantity=quantity,
                              unit_price=price, product=products.get(sku or "")))
    session.flush()
    audit.record(session, actor, org_id=profile.org_id, unit_id=unit_id, action="create", entity="orders",
                 entity_id=order.id, after={"external_id": external_id, "total": str(order.total),
                                            "profile_id": profile.id},
                 summary=f"Order {external_id} ({order.total} CNY) for customer {profile.id}")
    return order


# -- the product catalogue ----------------------------------------------------------------------------
PRODUCT_KINDS = ("vehicle_model", "part", "service", "accessory")


def list_products(session: Session, principal: Any, *, q: str | None = None, kind: str | None = None,
                  active: bool | None = None) -> list[Product]:
    """The organisation's catalogue (reference data: whoever reads orders reads it), by kind then name."""
    principal.require("orders", "read")
    query = select(Product).where(Product.org_id == principal.org_id)
    if q:
        query = query.where(Product.name.like(f"%{q.strip()}%") | Product.sku.like(f"%{q.strip()}%"))
    if kind:
        query = query.where(Product.kind == kind)
    if active is not None:
        query = query.where(Product.is_active.is_(active))
    return list(session.scalars(query.order_by(Product.kind, Product.name)))


def create_product(session: Session, principal: Any, data: dict[str, Any]) -> Product:
    """Catalogue changes are the headquarters' (settings.manage); a SKU names one product."""
    principal.require_permission("settings.manage")
    if session.scalar(select(Product.id).where(Product.org_id == principal.org_id, Product.sku == data["sku"])):
        raise Conflict(f"A product with SKU {data['sku']!r} exists.")
    product = Product(org_id=principal.org_id, **{**data, "price": money(data.get("price"))})
    session.add(product)
    session.flush()
    audit.record(session, principal, action="create", entity="products", entity_id=product.id,
                 after={k: str(v) for k, v in data.items()}, summary=f"Product {product.sku} {product.name} created")
    return product


def update_product(session: Session, principal: Any, product_id: int, changes: dict[str, Any]) -> Product:
    principal.require_permission("settings.manage")
    product = session.scalar(select(Product).where(Product.id == product_id, Product.org_id == principal.org_id))
    if product is None:
        raise NotFound(f"No product with id {product_id}.")
    before = {k: str(getattr(product, k)) for k in changes}
    if "price" in changes:
        changes = {**changes, "price": money(changes["price"])}
    for key, value in changes.items():
        setattr(product, key, value)
    session.flush()
    audit.record(session, principal, action="update", entity="products", entity_id=product.id, before=before,
                 after={k: str(v) for k, v in changes.items()}, summary=f"Product {product.sku} updated")
    return product
