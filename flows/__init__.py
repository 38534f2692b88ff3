"""Prefect flows: orchestration only; the work is in transforms/ and models/."""
