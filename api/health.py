"""Liveness, readiness and metrics endpoints for the operator (issue 13)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from ops import metrics, readiness

router = APIRouter(tags=["ops"])


@router.get("/health", summary="Liveness (kept for existing probes; same as /health/live)")
@router.get("/health/live", summary="Liveness: the process answers")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: database reachable, schema at head, in "
            "production the clock real; Prefect and the processes' heartbeats reported",
            responses={503: {"description": "not ready: a required check failed"}})
async def ready(request: Request) -> JSONResponse:
    state = request.app.state
    result = await run_in_threadpool(readiness.check, state.engine, state.settings)
    return JSONResponse(result.as_dict(), status_code=200 if result.ready else 503)


@router.get("/metrics", summary="Prometheus metrics (no label carries a route, person or "
            "request id)", response_class=Response)
async def prometheus(request: Request) -> Response:
    state = request.app.state
    body, content_type = await run_in_threadpool(
        metrics.exposition, state.read_engine, state.clock, state.settings.heartbeat_seconds)
    return Response(body, media_type=content_type)


