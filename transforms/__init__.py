"""Reading, mapping, validating, scoring and loading: plain functions, polars in and out."""
