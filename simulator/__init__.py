"""The cohort simulator: study-shaped data, rendered as each centre's own exports."""
