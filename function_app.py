"""Azure Functions entrypoint (v2 programming model): the HTTP API and the three timers. Thin on purpose.

Importing this module builds no container, reads no setting, opens no connection and does not even import
FastAPI: the host indexes the functions from it on every cold start, and the work belongs to the first
invocation (the timers never pay for the HTTP app; the HTTP function builds it on its first request).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from shared.api.lazy import AsgiApp, LazyAsgiApp
from shared.api.timers import handle_equity_snapshot_timer, handle_market_data_timer, handle_run_agents_timer
from shared.correlation import correlated

if TYPE_CHECKING:
    from shared.bootstrap import Container


def get_container() -> Container:
    from shared.bootstrap import get_container as process_container

    return process_container()


def build_http_app() -> AsgiApp:
    from shared.api.app import create_app

    return create_app(get_container)


# Anonymous at the host: the read routes are public and the admin routes check Api__AdminKey themselves.
app = func.AsgiFunctionApp(app=LazyAsgiApp(build_http_app), http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(arg_name="timer", schedule="%Schedules__MarketData%", run_on_startup=False, use_monitor=True)
def market_data_timer(timer: func.TimerRequest, context: func.Context) -> None:
    with correlated(invocation_id=context.invocation_id):
        handle_market_data_timer(timer, get_container())


@app.timer_trigger(arg_name="timer", schedule="%Schedules__RunAgents%", run_on_startup=False, use_monitor=True)
async def run_agents_timer(timer: func.TimerRequest, context: func.Context) -> None:
    with correlated(invocation_id=context.invocation_id):
        await handle_run_agents_timer(timer, get_container())


@app.timer_trigger(arg_name="timer", schedule="%Schedules__EquitySnapshot%", run_on_startup=False, use_monitor=True)
def equity_snapshot_timer(timer: func.TimerRequest, context: func.Context) -> None:
    with correlated(invocation_id=context.invocation_id):
        handle_equity_snapshot_timer(timer, get_container())
