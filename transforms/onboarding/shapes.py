"""What a value looks like: the shapes of numbers and dates the profiler tells apart.

Shared by the sniffing of a file's decimal mark and the typing of its columns, so that a
value counted as a decimal comma in one is one in the other.
"""

INTEGER = r"^[+-]?\d+$"
DECIMAL = r"^[+-]?(\d+[.,]\d*|[.,]\d+|\d+)$"
DECIMAL_COMMA = r"^[+-]?\d*,\d+$"
DECIMAL_POINT = r"^[+-]?\d*\.\d+$"

# strptime format -> the shape a value must have (polars' %Y also accepts a 2-digit year).
# In order of preference: of the formats that read the most values, the first is proposed.
DATE_FORMATS = {
    "%Y-%m-%d": r"^\d{4}-\d{1,2}-\d{1,2}$",
    "%d/%m/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%m/%d/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%d/%m/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%m/%d/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%d.%m.%Y": r"^\d{1,2}\.\d{1,2}\.\d{4}$",
    "%d-%m-%Y": r"^\d{1,2}-\d{1,2}-\d{4}$",
    "%Y%m%d": r"^\d{8}$",
}
ISO_DATE = "%Y-%m-%d"  # the reader's default: not written in date_formats
AMBIGUOUS_DATES = {"%d/%m/%Y": "%m/%d/%Y", "%d/%m/%y": "%m/%d/%y"}  # day/month -> month/day
PLAUSIBLE_YEARS = (1900, 2100)
