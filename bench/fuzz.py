"""Fuzz one parser of untrusted bytes for as long as asked.

    python bench/fuzz.py --list
    python bench/fuzz.py TARGET SECONDS [--engine hypothesis|atheris]

The targets are the property suite's (tests/property/targets.py): the same
inputs, the same documented error types, the same time and memory bounds.
`hypothesis` (the default) runs batches of generated and mutated inputs until
the time is up, shrinking each failure to a minimal input; `atheris` (if it
is installed: `pip install atheris`) drives the same strategies from
libFuzzer's coverage-guided byte streams. Prints the number of examples run
and every distinct failure (type, message, minimal input); exits 1 if there
was any."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HYPOTHESIS_PROFILE", "fuzz")

BATCH = 500


def _failure_key(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    cause = exc.__cause__ or exc
    where = traceback.extract_tb(cause.__traceback__)[-1:] or frames[-1:]
    loc = f"{where[0].filename}:{where[0].lineno}" if where else "?"
    return f"{type(cause).__qualname__} at {loc}"


def run_hypothesis(name: str, seconds: float) -> int:
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.property.targets import TARGETS

    target = TARGETS[name]
    count = 0
    failures: dict[str, str] = {}
    # A known failure is not looked for again and again: skip inputs that
    # reproduce one already reported (by type and place).
    deadline = time.monotonic() + seconds

    @settings(
        max_examples=BATCH,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def one(value: Any) -> None:
        nonlocal count
        count += 1
        try:
            target.check(value)
        except AssertionError as exc:
            if _failure_key(exc) in failures:
                return
            raise

    while time.monotonic() < deadline:
        try:
            one()
        except Exception as exc:  # noqa: BLE001 - every failure is reported below
            key = _failure_key(exc)
            notes = "\n".join(getattr(exc, "__notes__", []))
            failures.setdefault(key, f"{type(exc).__name__}: {exc}\n{notes}".strip())
            print(f"[{name}] FAILURE {key}\n{failures[key]}\n", flush=True)
    print(f"{name}: {count} examples in {seconds:.0f} s (hypothesis), {len(failures)} distinct failures", flush=True)
    return 1 if failures else 0


def run_atheris(name: str, seconds: float) -> int:
    # atheris is optional (a libFuzzer build) and ships no types: loaded by name, only when asked for.
    atheris = importlib.import_module("atheris")

    with atheris.instrument_imports():
        from hypothesis import HealthCheck, given, settings

        from tests.property.targets import TARGETS
    if name not in TARGETS:
        sys.exit(f"unknown target {name!r}; see --list")
    target = TARGETS[name]

    @settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(target.strategy)
    def one(value: Any) -> None:
        target.check(value)

    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", "-print_final_stats=1"]
    # @given's stub returns a plain callable; the `.hypothesis` handle it documents is not in it.
    atheris.Setup(argv, one.hypothesis.fuzz_one_input)  # type: ignore[attr-defined]
    atheris.Fuzz()  # exits the process; libFuzzer prints the counts
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?")
    parser.add_argument("seconds", nargs="?", type=float)
    parser.add_argument("--list", action="store_true", help="name the targets and exit")
    parser.add_argument("--engine", choices=["hypothesis", "atheris"], default="hypothesis")
    args = parser.parse_args()
    if args.engine == "atheris" and not args.list and args.seconds:
        # Imported inside atheris's instrumentation, so nothing imports them first.
        return run_atheris(args.target, args.seconds)
    from tests.property.targets import TARGETS

    if args.list:
        for target in TARGETS.values():
            print(f"{target.name:16} {target.doc}")
        return 0
    if args.target not in TARGETS or args.seconds is None or args.seconds <= 0:
        parser.error(f"give a TARGET ({', '.join(TARGETS)}) and SECONDS > 0, or --list")
    return run_hypothesis(args.target, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
