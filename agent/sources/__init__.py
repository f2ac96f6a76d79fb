"""Sources: one module per target kind; each turns a target into the items new since the last run."""
