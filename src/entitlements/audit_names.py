"""Audit actions, so the log speaks one vocabulary.

An action is one of these, or a status an entity moved into (a contract's, a claim's, a service
order's, a redemption's): those are enums of their own, and the audit writer takes any of them.
"""

from enum import StrEnum


class Action(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    OPENED = "opened"
    TRANSFERRED = "transferred"
    VOIDED = "voided"
    AGENT_ACTION = "agent_action"  # what an agent did in the console, with their name
    ERASED = "erased"  # a person erased: their name, email, phone and external ref tombstoned
    # A contract's payments, as Stripe reports them.
    PAID = "paid"
    PAYMENT_DECLINED = "payment_declined"  # a checkout's attempt refused
    PAYMENT_FAILED = "payment_failed"  # a first payment refused on the page
    PAYMENT_ACTION_REQUIRED = "payment_action_required"  # a renewal awaits 3-D Secure
    RENEWAL_NOTICE = "renewal_notice"
    DUPLICATE_PAYMENT = "duplicate_payment"
    LATE_PAYMENT = "late_payment"
    MISMATCHED_PAYMENT = "mismatched_payment"
    REFUNDED = "refunded"
    # A cancellation's refund that no Stripe payment could carry back (one recorded by hand).
    REFUND_OUTSTANDING = "refund_outstanding"
    DISPUTED = "disputed"
    DISPUTE_WON = "dispute_won"
    DISPUTE_LOST = "dispute_lost"
    DISPUTE_CLOSED = "dispute_closed"
    # A contract's claims, each moving into a status (`claim_moved`).
    CLAIM_IN_REVIEW = "claim_in_review"
    CLAIM_INFO_REQUESTED = "claim_info_requested"
    CLAIM_APPROVED = "claim_approved"
    CLAIM_DENIED = "claim_denied"
    CLAIM_FULFILLED = "claim_fulfilled"
    CLAIM_VOIDED = "claim_voided"
    # Claims and their repairs.
    EVIDENCE = "evidence"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    ESTIMATE_APPROVED = "estimate_approved"
    FULFIL = "fulfil"  # a reviewer chose how an approved claim is fulfilled
    FULFILLED = "fulfilled"
    REPLACEMENT_DUE = "replacement_due"  # a repair that could not be done: a replacement is owed
    BENEFIT_REDEEMED = "benefit_redeemed"
    BENEFIT_VOIDED = "benefit_voided"
    ANSWERED = "answered"


def claim_moved(status: str) -> Action:
    """The contract's entry for one of its claims moving into `status`."""
    return Action(f"claim_{status}")
