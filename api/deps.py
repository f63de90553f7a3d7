"""FastAPI dependencies shared by the routers: the engine, the business clock, the engine
config (read from ``app.state``) and a session committed on success."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlmodel import Session

from engine.infra.clock import Clock
from engine.routes.transitions import EngineConfig


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


def get_cfg(request: Request) -> EngineConfig:
    cfg: EngineConfig = request.app.state.cfg
    return cfg


def get_session(engine: Annotated[Engine, Depends(get_engine)]) -> Iterator[Session]:
    """A session for one request: the handler commits; anything else is rolled back."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


EngineDep = Annotated[Engine, Depends(get_engine)]
ClockDep = Annotated[Clock, Depends(get_clock)]
CfgDep = Annotated[EngineConfig, Depends(get_cfg)]
SessionDep = Annotated[Session, Depends(get_session)]
