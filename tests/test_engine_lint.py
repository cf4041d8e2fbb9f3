"""No DuckDB-only SQL outside dbt_project/macros/engine/ (issue 15): the models run on DuckDB and on Spark.

Every engine-specific expression lives in a dispatched macro of macros/engine/ (duckdb__ and spark__ forms); this
lint reads the rest of the dbt project (models/, macros/, tests/ and the SQL inside its YAML: unit-test fixtures
given as SQL, data tests' `where` and expression arguments) and names the file, line and construct of anything
only DuckDB speaks. Comments (-- and {# #}) are not read. Jinja is: a string passed to a macro is SQL too, so
the strings inside {{ }} and {% %} are read for functions; brackets and braces only in the SQL itself, since
Jinja lists and dicts are not SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

DBT_PROJECT = Path(__file__).resolve().parent.parent / "dbt_project"
ENGINE_MACROS = DBT_PROJECT / "macros" / "engine"

# (construct, pattern) read in the SQL and in the Jinja strings
FUNCTION_RULES: list[tuple[str, str]] = [
    ("arg_max", r"\barg_max(_null)?\s*\("),
    ("arg_min", r"\barg_min(_null)?\s*\("),
    ("list_* function", r"\blist_[a-z_]*\s*\("),
    ("list() aggregate", r"\blist\s*\("),
    ("flatten", r"\bflatten\s*\("),
    ("unnest", r"\bunnest\s*\("),
    ("range() table function", r"\brange\s*\("),
    ("generate_series", r"\bgenerate_series\s*\("),
    ("qualify", r"\bqualify\b"),
    ("* exclude (...)", r"\bexclude\s*\("),
    ("* replace (...)", r"\*\s*replace\s*\("),
    ("string_agg", r"\bstring_agg\s*\("),
    ("quantile_cont / quantile_disc", r"\bquantile(_cont|_disc)?\s*\("),
    ("strftime", r"\bstrftime\s*\("),
    ("strptime", r"\bstrptime\s*\("),
    ("date_diff", r"\bdate_diff\s*\("),
    ("date_sub", r"\bdate_sub\s*\("),
    ("interval arithmetic (use dbt.dateadd)", r"[+-]\s*interval\b"),
    ("as not materialized", r"\bas\s+not\s+materialized\b"),
    ("as materialized", r"\bas\s+materialized\s*\("),
    ("with recursive", r"\bwith\s+recursive\b"),
    ("varchar (Spark: string)", r"\bvarchar\b"),
    ("string_split", r"\bstring_split\s*\("),
    ("array_to_string", r"\barray_to_string\s*\("),
    ("len() of a list", r"\blen\s*\("),
    ("struct_pack", r"\bstruct_pack\s*\("),
    ("starts_with", r"\bstarts_with\s*\("),
    ("any_value (NULLs differ: any_non_null)", r"\bany_value\s*\("),
    ("error()", r"(?<![._\w])error\s*\("),
    ("epoch", r"\bepoch(_ms)?\s*\("),
    ("ilike", r"\bilike\b"),
    ("regexp_matches", r"\bregexp_matches\s*\("),
    ("list lambda", r"\blambda\s+\w+\s*:"),
]
# read in the SQL only (Jinja removed): a Jinja list or dict is not SQL
SQL_ONLY_RULES: list[tuple[str, str]] = [
    ("struct literal {'...'} / {name: ...}", r"\{\s*('|\"|[a-z_][a-z0-9_]*\s*:)"),
    ("list literal [...]", r"\[[^\]]*\]"),
    ("[-1] slice", r"\[\s*-\s*\d+\s*\]"),
    (":: cast", r"::"),
]


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    construct: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.construct}: {self.text.strip()}"


def _blank(match: re.Match[str]) -> str:
    """The match replaced by spaces, newlines kept, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def _strip_comments(text: str) -> str:
    text = re.sub(r"\{#.*?#\}", _blank, text, flags=re.S)
    # a -- comment runs to the end of the line, unless the -- sits inside a SQL string
    out = []
    for line in text.split("\n"):
        in_string = False
        cut = len(line)
        i = 0
        while i < len(line):
            char = line[i]
            if char == "'":
                in_string = not in_string
            elif not in_string and line.startswith("--", i):
                cut = i
                break
            i += 1
        out.append(line[:cut] + " " * (len(line) - cut))
    return "\n".join(out)


