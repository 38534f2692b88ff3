"""Where the date each export was made comes from: its name, a column, or its mtime.

Part of a form's mapping (``FormMapping.export_date``); ``transforms.staging.order``
reads it to apply a centre's files in the order they were made.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, field_validator

from transforms.staging.dates import EXCEL_DATE
from transforms.staging.rules import Strict as _Strict
from transforms.staging.rules import date_format as _date_format
from transforms.staging.rules import one_group


class _DateSource(_Strict):
    """Written back as ``from:`` (the key a person types; ``from`` is a Python keyword)."""

    model_config = ConfigDict(serialize_by_alias=True)


class NameDate(_DateSource):
    """The export date written in the file name (``suivi_C02_15102017.csv``)."""

    from_: Literal["file_name"] = Field(alias="from")
    pattern: str = Field(description="regex searched in the file name; its one group is the date")
    format: str = Field(description="strptime format of that group, e.g. '%d%m%Y'")

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str) -> str:
        return one_group(value, "date", ", e.g. '_(\\d{8})'")

    @field_validator("format")
    @classmethod
    def _full_date(cls, value: str) -> str:
        return _date_format(value)


class ColumnDate(_DateSource):
    """The export date held in a column of the file (an extraction date, say)."""

    from_: Literal["column"] = Field(alias="from")
    column: str = Field(description="source column holding the date")
    format: str | None = Field(
        None, description="strptime format, 'excel' for serial days; ISO dates when left out"
    )
    take: Literal["latest", "constant"] = Field(
        "latest", description="latest: the column's latest date; constant: one date in every row"
    )

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str | None) -> str | None:
        return value if value in (None, EXCEL_DATE) else _date_format(str(value))


class ModifiedDate(_DateSource):
    """The file's modification time: the last resort (a copy may change it)."""

    from_: Literal["modification_time"] = Field(alias="from")


EXPORT_DATE_SOURCES = ("file_name", "column", "modification_time")
ExportDate = Annotated[NameDate | ColumnDate | ModifiedDate, Field(discriminator="from_")]
