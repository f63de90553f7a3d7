"""Writing loaded rows' changes now, with Core UPDATEs, instead of the ORM's flush.

A route transition changes a few rows it has loaded (the step, its request, the answer, the
route). The ORM's unit of work writes each with an UPDATE at the next flush, and its
bookkeeping cost more than the statement does. ``write_now`` sends the same UPDATEs — the
columns whose value changed, by primary key, on the session's connection, in its transaction;
on PostgreSQL several rows' in one statement (one data-modifying ``WITH`` query each) — and
marks the objects as the flush would: their values the loaded ones, nothing left to flush.
What it cannot write so (an object not yet inserted, a SQL expression as a value) it leaves
to the ORM's flush, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Executable, Table, bindparam, func, select, update
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.base import instance_state
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.types import TypeEngine

_PK = "pk_"


class _Shape:
    """A mapped class's table, its columns by attribute and its UPDATE by primary key (the
    SET clause is made of the columns given: SQLAlchemy compiles each set once)."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        table = mapper.local_table
        assert isinstance(table, Table) and len(mapper.tables) == 1
        self.table = table
        (pk,) = mapper.primary_key
        self.pk = pk
        self.pk_key = mapper.get_property_by_column(pk).key
        #: per attribute, its column's name and type
        self.columns: dict[str, tuple[str, TypeEngine[Any]]] = {
            prop.key: (str(prop.columns[0].key), prop.columns[0].type)
            for prop in mapper.column_attrs}
        self.update = update(table).where(pk == bindparam(_PK))


_SHAPES: dict[Mapper[Any], _Shape] = {}

#: One write: the object's state, its shape, the changed columns' values by name.
_Write = tuple[InstanceState[Any], _Shape, dict[str, Any]]

#: PostgreSQL's statements writing several rows at once, by their shapes and columns
#: (built once each: a transition writes the same few combinations)
_COMBINED: dict[tuple[tuple[Table, tuple[str, ...]], ...], Executable] = {}


def write_now(session: Session, *objs: object) -> None:
    """Write the objects' changed columns now and mark them saved, as a flush would: one
    UPDATE each that has any (on PostgreSQL one statement for them all). An UPDATE that
    matches no row raises ``StaleDataError``, as the flush does."""
    writes: list[_Write] = []
    for obj in objs:
        state: InstanceState[Any] = instance_state(obj)
        if not state.modified or not state.persistent or state.session is not session:
            continue  # unchanged, or not inserted yet: the ORM's flush inserts it
        write = _changes(state)
        if write is None:
            continue
        if write[2]:
            writes.append(write)
        else:  # set to the values it had: nothing to write
            state._commit_all(state.dict, session.identity_map)
    if not writes:
        return
    conn = session.connection()
    counts: Sequence[int]
    if len(writes) > 1 and conn.dialect.name == "postgresql":
        counts = conn.execute(_combined(writes), {
            f"w{n}_{name}": value for n, (_, _, params) in enumerate(writes)
            for name, value in params.items()}).one()
    else:
        counts = tuple(conn.execute(shape.update, params).rowcount
                       for _, shape, params in writes)
    for (state, _, params), count in zip(writes, counts, strict=True):
        if count != 1:
            raise StaleDataError(f"UPDATE of {state.mapper.class_.__name__} "
                                 f"{params[_PK]!r} matched no row")
        state._commit_all(state.dict, session.identity_map)  # as after a flush


def _changes(state: InstanceState[Any]) -> _Write | None:
    """The columns of the object whose value changed (with its primary key under ``pk_``;
    none: nothing changed), as the flush finds them; None: the ORM's flush must write it."""
    mapper = state.mapper
    shape = _SHAPES.get(mapper)
    if shape is None:
        shape = _SHAPES[mapper] = _Shape(mapper)
    values = state.dict
    params: dict[str, Any] = {}
    for key, old in state.committed_state.items():
        column = shape.columns.get(key)
        value = values.get(key)
        if column is None or key not in values or isinstance(value, ClauseElement) \
                or hasattr(value, "__clause_element__"):
            return None  # not a column, or a SQL expression: the ORM's flush writes it
        name, type_ = column
        if type_.compare_values(value, old) is not True:
            params[name] = value
    if params:
        params[_PK] = values[shape.pk_key]
    return state, shape, params


def _combined(writes: list[_Write]) -> Executable:
    """``WITH w0 AS (UPDATE … RETURNING 1), w1 AS (…) SELECT (count of w0), (count of w1)``
    for these shapes and columns (PostgreSQL): the rows' UPDATEs in one round trip."""
    key = tuple((shape.table, tuple(params)) for _, shape, params in writes)
    stmt = _COMBINED.get(key)
    if stmt is None:
        counts = []
        for n, (_, shape, params) in enumerate(writes):
            table = shape.table
            cte = (update(table)
                   .where(shape.pk == bindparam(f"w{n}_{_PK}", type_=shape.pk.type))
                   .values({name: bindparam(f"w{n}_{name}", type_=table.c[name].type)
                            for name in params if name != _PK})
                   .returning(shape.pk).cte(f"w{n}"))
            counts.append(select(func.count()).select_from(cte).scalar_subquery())
        stmt = _COMBINED[key] = select(*counts)
    return stmt
