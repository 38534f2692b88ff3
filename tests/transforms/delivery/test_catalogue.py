"""The catalogue: every pullable table and view has a natural key to sort by."""

from __future__ import annotations

from schemas.forms import VIEW_KEYS
from transforms.delivery.catalogue import PULLABLE, TABLES, natural_key
from transforms.derived import views


def test_natural_key_is_known_for_every_view():
    """It knows the sort key of every view transforms.derived.views builds."""
    assert set(VIEW_KEYS) == set(views.VIEW_NAMES)
    assert all(natural_key(name) for name in PULLABLE)
    assert set(PULLABLE) == set(TABLES) | set(views.VIEW_NAMES)
