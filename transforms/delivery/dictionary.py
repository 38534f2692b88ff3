"""The warehouse's data dictionary, generated from the code (never written twice).

Column names and types come from the DDL the warehouse really runs (DESCRIBE on a fresh
in-memory warehouse); each column's description, rules, label, unit, codes and derivation
come from ``columns.py`` (the Pandera schemas and labels of ``schemas/forms.py``, the
analysis views' definitions), operational tables' descriptions from below.
``docs/data_dictionary.md`` is this module's output; a test keeps the two identical.
"""

from __future__ import annotations

from pathlib import Path

from schemas.forms import FORMS, Form
from transforms import warehouse
from transforms.delivery.columns import COMMON, ColumnDoc, column_docs
from transforms.derived import views
from transforms.warehouse import ddl
from transforms.warehouse import views as stored

OPERATIONAL = {
    "runs": "one row per pipeline run: status (running, completed, partial: a centre "
    "failed and the others loaded, failed, abandoned: its process died, found by a later "
    "run), counts, snapshot id, whether models were published, the process id and host "
    "that ran it; run_seq orders runs (the time axis of history)",
    "ingested_files": "one row per (file content, form): status loaded/rejected, rows read, "
    "loaded (new, changed), quarantined, exact duplicates, absent (the counts as they stand: "
    "a quarantined row loaded later moves to loaded); the error if rejected; the export "
    "date and where it came from; the hash of the mapping the file was staged with",
    "quarantine": "one row per (record, failed rule): file, source row, source column, rule, "
    "offending value and a message; patient_key when the id was readable; resolved_run_id: "
    "the run that loaded the record or re-staged its file (null: still in quarantine)",
    "changes": "one row per corrected value: old and new value, old and new file, run",
    "absent_rows": "rows of an earlier full export missing from a newer one (flagged, kept)",
    "key_fingerprint": "a keyed hash of a fixed constant under the pseudonymisation key "
    "(never the key): a night with another key is refused before it writes anything",
    "key_rotations": "one row per deliberate key rotation (`cohortflow rekey`): when, old "
    "and new fingerprints, keys and rows re-keyed, snapshot before and after",
    "views_built": "the snapshot id the analysis views were last built from",
    "views_stale": "patients whose rows changed since the views were built (written with "
    "each batch; their views are rebuilt after the night, then the list is emptied)",
    "table_digests": "per form table, its row count and the XOR of its rows' md5 (values "
    "only), kept up to date by each batch: the snapshot id is their hash",
    "dq_runs": "one row per data-quality run: when, snapshot, cadence, whether GX ran, "
    "number of results and breaches, report and Data Docs paths; lifecycle_complete: its "
    "query log and information lines were written (a later run that re-checks only some "
    "centres keeps the others' from it)",
    "dq_results": "one row per (quality run, check, centre): Kahn category, table, column, "
    "rows checked and violating, thresholds (percent and count), status passed / failed / "
    "not_applicable / error; re-scorable against new thresholds",
    "dq_queries": "one row per (quality run, query) of the last 7 quality runs: check, "
    "centre, patient pseudonym, month, field, problem, value (each query's whole life is in "
    "dq_query_log)",
    "dq_query_log": "one row per query the quality runs ever opened: centre, kind (to fix, "
    "waiting), source (check or quarantine rule), form, patient pseudonym, month, field, "
    "file and row, problem in plain words, value, what is allowed; opened (run, time), last "
    "seen run, nights open, closed (run, time), escalated",
    "dq_information": "one row per missing item a centre is told about without a query (a "
    "completeness check that passes in that centre), as the last quality run that checked "
    "the centre found it: source check, form, patient pseudonym, month, field, file and "
    "row, problem, value, what is allowed, and that run",
    "dq_gx_digests": "per (table, centre) that Great Expectations last validated: its "
    "rows and a sum of their hashes over the columns GX reads, the suite's fingerprint and "
    "the run; a quality run validates a centre's table again only when one of them changed "
    "(the others' results are carried from the run before)",
    "pulls": "one row per `cohortflow pull`: when, OS user, table, query (JSON), snapshot, "
    "format, rows, output path and the output's SHA-256",
}


