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

_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]


def _register(name: str, max_examples: int) -> None:
    # derandomize=False also under CI, where hypothesis' own `ci` profile (replaced here) derandomizes:
    # each CI run explores new examples.
    settings.register_profile(
        name,
        max_examples=max_examples,
        derandomize=False,
        deadline=None,
        database=None,
        suppress_health_check=_SUPPRESSED,
    )


_register("ci", 200)
_register("dev", 60)
_register("fuzz", 10_000_000)

_ci = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _ci else "dev"))
