"""What an event endpoint may be: a URL that receives events only over HTTPS (plain HTTP only to
loopback, in development) at public addresses, checked when the endpoint is registered and again
at each delivery (`api.deliveries`); and the secret its deliveries are signed with.

Apart from the delivery job, so that a server worker, which registers endpoints but never
delivers, does not import the HTTP client that delivers (aiohttp: 7 MB and about 0.15 s of a
worker's start).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import re
import secrets
import socket
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class UnsafeUrl(ValueError):
    pass


# A DNS name (ASCII labels; an IDN in its xn-- form) or an IP address (IPv6 unbracketed by urlsplit).
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?|[0-9A-Fa-f:.]+"
)


async def check_url(url: str, *, allow_loopback: bool) -> None:
    """Raise `UnsafeUrl` unless the URL may receive events: HTTPS (plain HTTP only to loopback in
    development), and every address its host resolves to public."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:  # a port that is not one
        raise UnsafeUrl(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http") or not host or not _HOST.fullmatch(host):
        raise UnsafeUrl("an endpoint URL is https://host/path, the host a DNS name or an IP address")
    literal = _literal(host)  # an IP address needs no lookup
    addresses = {literal} if literal is not None else await _resolve(host, port)
    for address in addresses:
        refuse_unless_public(host, address, allow_loopback)
    if parts.scheme == "http" and not (allow_loopback and all(a.is_loopback for a in addresses)):
        raise UnsafeUrl("an endpoint URL must be https")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> set[IPAddress]:
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
        )
    except (OSError, UnicodeError, TimeoutError) as exc:
        raise UnsafeUrl(f"{host} does not resolve") from exc
    return {ipaddress.ip_address(info[4][0]) for info in infos}


def refuse_unless_public(host: str, address: IPAddress, allow_loopback: bool) -> None:
    if address.is_loopback and allow_loopback:
        return
    if not address.is_global or address.is_multicast:
        raise UnsafeUrl(f"{host} resolves to {address}, which is not a public address")
