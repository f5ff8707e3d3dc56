"""The load's linking session (ldm.load.linking.LinkingSession): the spine it keeps from batch to
batch is the spine a whole copy of the store would give, after every batch.

A real load of the committed sample on a real store, with a session that, each time it brings its
spine up to date, compares it with one prepared whole from the store at that moment.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path
from typing import ClassVar

import pytest

import ldm.load.loader
from ldm.feeds.spec import builtin_specs
from ldm.linkage.engine import prepare_spine
from ldm.linkage.working import SPINE
from ldm.load import evidence
from ldm.load.linking import LinkingSession
from ldm.load.loader import load_folder
from ldm.load.working import SPINE as COPIED
from ldm.pseudonymise.batch import pseudonymise_folder
from ldm.pseudonymise.keys import init_key
from ldm.store import upgrade
from models.feeds import FEEDS

REPO = Path(__file__).resolve().parent.parent


class Checked(LinkingSession):
    """A session that checks its spine against a whole one each time it brings it up to date."""

    # (how: whole, persons or as kept; persons replaced; share of the spine's persons written to since
    # the last call; rows differing from the whole spine; tables and views left by the batch before)
    calls: ClassVar[list[tuple[str, int, float, int, list[str]]]] = []

    def spine(self, store) -> int:
        left = [name for (name,) in self.work.execute(
            "select table_name from duckdb_tables() union all select view_name from duckdb_views() where not internal"
        ).fetchall() if name != SPINE]  # fmt: skip
        written = 0.0
        if self._written and not self._whole:
            sql = evidence.spine_persons_sql(self._written)
            written = store.execute(f"select count(*) from ({sql})").fetchall()[0][0] / self._persons
        self._replaced = 0
        rows = super().spine(store)
        with LinkingSession() as fresh:
            assert fresh.spine(store) == rows
            fresh.work.register("kept", self.work.sql(f"select * from {SPINE}").to_arrow_table())
            differ = fresh.work.execute(
                f"""select count(*) from (
                        (select * from kept except all select * from {SPINE})
                        union all (select * from {SPINE} except all select * from kept))"""
            ).fetchall()[0][0]
        Checked.calls.append((self.last, self._replaced, written, differ, left))
        return rows

    def _replace_written(self) -> bool:
        self._replaced = self.work.execute(f"select count(distinct person_id) from {COPIED}").fetchall()[0][0]
        return super()._replace_written()


@pytest.fixture(scope="module")
def checked_loads(tmp_path_factory) -> dict[str, list[tuple[str, int, float, int, list[str]]]]:
    """The checked calls of a first load of the sample, and of loading it again to replace every batch."""
    root = tmp_path_factory.mktemp("session")
    shutil.copytree(REPO / "sample_data" / "extracts", root / "extracts")
    key = init_key(root / "ldm.key")
    pseudonymise_folder(root / "extracts", root / "out", key, builtin_specs(), datetime.date(2025, 4, 1))
    upgrade(root / "store.duckdb")
    patch = pytest.MonkeyPatch()
    patch.setattr(ldm.load.loader, "LinkingSession", Checked)
    calls = {}
    try:
        for load, replace in (("first", False), ("replacing", True)):
            Checked.calls = []
            load_folder(root / "out", root / "store.duckdb", key, replace=replace)
            calls[load] = Checked.calls
    finally:
        patch.undo()
    return calls


@pytest.mark.parametrize("load", ["first", "replacing"])
def test_the_kept_spine_is_the_whole_spine_before_every_batch(checked_loads, load: str) -> None:
    calls = checked_loads[load]
    assert len(calls) == len(FEEDS) - 1, "every batch but the opt-out list links"
    assert [differ for _, _, _, differ, _ in calls] == [0] * len(calls)


@pytest.mark.parametrize("load", ["first", "replacing"])
def test_nothing_of_a_batch_is_left_but_the_spine(checked_loads, load: str) -> None:
    assert [left for *_, left in checked_loads[load]] == [[]] * len(checked_loads[load])


def test_batches_of_activity_replace_only_their_persons_rows(checked_loads) -> None:
    calls = checked_loads["first"]
    # The registrations found the persons: the spine is prepared whole for them and after them.
    assert [how for how, *_ in calls[:2]] == ["whole", "whole"]
    # Then a batch's persons' rows are replaced, unless it wrote to half the persons or more.
    for how, _, written, _, _ in calls[2:]:
        assert how == ("as kept" if not written else "whole" if written >= 0.5 else "persons")
    assert [replaced for how, replaced, *_ in calls if how == "persons" and replaced]
    assert [how for how, *_ in calls[2:] if how == "whole"]  # the sample has a batch of each kind


def test_a_person_without_a_spine_row_makes_the_spine_whole_again() -> None:
    with LinkingSession() as session:
        work = session.work
        copied = f"create temp table {COPIED} as select {{}}::bigint as person_id, {{!r}} as postcode_token"
        work.execute(copied.format(1, "T1"))
        prepare_spine(work, COPIED)
        work.execute(f"drop table {COPIED}")
        before = work.execute(f"select * from {SPINE} order by all").fetchall()
        work.execute(copied.format(2, "T2"))  # a new person: nothing replaced
        assert not session._replace_written()
        assert work.execute(f"select * from {SPINE} order by all").fetchall() == before
        work.execute(copied.format(1, "T3"))  # a known one: their rows replaced, their spine_row kept
        assert session._replace_written()
        assert work.execute(f"select spine_row, person_id, postcode_token from {SPINE}").fetchall() == [
            (1, 1, "T3")
        ]
