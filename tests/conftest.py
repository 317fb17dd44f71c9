"""Hypothesis profiles for the whole suite, so that a failure found once reproduces.

* ``ci``: derandomized (examples derived from each test's source, the same on every run), no
  example database, no deadline; selected automatically when the environment sets ``CI``
  (``.ci/run`` exports ``CI=true``).
* ``dev`` (default elsewhere): random examples, the failing ones kept in the local example
  database (``.hypothesis/``) and replayed first on the next run; failures print the
  ``@reproduce_failure`` blob.
* ``thorough``: ``dev`` with ``THOROUGH_FACTOR`` (10) times the examples, also of the tests that
  set their own ``max_examples`` (scaled at collection); select it with
  ``HYPOTHESIS_PROFILE=thorough`` (``HYPOTHESIS_PROFILE`` picks any of the three).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, print_blob=True)
THOROUGH_FACTOR = 10
settings.register_profile("thorough", deadline=None, print_blob=True, max_examples=100 * THOROUGH_FACTOR,
                          suppress_health_check=[HealthCheck.too_slow])

PROFILES = ("ci", "dev", "thorough")


def selected_profile(environ=os.environ) -> str:
    """HYPOTHESIS_PROFILE when set, else 'ci' when CI is set (to anything but '' / 'false' / '0'), else 'dev'."""
    name = environ.get("HYPOTHESIS_PROFILE", "").strip()
    if name:
        if name not in PROFILES:
            raise ValueError(f"HYPOTHESIS_PROFILE={name!r}: known profiles are {', '.join(PROFILES)}")
        return name
    return "ci" if environ.get("CI", "").strip().lower() not in ("", "false", "0") else "dev"


settings.load_profile(selected_profile())


def pytest_collection_modifyitems(items):
    """Under 'thorough', scale each hypothesis test's own max_examples by THOROUGH_FACTOR (hypothesis
    reads a test's settings from this attribute when the test runs)."""
    if selected_profile() != "thorough":
        return
    for item in items:
        fn = getattr(item, "obj", None)
        own = getattr(fn, "_hypothesis_internal_use_settings", None)
        if own is not None and not getattr(fn, "_flexspec_thorough", False):
            fn._hypothesis_internal_use_settings = settings(own, max_examples=own.max_examples * THOROUGH_FACTOR)
            fn._flexspec_thorough = True
