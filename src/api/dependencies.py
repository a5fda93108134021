"""The app's services, given to handlers by Litestar's dependency injection, typed.

A handler names what it needs, by parameter name and type (`settings: Injected[Settings]`,
`db: Injected[Database]`, `gateway: Injected[Gateway]`, `evidence_store: Injected[EvidenceStore]`,
`replay_seal: Injected[ReplaySeal]`); `DEPENDENCIES` are the app's providers for them. Each
provider reads the app's state when a request asks, never when the app is built: a test replaces
a service (`app.state.gateway = …`) on an app already built. This module is the only place
where handlers' services are read from `State`; guards, middleware, the edge and `DirectCheck`
hold their own.
"""

from __future__ import annotations

from typing import TypeAlias, TypeVar

from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation

from api.database import Database
from api.idempotency import ReplaySeal
from api.settings import Settings
from billing.gateway import Gateway
from entitlements.claims.evidence import EvidenceStore

T = TypeVar("T")

# Injected by the parameter's name, and not validated: the value is the app's own object, and
# the Protocols (`Gateway`, `EvidenceStore`) admit no isinstance check (a test's stand-in for the
# gateway is no subclass of anything either).
Injected: TypeAlias = NamedDependency[SkipValidation[T]]


def provide_settings(state: State) -> Settings:
    settings: Settings = state.settings
    return settings


def provide_db(state: State) -> Database:
    db: Database = state.db
    return db


def provide_gateway(state: State) -> Gateway:
    gateway: Gateway = state.gateway
    return gateway


def provide_evidence_store(state: State) -> EvidenceStore:
    store: EvidenceStore = state.evidence_store
    return store


def provide_replay_seal(state: State) -> ReplaySeal:
    seal: ReplaySeal = state.replay_seal
    return seal


def service_dependencies() -> dict[str, Provide]:
    """The app's providers of its services (plain reads: no thread, nothing cached)."""
    return {
        "settings": Provide(provide_settings, sync_to_thread=False),
        "db": Provide(provide_db, sync_to_thread=False),
        "gateway": Provide(provide_gateway, sync_to_thread=False),
        "evidence_store": Provide(provide_evidence_store, sync_to_thread=False),
        "replay_seal": Provide(provide_replay_seal, sync_to_thread=False),
    }