_JINJA_STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)


def _views(text: str) -> tuple[str, str]:
    """(SQL and Jinja strings, SQL alone), both the length of text, comments and SQL strings' contents blanked."""
    text = _strip_comments(text)
    with_strings, sql_only = [], []
    in_string = False
    i = 0
    while i < len(text):
        if text.startswith(("{{", "{%"), i):
            close = "}}" if text.startswith("{{", i) else "%}"
            end = text.find(close, i + 2)
            end = len(text) if end < 0 else end + 2
            tag = text[i:end]
            kept = [c if c == "\n" else " " for c in tag]
            for string in _JINJA_STRING.finditer(tag):
                for j in range(string.start() + 1, string.end() - 1):
                    kept[j] = tag[j]
            with_strings.append("".join(kept))
            sql_only.append("".join(c if c == "\n" else " " for c in tag))
            i = end
            continue
        char = text[i]
        if char == "'":
            in_string = not in_string
            shown = char
        else:
            shown = " " if in_string and char != "\n" else char
        with_strings.append(shown)
        sql_only.append(shown)
        i += 1
    return "".join(with_strings), "".join(sql_only)


def lint_sql(text: str, path: str, first_line: int = 1) -> list[Finding]:
    """Every DuckDB-only construct in a piece of dbt SQL, with its line (first_line is the text's first line)."""
    with_strings, sql_only = _views(text)
    original = text.split("\n")
    findings = []
    for view, rules in ((with_strings, FUNCTION_RULES), (sql_only, SQL_ONLY_RULES)):
        for construct, pattern in rules:
            for match in re.finditer(pattern, view, flags=re.I):
                line = view.count("\n", 0, match.start())
                findings.append(Finding(path, first_line + line, construct, original[line]))
    return sorted(set(findings), key=lambda f: (f.path, f.line, f.construct))


def _yaml_sql(node: object, found: list[str], key: str | None = None) -> None:
    """The SQL strings of a dbt YAML file: fixtures given as SQL, `where` configs and `expression` arguments."""
    if isinstance(node, dict):
        if node.get("format") == "sql" and isinstance(node.get("rows"), str):
            found.append(node["rows"])
        for child_key, child in node.items():
            if child_key in ("where", "expression", "sql") and isinstance(child, str):
                found.append(child)
            else:
                _yaml_sql(child, found, child_key)
    elif isinstance(node, list):
        for child in node:
            _yaml_sql(child, found, key)


def lint_yaml(text: str, path: str) -> list[Finding]:
    found: list[str] = []
    _yaml_sql(yaml.safe_load(text), found)
    findings = []
    for sql in found:
        # the SQL's line in the file: where its first non-blank line appears
        first = next((line.strip() for line in sql.split("\n") if line.strip()), "")
        start = next((i + 1 for i, line in enumerate(text.split("\n")) if first and first in line), 1)
        findings += lint_sql(sql, path, start)
    return findings


def lint_project(root: Path = DBT_PROJECT) -> list[Finding]:
    engine = root / "macros" / "engine"
    findings = []
    for folder in ("models", "macros", "tests"):
        for file in sorted((root / folder).rglob("*")):
            if not file.is_file() or engine in file.parents:
                continue
            relative = str(file.relative_to(root))
            if file.suffix == ".sql":
                findings += lint_sql(file.read_text(), relative)
            elif file.suffix in (".yml", ".yaml"):
                findings += lint_yaml(file.read_text(), relative)
    project_yml = root / "dbt_project.yml"
    if project_yml.exists():
        # seed column types are SQL types too
        for number, line in enumerate(project_yml.read_text().split("\n"), start=1):
            if re.search(r"\bvarchar\b", line.split("#")[0], flags=re.I):
                findings.append(Finding("dbt_project.yml", number, "varchar (Spark: string)", line))
    return findings


def test_no_duckdb_only_sql_outside_the_engine_macros():
    findings = lint_project()
    assert not findings, (
        "DuckDB-only SQL outside dbt_project/macros/engine/ (move it into a dispatched macro there):\n"
        + "\n".join(str(f) for f in findings)
    )


# hooks that have nothing to do on an engine that needs nothing (the raw layer is DuckDB's own tables): their
# default is deliberately empty rather than an error
NO_OP_DEFAULTS = {"register_lake_sources"}


