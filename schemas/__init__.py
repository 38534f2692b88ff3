"""Canonical forms (Pandera DataFrameModels): what a valid row of each form is."""
