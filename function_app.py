"""Azure Functions entrypoint (v2 programming model): the HTTP API and the three timers. Thin on purpose.

Importing this module builds no container, reads no setting and opens no connection: the host indexes the
functions from it on every cold start, and the work belongs to the first invocation.
"""

from __future__ import annotations

import azure.functions as func

from shared.api.app import create_app
from shared.api.timers import handle_equity_snapshot_timer, handle_market_data_timer, handle_run_agents_timer
from shared.bootstrap import get_container
from shared.correlation import correlated

# Anonymous at the host: the read routes are public and the admin routes check Api__AdminKey themselves.
app = func.AsgiFunctionApp(app=create_app(get_container), http_auth_level=func.AuthLevel.ANONYMOUS)


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
