"""Hostile inputs: each case damages one valid simulated export and states the outcome.

An outcome is one of: the file is rejected (its report names the file and the rule), some
rows are quarantined (file, source row, column, rule, value, message), or the file loads
as if undamaged. Whatever the case, nothing escapes as an exception, every file's rows
are accounted for (read = loaded + quarantined + exact duplicates), every message is one
line, and no local patient id (nor any value a case names as hidden: phone numbers...)
appears in a report, the quarantine or any text of the warehouse.

Limits (``transforms.staging.limits``): a case may set its own (a row limit of 10 rather
than generating five million rows); a file over a limit is rejected with the limit named.

Symbolic links (decided here, documented in ``transforms.staging.inbox.refused_entries``): never
followed, wherever they point; each is reported as a rejected entry of its centre every
night until removed. A centre folder leading outside the inbox is not read at all.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from cohortflow.errors import ConfigError, FileNotReady
from tests.conftest import TEST_KEY
from tests.robustness import damage as d
from transforms import warehouse
from transforms.ingest import FileReport, load_prepared
from transforms.staging.inbox import UNRECOGNISED, discover_centre_files, unconfigured_centres
from transforms.staging.limits import DEFAULT_LIMITS, ReadLimits
from transforms.staging.mapping import load_all_mappings, load_centre_mapping
from transforms.staging.prepare import prepare_centre, stage_export

CENTRES = ("C01", "C02", "C03", "C04")  # REDCap CSV, French wide CSV, XLSX, parquet
MB = 1_000_000


@dataclass
class Night:
    con: duckdb.DuckDBPyConnection
    reports: list[FileReport]

    def files(self) -> pl.DataFrame:
        return self.con.sql("SELECT * FROM ingested_files").pl()

    def quarantine(self) -> pl.DataFrame:
        return self.con.sql("SELECT * FROM quarantine").pl()


def ingest_centre(
    ws: Path, centre: str, run_id: str = "run-1", limits: ReadLimits = DEFAULT_LIMITS
) -> Night:
    """One centre's ingestion into the workspace's warehouse, closed as the flow does."""
    con = warehouse.connect(ws / "warehouse.duckdb")
    warehouse.start_run(con, run_id)
    mapping = load_centre_mapping(ws / "centres" / f"{centre}.yaml")
    prepared = prepare_centre(ws / "inbox", mapping, warehouse.known_files(con), limits=limits)
    reports = load_prepared(con, prepared, run_id, TEST_KEY)
    warehouse.finish_run(con, run_id, status="completed", snapshot_id=warehouse.snapshot_id(con))
    return Night(con, reports)


def case_workspace(clean: Path, target: Path, centre: str, forms: tuple[str, ...]) -> Path:
    """A copy of one centre's mapping and of its exports of ``forms`` only (fast to load)."""
    (target / "centres").mkdir(parents=True)
    shutil.copy(clean / "centres" / f"{centre}.yaml", target / "centres")
    folder = target / "inbox" / centre
    folder.mkdir(parents=True)
    source = clean / "inbox" / centre
    for form in forms:
        shutil.copy(d.export_of(source, form), folder)
    return target


# --- expected outcomes -------------------------------------------------------------------


@dataclass(frozen=True)
class Rejected:
    """The file is rejected: its report's error starts with the rule and says these things."""

    rule: str
    says: tuple[str, ...] = ()


@dataclass(frozen=True)
class Quarantined:
    """The file loads, but ``rows`` of its records are quarantined under this rule."""

    rule: str
    column: str
    rows: int = 1
    source_row: int | None = None


@dataclass(frozen=True)
class Loaded:
    """The file loads as its undamaged version, with ``extra_rows`` more (duplicates)."""

    extra_rows: int = 0
    duplicates: int = 0
    rows: int | None = None  # rows read, when not those of the undamaged file
    check: Callable[[duckdb.DuckDBPyConnection], None] | None = None


@dataclass(frozen=True)
class Case:
    id: str
    centre: str
    form: str
    damage: Callable[[Path], str | None]  # damages the centre folder; may name the target
    expect: Rejected | Quarantined | Loaded
    forms: tuple[str, ...] = field(default=("inclusion",))  # exports kept beside the target
    limits: ReadLimits = DEFAULT_LIMITS
    hidden: tuple[str, ...] = ()  # raw values that must appear nowhere afterwards


# --- damages -----------------------------------------------------------------------------


def csv_edit(form: str, *edits) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        for edit in edits:
            d.edit_csv(d.export_of(folder, form), edit)

    return damage


