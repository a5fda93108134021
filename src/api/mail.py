"""Email to the customer, in their language: the welcome with the contract's terms, a renewal's
notice, a failed payment, a fixed term's end, a request for evidence, a satisfaction request
after a service order closes or a service is given (with a single-use link to the rating page),
and a lead (marketing, sent only with consent).

An event of those kinds enqueues `email.send` in the unit of work that writes it (the outbox);
the job composes the letter from the record as it is then, in the customer's language and time
zone, plain text and HTML (right to left for Arabic), and sends it through SMTP (`SMTP_URL`), or,
with none set, writes it as an `.eml` file under `var/outbox/`. Delivery is at least once: a job
retried sends the letter again with the same `Message-ID` (`<event id@domain>`), so a resend is
known for the same message. A marketing letter carries `List-Unsubscribe` and
`List-Unsubscribe-Post` (RFC 8058), pointing at our own unsubscribe page; a service letter none.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import html
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import structlog
from babel import Locale
from sqlalchemy import select

from api.database import Database
from api.files import write_private
from api.links import portal_link, rating_link
from api.settings import Settings
from api.upload_links import upload_link
from entitlements.catalog import DEFAULT_LOCALE, BenefitKind, Plan
from entitlements.clock import utcnow
from entitlements.identifiers import mask_email
from entitlements.localization import fill, format_day, format_money
from entitlements.money import Money
from entitlements.satisfaction.rules import Subject
from entitlements.satisfaction.service import request_for
from entitlements.store.plans import PlanRepository, plan_version
from entitlements.store.resources import resources_for
from entitlements.store.tables import (
    BenefitRedemptionRow,
    ContractRow,
    CoveragePeriodRow,
    CustomerRow,
    EventRow,
    ProductRow,
    ServiceOrderRow,
)
from entitlements.store.unit_of_work import unit_of_work
from entitlements.summary_texts import BENEFITS, EMAILS
from entitlements.terms import Topic
from entitlements.translations import translate
from entitlements.zones import UTC, local_day

log = structlog.get_logger("api.mail")

# Event type (`jobs.EMAIL_EVENTS`) → the letter it sends; marketing letters need consent.
LETTERS = {
    "contract.activated": "activated",
    "renewal.upcoming": "renewal",
    "payment.failed": "payment_failed",
    "coverage.ending": "ending",
    "offer.lead": "lead",
    "claim.info_requested": "info_requested",
    "service_order.closed": "satisfaction",  # a repair or a visit done: how did it go?
    "benefit.redeemed": "satisfaction",  # a service given (one that needs a visit asks when it closes)
    "contract.getting_started": "getting_started",  # the plan's services, the product's training
}
MARKETING = frozenset({"lead"})
# Letters about a plan the customer holds end with the link to their portal.
PORTAL_LETTERS = frozenset({"activated", "renewal", "payment_failed", "ending", "getting_started"})


class Letter(msgspec.Struct, frozen=True):
    to: str
    locale: str
    subject: str
    paragraphs: list[str]
    items: list[str]  # a list under the paragraphs (the plan's rule clauses)
    closing: list[str]
    message_id: str
    unsubscribe: str | None = None  # marketing: the one-click URL


def _say(locale: str, key: str, **values: str) -> str:
    return fill(translate(locale, key, EMAILS[key]), **values)


def compose(
    kind: str,
    *,
    event_id: str,
    locale: str,
    to: str,
    name: str,
    plan_name: str,
    domain: str,
    values: dict[str, str],
    clauses: Sequence[str] = (),
    unsubscribe: str | None = None,
    resources: Sequence[tuple[str, str]] = (),
) -> Letter:
    """The letter of `kind` in `locale` from the values already formatted for it."""
    greeting = _say(locale, "email_greeting", name=name)
    plan = {"plan": plan_name}
    items: list[str] = []
    closing: list[str] = []
    if kind == "activated":
        subject = _say(locale, "email_activated_subject", **plan)
        body = [_say(locale, "email_activated_body", **plan, end=values["end"], contract=values["contract"])]
        if clauses:
            body.append(_say(locale, "email_activated_terms"))
            items = list(clauses)
    elif kind == "renewal":
        subject = _say(locale, "email_renewal_subject", **plan, date=values["date"])
        body = [_say(locale, "email_renewal_body", **plan, date=values["date"], amount=values["amount"])]
    elif kind == "payment_failed":
        subject = _say(locale, "email_payment_failed_subject", **plan)
        body = [_say(locale, "email_payment_failed_body", **plan)]
        if values.get("link"):
            body.append(_say(locale, "email_payment_failed_link", link=values["link"]))
    elif kind == "ending":
        subject = _say(locale, "email_ending_subject", **plan, date=values["date"])
        body = [_say(locale, "email_ending_body", **plan, date=values["date"])]
        if values.get("offers"):
            body.append(_say(locale, "email_ending_offers"))
    elif kind == "getting_started":
        subject = _say(locale, "email_getting_started_subject", **plan)
        body = [_say(locale, "email_getting_started_services", **plan)] if clauses else []
        items = list(clauses)
        if resources:
            closing.append(_say(locale, "email_getting_started_training"))
            closing += [f"{title}: {url}" for title, url in resources]
    elif kind == "satisfaction":
        subject = _say(locale, "email_satisfaction_subject")
        done = (
            _say(locale, "email_satisfaction_service", service=values["service"], **plan)
            if values.get("service")
            else _say(locale, "email_satisfaction_repair", **plan)
        )
        body = [done, _say(locale, "email_satisfaction_ask", date=values["date"], link=values["link"])]
    elif kind == "info_requested":
        subject = _say(locale, "email_info_subject")
        what = _say(locale, f"evidence_{values['what']}")
        body = [
            _say(locale, "email_info_body", **plan, what=what),
            _say(locale, "email_info_link", date=values["date"], link=values["link"]),
        ]
    else:  # lead
        subject = _say(locale, "email_lead_subject")
        body = [_say(locale, "email_lead_body", date=values["date"])]
        if values.get("link"):
            body.append(_say(locale, "email_lead_link", link=values["link"]))
        if unsubscribe:
            closing.append(_say(locale, "email_lead_unsubscribe", link=unsubscribe))
    if values.get("portal"):
        closing.append(_say(locale, "email_portal_link", link=values["portal"]))
    return Letter(
        to,
        locale,
        subject,
        [greeting, *body],
        items,
        closing,
        f"<{event_id}@{domain}>",
        unsubscribe if kind in MARKETING else None,
    )


def right_to_left(locale: str) -> bool:
    return bool(Locale.parse(locale).character_order == "right-to-left")


def message(letter: Letter, sender: str, at: dt.datetime) -> EmailMessage:
    """The letter as MIME: plain text and HTML alternatives."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = letter.to
    mail["Subject"] = letter.subject
    mail["Message-ID"] = letter.message_id
    mail["Date"] = format_datetime(at)
    if letter.unsubscribe is not None:
        mail["List-Unsubscribe"] = f"<{letter.unsubscribe}>"
        mail["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = "\n\n".join(
        [
            *letter.paragraphs,
            *(["\n".join(f"- {item}" for item in letter.items)] if letter.items else []),
            *letter.closing,
        ]
    )
    mail.set_content(text + "\n")
    direction = "rtl" if right_to_left(letter.locale) else "ltr"
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in letter.paragraphs)
    items = "".join(f"<li>{html.escape(item)}</li>" for item in letter.items)
    closing = "".join(f'<p style="color:#555;font-size:90%">{html.escape(p)}</p>' for p in letter.closing)
    body = (
        f'<!doctype html><html lang="{letter.locale}" dir="{direction}"><head><meta charset="utf-8">'
        f"<title>{html.escape(letter.subject)}</title></head>"
        f"<body style=\"font-family:'Noto Sans',Arial,sans-serif;line-height:1.5\">"
        f"{paragraphs}{f'<ul>{items}</ul>' if items else ''}{closing}</body></html>"
    )
    mail.add_alternative(body, subtype="html")
    mail["Content-Language"] = letter.locale  # after the parts: setting content clears Content-*
    return mail


