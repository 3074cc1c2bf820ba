"""The simulator's inline connection runs a plain UPDATE it has seen before on the
driver's cursor: what it writes is what SQLAlchemy would have written (values converted
by their types), and a call SQLAlchemy would run differently (a name it adds to the SET
clause) is left to SQLAlchemy."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import bindparam, select, update

from persistence import Store
from persistence.backends.sqlite_inline import InlineSQLiteBackend, _RowCount
from persistence.tables import occurrences

SET_BEAT = (
    update(occurrences)
    .where(occurrences.c.incarnation_id == bindparam("inc"))
    .values(last_heartbeat_at=bindparam("at"))
)


async def test_a_plain_update_writes_what_sqlalchemy_would(tmp_path: Path) -> None:
    store = await Store.open(
        f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}", backend=InlineSQLiteBackend()
    )
    try:
        me = await store.register("occ-1", host="h", pid=1, protocol_version=1)
        results = []
        for at in (1_800_000_001.25, 1_800_000_002.5):  # first seen, then plain
            async with store.engine.begin() as conn:
                results.append(await conn.execute(SET_BEAT, {"inc": me.incarnation_id, "at": at}))
        assert not isinstance(results[0], _RowCount) and isinstance(results[1], _RowCount)
        assert [r.rowcount for r in results] == [1, 1]
        (member,) = await store.members()
        assert member.last_heartbeat_at == 1_800_000_002.5

        async with store.engine.begin() as conn:  # a SET column SQLAlchemy would add
            extra = await conn.execute(
                SET_BEAT, {"inc": me.incarnation_id, "at": 1_800_000_003.0, "host": "h2"}
            )
            host = await conn.scalar(select(occurrences.c.host))
        assert not isinstance(extra, _RowCount) and host == "h2"
    finally:
        await store.close()
