"""The long-running agent: watches targets on a schedule, keeps lists fresh,
records what it saw, and serves /healthz and /metrics.

State lives in the store (SQLite by default, PostgreSQL for several agents);
the APScheduler job store stays in memory and is rebuilt from the targets table
at start and whenever `dweb-agent targets` changes it.

This room is *when and how often* work runs, and the process around it: agent
(the composition root), scheduler (jobs, their tasks, the graceful stop), polls
(one target poll: claim, next run or backoff), process (signals, health port),
schedule, metrics, health. *What* a job does to the domain is agent.services'."""
