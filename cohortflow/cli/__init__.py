"""The roof of the house: the ``cohortflow`` program (``commands``) and what it prints
(``summary``). Nothing below imports from here."""

from cohortflow.cli.commands import main

__all__ = ["main"]
