"""What a value looks like: the shapes of numbers, dates and times the profiler tells apart.

Shared by the sniffing of a file's decimal mark and the typing of its columns, so that a
value counted as a decimal comma in one is one in the other.
"""

INTEGER = r"^[+-]?\d+$"
DECIMAL = r"^[+-]?(\d+[.,]\d*|[.,]\d+|\d+)$"
DECIMAL_COMMA = r"^[+-]?\d*,\d+$"
DECIMAL_POINT = r"^[+-]?\d*\.\d+$"
TIME = r"^\d{1,2}:\d{2}(:\d{2})?$"  # a time of day, as a rank's time column holds it

_MONTH = r"\p{L}{3,9}\.?"  # a month's name or abbreviation, any language, dot or not
_ZONE = r"(Z|[+-]\d{2}:?\d{2})"  # ISO 8601's time zone
_MIDNIGHT = r"([ T]00:00:00(\.0+)?)?"  # ISO dates as spreadsheets and parquet render them

# strptime format -> the shape a value must have (polars' %Y also accepts a 2-digit year).
# In order of preference: of the formats that read the most values, the first is proposed.
# Month names (%b) are read in English and French (transforms.staging.dates), as the reader
# reads them.
DATE_FORMATS = {
    "%Y-%m-%d": rf"^\d{{4}}-\d{{1,2}}-\d{{1,2}}{_MIDNIGHT}$",
    "%d/%m/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%m/%d/%Y": r"^\d{1,2}/\d{1,2}/\d{4}$",
    "%d/%m/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%m/%d/%y": r"^\d{1,2}/\d{1,2}/\d{2}$",
    "%d.%m.%Y": r"^\d{1,2}\.\d{1,2}\.\d{4}$",
    "%d-%m-%Y": r"^\d{1,2}-\d{1,2}-\d{4}$",
    "%m-%d-%Y": r"^\d{1,2}-\d{1,2}-\d{4}$",
    "%Y%m%d": r"^\d{8}$",
    "%Y/%m/%d": r"^\d{4}/\d{1,2}/\d{1,2}$",
    # a date and a time: the date is read, the time left out
    "%Y-%m-%dT%H:%M:%S": r"^\d{4}-\d{1,2}-\d{1,2}T\d{1,2}:\d{2}:\d{2}$",
    "%Y-%m-%d %H:%M:%S": r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}:\d{2}$",
    "%Y-%m-%d %H:%M": r"^\d{4}-\d{1,2}-\d{1,2} \d{1,2}:\d{2}$",
    "%d/%m/%Y %H:%M": r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}$",
    "%m/%d/%Y %H:%M": r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}$",
    "%d/%m/%Y %H:%M:%S": r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2}$",
    "%m/%d/%Y %H:%M:%S": r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2}$",
    "%d.%m.%Y %H:%M": r"^\d{1,2}\.\d{1,2}\.\d{4} \d{1,2}:\d{2}$",
    "%d-%b-%Y": rf"^\d{{1,2}}-{_MONTH}-\d{{4}}$",
    "%d-%b-%y": rf"^\d{{1,2}}-{_MONTH}-\d{{2}}$",
    "%d %b %Y": rf"^\d{{1,2}} {_MONTH} \d{{4}}$",
    "%d %b %y": rf"^\d{{1,2}} {_MONTH} \d{{2}}$",
    "%d/%b/%Y": rf"^\d{{1,2}}/{_MONTH}/\d{{4}}$",
    "%d.%b.%Y": rf"^\d{{1,2}}\.{_MONTH}\.\d{{4}}$",
    "%b %d, %Y": rf"^{_MONTH} \d{{1,2}}, \d{{4}}$",
    "%b %d %Y": rf"^{_MONTH} \d{{1,2}} \d{{4}}$",
    "%Y-%b-%d": rf"^\d{{4}}-{_MONTH}-\d{{1,2}}$",
    # SAS DATE9 (27FEB2016) and DATETIME (27FEB2016:08:30:00, or with a space)
    "%d%b%Y": rf"^\d{{1,2}}{_MONTH}\d{{4}}$",
    "%d%b%Y:%H:%M:%S": rf"^\d{{1,2}}{_MONTH}\d{{4}}:\d{{1,2}}:\d{{2}}:\d{{2}}$",
    "%d%b%Y %H:%M:%S": rf"^\d{{1,2}}{_MONTH}\d{{4}} \d{{1,2}}:\d{{2}}:\d{{2}}$",
    "%d%b%Y:%H:%M": rf"^\d{{1,2}}{_MONTH}\d{{4}}:\d{{1,2}}:\d{{2}}$",
    # ISO 8601 with a time zone ('+02:00', 'Z'): the reader takes the local date written
    "%Y-%m-%dT%H:%M:%S%z": rf"^\d{{4}}-\d{{1,2}}-\d{{1,2}}T\d{{1,2}}:\d{{2}}:\d{{2}}{_ZONE}$",
    "%Y-%m-%dT%H:%M%z": rf"^\d{{4}}-\d{{1,2}}-\d{{1,2}}T\d{{1,2}}:\d{{2}}{_ZONE}$",
}
ISO_DATE = "%Y-%m-%d"  # the reader's default: not written in date_formats
# day first -> month first: formats that may both read every value of a column
AMBIGUOUS_DATES = {
    "%d/%m/%Y": "%m/%d/%Y",
    "%d/%m/%y": "%m/%d/%y",
    "%d-%m-%Y": "%m-%d-%Y",
    "%d/%m/%Y %H:%M": "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M:%S": "%m/%d/%Y %H:%M:%S",
}
PLAUSIBLE_YEARS = (1900, 2100)

# Month names (plain: lower case, no accent, no dot) that are never an abbreviation: a
# column writing one of them is drafted with %B ('15 juillet 2016' -> '%d %B %Y'), else %b.
FULL_MONTH_NAMES = frozenset(
    "january february march april june july august september october november december "
    "janvier fevrier avril juillet septembre octobre novembre decembre".split()
)

# Excel serial day numbers (1900 system) of plausible study dates: years 1920 to 2100.
# A number column matched to a date column and within this range is drafted as 'excel'.
EXCEL_SERIAL_RANGE = (7306, 73415)