def byte_edit(form: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    return lambda folder: d.edit_bytes(d.export_of(folder, form), edit)


def replace_with(form: str, content: bytes) -> Callable[[Path], None]:
    return byte_edit(form, lambda _: content)


def reencode(form: str, source: str, target: str) -> Callable[[Path], None]:
    return byte_edit(form, lambda b: b.decode(source).encode(target))


def nul_in_line(b: bytes, line: int) -> bytes:
    lines = b.split(b"\n")
    lines[line - 1] = lines[line - 1][:5] + b"\x00" + lines[line - 1][5:]
    return b"\n".join(lines)


def mixed_line_endings(b: bytes) -> bytes:
    lines = b.rstrip(b"\n").split(b"\n")
    return b"".join(line + (b"\r\n" if i % 2 else b"\n") for i, line in enumerate(lines))


def quoted_newline(b: bytes) -> bytes:
    """Row 2's score becomes a quoted value spanning two lines ("8\\n8")."""
    lines = b.split(b"\n")
    head, _, score = lines[2].rpartition(b",")
    lines[2] = head + b',"' + score + b"\n" + score + b'"'
    return b"\n".join(lines)


def symlink(name: str, to: Callable[[Path], Path]) -> Callable[[Path], str]:
    """A symbolic link named ``name`` in the centre folder (the export moved elsewhere)."""

    def damage(folder: Path) -> str:
        (folder / name).symlink_to(to(folder))
        return name

    return damage


def _moved_outside(folder: Path) -> Path:
    export = d.export_of(folder, "follow_up")
    outside = folder.parent.parent / "elsewhere"
    outside.mkdir()
    return export.rename(outside / export.name)


def _moved_inside(folder: Path) -> Path:
    export = d.export_of(folder, "follow_up")
    archive = folder.parent / "archive"
    archive.mkdir()
    return export.rename(archive / export.name)


def centre_folder_outside(folder: Path) -> str:
    """The centre's folder is replaced by a link to a folder outside the inbox."""
    outside = folder.parent.parent / "mounted" / folder.name
    outside.parent.mkdir()
    folder.rename(outside)
    folder.symlink_to(outside, target_is_directory=True)
    return folder.name


def subfolder(folder: Path) -> str:
    export = d.export_of(folder, "follow_up")
    inner = folder / "C01_followup_old.csv"
    inner.mkdir()
    export.rename(inner / export.name)
    return inner.name


def same_content_renamed(folder: Path) -> str:
    export = d.export_of(folder, "follow_up")
    shutil.copy(export, folder / export.name.replace("2017", "2018"))
    return export.name


def truncate_half(b: bytes) -> bytes:
    return b[: len(b) // 2]


OLE2_HEADER = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)  # an encrypted workbook's start


def phone(i: int) -> str:
    return f"06 12 34 {i % 100:02d} {i % 97:02d}"


def nir(i: int) -> str:
    """A social security number's shape: sex, year, month, department, commune, order, key."""
    return f"1 84 12 75 {100 + i:03d} {200 + i:03d} {i % 97:02d}"


def initials(i: int) -> str:
    return ["J.D.", "A.B.", "M.-C.", "P.L."][i % 4]


def copy_id_to(column: str, row: int) -> Callable[[d.Rows], d.Rows]:
    """An edit: data row ``row``'s ``column`` holds the row's own local id."""

    def edit(rows: d.Rows) -> d.Rows:
        rows[row][rows[0].index(column)] = rows[row][0]
        return rows

    return edit


def _diagnosis_from_record_id(mapping: dict) -> None:
    mapping["forms"]["inclusion"]["columns"]["pain_diagnosis"] = "record_id"


def _inclusion_date_loaded_day_first(con: duckdb.DuckDBPyConnection) -> None:
    dates = con.sql("SELECT inclusion_date FROM patients").pl()["inclusion_date"].to_list()
    assert dt.date(2016, 2, 1) in dates  # '01/02/2016' read with the mapping's %d/%m/%Y


def _date_out_of_range(frame: pl.DataFrame) -> pl.DataFrame:
    """Row 2's call date is day 2**31 - 1 of the epoch: valid parquet, no calendar date."""
    far = pl.lit(2**31 - 1, pl.Int32).cast(pl.Date)
    row = pl.int_range(pl.len())
    return frame.with_columns(call_date=pl.when(row == 1).then(far).otherwise("call_date"))


def _one_follow_up_file(con: duckdb.DuckDBPyConnection) -> None:
    files = con.execute("SELECT file_name FROM ingested_files WHERE form = 'follow_up'")
    assert files.fetchall() == [("C01_followup_20170922.csv",)]


def _nested_column(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(tags=pl.concat_list(pl.lit("a"), pl.lit("b")))


# --- the cases ---------------------------------------------------------------------------

FU, INC = "follow_up", "inclusion"
EMPTY_CSV = Rejected("empty file", ("no header",))
SAME = Loaded()

CASES = [
    # files that cannot be read at all
    Case("empty-file", "C01", FU, replace_with(FU, b""), EMPTY_CSV),
    Case("blank-lines-only", "C01", FU, replace_with(FU, b"\n \r\n\n"), EMPTY_CSV),
    Case("bom-only", "C01", FU, replace_with(FU, b"\xef\xbb\xbf"), EMPTY_CSV),
    Case("header-only", "C01", FU, byte_edit(FU, lambda b: b.split(b"\n")[0]), Loaded(rows=0)),
    Case(
        "wrong-delimiter",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b",", b";")),
        Rejected("missing required columns", ("delimiter ';'",)),
    ),
    Case(
        "utf8-file-for-latin1-centre",
        "C02",
        INC,
        reencode(INC, "latin-1", "utf-8"),
        Rejected("missing required columns", ("looks UTF-8 encoded",)),
    ),
    Case(
        "latin1-bytes-in-utf8-file",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b"baseline_arm_1", "ann\xe9e".encode("latin-1"), 3)),
        Rejected("encoding", ("not valid utf-8", "line 2")),
    ),
    Case("utf8-bom", "C01", FU, byte_edit(FU, lambda b: b"\xef\xbb\xbf" + b), SAME),
    Case(
        "utf8-bom-for-latin1-centre",
        "C02",
        INC,
        byte_edit(INC, lambda b: b"\xef\xbb\xbf" + b),
        Rejected("encoding", ("byte-order mark",)),
    ),
    Case("crlf", "C01", FU, byte_edit(FU, lambda b: b.replace(b"\n", b"\r\n")), SAME),
    Case("mixed-line-endings", "C01", FU, byte_edit(FU, mixed_line_endings), SAME),
    Case("cr-only-line-endings", "C01", FU, byte_edit(FU, lambda b: b.replace(b"\n", b"\r")), SAME),
    Case(
        "quoted-newline",
        "C01",
        FU,
        byte_edit(FU, quoted_newline),
        Quarantined("type: an integer", "nprs", source_row=2),
    ),
    Case("trailing-blank-lines", "C01", FU, byte_edit(FU, lambda b: b + b"\n\n \n"), SAME),
    Case(
        "blank-line-in-the-middle",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b"\n", b"\n\n", 3).replace(b"\n\n", b"\n", 2)),
        SAME,
    ),
    Case(
        "spreadsheet-empty-rows",
        "C02",
        INC,
        byte_edit(INC, lambda b: b + b";;;;;\n;;;;;\n"),
        SAME,
    ),
    Case(
        "stray-quote",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b"baseline_arm_1", b'base"line_arm_1', 2)),
        Rejected("unreadable CSV", ("data row 1 (line 2) has a stray quote",)),
    ),
    Case(
        "unclosed-quote",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b",month_2_arm_1", b',"month_2_arm_1', 1)),
        Rejected("unreadable CSV", ("does not close",)),
    ),
    Case(
        "nul-byte",
        "C01",
        FU,
        byte_edit(FU, lambda b: nul_in_line(b, 4)),
        Rejected("not a text file", ("NUL byte at line 4",)),
    ),
    Case(
        "zero-filled-copy",
        "C01",
        FU,
        byte_edit(FU, lambda b: bytes(len(b))),
        Rejected("not a text file", ("line 1",)),
    ),
    Case(
        "binary-garbage-csv",
        "C01",
        FU,
        replace_with(FU, d.garbage(5000)),
        Rejected("not a text file", ("binary data",)),
    ),
    Case(
        "binary-garbage-latin1-csv",
        "C02",
        INC,
        replace_with(INC, d.garbage(5000, seed=3)),
        Rejected("not a text file", ("binary data",)),
    ),
    Case(
        "workbook-named-csv",
        "C01",
        FU,
        byte_edit(FU, lambda _: d.workbook_bytes()),
        Rejected("not a text file", ("ZIP archive",)),
    ),
    Case(
        "truncated-xlsx",
        "C03",
        FU,
        byte_edit(FU, truncate_half),
        Rejected("unreadable XLSX", ("truncated",)),
        forms=(),
    ),
    Case(
        "encrypted-xlsx",
        "C03",
        FU,
        replace_with(FU, OLE2_HEADER),
        Rejected("encrypted or legacy workbook", ("password",)),
        forms=(),
    ),
    Case(
        "csv-named-xlsx",
        "C03",
        INC,
        replace_with(INC, b"Patient ID,Sex\nC03-0001,F\n"),
        Rejected("unreadable XLSX", ("not an .xlsx",)),
        forms=(),
    ),
    Case(
        "truncated-parquet",
        "C04",
        FU,
        byte_edit(FU, truncate_half),
        Rejected("unreadable parquet"),
    ),
    Case(
        "parquet-nested-extra-column",
        "C04",
        FU,
        lambda folder: d.edit_parquet(d.export_of(folder, FU), _nested_column),
        SAME,
    ),
    Case(
        "parquet-date-beyond-year-9999",
        "C04",
        FU,
        lambda folder: d.edit_parquet(d.export_of(folder, FU), _date_out_of_range),
        Rejected("unreadable parquet", ("column 'call_date'", "out-of-range date")),
    ),
    # header problems
    Case(
        "duplicated-header",
        "C01",
        FU,
        csv_edit(FU, d.add_column("nprs", lambda i: "3")),
        Rejected("duplicate column names", ("'nprs'",)),
    ),
    Case(
        "duplicated-header-xlsx",
        "C03",
        FU,
        lambda folder: d.rewrite_sheet(
            d.export_of(folder, FU),
            "Follow-up",
            ["Patient ID", "Month", "Month", "Pain (NPRS)"],
        ),
        Rejected("duplicate column names", ("'Month'",)),
        forms=(),
    ),
    Case(
        "extra-unknown-columns",
        "C01",
        FU,
        csv_edit(FU, d.add_column("commentaire", lambda i: f"appel {i}, rappel")),
        SAME,
    ),
    Case(
        "control-characters-in-header",
        "C01",
        FU,
        csv_edit(FU, d.add_column("note\x1fA\x1f", lambda i: "x")),
        SAME,
    ),
    Case(
        "polars-patterns-as-headers",
        "C01",
        FU,
        csv_edit(FU, d.add_column("*", lambda i: ""), d.add_column("^.*$", lambda i: "")),
        SAME,
    ),
    Case(
        "missing-required-column",
        "C01",
        FU,
        csv_edit(FU, d.drop_column("nprs")),
        Rejected("missing required columns", ("'nprs' not in the header",)),
    ),
    Case(
        "ragged-row",
        "C01",
        FU,
        byte_edit(FU, lambda b: b.replace(b"\n", b",7\n", 3).replace(b",7\n", b"\n", 2)),
        Rejected("unreadable CSV", ("data row 2 (line 3) has 5 fields, the header 4",)),
    ),
    # values
    Case(
        "ten-megabyte-field",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("nprs", 3, "9" * 10_000_000)),
        Quarantined("type: an integer", "nprs", source_row=3),
        limits=ReadLimits(max_line_bytes=20 * MB),  # within a raised limit: the value is cut
    ),
    Case(
        "formula-text-in-a-value",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("nprs", 2, '=HYPERLINK("http://x.test/?q=1","click")')),
        Quarantined("type: an integer", "nprs", source_row=2),
    ),
    Case(
        "out-of-range-score",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("nprs", 2, "11")),
        Quarantined("less_than_or_equal_to(10)", "nprs", source_row=2),
    ),
    Case(
        "non-integer-score",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("nprs", 2, "6.5")),
        Quarantined("type: an integer", "nprs", source_row=2),
    ),
    Case(
        "text-in-numeric-field",
        "C02",
        INC,
        csv_edit(INC, d.set_cell("Poids (kg)", 4, "soixante")),
        Quarantined("type: a number", "weight_kg", source_row=4),
    ),
    Case(
        "impossible-date",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("date_appel", 2, "2016-02-31")),
        Quarantined("type: a date (%Y-%m-%d)", "call_date", source_row=2),
    ),
    Case(
        "impossible-date-day-first",
        "C02",
        INC,
        csv_edit(INC, d.set_cell("Date d'inclusion", 1, "31/02/2016")),
        Quarantined("type: a date (%d/%m/%Y)", "inclusion_date", source_row=1),
    ),
    Case(
        "day-first-date-in-iso-centre",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("date_appel", 2, "03/02/2016")),
        Quarantined("type: a date (%Y-%m-%d)", "call_date", source_row=2),
    ),
    Case(
        "ambiguous-date-read-by-mapping",
        "C02",
        INC,
        csv_edit(INC, d.set_cell("Date d'inclusion", 1, "01/02/2016")),
        Loaded(check=_inclusion_date_loaded_day_first),
    ),
    Case(
        "two-digit-year",
        "C02",
        INC,
        csv_edit(INC, d.set_cell("Date d'inclusion", 1, "01/02/16")),
        Quarantined("greater_than_or_equal_to(2016-01-01)", "inclusion_date", source_row=1),
    ),
    Case(
        "future-date",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("date_appel", 2, "2099-01-01")),
        Quarantined("not_in_future", "call_date", source_row=2),
    ),
    # duplicates and relations
    Case("exact-duplicate", "C01", FU, csv_edit(FU, d.append_row(2)), Loaded(1, 1)),
    Case(
        "conflicting-duplicate",
        "C01",
        FU,
        csv_edit(FU, d.append_row(2, nprs="0")),
        Quarantined(
            "conflicting duplicate of natural key (patient_id, month)",
            "patient_id, month",
            rows=2,
            source_row=2,
        ),
    ),
    Case(
        "orphan-row",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("record_id", 2, "C01-9999")),
        Quarantined("unknown patient", "patient_id", source_row=2),
    ),
    # direct identifiers
    Case(
        "identifier-name-column",
        "C01",
        INC,
        csv_edit(INC, d.add_column("nom", lambda i: f"DUPONT{i}")),
        Rejected("direct identifier", ("'nom' looks like a name",)),
        forms=(),
    ),
    Case(
        "identifier-phone-values",
        "C01",
        INC,
        csv_edit(INC, d.add_column("contact", phone)),
        Rejected("direct identifier", ("'contact' looks like a phone number",)),
        forms=(),
    ),
    Case(
        "identifier-nir-values",
        "C02",
        INC,
        csv_edit(INC, d.add_column("Numéro", nir)),
        Rejected("direct identifier", ("'Numéro' looks like a social security number",)),
        forms=(),
    ),
    Case(
        "identifier-birth-date-camel-case",
        "C01",
        INC,
        csv_edit(INC, d.add_column("DateNaissance", lambda i: f"1970-01-{i % 28 + 1:02d}")),
        Rejected("direct identifier", ("'DateNaissance' looks like a birth date",)),
        forms=(),
    ),
    Case(
        "identifier-parquet",
        "C04",
        INC,
        lambda folder: d.edit_parquet(
            d.export_of(folder, INC), lambda f: f.with_columns(birth_date=pl.lit("1970-01-01"))
        ),
        Rejected("direct identifier", ("'birth_date' looks like a birth date",)),
        forms=(),
    ),
    Case(
        "identifier-date-naiss-abbreviated",
        "C01",
        INC,
        csv_edit(INC, d.add_column("Date naiss.", lambda i: f"{i % 28 + 1:02d}/01/1970")),
        Rejected("direct identifier", ("column 7 'Date naiss.' looks like a birth date",)),
        forms=(),
    ),
    Case(
        "identifier-date-nais",
        "C01",
        INC,
        csv_edit(INC, d.add_column("date_nais", lambda i: f"1970-01-{i % 28 + 1:02d}")),
        Rejected("direct identifier", ("'date_nais' looks like a birth date",)),
        forms=(),
    ),
    Case(
        "identifier-birthday",
        "C01",
        INC,
        csv_edit(INC, d.add_column("birthday", lambda i: "1970")),
        Rejected("direct identifier", ("'birthday' looks like a birth date",)),
        forms=(),
    ),
    Case(
        "identifier-initials-column",
        "C01",
        INC,
        csv_edit(INC, d.add_column("initials", initials)),
        Rejected("direct identifier", ("'initials' looks like initials (by its name)",)),
        forms=(),
        hidden=("J.D.", "A.B."),
    ),
    Case(
        "identifier-initials-values",
        "C01",
        INC,
        csv_edit(INC, d.add_column("code", initials)),
        Rejected("direct identifier", ("'code' looks like initials (by its values)",)),
        forms=(),
        hidden=("J.D.", "A.B."),
    ),
    Case(
        "identifier-identite",
        "C02",
        INC,
        csv_edit(INC, d.add_column("Identité", lambda i: f"DUPONT Jean{i}")),
        Rejected("direct identifier", ("'Identité' looks like a name",)),
        forms=(),
        hidden=("DUPONT Jean1",),
    ),
    Case(
        "identifier-international-phone",
        "C01",
        INC,
        csv_edit(INC, d.add_column("contact", lambda i: f"+33 6 12 34 {i % 100:02d} 78")),
        Rejected("direct identifier", ("'contact' looks like a phone number (by its values)",)),
        forms=(),
        hidden=("+33 6 12 34 01 78",),
    ),
    Case(
        "identifier-phone-0033",
        "C01",
        INC,
        csv_edit(INC, d.add_column("joindre", lambda i: f"00336123456{i % 100:02d}")),
        Rejected("direct identifier", ("'joindre' looks like a phone number",)),
        forms=(),
        hidden=("0033612345601",),
    ),
    # files without a header row: the first record is read as the header, and is data
    Case(
        "headerless-follow-up",
        "C01",
        FU,
        csv_edit(FU, d.drop_header),
        Rejected(
            "missing required columns",
            ("'record_id'", "4 columns: 1 id-like text, 2 text, 3 date, 4 integer", "missing?"),
        ),
    ),
    Case(
        "headerless-inclusion-with-phone",
        "C01",
        INC,
        csv_edit(INC, d.add_column("telephone", phone), d.drop_header),
        Rejected(
            "direct identifier",
            ("column 7 looks like a phone number (by its values)", "header row missing"),
        ),
        forms=(),
        hidden=(phone(1), phone(2)),
    ),
    Case(
        "headerless-latin1-wide-follow-up",
        "C02",
        FU,
        csv_edit(FU, d.drop_header),
        Rejected("missing required columns", ("'N° patient'", "1 id-like text", "missing?")),
    ),
    # the local id column read as another column, or copied into one
    Case(
        "id-mapped-to-diagnosis",
        "C01",
        INC,
        lambda folder: d.edit_mapping(folder, _diagnosis_from_record_id),
        Rejected("local id read twice", ("'record_id' also as pain_diagnosis",)),
        forms=(),
    ),
    Case(
        "id-copied-into-coded-column",
        "C01",
        INC,
        csv_edit(INC, *(copy_id_to("diag", row) for row in (1, 2, 3))),
        Quarantined("unknown code", "pain_diagnosis", rows=3, source_row=1),
        forms=(),
    ),
    # limits (invariant 12): over one, the file is rejected with the limit named
    Case(
        "file-over-the-size-limit",
        "C01",
        FU,
        csv_edit(FU),
        Rejected("file too large", ("over the limit of 0.001 MB (COHORTFLOW_MAX_FILE_MB)",)),
        limits=ReadLimits(max_file_bytes=1_000),
    ),
    Case(
        "line-over-the-limit",
        "C01",
        FU,
        csv_edit(FU, d.set_cell("nprs", 3, "9" * 2_000_000)),
        Rejected("line too long", ("a line is 2.0 MB", "1,000 KB (COHORTFLOW_MAX_LINE_KB)")),
    ),
    Case(
        "hundred-thousand-columns",
        "C01",
        FU,
        byte_edit(FU, d.wide(100_000)),
        Rejected("too many columns", ("100,004 columns", "2,000 (COHORTFLOW_MAX_COLUMNS)")),
    ),
    Case(
        "rows-over-the-limit",
        "C01",
        FU,
        csv_edit(FU),
        Rejected("too many rows", ("over the limit of 5 rows (COHORTFLOW_MAX_ROWS)",)),
        limits=ReadLimits(max_rows=5),
    ),
    Case(
        "xlsx-zip-bomb",
        "C03",
        FU,
        byte_edit(FU, d.zip_bomb("Follow-up", 30)),
        Rejected("workbook too compressed", ("a ZIP bomb?", "COHORTFLOW_MAX_COMPRESSION_RATIO")),
        forms=(),
    ),
    Case(
        "xlsx-declaring-gigabytes",
        "C03",
        FU,
        byte_edit(FU, d.declared_size("Follow-up", 3_000_000_000)),
        Rejected("workbook too large", ("3,000.1 MB (declared by its ZIP directory)", "2,000 MB")),
        forms=(),
    ),
    Case(
        "xlsx-rows-over-the-limit",
        "C03",
        FU,
        lambda folder: None,
        Rejected("too many rows", ("in sheet 'Follow-up'", "5 rows (COHORTFLOW_MAX_ROWS)")),
        forms=(),
        limits=ReadLimits(max_rows=5),
    ),
    Case(
        "xlsx-formula-cell",
        "C03",
        FU,
        lambda folder: d.formula_in("Follow-up", 2, 3, "=RAND()", 0)(d.export_of(folder, FU)),
        Rejected("formula cells", ("1 cell(s) holding a formula (D3 (RAND))", "values only")),
        forms=(),
    ),
    # what the inbox holds
    Case(
        "symlink-outside-inbox",
        "C01",
        FU,
        symlink("C01_followup_20171001.csv", _moved_outside),
        Rejected("symbolic link", ("points to", "not followed")),
    ),
    Case(
        "symlink-inside-inbox",
        "C01",
        FU,
        symlink("C01_followup_20171001.csv", _moved_inside),
        Rejected("symbolic link", ("not followed",)),
    ),
    Case(
        "dangling-symlink",
        "C01",
        FU,
        symlink("C01_followup_20171001.csv", lambda folder: folder / "gone.csv"),
        Rejected("symbolic link", ("not followed",)),
    ),
    Case(
        "centre-folder-outside-inbox",
        "C01",
        UNRECOGNISED,
        centre_folder_outside,
        Rejected("outside the inbox", ("mounted/C01: not read",)),
    ),
    Case(
        "subfolder",
        "C01",
        FU,
        subfolder,
        Rejected("not a regular file", ("a folder",)),
    ),
    Case(
        "same-content-under-another-name",
        "C01",
        FU,
        same_content_renamed,
        Loaded(check=_one_follow_up_file),
    ),
]


