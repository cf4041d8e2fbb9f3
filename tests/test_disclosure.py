"""Disclosure control of counts derived from patient-level data, tried the way someone with the serving file would.

Two kinds of test:
- on the bundled samples' serving database, every served count obeys its publisher's rule (HES in the acute
  setting, MHSDS in mental health) and, for every pair of served tables that share a grain and a breakdown
  (a trust's discharges and its deprivation quintiles; a collaborative's pooled figures and its members', on
  both membership bases), the total minus its visible parts never falls in the suppressed range and never
  isolates a single suppressed part;
- a property test: the complementary-suppression macro itself (compiled by dbt from macros/disclosure.sql,
  exactly as the marts use it) on tens of thousands of random tables of small cells, checked against an
  attacker who knows every shown figure and even the unrounded values behind them.
"""

from __future__ import annotations

import os

import duckdb
import numpy as np
import pytest
import yaml

from orchestration.resources import DBT_PROJECT_DIR

RULES: dict[str, dict] = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["disclosure_rules"]

LOS_COUNT_COLUMNS = {
    "fct_los_provider_month": ["discharges", "bed_days", "long_stay_discharges_21plus"],
    "fct_los_inequality_month": ["discharges"],
}


def _hidden_by_rule(n: int, setting: str) -> bool:
    rule = RULES[setting]
    return 1 <= n <= rule["max_suppressed"] or (n == 0 and rule["zero_suppressed"])


def _round5(n: int) -> int:
    return 5 * round(n / 5)


def test_the_rules_are_the_publishers():
    # NHS England's HES/ECDS method (acute) and its MHSDS monthly publication (mental health): README.
    assert RULES["acute"] == {"max_suppressed": 7, "zero_suppressed": False, "percent_decimals": 1}
    assert RULES["mental_health"] == {"max_suppressed": 4, "zero_suppressed": True, "percent_decimals": 0}


def test_every_served_length_of_stay_count_follows_its_rule_and_is_rounded(serving):
    for table, columns in LOS_COUNT_COLUMNS.items():
        for column in columns:
            for setting in RULES:
                rows = serving.execute(
                    f"select {column} from {table} where setting = ? and {column} is not null", [setting]
                ).fetchall()
                assert rows, f"{table}.{column} has no {setting} values: the test would prove nothing"
                small = [v for (v,) in rows if _hidden_by_rule(v, setting)]
                assert small == [], f"{table}.{column} ({setting}) serves counts its rule suppresses: {small[:5]}"
                unrounded = [v for (v,) in rows if v % 5]
                assert unrounded == [], f"{table}.{column} ({setting}) serves unrounded counts: {unrounded[:5]}"
    # the collaborative table's counts (numerators and denominators of the los_* metrics, and bed days)
    rows = serving.execute(
        """
        select org.org_type, fact.numerator, fact.denominator
        from fct_collaborative_metric_month as fact
        inner join dim_organisation as org on fact.org_code = org.org_code
        where fact.metric_code like 'los_%' and org.org_type in ('acute', 'mental_health')
        """
    ).fetchall()
    assert rows
    for setting, *counts in rows:
        for value in counts:
            if value is not None:
                assert not _hidden_by_rule(int(value), setting) and value % 5 == 0, (setting, value)
    # and the samples do exercise every kind of suppression
    reasons = dict(
        serving.execute("select suppression_reason, count(*) from fct_los_inequality_month group by 1").fetchall()
    )
    assert reasons.get("small_count", 0) > 0 and reasons.get("complementary", 0) > 0 and reasons.get("zero", 0) > 0


def test_a_trusts_total_minus_its_visible_quintiles_never_reveals_a_suppressed_one(serving):
    groups = serving.execute(
        """
        select
            total.setting, total.period_month, total.org_code, total.discharges,
            sum(cell.discharges) as visible,
            count(*) filter (where cell.is_suppressed) as hidden,
            count(*) as cells
        from fct_los_provider_month as total
        inner join fct_los_inequality_month as cell
            using (period_month, org_code, setting)
        where not total.is_suppressed
        group by all
        """
    ).fetchall()
    assert groups
    with_hidden = 0
    for setting, month, org, total, visible, hidden, cells in groups:
        assert cells == 6, (org, month, setting)  # every quintile is served, zeros included
        if hidden == 0:
            continue
        with_hidden += 1
        difference = total - (visible or 0)
        assert hidden >= 2, f"{org} {month} {setting}: a single suppressed quintile is isolated by subtraction"
        assert not 1 <= difference <= RULES[setting]["max_suppressed"], (
            f"{org} {month} {setting}: total {total} minus the shown quintiles is {difference}, a suppressed count"
        )
    assert with_hidden > 100
    # a suppressed trust-month serves no quintile at all
    leaked = serving.execute(
        """
        select count(*) from fct_los_provider_month as total
        inner join fct_los_inequality_month as cell using (period_month, org_code, setting)
        where total.is_suppressed and (not cell.is_suppressed or cell.discharges is not null)
        """
    ).fetchone()[0]
    assert leaked == 0


