"""The record of a contract's lifecycle facts: payments, failed payments and endings.

Every Stripe event that touches a contract comes through here, so these statements run per
event: they run in the use case's unit of work, straight through asyncpg. The
rules that decide what a fact means (`contracts.settle`, `contracts.next_period`) stay in the
domain; this module only reads and writes rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Self

import msgspec
from sqlalchemy import (
    CompoundSelect,
    Table,
    bindparam,
    case,
    func,
    insert,
    null,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql

from entitlements.catalog import Plan
from entitlements.contracts.rules import LifecycleEvent, Settlement
from entitlements.coverage import ContractStatus, Period
from entitlements.errors import Conflict
from entitlements.store import audit
from entitlements.store.base import UTCDateTime, utcnow
from entitlements.store.plans import plan_version
from entitlements.store.statements import Row, broken_constraint
from entitlements.store.tables import ContractEventRow, ContractRow, CoveragePeriodRow
from entitlements.store.unit_of_work import UnitOfWork

contracts: Table = ContractRow.__table__  # type: ignore[assignment]
periods: Table = CoveragePeriodRow.__table__  # type: ignore[assignment]
events: Table = ContractEventRow.__table__  # type: ignore[assignment]

_FACT_KEY = events.primary_key.name  # a fact is its reference and its kind, applied once


def lost_to_another_contract(error: BaseException) -> Conflict | None:
    """What a writer is told when it broke a fact's key: two writers locked two contracts, both
    found the reference applied nowhere (`LockedContract.knows`), and the other committed first.
    The same refusal as when the two come one after the other; None for any other error."""
    if broken_constraint(error) != _FACT_KEY:
        return None
    return Conflict("the reference belongs to another contract, which recorded it first", field="reference")


# Endings that cut coverage at their instant (the paid past stays): a cancellation, a chargeback.
# No cover past these endings, whatever a payment reported late bought. (A lapse follows a grace
# that covered nothing, and a payment after it is refunded: it cuts nothing.)
_CUTS = frozenset({ContractStatus.CANCELLED, ContractStatus.CHARGEBACK, ContractStatus.EXPIRED})


_STATUS_EVENTS = {
    ContractStatus.ACTIVE: "contract.activated",
    ContractStatus.PAST_DUE: "contract.past_due",
    ContractStatus.LAPSED: "contract.lapsed",
    ContractStatus.CANCELLED: "contract.cancelled",
    ContractStatus.CHARGEBACK: "contract.cancelled",  # its data says chargeback
    ContractStatus.EXPIRED: "contract.expired",
    ContractStatus.ABANDONED: "contract.abandoned",
}


def contract_event(before: ContractStatus, after: ContractStatus, bought: bool) -> str | None:
    """The event a settled change makes: a new status, or a period bought on an active contract
    (a renewal, or a late payment that brings it back)."""
    if after is ContractStatus.ACTIVE and (bought and before is not ContractStatus.PENDING_PAYMENT):
        return "contract.renewed"
    if after is not before:
        return _STATUS_EVENTS.get(after)
    return None


class ContractState(msgspec.Struct, frozen=True):
    """What the lifecycle needs of a contract, as it is now."""

    id: str
    product_id: str
    status: ContractStatus
    plan_code: str
    plan_version: int
    coverage_starts_at: dt.datetime
    grace_until: dt.datetime | None
    ended_at: dt.datetime | None
    stripe_payment_intent_id: str | None
    stripe_subscription_id: str | None
    price_amount: int  # what each payment is, in minor units of `currency` (the term, or a period)
    currency: str

    @classmethod
    def of(cls, row: Row) -> Self:
        return cls(row[0], row[1], ContractStatus(row[2]), *row[3:])


# A contract's facts, and its coverage periods in order.
History = tuple[list[LifecycleEvent], list[Period]]


class LockedContract(ContractState, frozen=True):
    """A contract taken for writing (`LifecycleRecord.lock`) in the current transaction; with its
    history as the lock found it (None: the lock waited for another writer, and read it as it
    was before that one), and, for the fact the lock was asked about, the contract it was
    applied to (None: none)."""

    history: History | None = None
    fact: LifecycleEvent | None = None
    fact_owner: str | None = None

    def knows(self, fact: LifecycleEvent) -> bool:
        """Whether the lock read the contract's history, and this fact's owner with it."""
        asked = self.fact
        return (
            self.history is not None
            and asked is not None
            and (asked.reference, asked.kind) == (fact.reference, fact.kind)
        )


_STATE = (
    contracts.c.id,
    contracts.c.product_id,
    contracts.c.status,
    contracts.c.plan_code,
    contracts.c.plan_version,
    contracts.c.coverage_starts_at,
    contracts.c.grace_until,
    contracts.c.ended_at,
    contracts.c.stripe_payment_intent_id,
    contracts.c.stripe_subscription_id,
    contracts.c.price_amount,
    contracts.c.currency,
)
# Bumping the revision is the first write of every change: it locks the row until commit, so
# concurrent writers queue instead of racing. The same
# statement names the contract's Stripe PaymentIntent or subscription, unless it names one already.
# It reads the history the writer needs (has this payment been applied? does it pay a period
# twice?), each part an array of rows (NULL: none), the contract a fact the writer is about to
# record was applied to, if any, and the revision as the statement began. A writer that waited for
# another's lock updates the row as that one committed it, but reads the rest as it was before:
# the revision it wrote is then not the one it began with, plus one, and what it read is left
# unused.
_AS_BEGUN = contracts.alias("as_begun")
_LOCK = (
    update(contracts)
    .where(contracts.c.id == bindparam("contract_id"))
    .values(
        revision=contracts.c.revision + 1,
        updated_at=bindparam("now"),
        stripe_payment_intent_id=func.coalesce(contracts.c.stripe_payment_intent_id, bindparam("intent")),
        stripe_subscription_id=func.coalesce(contracts.c.stripe_subscription_id, bindparam("subscription")),
    )
    .returning(
        *_STATE,
        contracts.c.revision,
        select(_AS_BEGUN.c.revision).where(_AS_BEGUN.c.id == bindparam("contract_id")).scalar_subquery(),
        select(func.array_agg(func.row(events.c.reference, events.c.kind, events.c.applied_at)))
        .where(events.c.contract_id == bindparam("contract_id"))
        .scalar_subquery(),
        select(func.array_agg(func.row(periods.c.starts_at, periods.c.ends_at)))
        .where(periods.c.contract_id == bindparam("contract_id"))
        .scalar_subquery(),
        select(events.c.contract_id)
        .where(events.c.reference == bindparam("reference"), events.c.kind == bindparam("kind"))
        .scalar_subquery(),
    )
)
_BY = {
    "contract_id": select(*_STATE).where(contracts.c.id == bindparam("value")),
    "subscription": select(*_STATE).where(contracts.c.stripe_subscription_id == bindparam("value")),
    "payment_intent": select(*_STATE).where(contracts.c.stripe_payment_intent_id == bindparam("value")),
}
_OWNER = select(events.c.contract_id).where(
    events.c.reference == bindparam("reference"), events.c.kind == bindparam("kind")
)
# The facts applied to a contract and its coverage periods, in one statement: (reference, kind,
# applied_at, None) for a fact, (None, None, start, end) for a period.
_HISTORY = union_all(
    select(
        events.c.reference,
        events.c.kind,
        events.c.applied_at,
        type_coerce(null(), UTCDateTime()).label("ends_at"),
    ).where(events.c.contract_id == bindparam("contract_id")),
    select(null(), null(), periods.c.starts_at, periods.c.ends_at).where(
        periods.c.contract_id == bindparam("contract_id")
    ),
)
# A new fact recorded in the statement that reads the history it joins: the history's rows, then
# (reference, None, None, None) when the fact went in. The new fact is not among the facts read
# (every part of one statement sees the database as the statement began), and its row comes last
# (PostgreSQL types a union's NULLs from the branches before them).
_NEW_FACT = (
    postgresql.insert(events)
    .values(
        reference=bindparam("reference"),
        contract_id=bindparam("contract_id"),
        kind=bindparam("kind"),
        applied_at=bindparam("applied_at"),
    )
    .on_conflict_do_nothing()
    .returning(events.c.reference)
    .cte("new_fact")
)
_REMEMBER: CompoundSelect[Any] = union_all(
    *_HISTORY.selects, select(_NEW_FACT.c.reference, null(), null(), null())
)
_ADD_FACT = insert(events)
_PERIOD_BOUGHT = select(periods.c.starts_at, periods.c.ends_at).where(
    periods.c.source_ref == bindparam("reference")
)
_ADD_PERIOD = insert(periods)
_UNLINK_INTENT = (
    update(contracts)
    .where(
        contracts.c.id == bindparam("contract_id"),
        contracts.c.stripe_payment_intent_id == bindparam("intent"),
    )
    .values(stripe_payment_intent_id=None)
)
# A cancellation cuts every period at its instant: what was paid before it stays.
_CUT = (
    update(periods)
    .where(periods.c.contract_id == bindparam("contract"), periods.c.ends_at > bindparam("cut"))
    .values(
        ends_at=case((periods.c.starts_at > bindparam("cut"), periods.c.starts_at), else_=bindparam("cut"))
    )
    .returning(periods.c.source_ref, periods.c.starts_at, periods.c.ends_at)
)
_SETTLE = (
    update(contracts)
    .where(contracts.c.id == bindparam("contract_id"))
    .values(status=bindparam("settled"), grace_until=bindparam("grace"), ended_at=bindparam("ended"))
)


def _history(rows: Iterable[Row]) -> History:
    """The facts and the coverage periods (in order) among `_HISTORY`'s rows."""
    facts: list[LifecycleEvent] = []
    spans: list[Period] = []
    for reference, kind, start, end in rows:
        if reference is None:
            spans.append(Period(start, end))
        else:
            facts.append(LifecycleEvent(reference, kind, start))
    return facts, sorted(spans, key=lambda p: (p.start, p.end))


