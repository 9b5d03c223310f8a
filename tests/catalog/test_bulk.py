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
