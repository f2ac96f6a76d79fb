"""Alerts import the model, not the store: signing a webhook (what a receiver-side
tool or the CLI's `webhooks test` needs) does not load SQLAlchemy."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def test_importing_alerts_signing_events_and_delivery_does_not_load_sqlalchemy() -> None:
    code = (
        "import sys\n"
        "import agent.alerts.signing, agent.alerts.events, agent.alerts.delivery, agent.model.events\n"
        "loaded = sorted(m for m in sys.modules if m == 'sqlalchemy' or m.startswith(('sqlalchemy.', 'agent.store')))\n"
        "assert not loaded, loaded\n"
    )
    # A fresh interpreter: this test process has long imported the store.
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