def test_the_engine_macros_dispatch_to_both_engines_and_refuse_others():
    """Every SQL macro of macros/engine/ has duckdb__, spark__ and a default__ that names the engine and macro."""
    text = "\n".join(f.read_text() for f in sorted(ENGINE_MACROS.glob("*.sql")))
    dispatched = re.findall(r"adapter\.dispatch\('(\w+)', 'collab_benefits'\)", text)
    assert dispatched
    for name in sorted(set(dispatched) - NO_OP_DEFAULTS):
        for engine in ("duckdb", "spark", "default"):
            assert re.search(rf"\{{% macro {engine}__{name}\(", text), f"{engine}__{name} missing"
        default = re.search(rf"\{{% macro default__{name}\(.*?endmacro", text, flags=re.S).group(0)
        assert f"engine_not_supported('{name}')" in default
    assert "raise_compiler_error" in text and "adapter.type()" in text


PLANTED = """\
{#- arg_max(x, y) in a comment is fine -#}
with recursive chain as (
    select org_code, arg_max(code, steps) as code  -- list_sort(x) here is a comment
    from t
    qualify row_number() over (partition by org_code) = 1
)
select
    * exclude (steps),
    cast(code as varchar) as code_text,
    {'a': 1} as s,
    [org_code] as codes,
    codes[-1] as last_code,
    x::int as n,
    {{ percentile_cont('los_days', 0.5) }} as fine,
    {{ some_macro("quantile_cont(los_days, 0.5)") }} as hidden_in_a_string,
    d + interval 1 month as next_month,
    list_transform(l, v -> v + 1) as l2,
    'list_sort( in a string is text' as label
{% for week in range(0, 3) %}{% endfor %}
from t
"""


def test_the_lint_fails_on_a_planted_model(tmp_path: Path):
    (tmp_path / "models").mkdir()
    (tmp_path / "macros" / "engine").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    (tmp_path / "models" / "planted.sql").write_text(PLANTED)
    # the engine folder itself is not read
    (tmp_path / "macros" / "engine" / "lists.sql").write_text(
        "{% macro duckdb__x(l) %}list_sort({{ l }}){% endmacro %}"
    )
    (tmp_path / "models" / "_planted.yml").write_text(
        "unit_tests:\n  - name: t\n    model: planted\n    given:\n      - input: ref('x')\n"
        "        format: sql\n        rows: |\n          select 1 as i\n          from range(3) as r(i)\n"
    )
    findings = lint_project(tmp_path)
    seen = {(f.path, f.line, f.construct) for f in findings}
    expected = {
        ("models/planted.sql", 2, "with recursive"),
        ("models/planted.sql", 3, "arg_max"),
        ("models/planted.sql", 5, "qualify"),
        ("models/planted.sql", 8, "* exclude (...)"),
        ("models/planted.sql", 9, "varchar (Spark: string)"),
        ("models/planted.sql", 10, "struct literal {'...'} / {name: ...}"),
        ("models/planted.sql", 11, "list literal [...]"),
        ("models/planted.sql", 12, "[-1] slice"),
        ("models/planted.sql", 13, ":: cast"),
        ("models/planted.sql", 15, "quantile_cont / quantile_disc"),
        ("models/planted.sql", 16, "interval arithmetic (use dbt.dateadd)"),
        ("models/planted.sql", 17, "list_* function"),
        ("models/_planted.yml", 9, "range() table function"),
    }
    assert expected <= seen, f"missed: {sorted(expected - seen)}"
    # comments, SQL strings, macro calls, Jinja's own range() and the engine folder are not findings
    lines_found = {f.line for f in findings if f.path == "models/planted.sql"}
    assert not lines_found & {1, 14, 18, 19}, [str(f) for f in findings if f.line in {1, 14, 18, 19}]
    assert not [f for f in findings if "engine" in f.path]
    assert "models/planted.sql:3: arg_max:" in str(next(f for f in findings if f.construct == "arg_max"))


@pytest.mark.parametrize(
    "sql",
    [
        "select list_sort(list(x)) from t",
        "select {{ f('string_agg(x, \\',\\')') }} from t",
        "select a from t where b ilike 'x%'",
    ],
)
def test_the_lint_reads_sql_and_jinja_strings(sql: str):
    assert lint_sql(sql, "m.sql")
