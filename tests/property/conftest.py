"""Hypothesis profiles for the property suite.

`ci` (selected by CI=true) runs a bounded number of examples per test so the
suite's cost is fixed; `dev` (the default) fewer, for a quick local run;
HYPOTHESIS_PROFILE names another. The deadline is off everywhere: a loaded
CI machine must not turn a slow example into a failure (a hung call is caught
by the harness's own generous watchdog instead). bench/fuzz.py runs the same
targets for as long as asked."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("ci", max_examples=200, derandomize=False, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("dev", max_examples=60, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("fuzz", max_examples=10_000_000, **_COMMON)  # type: ignore[arg-type]

_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ci else "dev"))
