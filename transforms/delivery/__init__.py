"""Delivery: harmonised data handed to people.

* ``pull``: a table or view, current or at a past snapshot, as parquet or CSV with a data card
  (its steps in ``catalogue``, ``state``, ``query``, ``files``, ``card``, ``listing``, ``errors``);
* ``dictionary``: the data dictionary, generated from the schemas and the DDL.
"""