# --- the unsubscribe link ------------------------------------------------------------------------


def _unsubscribe_key(settings: Settings) -> bytes:
    return hashlib.sha256(b"coverline unsubscribe\0" + settings.replay_key.encode()).digest()


def unsubscribe_token(settings: Settings, customer_id: str) -> str:
    mac = hmac.new(_unsubscribe_key(settings), customer_id.encode(), hashlib.sha256).digest()[:18]
    return f"{customer_id}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"


def unsubscribed_customer(settings: Settings, token: str) -> str | None:
    """The customer a token names, or None when it was not made by us."""
    customer_id, _, _ = token.partition(".")
    if not customer_id or not token.isascii():
        return None
    return customer_id if hmac.compare_digest(token, unsubscribe_token(settings, customer_id)) else None


# --- the job -------------------------------------------------------------------------------------


async def send_for_event(db: Database, settings: Settings, event_id: str) -> None:
    """Compose and send the letter an event asks for (nothing when the customer has no email
    or, for marketing, no consent)."""
    now = utcnow()
    async with db.sessions() as session:
        event = await session.get(EventRow, event_id)
        if event is None or event.type not in LETTERS:
            return
        kind = LETTERS[event.type]
        data: dict[str, Any] = msgspec.json.decode(event.data)
        contract = await session.get(ContractRow, event.contract_id) if event.contract_id else None
        customer_id = contract.customer_id if contract else data.get("customer_id")
        customer = await session.get(CustomerRow, customer_id) if customer_id else None
        if customer is None or not customer.email:
            return
        if kind in MARKETING and not customer.marketing_consent:
            log.info("marketing letter withheld: no consent", event_id=event_id, customer_id=customer.id)
            return
        locale, zone = customer.locale or DEFAULT_LOCALE, customer.time_zone or UTC
        plan: Plan | None = None
        clauses: list[str] = []
        resources: list[tuple[str, str]] = []
        values: dict[str, str] = {}
        if contract is not None:
            plan = await plan_version(await unit_of_work(session), contract.plan_code, contract.plan_version)
            values["contract"] = contract.id
            values["amount"] = format_money(Money(contract.price_amount, contract.currency), locale)
            if plan is not None and kind in ("activated", "getting_started"):
                terms = await PlanRepository(session).terms(plan)
                rendered = terms.get(locale) or terms[DEFAULT_LOCALE]
                clauses = [
                    c.text
                    for c in rendered.get(contract.currency, [])
                    if kind == "activated" or c.topic in (Topic.BENEFITS, Topic.SUPPORT)
                ]
            if kind == "getting_started":
                product = await session.get(ProductRow, contract.product_id)
                found = await resources_for(session, product.category, locale) if product else []
                resources = [(r.title, r.url) for r in found]
            ends = await session.scalar(
                select(CoveragePeriodRow.ends_at)
                .where(CoveragePeriodRow.contract_id == contract.id)
                .order_by(CoveragePeriodRow.ends_at.desc())
                .limit(1)
            )
            if ends is not None:
                values["end"] = format_day(local_day(ends, zone), locale)
    day = data.get("renews_at") or data.get("ends_at") or data.get("expires_at")
    if day:
        values["date"] = format_day(local_day(dt.datetime.fromisoformat(day), zone), locale)
    values.setdefault("end", values.get("date", ""))
    values["link"] = data.get("hosted_invoice_url") or data.get("url") or ""
    if kind == "satisfaction":
        asked = await _satisfaction(db, settings, event.type, data, now)
        if asked is None:
            return
        rating, expires_at, service = asked
        values |= {"link": rating, "date": format_day(local_day(expires_at, zone), locale)}
        if service is not None:
            values["service"] = translate(locale, "benefit", BENEFITS[service])
    # The links are issued as of the event, so a job retried sends the same letter word for word.
    issued = event.created_at
    if kind == "info_requested":  # a link of its own
        link = upload_link(settings, data["claim_id"], issued)
        values |= {"link": link.url, "date": format_day(local_day(link.expires_at, zone), locale)}
        values["what"] = data.get("reason") or "description"
    if data.get("offers"):
        values["offers"] = "yes"
    if kind in PORTAL_LETTERS:  # the customer's own page, from every letter about their plan
        values["portal"] = portal_link(settings, customer.id, issued).url
    unsubscribe = None
    if kind in MARKETING:
        unsubscribe = (
            f"{settings.public_url.rstrip('/')}/v1/unsubscribe/{unsubscribe_token(settings, customer.id)}"
        )
    letter = compose(
        kind,
        event_id=event_id,
        locale=locale,
        to=customer.email,
        name=customer.name,
        plan_name=plan.text(locale).name if plan else "",
        domain=_domain(settings.mail_from),
        values=values,
        clauses=clauses,
        unsubscribe=unsubscribe,
        resources=resources,
    )
    await send(settings, message(letter, settings.mail_from, now), event_id)


