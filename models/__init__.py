"""The study's statistical models (statsmodels) and the publication of their results."""
