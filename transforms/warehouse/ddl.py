"""Every table of the warehouse declared in one place: forms (from the schemas), their
history, operational tables (runs, files, quarantine, pulls, data quality) and the state
kept for incremental work (digests, stale patients).

The form tables and their history derive from ``schemas.forms``; nothing else creates a
table, so the data dictionary (``transforms.delivery.dictionary``) reads them from here.
"""

from __future__ import annotations

from schemas.forms import DUCKDB_TYPES, Form

LINEAGE_COLUMNS = ("_file_hash", "_source_row", "_run_id")
LINEAGE_DDL = "_file_hash VARCHAR NOT NULL, _source_row BIGINT NOT NULL, _run_id VARCHAR NOT NULL"

OPERATIONAL_DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, run_seq BIGINT NOT NULL UNIQUE,
    started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
    status VARCHAR NOT NULL, files_loaded INTEGER, files_rejected INTEGER,
    rows_loaded BIGINT, rows_quarantined BIGINT, snapshot_id VARCHAR,
    models_published BOOLEAN DEFAULT false, message VARCHAR
);
CREATE TABLE IF NOT EXISTS ingested_files (
    file_hash VARCHAR NOT NULL, form VARCHAR NOT NULL, centre_id VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL, size_bytes BIGINT, status VARCHAR NOT NULL,
    rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT, rows_duplicate BIGINT,
    rows_new BIGINT, rows_changed BIGINT, rows_absent BIGINT,
    error VARCHAR, run_id VARCHAR NOT NULL, ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (file_hash, form)
);
CREATE TABLE IF NOT EXISTS views_built (snapshot_id VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS quarantine (
    file_hash VARCHAR NOT NULL, centre_id VARCHAR NOT NULL, form VARCHAR NOT NULL,
    file_name VARCHAR NOT NULL, source_row BIGINT, record BIGINT NOT NULL,
    patient_key VARCHAR, column_name VARCHAR, source_column VARCHAR, rule VARCHAR NOT NULL,
    value VARCHAR, message VARCHAR NOT NULL, run_id VARCHAR NOT NULL
);
"""


# Columns added after the first warehouses were made: created on a new warehouse, added to
# an older one when it is opened for writing (each statement is idempotent).
ADDED_COLUMNS_DDL = """
ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS export_date DATE;
ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS export_date_source VARCHAR;
ALTER TABLE ingested_files ADD COLUMN IF NOT EXISTS mapping_hash VARCHAR;
ALTER TABLE quarantine ADD COLUMN IF NOT EXISTS resolved_run_id VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS pid INTEGER;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS host VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS kind VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS inputs_digest VARCHAR;
"""


def table_columns_ddl(form: Form) -> str:
    """A form's columns: its schema's, patient_key for the local id, then lineage."""
    cols = ["patient_key VARCHAR NOT NULL", "centre_id VARCHAR NOT NULL"]
    nullable = {n: c.nullable for n, c in form.schema.to_schema().columns.items()}
    for name, dtype in form.columns().items():
        if name != "patient_id":
            required = "" if nullable[name] else " NOT NULL"
            cols.append(f"{name} {DUCKDB_TYPES[dtype]}{required}")
    return ", ".join([*cols, LINEAGE_DDL])


def table_ddl(form: Form) -> str:
    """CREATE TABLE for a form, one row per natural key.

    The key is not declared a primary key: its index cost a third of the load time
    (2.9 M rows: 3 s of 8 s) for a uniqueness that the loader guarantees (keys unique per
    file, one file per centre per batch, upserts by key) and that the data-quality checks
    verify every night (``plau_unique_*``).
    """
    return f"CREATE TABLE IF NOT EXISTS {form.table} ({table_columns_ddl(form)})"


STALE_DDL = "CREATE TABLE IF NOT EXISTS views_stale (patient_key VARCHAR NOT NULL)"

HISTORY_COLUMNS = "_valid_from BIGINT NOT NULL, _valid_to BIGINT"

HISTORY_DDL = """
CREATE TABLE IF NOT EXISTS changes (
    table_name VARCHAR NOT NULL, patient_key VARCHAR NOT NULL, natural_key VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL, old_value VARCHAR, new_value VARCHAR,
    old_file_hash VARCHAR, new_file_hash VARCHAR NOT NULL, run_id VARCHAR NOT NULL,
    run_seq BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS absent_rows (
    table_name VARCHAR NOT NULL, patient_key VARCHAR NOT NULL, natural_key VARCHAR NOT NULL,
    last_file_hash VARCHAR NOT NULL, absent_from_file_hash VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL
);
"""


def history_ddl(form: Form) -> str:
    """The history table of a form: its columns plus the validity interval."""
    columns = table_columns_ddl(form)
    return f"CREATE TABLE IF NOT EXISTS {form.table}_history ({columns}, {HISTORY_COLUMNS})"


DIGEST_DDL = """
CREATE TABLE IF NOT EXISTS table_digests (
    table_name VARCHAR PRIMARY KEY, row_count BIGINT NOT NULL, row_xor UHUGEINT NOT NULL
)
"""

# One key per warehouse (transforms/warehouse/keys.py): the fingerprint of the key the
# pseudonyms were made with (an HMAC of a constant, never the key), and every rotation.
KEYS_DDL = """
CREATE TABLE IF NOT EXISTS key_fingerprint (
    fingerprint VARCHAR NOT NULL, recorded_at TIMESTAMP NOT NULL, how VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS key_rotations (
    run_id VARCHAR NOT NULL, rotated_at TIMESTAMP NOT NULL, old_fingerprint VARCHAR NOT NULL,
    new_fingerprint VARCHAR NOT NULL, patient_keys BIGINT NOT NULL, rows_rekeyed BIGINT NOT NULL,
    snapshot_before VARCHAR NOT NULL, snapshot_after VARCHAR NOT NULL
);
"""

QUALITY_DDL = """
CREATE TABLE IF NOT EXISTS dq_runs (
    run_id VARCHAR PRIMARY KEY, run_seq BIGINT NOT NULL UNIQUE, checked_at TIMESTAMP NOT NULL,
    snapshot_id VARCHAR, cadence_days INTEGER, great_expectations BOOLEAN NOT NULL,
    n_results INTEGER NOT NULL, n_breaches INTEGER NOT NULL, report_path VARCHAR,
    data_docs_path VARCHAR
);
CREATE TABLE IF NOT EXISTS dq_results (
    run_id VARCHAR NOT NULL, run_seq BIGINT NOT NULL, check_id VARCHAR NOT NULL,
    category VARCHAR NOT NULL, subcategory VARCHAR, table_name VARCHAR NOT NULL,
    column_name VARCHAR, centre_id VARCHAR NOT NULL, n_checked BIGINT, n_violating BIGINT,
    pct_violating DOUBLE, threshold_pct DOUBLE, threshold_count BIGINT,
    status VARCHAR NOT NULL, observed VARCHAR, engine VARCHAR NOT NULL, unit VARCHAR,
    PRIMARY KEY (run_id, check_id, centre_id)
);
CREATE TABLE IF NOT EXISTS dq_queries (
    run_id VARCHAR NOT NULL, check_id VARCHAR NOT NULL, centre_id VARCHAR NOT NULL,
    patient_key VARCHAR, month BIGINT, field VARCHAR NOT NULL, problem VARCHAR NOT NULL,
    value VARCHAR
);
CREATE TABLE IF NOT EXISTS dq_query_log (
    query_id VARCHAR PRIMARY KEY, centre_id VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    source VARCHAR NOT NULL, form VARCHAR, patient_key VARCHAR, month BIGINT,
    field VARCHAR, file_name VARCHAR, source_row BIGINT, problem VARCHAR NOT NULL,
    value VARCHAR, allowed VARCHAR, opened_run VARCHAR NOT NULL, opened_at TIMESTAMP NOT NULL,
    last_seen_run VARCHAR NOT NULL, nights_open INTEGER NOT NULL, closed_run VARCHAR,
    closed_at TIMESTAMP, escalated BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS dq_information (
    centre_id VARCHAR NOT NULL, source VARCHAR NOT NULL, form VARCHAR, patient_key VARCHAR,
    month BIGINT, field VARCHAR, file_name VARCHAR, source_row BIGINT,
    problem VARCHAR NOT NULL, value VARCHAR, allowed VARCHAR, run_id VARCHAR NOT NULL
);
ALTER TABLE dq_runs ADD COLUMN IF NOT EXISTS lifecycle_complete BOOLEAN;
CREATE TABLE IF NOT EXISTS dq_gx_digests (
    table_name VARCHAR NOT NULL, centre_id VARCHAR NOT NULL, n_rows BIGINT NOT NULL,
    content VARCHAR, suite VARCHAR NOT NULL, run_id VARCHAR NOT NULL
);
"""

# Per centre, the moments (n, mean, sum of squared deviations) of each score the
# distribution checks compare across centres: a quality run that re-checks only the
# centres whose data changed reads the others' from here (transforms/quality/plausibility).
QUALITY_MOMENTS_DDL = """
CREATE TABLE IF NOT EXISTS dq_centre_moments (
    score VARCHAR NOT NULL, centre_id VARCHAR NOT NULL, n BIGINT NOT NULL,
    mean DOUBLE NOT NULL, m2 DOUBLE NOT NULL
)
"""

PULLS_DDL = """
CREATE TABLE IF NOT EXISTS pulls (
    pulled_at TIMESTAMP NOT NULL, os_user VARCHAR NOT NULL, table_name VARCHAR NOT NULL,
    query VARCHAR NOT NULL, snapshot_id VARCHAR NOT NULL, run_seq BIGINT,
    format VARCHAR NOT NULL, rows BIGINT NOT NULL, output_path VARCHAR NOT NULL,
    content_hash VARCHAR NOT NULL, cohortflow_version VARCHAR NOT NULL
)
"""
