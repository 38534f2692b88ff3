"""Derived data: scores and analysis views as pure functions of the harmonised tables
(polars in, polars out; the warehouse stores them: ``transforms.warehouse.views``).

* ``scores``: HADS-A/D (half rule) and SF-12 PCS-12/MCS-12 (published weights in ``reference/``);
* ``views``: ketamine doses in mg, one row per patient-month, one row per patient.
"""
