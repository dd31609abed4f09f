"""The app's typed state: what `create_app` and its lifespan hand to routes and pages.

One attribute on `app.state` (`amogate`), read through `state_of` (and `api/deps.py` for
routes), instead of loose attributes looked up by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from amogate.access.admin import AdminAccess
from amogate.access.keys import ApiKeyAuthenticator
from amogate.errors import ServiceUnavailable
from amogate.metrics import GatewayMetrics
from amogate.runtime import Gateway
from amogate.settings import Settings

STARTING = "The gateway is starting"


@dataclass
class AppState:
    settings: Settings
    authenticator: ApiKeyAuthenticator
    metrics: GatewayMetrics
    admin_access: AdminAccess
    run_worker: bool = True  # `amogate serve --no-worker` / AMOGATE_RUN_WORKER=0: False
    gateway: Gateway | None = None  # set by the lifespan while the app runs

    def running(self) -> Gateway:
        if self.gateway is None:
            raise ServiceUnavailable(STARTING)
        return self.gateway


def install(app: Starlette, state: AppState) -> None:
    app.state.amogate = state


def state_of(app: Starlette) -> AppState:
    state = app.state.amogate
    assert isinstance(state, AppState)
    return state
