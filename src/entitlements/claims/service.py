"""Claims in a unit of work: filed (decided by the plan's rules, or sent to review), reviewed by
an agent with a reason code, voided; every move audited and told as an event.

The limits a claim uses are counted only once it is approved, so an approval from review decides
again, under the contract's lock, against what the limits have left then: two reviewers
approving the last claim the plan allows cannot both succeed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import unicodedata
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from entitlements.audit_names import Action as A
from entitlements.audit_names import claim_moved
from entitlements.catalog import CoverageKind, ExchangePolicy
from entitlements.claims.rules import (
    REASON_CODES,
    REPLACEMENT_DUE,
    Candidate,
    ClaimStatus,
    Fulfilment,
    claim_payout,
    contract_for_incident,
    filed_in_time,
    fraud_flags,
    fulfilment_order,
    next_status,
    review_reasons,
)
from entitlements.claims.schemas import NOTE_LENGTH, ClaimInput, FulfilInput, ReviewInput
from entitlements.coverage import EARLIEST_DAY, ContractFacts, decide_for_incident_day, incident_instant
from entitlements.errors import Conflict, Forbidden, InvalidInput, NotFound
from entitlements.fields import DESCRIPTION_LENGTH, new_id
from entitlements.identifiers import clean_reference, clean_text, normalize_serial
from entitlements.money import Money, check_amount
from entitlements.store import audit
from entitlements.store.base import found
from entitlements.store.contracts import facts_for, get_contract, get_product, lock_contract, plan_of
from entitlements.store.pages import oldest_first
from entitlements.store.tables import AuditEventRow, ClaimRow, ContractRow, ProductRow
from entitlements.store.unit_of_work import touch, unit_of_work
from entitlements.zones import local_day

AGENT_LENGTH = 64
# The denial reason of a claim filed after the plan's window.
FILED_TOO_LATE = "filing_window_passed"
FRAUD_WINDOW = dt.timedelta(days=30)
PAGE = 100  # claims a page holds at most


def agent_name(raw: str | None) -> str | None:
    """The agent a `Coverline-Agent` header names, as stored. A header's bytes arrive read as
    Latin-1 (HTTP's own); a name sent in UTF-8, as clients send `José`, is read as UTF-8."""
    if raw is None:
        return None
    with contextlib.suppress(UnicodeError):  # else Latin-1 it was, or no header's text at all
        raw = raw.encode("latin-1").decode("utf-8")
    return clean_text(raw, "Coverline-Agent", AGENT_LENGTH)


def same_agent(one: str | None, other: str | None) -> bool:
    """Two agents' names are one person's whatever their case, width or spacing (`hana@desk`,
    `HANA@DESK`, `ｈａｎａ@desk`, `hana @desk`): a person must not approve what they filed by
    typing their name another way."""
    return one is not None and other is not None and _person(one) == _person(other)


def _person(name: str) -> str:
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return "".join(char for char in folded if not char.isspace() and unicodedata.category(char) != "Cf")


def _same_claim(previous: ClaimRow, data: ClaimInput) -> ClaimRow:
    """The claim a reference filed before, when this request is that claim sent again; a claim
    with other facts under a reference in use is refused, never answered with the earlier one."""
    facts = (previous.incident_kind, previous.incident_date, previous.amount, previous.currency)
    asked = (data.incident_kind.value, data.incident_date, data.amount.amount, data.amount.currency)
    if facts != asked or (data.contract_id is not None and data.contract_id != previous.contract_id):
        raise Conflict(
            f"the reference {data.reference!r} filed claim {previous.id}, with other facts: a new claim"
            " needs a reference of its own",
            field="reference",
        )
    return previous


async def _contract_for_claim(session: AsyncSession, data: ClaimInput) -> ContractRow:
    if data.contract_id:
        return await get_contract(session, data.contract_id)
    if not data.serial:
        raise InvalidInput("a claim names a contract_id or a serial", field="contract_id")
    serial = normalize_serial(data.serial)
    product = await session.scalar(select(ProductRow).where(ProductRow.serial == serial))
    if product is None:
        raise NotFound("no product with this serial", field="serial")
    contracts = list(await session.scalars(select(ContractRow).where(ContractRow.product_id == product.id)))
    if not contracts:
        raise NotFound("no contract covers this product", field="serial")
    facts = await facts_for(session, contracts, {product.id: product})
    candidates = [
        Candidate(
            c.id,
            c.sold_at,
            decide_for_incident_day(facts[c.id], data.incident_date, data.incident_kind).covered,
        )
        for c in contracts
    ]
    chosen = contract_for_incident(candidates)
    return next(c for c in contracts if c.id == chosen)


async def _facts(session: AsyncSession, contract: ContractRow) -> ContractFacts:
    product = await get_product(session, contract.product_id)
    return (await facts_for(session, [contract], {product.id: product}))[contract.id]


async def _serial_elsewhere(session: AsyncSession, data: ClaimInput, contract: ContractRow) -> bool:
    """Whether the serial given with a claim on a contract is another customer's product's."""
    if not data.serial or not data.contract_id:
        return False  # a claim by serial alone found its contract by that very serial
    owner = await session.scalar(
        select(ProductRow.customer_id).where(ProductRow.serial == normalize_serial(data.serial))
    )
    return owner is not None and owner != contract.customer_id


async def _recent_claims(session: AsyncSession, customer_id: str, now: dt.datetime) -> int:
    """The customer's claims filed in the 30 days before `now`, on any of their contracts."""
    count = await session.scalar(
        select(func.count())
        .select_from(ClaimRow)
        .join(ContractRow, ContractRow.id == ClaimRow.contract_id)
        .where(ContractRow.customer_id == customer_id, ClaimRow.created_at >= now - FRAUD_WINDOW)
    )
    return int(count or 0)


async def file_claim(
    session: AsyncSession, data: ClaimInput, *, actor: str, agent: str | None, now: dt.datetime
) -> ClaimRow:
    """Decide a claim by the plan's rules, or send it to review when a review rule of the plan
    (or a fraud flag) asks; approval consumes the plan's limits. Idempotent by reference, as
    typed: NFC, trimmed."""
    data = msgspec.structs.replace(data, reference=clean_reference(data.reference))
    previous = await session.scalar(select(ClaimRow).where(ClaimRow.reference == data.reference))
    if previous is not None:
        return _same_claim(previous, data)
    if data.incident_date > now.date() + dt.timedelta(days=1):  # tomorrow already, somewhere
        raise InvalidInput("the incident date is in the future", field="incident_date")
    if data.incident_date < EARLIEST_DAY:
        raise InvalidInput(f"an incident date is from {EARLIEST_DAY}", field="incident_date")
    if data.amount.amount <= 0:
        raise InvalidInput("a claim amount is positive", field="amount.amount")
    check_amount(data.amount, "amount.amount")
    target = await _contract_for_claim(session, data)
    if data.customer_id is not None and target.customer_id != data.customer_id:
        raise InvalidInput("the contract belongs to another customer", field="customer_id")
    contract = await lock_contract(session, target.id)  # serialises claims on this contract
    previous = await session.scalar(select(ClaimRow).where(ClaimRow.reference == data.reference))
    if previous is not None:  # a concurrent twin won the race
        return _same_claim(previous, data)
    if data.amount.currency != contract.currency:
        raise InvalidInput(f"the contract is in {contract.currency}", field="amount.currency")
    facts = await _facts(session, contract)
    today = local_day(now, facts.time_zone)
    if data.incident_date > today:
        raise InvalidInput(
            "the incident date is in the future where the customer lives", field="incident_date"
        )
    plan = facts.plan
    decision = decide_for_incident_day(facts, data.incident_date, data.incident_kind)
    payout = claim_payout(data.amount.amount, decision)
    reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    reason: str | None
    if not filed_in_time(data.incident_date, today, plan.claim_limits.filing_window_days):
        status, reason, covered_amount = ClaimStatus.DENIED, FILED_TOO_LATE, 0
    elif not decision.covered:
        status, covered_amount = ClaimStatus.DENIED, 0
        reason = decision.reason.value if decision.reason else None
    else:
        flags = fraud_flags(
            plan.claim_review,
            await _recent_claims(session, contract.customer_id, now),
            serial_elsewhere=await _serial_elsewhere(session, data, contract),
            device_imei=re.sub(r"[ -]", "", data.device_imei) if data.device_imei else None,
        )
        reasons = review_reasons(
            plan.claim_review,
            kind=data.incident_kind,
            amount=data.amount,
            incident_at=incident_instant(data.incident_date, facts.time_zone),
            sold_at=contract.sold_at,
            approved=facts.claims,
            flags=flags,
        )
        status = ClaimStatus.IN_REVIEW if reasons else ClaimStatus.APPROVED
        reason, covered_amount = None, payout.covered_amount  # in review: what it would pay now
    claim = ClaimRow(
        id=new_id("clm"),
        reference=data.reference,
        contract_id=contract.id,
        product_id=contract.product_id,
        incident_kind=data.incident_kind.value,
        incident_date=data.incident_date,
        amount=data.amount.amount,
        currency=data.amount.currency,
        covered_amount=covered_amount,
        deductible=payout.deductible,
        status=status.value,
        reason=reason,
        description=clean_text(data.description, "description", DESCRIPTION_LENGTH)
        if data.description
        else None,
        created_at=now,
        filed_by=agent,
        review_reasons=msgspec.json.encode(list(reasons)).decode(),
        flags=msgspec.json.encode(list(flags)).decode(),
        review_since=now if status is ClaimStatus.IN_REVIEW else None,
    )
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("a claim with this reference is being filed", field="reference") from None
    await audit.record(
        session,
        "claim",
        claim.id,
        ClaimStatus(claim.status),
        actor,
        agent=agent,
        contract_id=contract.id,
        reason=claim.reason,
        covered_amount=covered_amount,
        review_reasons=list(reasons),
        flags=list(flags),
    )
    await audit.record(
        session, "contract", contract.id, claim_moved(claim.status), actor, claim_id=claim.id, agent=agent
    )
    touch(session, claim.product_id)
    await claim_events(session, claim, ("claim.filed", f"claim.{claim.status}"))
    return claim


async def fulfilment_offered(session: AsyncSession, claim: ClaimRow) -> list[Fulfilment]:
    """How an approved claim not yet made good can be, in the order its plan offers (none for
    any other claim)."""
    if claim.status != ClaimStatus.APPROVED or claim.fulfilment is not None:
        return [Fulfilment.REPLACE] if claim.fulfilment == REPLACEMENT_DUE else []
    contract = await get_contract(session, claim.contract_id)
    support = (await plan_of(session, contract)).support
    return fulfilment_order(support.exchange if support else ExchangePolicy.REPAIR_FIRST)


async def get_claim(session: AsyncSession, claim_id: str) -> ClaimRow:
    return await found(session, ClaimRow, claim_id, "claim", "claim_id")


async def claim_history(session: AsyncSession, claim_id: str) -> list[AuditEventRow]:
    """Every move of the claim, oldest first, each with its agent and reason code."""
    claim = await get_claim(session, claim_id)
    return await audit.history(session, [claim.id])


async def review_claim(
    session: AsyncSession, claim_id: str, data: ReviewInput, *, actor: str, agent: str, now: dt.datetime
) -> ClaimRow:
    """A reviewer's move on a claim in review: approve (deciding again against what the limits
    have left), deny, ask for information, or resume once it came. The agent who filed a claim
    cannot approve it."""
    if data.reason_code not in REASON_CODES[data.action]:
        codes = ", ".join(REASON_CODES[data.action])
        raise InvalidInput(f"a reason code for {data.action.value} is one of: {codes}", field="reason_code")
    note = clean_text(data.note, "note", NOTE_LENGTH) if data.note else None
    claim = await get_claim(session, claim_id)
    contract = await lock_contract(session, claim.contract_id)  # one reviewer's move at a time
    await session.refresh(claim)
    before = ClaimStatus(claim.status)
    after = next_status(before, data.action)
    if after is None:
        raise Conflict(f"a claim that is {before.value} cannot take {data.action.value}", field="action")
    changes: dict[str, Any] = {"status": [before.value, after.value], "reason_code": data.reason_code}
    if after is ClaimStatus.APPROVED:
        if same_agent(claim.filed_by, agent):
            raise Forbidden("the agent who filed a claim cannot approve it", field="Coverline-Agent")
        facts = await _facts(session, contract)
        decision = decide_for_incident_day(facts, claim.incident_date, CoverageKind(claim.incident_kind))
        if not decision.covered:
            reason = decision.reason.value if decision.reason else "not_covered"
            raise Conflict(f"the plan no longer covers this claim ({reason}): deny it", field="action")
        payout = claim_payout(claim.amount, decision)
        claim.covered_amount, claim.deductible = payout.covered_amount, payout.deductible
        changes["covered_amount"] = payout.covered_amount
    elif after is ClaimStatus.DENIED:
        claim.covered_amount = 0
    claim.status, claim.reason = after.value, data.reason_code
    if after in (ClaimStatus.APPROVED, ClaimStatus.DENIED):
        claim.decided_by, claim.decided_at = agent, now
    await audit.record(session, "claim", claim.id, data.action, actor, agent=agent, note=note, **changes)
    await audit.record(
        session,
        "contract",
        claim.contract_id,
        claim_moved(after.value),
        actor,
        claim_id=claim.id,
        agent=agent,
    )
    touch(session, claim.product_id)
    await claim_events(session, claim, (f"claim.{after.value}",))
    return claim


async def fulfil_claim(
    session: AsyncSession,
    claim_id: str,
    data: FulfilInput,
    *,
    actor: str,
    agent: str | None,
    now: dt.datetime,
) -> ClaimRow:
    """Make an approved claim good, once: a repair opens a service order (the claim is fulfilled
    when the order closes); a replacement, a reimbursement or a gift card fulfils it at once."""
    from entitlements.repairs.service import open_order

    claim = await get_claim(session, claim_id)
    await lock_contract(session, claim.contract_id)
    await session.refresh(claim)
    if claim.status != ClaimStatus.APPROVED:
        raise Conflict(f"a claim that is {claim.status} is not fulfilled", field="claim_id")
    if claim.fulfilment == REPLACEMENT_DUE:
        if data.method is not Fulfilment.REPLACE:
            raise InvalidInput(
                "the repair could not be made: this claim is fulfilled by a replacement", field="method"
            )
    elif claim.fulfilment is not None:
        raise Conflict(f"the claim is already fulfilled by {claim.fulfilment}", field="method")
    covered = Money(claim.covered_amount, claim.currency)
    details: dict[str, Any] = {}
    if data.method is Fulfilment.REPAIR:
        order = await open_order(session, claim, servicer_id=data.servicer_id, actor=actor, now=now)
        details = {"service_order_id": order.id}
    elif data.method is Fulfilment.REPLACE:
        if data.sku is None or data.cost is None:
            raise InvalidInput(
                "a replacement names its sku and its cost", field="sku" if data.sku is None else "cost"
            )
        if data.cost.currency != claim.currency:
            raise InvalidInput(f"the cost is an amount in {claim.currency}", field="cost")
        check_amount(data.cost, "cost.amount")  # up to the currency's ceiling: a claim's cost
        details = {"sku": clean_text(data.sku, "sku", 64), "cost": msgspec.to_builtins(data.cost)}
    elif data.method is Fulfilment.REIMBURSE:
        details = {"owed": msgspec.to_builtins(covered)}  # finance pays it; Coverline pays no one
    else:
        if data.code is None:
            raise InvalidInput("a gift card gives its code", field="code")
        details = {"code": clean_text(data.code, "code", 64), "value": msgspec.to_builtins(covered)}
    claim.fulfilment = data.method.value
    claim.fulfilment_details = msgspec.json.encode(details).decode()
    if data.method is not Fulfilment.REPAIR:
        claim.status, claim.fulfilled_at = ClaimStatus.FULFILLED.value, now
    await audit.record(
        session, "claim", claim.id, A.FULFIL, actor, agent=agent, method=data.method.value, **details
    )
    touch(session, claim.product_id)
    if claim.status == ClaimStatus.FULFILLED:
        await claim_events(session, claim, ("claim.fulfilled",))
    return claim


async def void_claim(session: AsyncSession, claim_id: str, *, actor: str, now: dt.datetime) -> ClaimRow:
    """Void a claim; an approved one gives its count and amount back to the limits, and its
    service orders no servicer has accepted are withdrawn (one accepted is 409: its servicer
    ends it first)."""
    claim = await get_claim(session, claim_id)
    await lock_contract(session, claim.contract_id)
    await session.refresh(claim)
    if claim.status == ClaimStatus.VOIDED:
        return claim
    from entitlements.repairs.service import withdraw_claims_orders  # the repairs feature's own

    await withdraw_claims_orders(session, claim.id, actor=actor, now=now)
    previous = claim.status
    claim.status = ClaimStatus.VOIDED.value
    claim.voided_at = now
    await audit.record(session, "claim", claim.id, A.VOIDED, actor, status=[previous, claim.status])
    await audit.record(
        session, "contract", claim.contract_id, claim_moved(claim.status), actor, claim_id=claim.id
    )
    touch(session, claim.product_id)
    await claim_events(session, claim, ("claim.voided",))
    return claim


async def list_claims(
    session: AsyncSession,
    *,
    status: ClaimStatus | None,
    contract_id: str | None,
    cursor: str | None,
    limit: int = PAGE,
) -> tuple[list[ClaimRow], str | None]:
    """A page of claims, oldest filed first (the review queue with `status=in_review`), and the
    cursor of the next page: the last claim's id."""
    query = select(ClaimRow)
    if status is not None:
        query = query.where(ClaimRow.status == status.value)
    if contract_id is not None:
        query = query.where(ClaimRow.contract_id == contract_id)
    return await oldest_first(session, query, ClaimRow, cursor, limit)


async def claim_events(session: AsyncSession, claim: ClaimRow, types: tuple[str, ...]) -> None:
    data = {
        "claim_id": claim.id,
        "contract_id": claim.contract_id,
        "product_id": claim.product_id,
        "reference": claim.reference,
        "status": claim.status,
        "reason": claim.reason,
        "incident_kind": claim.incident_kind,
        "incident_date": claim.incident_date.isoformat(),
        "covered_amount": {"amount": claim.covered_amount, "currency": claim.currency},
        "review_reasons": msgspec.json.decode(claim.review_reasons),
        "flags": msgspec.json.decode(claim.flags),
        "fulfilment": claim.fulfilment,
    }
    unit = await unit_of_work(session)
    for event_type in types:
        unit.emit(event_type, data, product_id=claim.product_id, contract_id=claim.contract_id)