FACTS = "label | unit | codes | how derived |"
FORM_HEADER = [f"| column | type | null | rules | description | {FACTS}", "|---" * 9 + "|"]
VIEW_HEADER = [f"| column | type | description | {FACTS}", "|---" * 7 + "|"]


def data_dictionary() -> str:
    """Markdown describing every table and column of the warehouse."""
    con = warehouse.connect(Path(":memory:"))
    lines = [
        "# Data dictionary of the cohortflow warehouse",
        "",
        "Generated by `transforms/delivery/dictionary.py` from the schemas and the warehouse DDL "
        "(`make docs`); do not edit by hand.",
        "",
        "## Harmonised tables",
        "",
        "One row per natural key, the current version. Every table has a twin "
        "`<table>_history` with every version and its validity interval "
        "(`_valid_from`, `_valid_to`).",
    ]
    for form in FORMS.values():
        lines += _form_section(con, form)
    con.execute(ddl.PULLS_DDL)  # created by the first pull
    con.execute(ddl.QUALITY_DDL)  # created by the first quality run
    lines += _views_section(con)
    lines += ["", "## Operational tables", ""]
    for table, about in OPERATIONAL.items():
        columns = ", ".join(f"`{name}` {kind}" for name, kind, *_ in _describe(con, table))
        lines += [f"### `{table}`", "", about, "", f"Columns: {columns}.", ""]
    con.close()
    return "\n".join(lines).rstrip() + "\n"


def _views_section(con) -> list[str]:
    """The analysis views, typed as the warehouse stores them (built here on no data)."""
    stored.materialise_views(con, views.build_views(warehouse.current_tables(con)), "empty")
    lines = [
        "",
        "## Analysis views",
        "",
        "Derived from the harmonised tables after every run that changed data (tables "
        "`analysis_*` and the scored questionnaires; `views_built` holds their snapshot id).",
    ]
    for table, about in views.VIEW_ABOUT.items():
        docs = column_docs(table)
        lines += ["", f"### `{table}`", "", f"{about}.", "", *VIEW_HEADER]
        for name, kind, *_ in _describe(con, table):
            doc = docs.get(name) or ColumnDoc(name, name)
            lines.append(f"| `{name}` | {kind} | {doc.description} | {_facts(doc)}")
    return lines


def _describe(con, table: str) -> list[tuple]:
    """The warehouse's own column names, types and nullability for ``table``."""
    return con.execute(f"DESCRIBE {table}").fetchall()


def _form_section(con, form: Form) -> list[str]:
    """A form's table: its columns as the DDL types them, rules and descriptions from its schema."""
    docs = column_docs(form.table)
    key = ", ".join(form.key)
    lines = [
        "",
        f"### `{form.table}` (form `{form.name}`)",
        "",
        f"{(form.schema.__doc__ or '').strip()} Natural key: ({key}).",
        "",
        *FORM_HEADER,
    ]
    for name, kind, null, *_ in _describe(con, form.table):
        doc = docs.get(name) or ColumnDoc(name, name, description=COMMON.get(name, ""))
        lines.append(
            f"| `{name}` | {kind} | {null} | {doc.rules} | {doc.description} | {_facts(doc)}"
        )
    return lines


def _facts(doc: ColumnDoc) -> str:
    """The cells every table shares: label, unit, codes, how derived (and the row's end)."""
    codes = ", ".join(f"`{code}`" for code in doc.codes)
    return f"{doc.label} | {doc.unit} | {codes} | {doc.derivation} |"


def write_data_dictionary(path: Path) -> None:
    """Write the dictionary to ``path`` (``make docs``: docs/data_dictionary.md)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data_dictionary(), encoding="utf-8")