async def _satisfaction(
    db: Database, settings: Settings, event_type: str, data: dict[str, Any], now: dt.datetime
) -> tuple[str, dt.datetime, BenefitKind | None] | None:
    """The rating link for what the event says was done, its expiry, and the included service it
    was (None: a repair); None when there is nothing to ask (a service whose visit will ask when
    it closes, or a request already answered)."""
    if event_type == "benefit.redeemed":
        subject, subject_id = Subject.REDEMPTION, data["redemption_id"]
    else:
        subject, subject_id = Subject.SERVICE_ORDER, data["service_order_id"]
    async with db.sessions() as session, session.begin():
        service: BenefitKind | None = None
        if subject is Subject.REDEMPTION:
            service = BenefitKind(data["kind"])
            if await session.scalar(
                select(ServiceOrderRow.id).where(ServiceOrderRow.redemption_id == subject_id)
            ):
                return None
        elif data.get("redemption_id"):
            redemption = await session.get(BenefitRedemptionRow, data["redemption_id"])
            service = BenefitKind(redemption.kind) if redemption else None
        request = await request_for(
            session, subject, subject_id, now=now, days=settings.satisfaction_link_days
        )
    if request is None or request.answered_at is not None:
        return None
    return rating_link(settings, request.id, request.expires_at), request.expires_at, service


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.partition("@")[2] or "coverline.invalid"


async def send(settings: Settings, mail: EmailMessage, event_id: str) -> None:
    if settings.smtp_url is None:
        outbox = settings.var_dir / "outbox"
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / f"{event_id}.eml"
        write_private(path, bytes(mail))
        log.info("letter written", path=str(path), to=mask_email(str(mail["To"])))
        return
    await asyncio.to_thread(_smtp_send, settings.smtp_url, mail)
    # Logs hold no personal data: the address masked, as a check shows it.
    log.info("letter sent", to=mask_email(str(mail["To"])), message_id=mail["Message-ID"])


def _smtp_send(url: str, mail: EmailMessage) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port
    timeout, tls = 30, ssl.create_default_context()
    if parts.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout, context=tls)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=timeout)
    with client:
        client.ehlo()
        if parts.scheme == "smtp" and client.has_extn("starttls"):
            client.starttls(context=tls)
        if parts.username:
            client.login(unquote(parts.username), unquote(parts.password or ""))
        client.send_message(mail)
