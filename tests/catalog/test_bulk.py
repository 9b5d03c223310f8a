"""Multi-row statements write exactly what one statement per row would, on every database."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, Column, Float, Integer, MetaData, String, Table, create_engine, select

from xwpy.server.catalog import bulk

meta = MetaData()
t = Table("t", meta, Column("id", Integer, primary_key=True), Column("a", String(20)), Column("b", Integer),
          Column("c", Float), Column("j", JSON))

# No lone surrogates: the protocol refuses them (protocol.Str), so no catalog row holds one.
values_ = st.fixed_dictionaries({}, optional={
    "a": st.none() | st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=10), "b": st.none() | st.integers(-2**31, 2**31 - 1),
    "c": st.none() | st.floats(allow_nan=False, allow_infinity=False), "j": st.lists(st.integers(), max_size=3),
})


def test_round_trip(catalog_url):
    eng = create_engine(catalog_url)
    meta.create_all(eng)

    @settings(max_examples=40, deadline=None)
    @given(st.lists(values_, max_size=600), st.data())
    def run(rows, data):
        with eng.begin() as conn:
            conn.execute(t.delete())
            bulk.insert_rows(conn, t, [{"id": i + 1, **r} for i, r in enumerate(rows)])
            expect = {i + 1: {"a": None, "b": None, "c": None, "j": None, **r} for i, r in enumerate(rows)}
            if rows:
                ids = data.draw(st.lists(st.sampled_from(sorted(expect)), unique=True))
                changes = {i: data.draw(values_) for i in ids}
                changes = {i: f for i, f in changes.items() if f}
                bulk.update_rows(conn, t, changes)
                for i, f in changes.items():
                    expect[i].update(f)
            got = {r.id: {"a": r.a, "b": r.b, "c": r.c, "j": r.j} for r in conn.execute(select(t))}
        assert got == expect

    try:
        run()
    finally:
        eng.dispose()


def test_chunks_are_powers_of_two():
    for n in range(0, 2000):
        sizes = bulk._chunks(n)
        assert sum(sizes) == n and all(s & (s - 1) == 0 and s <= bulk.MAX_ROWS for s in sizes)


def test_skip_existing_and_select_by_ids(catalog_url):
    eng = create_engine(catalog_url)
    meta.create_all(eng)
    try:
        with eng.begin() as conn:
            conn.execute(t.delete())
            bulk.insert_rows(conn, t, [{"id": i, "a": "first", "j": [i]} for i in range(1, 301)])
            bulk.insert_rows(conn, t, [{"id": i, "a": "second", "j": []} for i in range(250, 351)], skip_existing=True)
            rows = bulk.select_by_ids(conn, t, ("a", "j"), list(range(0, 400, 7)))
        assert sorted(rows) == [(i, "first" if i <= 300 else "second", [i] if i <= 300 else []) for i in range(7, 351, 7)]
    finally:
        eng.dispose()


guarded = Table("guarded", MetaData(), Column("id", Integer, primary_key=True), Column("status", String(10)),
                Column("b", Integer))
STATES = ("PENDING", "RUNNING", "COMPLETED", "ERROR")


def test_guarded_update_applies_only_to_rows_in_the_states_expected(catalog_url):
    """A conditional update (the scheduler's) changes every row, or none when one of them is not in
    a state it may change (a late ERROR never overwrites a COMPLETED): StaleWrite, rolled back."""
    eng = create_engine(catalog_url)
    guarded.metadata.create_all(eng)
    allowed = ("PENDING", "RUNNING")

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.sampled_from(STATES), min_size=1, max_size=300), st.data())
    def run(states, data):
        with eng.begin() as conn:
            conn.execute(guarded.delete())
            bulk.insert_rows(conn, guarded, [{"id": i + 1, "status": s, "b": 0} for i, s in enumerate(states)])
        ids = data.draw(st.lists(st.integers(1, len(states)), unique=True, min_size=1))
        new = data.draw(st.sampled_from(STATES))
        stale = any(states[i - 1] not in allowed for i in ids)
        try:
            with eng.begin() as conn:
                bulk.update_rows(conn, guarded, {i: {"status": new, "b": i} for i in ids},
                                 guard=lambda keys: (("status", allowed),))
        except bulk.StaleWrite:
            assert stale
        else:
            assert not stale
        with eng.connect() as conn:
            got = {r.id: (r.status, r.b) for r in conn.execute(select(guarded))}
        expect = {i + 1: (s, 0) for i, s in enumerate(states)}
        if not stale:
            expect.update({i: (new, i) for i in ids})
        assert got == expect

    try:
        run()
    finally:
        eng.dispose()