@pytest.mark.parametrize("column", ["numerator", "denominator"])
def test_a_collaboratives_figure_minus_its_members_gives_nothing_back(serving, column):
    """Pooled counts are the sum of the shown members' figures, on both membership bases: the difference between
    the collaborative row and its members is 0, so neither subtraction nor comparing the as-was and as-is totals
    (each the sum of shown members) can isolate a suppressed member."""
    groups = serving.execute(
        f"""
        with members as (
            select fact.collaborative_code, fact.membership_basis, fact.period_month, fact.metric_code,
                sum(fact.{column}) filter (where fact.value is not null) as shown_included,
                sum(fact.{column}) as shown_all,
                count(*) filter (where fact.value is null and fact.members_expected = 1) as hidden,
                max(org.org_type) as setting
            from fct_collaborative_metric_month as fact
            inner join dim_organisation as org on fact.org_code = org.org_code
            where fact.org_code <> 'ALL' and fact.metric_code like 'los_%' and fact.members_expected = 1
            group by all
        )
        select pooled.collaborative_code, pooled.membership_basis, pooled.period_month, pooled.metric_code,
            pooled.{column}, members.shown_included, members.shown_all, members.hidden, members.setting
        from fct_collaborative_metric_month as pooled
        inner join members using (collaborative_code, membership_basis, period_month, metric_code)
        where pooled.org_code = 'ALL' and pooled.{column} is not null
        """
    ).fetchall()
    assert groups
    partial = 0
    for code, basis, month, metric, pooled, included, shown_all, hidden, setting in groups:
        where = f"{code} {basis} {month} {metric} {column}"
        assert pooled == included, f"{where}: pooled {pooled} is not the sum of its shown members {included}"
        assert not 1 <= pooled - (shown_all or 0) <= RULES[setting]["max_suppressed"], where
        partial += hidden > 0
    assert partial > 0  # some collaborative-months do have a suppressed member


def test_no_served_table_reads_the_patient_level_spells_except_through_the_controlled_marts():
    """Where a served figure is computed from spells, it must be from the marts' disclosure-controlled members."""
    sql = (DBT_PROJECT_DIR / "models/intermediate/metrics/int_metric__collaborative_month.sql").read_text()
    assert "los_provider" in sql and "filter (where los_members." in sql
    served_models = list((DBT_PROJECT_DIR / "models" / "marts").rglob("*.sql"))
    readers = [p.name for p in served_models if "int_los__discharged_spells" in p.read_text()]
    assert sorted(readers) == [
        "fct_los_inequality_month.sql",
        "fct_los_provider_month.sql",
        "fct_los_published_vs_computed.sql",
    ]
    # the comparison with the published figures serves no count from the spells: a mean or median hidden where the
    # quarter's discharges are a suppressed count, and a share of the published count built from the rounded count
    compared = (DBT_PROJECT_DIR / "models/marts/los/fct_los_published_vs_computed.sql").read_text()
    assert "dc_is_hidden('computed.discharges'" in compared and "dc_round('computed_discharges')" in compared
    served_columns = compared[compared.rindex("\nselect\n") :]
    assert "computed_discharges as" not in served_columns and "computed_discharges," not in served_columns


# --- the suppression routine itself, on random tables ------------------------------------------------------------


@pytest.fixture(scope="module")
def complementary_sql(tmp_path_factory) -> str:
    """The macro as dbt compiles it for the marts, over a table `cells(g, part, n, total_n, setting)`."""
    from dbt.cli.main import dbtRunner

    tmp = tmp_path_factory.mktemp("dbt-compile")
    previous = os.environ.get("COLLAB_BUILD_DB")
    os.environ["COLLAB_BUILD_DB"] = str(tmp / "compile.duckdb")
    try:
        result = dbtRunner().invoke(
            [
                "compile",
                "--inline",
                "{{ dc_complementary_suppression('cells', ['g'], 'part') }}",
                "--project-dir",
                str(DBT_PROJECT_DIR),
                "--profiles-dir",
                str(DBT_PROJECT_DIR),
                "--target-path",
                str(tmp / "target"),
                "--no-partial-parse",
                "--quiet",
            ]
        )
    finally:
        if previous is None:
            os.environ.pop("COLLAB_BUILD_DB", None)
        else:
            os.environ["COLLAB_BUILD_DB"] = previous
    assert result.success, result.exception
    return result.result.results[0].node.compiled_code