@pytest.fixture(scope="module")
def baseline(clean_exports, tmp_path_factory) -> dict[tuple[str, str], FileReport]:
    """Each centre's undamaged files as loaded, by (centre, form)."""
    reports = {}
    for centre in CENTRES:
        ws = case_workspace(
            clean_exports, tmp_path_factory.mktemp(centre), centre, ("inclusion", FU)
        )
        night = ingest_centre(ws, centre)
        reports |= {(centre, r.form): r for r in night.reports}
        night.con.close()
    return reports


@pytest.fixture(scope="module")
def local_ids(clean_exports) -> list[str]:
    """Every local patient id of the simulated centres (none may leave the inbox)."""
    return pl.read_parquet(clean_exports / "simulation" / "latent.parquet")["patient_id"].to_list()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_hostile_input_has_its_expected_outcome(case, clean_exports, baseline, local_ids, tmp_path):
    """It rejects, quarantines or loads as the case says, accounts for every row, and
    shows no local id or hidden value in any message or anywhere in the warehouse."""
    forms = tuple(f for f in (*case.forms, case.form) if f != UNRECOGNISED)
    ws = case_workspace(clean_exports, tmp_path, case.centre, forms)
    folder = ws / "inbox" / case.centre
    target = d.export_of(folder, case.form).name if case.form != UNRECOGNISED else None
    target = case.damage(folder) or target
    night = ingest_centre(ws, case.centre, limits=case.limits)
    assert_accounted(night)
    assert_nothing_shown(night, [*local_ids, *case.hidden])
    report = one_report(night, target, case.form)
    if isinstance(case.expect, Rejected):
        assert_rejected(night, report, case.expect)
    elif isinstance(case.expect, Quarantined):
        assert_quarantined(night, report, case.expect)
    else:
        assert_loaded(night, report, case.expect, baseline[(case.centre, case.form)])


