"""The jobs that units of work enqueue, by name: each runs after its unit commits
(`coverline worker`, retried with backoff), because it reaches the network or can wait."""

# A customer's name or email changed; payload: the customer's id. The payment gateway's copy
# (Stripe's Customer, on receipts and invoices) is brought up to date from the row as it is then.
CUSTOMER_CHANGED = "customer.changed"
# A cancelled contract's subscription, which the cancellation could not stop at once; payload:
# {"contract_id", "subscription"}.
STOP_SUBSCRIPTION = "subscription.stop"
# Stored replies to `Idempotency-Key` requests past their time to live (a scheduled job).
PURGE_IDEMPOTENT_REPLIES = "idempotency.purge"
# Rate-limit buckets untouched long enough to be full again, forgotten (a scheduled job): a
# publishable key gets one per client address.
FORGET_RATE_BUCKETS = "rate_limits.forget"
# The job queue's log past a day, forgotten (a scheduled job).
FORGET_JOB_LOG = "queue.log.forget"
# A payment that buys nothing (a duplicate, or one for an abandoned contract), refunded in
# full; payload: `billing.unwanted.UnwantedRefund`.
REFUND_UNWANTED = "payment.refund_unwanted"
# Pending contracts whose offer expired become abandoned (a scheduled job, each minute).
ABANDON_CHECKOUTS = "checkout.abandon"
# An abandoned checkout's Stripe objects, let go; payload: `billing.abandonment.Release`.
RELEASE_CHECKOUT = "checkout.release"
# Renewal reminders, fixed terms' ends and leads for products bought without a plan, each sent
# once (a scheduled job; `entitlements.outreach`).
OUTREACH = "outreach.sweep"
# A letter to the customer for an event of these types; payload: the event's id (`api.mail`).
SEND_EMAIL = "email.send"
# Evidence files no row names (their unit of work failed after the file was written): deleted.
SWEEP_EVIDENCE = "evidence.sweep"
EMAIL_EVENTS = frozenset(
    {
        "contract.activated",
        "renewal.upcoming",
        "payment.failed",
        "coverage.ending",
        "offer.lead",
        "claim.info_requested",  # the customer's upload link
        "service_order.closed",  # a satisfaction request
        "benefit.redeemed",  # a satisfaction request
        "contract.getting_started",  # the plan's services and the product's training
    }
)
