"""The investigators' web console: server-rendered pages under /ui/ over the same
services and tokens as the HTTP API (agent.console.app builds it; agent.runtime mounts it).

Security is the pipeline's (agent.console.routing): a session cookie from a token login,
the API's roles on every page and button, the origin and a CSRF token on every form, a
strict Content-Security-Policy (agent.console.security), and templates that escape every
value, so what a publisher named is always shown as text."""

from agent.console.app import build_console, mount_console

__all__ = ["build_console", "mount_console"]
