"""Onboarding a centre by configuration alone: its exports profiled, a mapping drafted."""