def one_report(night: Night, file_name: str, form: str) -> FileReport:
    found = [r for r in night.reports if r.file_name == file_name and r.form == form]
    assert len(found) == 1, night.reports
    return found[0]


def assert_accounted(night: Night) -> None:
    """Invariants 1 and 6: rows add up per file, as recorded; every message is complete."""
    files = night.files()
    assert sorted(files["file_name"]) == sorted(r.file_name for r in night.reports)
    loaded = files.filter(status="loaded")
    assert (
        loaded["rows_read"]
        == loaded["rows_loaded"] + loaded["rows_quarantined"] + loaded["rows_duplicate"]
    ).all()
    for r in night.reports:
        assert r.status in ("loaded", "rejected")
        if r.status == "loaded":
            assert r.rows_read == r.rows_loaded + r.rows_quarantined + r.rows_duplicate
        else:
            assert r.error and r.rows_read == 0
    rejected = files.filter(status="rejected")
    assert rejected["error"].is_not_null().all()
    q = night.quarantine()
    required = ["file_name", "source_row", "column_name", "rule", "message"]
    assert q.select(pl.col(required).is_not_null().all()).row(0) == (True,) * len(required)
    assert (q["message"].str.len_chars() < 1000).all()


def warehouse_text(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every text value of every table of the warehouse."""
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
    ).fetchall()
    values = []
    for (table,) in tables:
        frame = con.sql(f'SELECT * FROM "{table}"').pl().select(pl.col(pl.String))
        values += [v for column in frame.iter_columns() for v in column.drop_nulls()]
    return values


def assert_nothing_shown(night: Night, secrets: list[str]) -> None:
    """Invariant 11: no local id (nor a hidden value) in a report or the warehouse; every
    report's error is one line."""
    errors = [r.error for r in night.reports if r.error]
    assert all("\n" not in e for e in errors), errors
    text = "\n".join([*errors, *warehouse_text(night.con)])
    assert not [s for s in secrets if s in text]


def assert_rejected(night: Night, report: FileReport, expect: Rejected) -> None:
    assert report.status == "rejected", report
    assert report.error.startswith(expect.rule), report.error
    for fragment in expect.says:
        assert fragment in report.error, report.error
    recorded = night.files().filter(file_name=report.file_name, form=report.form)
    assert recorded.select("status", "error").rows() == [("rejected", report.error)]


def assert_quarantined(night: Night, report: FileReport, expect: Quarantined) -> None:
    assert report.status == "loaded", report
    assert report.rows_quarantined == expect.rows, report
    q = night.quarantine().filter(file_name=report.file_name, form=report.form)
    hits = q.filter(rule=expect.rule)
    assert hits.height >= 1, q.select("source_row", "column_name", "rule", "message").rows()
    assert set(hits["column_name"]) == {expect.column}
    assert hits["record"].n_unique() == expect.rows
    if expect.source_row is not None:
        assert expect.source_row in hits["source_row"].to_list()
    assert (hits["message"].str.len_chars() > 0).all()
    assert (hits["value"].drop_nulls().str.len_chars() < 300).all()  # a 10 MB value is cut


def assert_loaded(night: Night, report: FileReport, expect: Loaded, clean: FileReport) -> None:
    assert report.status == "loaded", report
    assert report.rows_quarantined == 0, night.quarantine().select("rule", "message").rows()
    assert report.rows_duplicate == expect.duplicates
    expected = clean.rows_read + expect.extra_rows if expect.rows is None else expect.rows
    assert report.rows_read == expected
    assert report.rows_loaded == expected - expect.duplicates
    if expect.check:
        expect.check(night.con)


def test_cases_are_many_and_named_once():
    """It keeps the corpus at 80 cases or more, each with its own id."""
    ids = [c.id for c in CASES]
    assert len(ids) >= 80
    assert len(set(ids)) == len(ids)


# --- cases that need more than one night or a moving file --------------------------------


def test_file_growing_after_discovery_is_not_ready(clean_exports, tmp_path):
    """It stages exactly the bytes it hashed: a file that changed since is retried later."""
    ws = case_workspace(clean_exports, tmp_path, "C01", ("inclusion", FU))
    mapping = load_centre_mapping(ws / "centres" / "C01.yaml")
    found = discover_centre_files(ws / "inbox", mapping, set())
    growing = next(f for f in found if f.form == FU)
    with growing.path.open("ab") as stream:
        stream.write(b"C01-0001,month_12_arm_1,2017-08-02,3\n")
    with pytest.raises(FileNotReady, match=growing.path.name):
        stage_export(growing, mapping)
    steady = next(f for f in found if f.form == "inclusion")
    assert stage_export(steady, mapping).staged.rows_read > 0


def test_file_grown_between_nights_loads_its_new_content_once(clean_exports, tmp_path):
    """It hashes and reads one version of a file: the grown file is a new export."""
    ws = case_workspace(clean_exports, tmp_path, "C01", ("inclusion", FU))
    first = ingest_centre(ws, "C01")
    first.con.close()
    export = d.export_of(ws / "inbox" / "C01", FU)
    with export.open("ab") as stream:
        stream.write(b"C01-0001,month_12_arm_1,2017-08-01,3\n")
    second = ingest_centre(ws, "C01", "run-2")
    (report,) = second.reports
    assert (report.rows_new, report.rows_same) == (1, report.rows_read - 1)
    size = second.con.execute(
        "SELECT size_bytes FROM ingested_files WHERE run_id = 'run-2'"
    ).fetchall()
    assert size == [(export.stat().st_size,)]


def test_unconfigured_centre_folder_is_reported(clean_exports, tmp_path):
    ws = case_workspace(clean_exports, tmp_path, "C01", ("inclusion",))
    stray = ws / "inbox" / "C99"
    stray.mkdir()
    (stray / "C99_inclusion_20170922.csv").write_text("record_id\nC99-0001\n")
    mappings = load_all_mappings(ws / "centres")
    assert unconfigured_centres(ws / "inbox", mappings) == ["C99"]


def test_corrected_re_export_supersedes_and_flags_the_missing_row(clean_exports, tmp_path):
    """It loads a corrected full export as one change and one absent row, nothing else."""
    ws = case_workspace(clean_exports, tmp_path, "C01", ("inclusion", FU))
    ingest_centre(ws, "C01").con.close()
    export = d.export_of(ws / "inbox" / "C01", FU)
    corrected = export.with_name("C01_followup_20171022.csv")
    shutil.copy(export, corrected)
    d.edit_csv(corrected, d.set_cell("nprs", 2, "0"))
    d.edit_csv(corrected, lambda rows: rows[:3] + rows[4:])  # data row 3 is gone
    night = ingest_centre(ws, "C01", "run-2")
    (report,) = night.reports
    assert (report.status, report.rows_changed, report.rows_absent) == ("loaded", 1, 1)
    assert report.rows_quarantined == 0
    changes = night.con.execute("SELECT column_name, new_value FROM changes").fetchall()
    assert changes == [("nprs", "0")]


def test_no_file_outside_the_inbox_is_read(clean_exports, tmp_path, monkeypatch):
    """It never opens what a link points to, even when that is a valid export."""
    ws = case_workspace(clean_exports, tmp_path, "C01", ("inclusion", FU))
    folder = ws / "inbox" / "C01"
    target = _moved_outside(folder)
    (folder / target.name).symlink_to(target)
    opened = []
    real_read, real_open = Path.read_bytes, Path.open
    monkeypatch.setattr(Path, "read_bytes", lambda p: opened.append(p) or real_read(p))
    monkeypatch.setattr(Path, "open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
    night = ingest_centre(ws, "C01")
    monkeypatch.undo()
    exports = [p for p in opened if p.suffix == ".csv"]
    assert exports and all(p.resolve().is_relative_to((ws / "inbox").resolve()) for p in exports)
    assert [r.status for r in night.reports if r.form == FU] == ["rejected"]
    assert night.con.execute("SELECT count(*) FROM follow_ups").fetchall() == [(0,)]


@pytest.mark.parametrize(
    ("fmt", "says"),
    [
        ({"quote_char": "''"}, "quote_char: must be a single character"),
        ({"delimiter": ";", "quote_char": ";"}, "delimiter and quote_char are both ';'"),
        ({"delimiter": "\n"}, "delimiter: must be a single character"),
        ({"pattern": "../C02/*.csv"}, "'../C02/*.csv' is not a file name pattern"),
        ({"pattern": "/etc/*"}, "'/etc/*' is not a file name pattern"),
    ],
)
def test_mapping_that_cannot_work_is_a_config_error(tmp_path, fmt, says):
    """It blames the mapping, once, rather than every file of the centre every night."""
    fmt = dict(fmt)
    pattern = fmt.pop("pattern", "*.csv")
    hads = {"file_pattern": pattern, "format": fmt, "columns": {"patient_id": "id"}}
    mapping = {"centre_id": "C77", "forms": {"hads": hads}}
    path = tmp_path / "C77.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(says)):
        load_centre_mapping(path)
