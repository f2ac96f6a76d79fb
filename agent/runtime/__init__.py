"""The daemon process: lifecycle (start, graceful stop on SIGTERM/SIGINT), the
scheduler's pieces (jittered intervals, backoff), metrics and the /healthz and
/metrics app. The domain jobs it schedules live in the services."""
