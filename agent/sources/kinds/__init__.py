"""One Source per watchable target kind; agent.sources.registry maps each kind to its Source."""