def _random_tables(seed: int, groups: int) -> list[tuple[int, str, int, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        setting = "acute" if rng.random() < 0.5 else "mental_health"
        parts = int(rng.integers(2, 9))
        scale = rng.choice([3, 8, 20, 60])  # mostly small cells: where suppression bites
        counts = rng.poisson(rng.uniform(0.2, 1.0, parts) * scale)
        counts[rng.random(parts) < 0.15] = 0
        for i, n in enumerate(counts):
            rows.append((g, f"p{i}", int(n), setting))
    return rows


def _run(sql: str, rows: list[tuple[int, str, int, str]]) -> dict[int, dict]:
    con = duckdb.connect()
    con.execute("create table raw_cells (g integer, part varchar, n bigint, setting varchar)")
    con.executemany("insert into raw_cells values (?, ?, ?, ?)", rows)
    con.execute(
        "create table cells as select g, part, n, sum(n) over (partition by g) as total_n, setting from raw_cells"
    )
    out = con.execute(
        f"select c.g, c.part, c.n, c.total_n, c.setting, s.is_suppressed, s.suppression_reason "
        f"from cells c join ({sql}) s using (g, part)"
    ).fetchall()
    assert len(out) == len(rows)
    groups: dict[int, dict] = {}
    for g, part, n, total, setting, hidden, reason in out:
        group = groups.setdefault(g, {"total": total, "setting": setting, "cells": []})
        group["cells"].append((part, n, hidden, reason))
    return groups


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_complementary_suppression_never_leaves_a_cell_recoverable(complementary_sql, seed):
    groups = _run(complementary_sql, _random_tables(seed, 8000))
    exercised = {"complementary": 0, "total_suppressed": 0, "clean": 0}
    for g, group in groups.items():
        setting, total, cells = group["setting"], group["total"], group["cells"]
        t = RULES[setting]["max_suppressed"]
        hidden = [c for c in cells if c[2]]
        visible = [c for c in cells if not c[2]]
        if total == 0 and not RULES[setting]["zero_suppressed"]:
            assert not hidden, g
            continue
        if _hidden_by_rule(total, setting):
            assert all(c[3] == "total_suppressed" for c in cells), g
            exercised["total_suppressed"] += 1
            continue
        # 1. nothing the rule suppresses is shown, and every cell it suppresses is hidden
        assert not any(_hidden_by_rule(n, setting) for _, n, _, _ in visible), (g, cells)
        assert all(c[2] for c in cells if _hidden_by_rule(c[1], setting)), (g, cells)
        if not hidden:
            exercised["clean"] += 1
            continue
        exercised["complementary"] += any(c[3] == "complementary" for c in hidden)
        # 2. never a single hidden cell: the total minus the others would give it back
        assert len(hidden) >= 2, (g, cells)
        # 3. with the served (rounded) figures, the difference is not itself a suppressed-range count
        difference = _round5(total) - sum(_round5(n) for _, n, _, _ in visible)
        assert not 1 <= difference <= t, (g, cells, difference)
        # 4. an attacker who knows the unrounded total and every shown cell exactly knows the hidden cells' sum S;
        #    each hidden cell is at least the smallest value a hidden cell can take (1 where zeros are shown) and
        #    at most S minus that for each other hidden cell. It must not be pinned down, nor known to be small.
        hidden_sum = sum(n for _, n, _, _ in hidden)
        assert hidden_sum > t, (g, cells)
        least = 0 if RULES[setting]["zero_suppressed"] else 1
        # (the bound is the same for every hidden cell: S less the least of each of the others)
        assert hidden_sum - least * (len(hidden) - 1) > least, (g, cells)
        # 5. nothing is hidden for no reason: complementary cells only where a cell was suppressed by the rule
        assert any(c[3] in ("small_count", "zero") for c in hidden), (g, cells)
    assert min(exercised.values()) > 100, exercised


def test_complementary_suppression_hides_the_smallest_cells_it_needs_and_no_more(complementary_sql):
    # acute: 2 is suppressed; the next smallest non-zero cell (15) is enough; 0 stays shown
    groups = _run(
        complementary_sql,
        [
            (0, "a", 30, "acute"),
            (0, "b", 2, "acute"),
            (0, "c", 25, "acute"),
            (0, "d", 40, "acute"),
            (0, "e", 15, "acute"),
            (0, "f", 0, "acute"),
        ],
    )
    reasons = {part: reason for part, _, _, reason in groups[0]["cells"]}
    assert reasons == {"a": None, "b": "small_count", "c": None, "d": None, "e": "complementary", "f": None}
    # mental health: two suppressed cells (3 and 0) add up to 3, so one more (the 6) is hidden
    groups = _run(
        complementary_sql,
        [
            (0, "q1", 12, "mental_health"),
            (0, "q2", 3, "mental_health"),
            (0, "q3", 20, "mental_health"),
            (0, "q4", 9, "mental_health"),
            (0, "q5", 0, "mental_health"),
            (0, "u", 6, "mental_health"),
        ],
    )
    reasons = {part: reason for part, _, _, reason in groups[0]["cells"]}
    assert reasons == {"q1": None, "q2": "small_count", "q3": None, "q4": None, "q5": "zero", "u": "complementary"}


def test_the_warehouse_and_its_databases_are_the_owners_only(bundled_run):
    """The build database holds patient-level rows, the quarantine and logs can too: nobody else may read them."""
    import stat

    warehouse = bundled_run.serving_db.parent
    assert stat.S_IMODE(warehouse.stat().st_mode) == 0o700
    for database in (bundled_run.serving_db, bundled_run.build_db):
        assert stat.S_IMODE(database.stat().st_mode) == 0o600, database
