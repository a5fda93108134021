"""The gateway's copy of a customer."""

from __future__ import annotations

from sqlalchemy import Table, bindparam, select

from billing.checkout.rules import stripe_locales
from billing.gateway import Gateway
from entitlements.store.tables import CustomerRow
from entitlements.store.unit_of_work import Units

customers: Table = CustomerRow.__table__  # type: ignore[assignment]
_CUSTOMER = select(
    customers.c.name, customers.c.email, customers.c.locale, customers.c.stripe_customer_id
).where(customers.c.id == bindparam("customer_id"))


async def push_customer(units: Units, gateway: Gateway, customer_id: str, push: str) -> bool:
    """Give the gateway's customer our customer's name, email and languages as they are now (read, then the
    call, outside any transaction). False when the customer has none at the gateway yet: its
    checkout will create it with these. `push` names this push (the job's id): a retried push
    reaches the gateway as the same request, and every later one, even back to an earlier name,
    as a new one (a key from the content alone would have Stripe replay an old answer)."""
    async with units() as run:
        found = await run.row(_CUSTOMER, customer_id=customer_id)
    if found is None or found[3] is None:
        return False
    name, email, locale, stripe_customer = found
    await gateway.update_customer(
        stripe_customer,
        name=name,
        email=email,
        locales=stripe_locales(locale),
        key=f"customer:{customer_id}:push:{push}",
    )
    return True
