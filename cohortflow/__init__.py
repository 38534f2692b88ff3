"""cohortflow: nightly ETL for a multicentre clinical cohort.

Layers (see docs in README): ``simulator`` makes centre exports, ``transforms`` reads,
maps, validates and loads them, ``schemas`` declares the canonical forms, ``models``
fits and publishes, ``flows`` orchestrates with Prefect, ``cohortflow`` holds the CLI,
settings and errors.
"""

__version__ = "0.1.0"
