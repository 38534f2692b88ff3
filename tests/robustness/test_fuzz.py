"""Fuzzing the reader and the schemas: any bytes give rows or a clear rejection.

Whatever a centre drops, reading and validating it ends in one of two ways: the file is
rejected (``FileRejected``, naming the file and the rule), or its records are split into
valid, quarantined and exact duplicates that add up to the records read. Any other
exception is a bug. The runs are bounded and derandomised, so CI sees the same examples.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from cohortflow.errors import FileRejected
from schemas.forms import FORMS
from tests.robustness import damage as d
from transforms.staging.inbox import ExportFile, Rejection, file_hash
from transforms.staging.mapping import CentreMapping, FormMapping, load_centre_mapping
from transforms.staging.prepare import StagedExport, stage_export
from transforms.staging.read import stage_file
from transforms.staging.validate import validate_staged

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=80)  # binary formats and whole-file preparation are slower


@dataclass(frozen=True)
class Sample:
    """A valid export (cut to a few rows, so that mutations hit every part of it)."""

    name: str
    mapping: CentreMapping
    form: str
    content: bytes

    @property
    def form_mapping(self) -> FormMapping:
        return self.mapping.forms[self.form]


SAMPLES = [  # (centre, form, lines kept: None for binary formats)
    ("C01", "follow_up", 12),
    ("C02", "inclusion", 8),
    ("C02", "follow_up", 4),
    ("C03", "follow_up", None),
    ("C04", "follow_up", None),
]


@pytest.fixture(scope="module")
def samples(clean_exports) -> dict[str, Sample]:
    found = {}
    for centre, form, lines in SAMPLES:
        folder = clean_exports / "inbox" / centre
        content = d.export_of(folder, form).read_bytes()
        if lines:
            content = b"\n".join(content.split(b"\n")[:lines]) + b"\n"
        mapping = load_centre_mapping(clean_exports / "centres" / f"{centre}.yaml")
        found[f"{centre}-{form}"] = Sample(f"{centre}-{form}", mapping, form, content)
    return found


def outcome(content: bytes, mapping: FormMapping, form: str) -> str:
    """'rejected' or 'read'; a read file's records must add up, its failures be complete."""
    try:
        staged = stage_file(content, Path("fuzzed.export"), mapping, FORMS[form])
    except FileRejected as exc:
        assert exc.rule and exc.detail and "fuzzed.export" in str(exc)
        event(f"rejected: {exc.rule}")
        return "rejected"
    checked = validate_staged(staged, FORMS[form])
    assert checked.rows_read == (
        checked.valid.height + checked.rows_quarantined + checked.rows_duplicate
    )
    q = checked.quarantine
    complete = q.select(pl.col("_source_row", "column", "rule", "message").is_not_null().all())
    assert all(complete.row(0)), q
    event("read, with quarantine" if q.height else "read, all valid")
    return "read"


Mutation = tuple[str, int, bytes]
MUTATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "delete", "replace"]),
        st.integers(min_value=0, max_value=10**6),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


def mutate(content: bytes, mutations: list[Mutation]) -> bytes:
    """Random bytes inserted, deleted or overwritten at positions within the content."""
    data = bytearray(content)
    for kind, position, chunk in mutations:
        at = position % (len(data) + 1)
        if kind == "insert":
            data[at:at] = chunk
        elif kind == "delete":
            del data[at : at + len(chunk)]
        else:
            data[at : at + len(chunk)] = chunk
    return bytes(data)


TEXT_SAMPLES = st.sampled_from(["C01-follow_up", "C02-inclusion", "C02-follow_up"])
BINARY_SAMPLES = st.sampled_from(["C03-follow_up", "C04-follow_up"])


@FUZZ
@given(name=TEXT_SAMPLES, content=st.binary(max_size=2000))
@example(name="C01-follow_up", content=b"*\n\n1\n")  # a header polars reads as a pattern
@example(name="C02-inclusion", content=b"a\x1fb;c\nx;y\n")  # a control character in a header
@example(name="C02-follow_up", content=b"\xef\xbb\xbf")  # a byte-order mark alone
def test_any_bytes_are_read_or_rejected(samples, name, content):
    """It turns arbitrary bytes under a CSV name into rows or a rejection, nothing else."""
    sample = samples[name]
    outcome(content, sample.form_mapping, sample.form)


@FUZZ
@given(name=TEXT_SAMPLES, mutations=MUTATIONS)
def test_mutated_csv_export_is_read_or_rejected(samples, name, mutations):
    """It survives random damage to a valid CSV export."""
    sample = samples[name]
    outcome(mutate(sample.content, mutations), sample.form_mapping, sample.form)


CELL = st.one_of(
    st.sampled_from(["", "NA", "ND", "0", "7", "11", "-1", "6.5", "1e3", "baseline_arm_1"]),
    st.sampled_from(["2016-08-02", "31/02/2016", "2099-01-01", "C01-0001", "C02-0001", "H"]),
    st.text(alphabet=',;"\r\n \t0123456789/-.éAZaz\x85\u2028', max_size=10),
)


@FUZZ
@given(name=TEXT_SAMPLES, data=st.data())
def test_valid_header_with_hostile_cells_is_read_or_rejected(samples, name, data):
    """It validates cells of any text under the real header: quarantine, never a crash."""
    sample = samples[name]
    fmt = sample.form_mapping.format
    header = sample.content.split(b"\n")[0].decode(fmt.encoding)
    width = header.count(fmt.delimiter) + 1
    rows = data.draw(st.lists(st.lists(CELL, min_size=width, max_size=width), max_size=8))
    body = "\n".join(fmt.delimiter.join(row) for row in rows)
    content = f"{header}\n{body}\n".encode(fmt.encoding, errors="replace")
    outcome(content, sample.form_mapping, sample.form)


@FEW
@given(name=BINARY_SAMPLES, mutations=MUTATIONS)
def test_mutated_workbook_or_parquet_is_read_or_rejected(samples, name, mutations):
    """It survives random damage to a valid XLSX workbook or parquet file."""
    sample = samples[name]
    outcome(mutate(sample.content, mutations), sample.form_mapping, sample.form)


@FEW
@given(name=st.sampled_from([f"{c}-{f}" for c, f, _ in SAMPLES]), mutations=MUTATIONS)
def test_stage_export_gives_a_staged_export_or_a_rejection(samples, name, mutations):
    """It never raises from stage_export: a Rejection or a staged file that adds up."""
    sample = samples[name]
    content = mutate(sample.content, mutations)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export"
        path.write_bytes(content)
        export = ExportFile(
            sample.mapping.centre_id, path, sample.form, file_hash(content), len(content)
        )
        result = stage_export(export, sample.mapping)
    assert isinstance(result, StagedExport | Rejection)
    if isinstance(result, Rejection):
        assert result.error
    else:
        checked = validate_staged(result.staged, FORMS[sample.form])
        assert checked.rows_read == (
            checked.valid.height + checked.rows_quarantined + checked.rows_duplicate
        )
