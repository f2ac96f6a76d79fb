"""What every console response carries, and the origin check of every POST.

The Content-Security-Policy admits scripts, styles and images from the console itself
only: no inline script or style, no other origin, no framing, forms posted nowhere else.
So a name a publisher chose (a DAG path, a list label) that slipped past the templates'
escaping still could not run. Pages are never cached (they show findings), and the
referrer is kept to this site (a "no-referrer" policy would make browsers send
`Origin: null` on our own forms, and the origin check below would refuse them)."""

from __future__ import annotations

from aiohttp import web

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


async def secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: the headers above, and no caching but for the static assets."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/ui/static/"):
        response.headers["Cache-Control"] = "no-store"


def same_origin(request: web.Request) -> bool:
    """Whether a POST comes from one of this site's own pages. A browser says where a form
    came from (Origin; Sec-Fetch-Site in current ones): both must name this site when sent.
    A client that sends neither (curl) is left to the CSRF token, which it cannot have
    without a session of its own."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return False
    origin = request.headers.get("Origin")
    # Behind a TLS proxy (see [console] secure_cookie) the agent sees http while the page was
    # https: the https origin of this very host is still this site.
    return origin is None or origin in (f"{request.scheme}://{request.host}", f"https://{request.host}")