class LifecycleRecord:
    def __init__(self, statements: UnitOfWork) -> None:
        self.statements = statements

    async def find(self, by: str, value: str) -> ContractState | None:
        """The contract with this id, Stripe subscription or Stripe PaymentIntent."""
        row = await self.statements.row(_BY[by], value=value)
        return None if row is None else ContractState.of(row)

    async def lock(
        self,
        contract_id: str,
        *,
        payment_intent: str | None = None,
        subscription: str | None = None,
        fact: LifecycleEvent | None = None,
    ) -> LockedContract | None:
        """Take the contract for writing and hand it back as it is now (None: no such contract),
        naming its PaymentIntent or subscription unless it names one already; with the contract
        `fact` was applied to, if it was (`remember` then needs no statement of its own)."""
        row = await self.statements.row(
            _LOCK,
            contract_id=contract_id,
            now=utcnow(),
            intent=payment_intent,
            subscription=subscription,
            reference=fact.reference if fact else None,
            kind=fact.kind if fact else None,
        )
        if row is None:
            return None
        state = ContractState.of(row[: len(_STATE)])
        revision, as_begun, facts, spans, owner = row[len(_STATE) :]
        if revision != as_begun + 1:
            return LockedContract(**msgspec.structs.asdict(state))
        history = _history(
            [
                *((reference, kind, at, None) for reference, kind, at in facts or ()),
                *((None, None, start, end) for start, end in spans or ()),
            ]
        )
        return LockedContract(**msgspec.structs.asdict(state), history=history, fact=fact, fact_owner=owner)

    async def remember(self, contract_id: str, fact: LifecycleEvent) -> History | None:
        """Record the fact once, in the statement that reads the contract's history: every fact
        applied so far (this one last) and its coverage periods in order; None when it was
        recorded before (`applied_to` says to which contract)."""
        rows = await self.statements.rows(
            _REMEMBER,
            reference=fact.reference,
            contract_id=contract_id,
            kind=fact.kind,
            applied_at=fact.applied_at,
        )
        if not any(reference is not None and kind is None for reference, kind, _, _ in rows):
            return None
        facts, spans = _history(row for row in rows if row[1] is not None or row[0] is None)
        facts.append(fact)
        return facts, spans

    async def add(self, contract: LockedContract, fact: LifecycleEvent) -> History:
        """Record a fact the lock found applied to no contract (`LockedContract.knows`): a write
        the unit holds, whose key only a writer of another contract can have taken since (the
        unit then fails). The contract's facts with it, last, and its coverage periods."""
        assert contract.history is not None
        await self.statements.run(
            _ADD_FACT,
            reference=fact.reference,
            contract_id=contract.id,
            kind=fact.kind,
            applied_at=fact.applied_at,
        )
        facts, spans = contract.history
        return [*facts, fact], spans

    async def applied_to(self, fact: LifecycleEvent) -> str | None:
        """The contract this fact (its reference and kind) was applied to, if it was."""
        row = await self.statements.row(_OWNER, reference=fact.reference, kind=fact.kind)
        return None if row is None else str(row[0])

    async def history(self, contract_id: str) -> History:
        """Every fact applied to the contract so far, and its coverage periods in order."""
        return _history(await self.statements.rows(_HISTORY, contract_id=contract_id))

    async def plan(self, contract: ContractState) -> Plan:
        """The plan version the contract pins (published versions never change or go away)."""
        plan = await plan_version(self.statements, contract.plan_code, contract.plan_version)
        if plan is None:
            raise RuntimeError(f"contract {contract.id} pins a missing plan version")
        return plan

    async def unlink_payment_intent(self, contract_id: str, payment_intent: str) -> None:
        """The contract no longer names this PaymentIntent (its lock named it, and it turned out
        not to be the contract's payment: one made elsewhere that names the contract)."""
        await self.statements.run(_UNLINK_INTENT, contract_id=contract_id, intent=payment_intent)

    async def period_bought(self, reference: str) -> Period | None:
        row = await self.statements.row(_PERIOD_BOUGHT, reference=reference)
        return None if row is None else Period(row[0], row[1])

    async def write(
        self,
        contract: ContractState,
        settled: Settlement,
        *,
        bought: Period | None,
        reference: str,
        audits: list[tuple[StrEnum, dict[str, Any]]],
        actor: str,
    ) -> Period | None:
        """Write what a fact changed in the caller's unit of work, which rewrites the product's
        snapshot before it commits.
        Returns the period bought as it was stored (a cancellation may have cut it)."""
        if bought is not None:
            await self.statements.run(
                _ADD_PERIOD,
                contract_id=contract.id,
                starts_at=bought.start,
                ends_at=bought.end,
                source_ref=reference,
            )
        if settled.status in _CUTS and settled.ended_at is not None:
            for source, start, end in await self.statements.rows(
                _CUT, contract=contract.id, cut=settled.ended_at
            ):
                if bought is not None and source == reference:
                    bought = Period(start, end)
        now = (contract.status, contract.grace_until, contract.ended_at)
        if (settled.status, settled.grace_until, settled.ended_at) != now:
            await self.statements.run(
                _SETTLE,
                contract_id=contract.id,
                settled=settled.status.value,
                grace=settled.grace_until,
                ended=settled.ended_at,
            )
        await audit.append(self.statements, "contract", contract.id, actor, audits)
        self.statements.touch(contract.product_id)
        event_type = contract_event(contract.status, settled.status, bought is not None)
        if event_type is not None:
            data: dict[str, Any] = {
                "contract_id": contract.id,
                "product_id": contract.product_id,
                "status": settled.status.value,
                "previous_status": contract.status.value,
                "reference": reference,
                "ended_at": settled.ended_at.isoformat() if settled.ended_at else None,
                "grace_until": settled.grace_until.isoformat() if settled.grace_until else None,
                "period": [bought.start.isoformat(), bought.end.isoformat()] if bought else None,
            }
            self.statements.emit(event_type, data, product_id=contract.product_id, contract_id=contract.id)
        return bought
