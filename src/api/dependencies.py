"""The app's services, given to handlers by Litestar's dependency injection, typed, as one.

A handler takes `services: Injected[Services]` and reads what it needs from it (`services.settings`,
`services.db`, `services.gateway`, `services.evidence_store`, `services.replay_seal`); its unit of
work, `db_session`, is built from the same `services` (`api.database.provide_session`). One
dependency, not five: Litestar resolves the dependencies of one level together in an anyio task
group whenever there are several, which cost a request 80–110 µs; with `services`, then
`db_session`, each level holds one and is awaited directly (`tests/api/test_dependencies.py` holds
every route to it).

`provide_services` reads the app's state when a request asks, never when the app is built: a test
replaces a service (`app.state.gateway = …`) on an app already built. This module is the only
place where handlers' services are read from `State`; guards, middleware, the edge and
`DirectCheck` hold their own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias, TypeVar

import msgspec
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import SkipValidation

if TYPE_CHECKING:
    # For the type checker only: `api.database` imports this module (its `provide_session` takes
    # `Services`), and nothing reads these annotations at run time (`Injected` is not validated).
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


class Services(msgspec.Struct, frozen=True):
    """The app's services, as a request finds them in the app's state."""

    settings: Settings
    db: Database
    gateway: Gateway
    evidence_store: EvidenceStore
    replay_seal: ReplaySeal


def provide_services(state: State) -> Services:
    """The app's services as they are now (registered as `services`, a plain read: no thread)."""
    return Services(
        settings=state.settings,
        db=state.db,
        gateway=state.gateway,
        evidence_store=state.evidence_store,
        replay_seal=state.replay_seal,
    )
