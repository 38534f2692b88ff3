"""cohortflow: nightly ETL for a multicentre clinical cohort.

This package is two things, kept apart: its modules ``errors`` and ``settings`` are the
foundation that every layer imports (they import nothing of the project), and ``cli`` is
the roof (the command line, which may import everything). The layers between, bottom up:
``schemas`` declares the canonical forms, ``transforms`` reads, maps, validates, loads,
derives and checks, ``models`` fits and publishes, ``flows`` orchestrates with Prefect.
See docs/architecture.md.
"""

__version__ = "0.1.0"
