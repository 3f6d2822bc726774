"""The API documentation pages, ``/docs`` (Swagger UI) and ``/redoc``, that work offline.

FastAPI's own pages load their JavaScript and CSS from a CDN, so they are blank without
internet. These are the same pages (``fastapi.openapi.docs``) with their assets served by this
app, from the static files that the ``fastapi-offline`` package ships (Swagger UI 5, ReDoc 2).
Both pages load nothing from elsewhere: Swagger UI's online validator badge is off, and a
Content-Security-Policy keeps images to this server (ReDoc's sidebar credit would otherwise
fetch its logo from Redocly's CDN; offline it simply shows no logo).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
#: The package whose ``static/`` folder holds the assets, and the files this app uses from it.
ASSETS_PACKAGE = ("fastapi_offline", "static")
SWAGGER_JS, SWAGGER_CSS, REDOC_JS, FAVICON = (
    "swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png",
)
#: Images from this server only (and the data: and blob: URLs the pages build themselves).
CONTENT_SECURITY_POLICY = "img-src 'self' data: blob:"


def install_docs(app: FastAPI) -> None:
    """Adds the documentation pages and their assets to an app made with ``docs_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(packages=[ASSETS_PACKAGE]), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI, with Authorize signing in through the OAuth2 password form."""
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + str(app.openapi_url),
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{root}{ASSETS_URL}/{SWAGGER_JS}",
            swagger_css_url=f"{root}{ASSETS_URL}/{SWAGGER_CSS}",
            swagger_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
        return _local_images_only(page)

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        """Where Swagger UI's OAuth2 flows come back to (not used by the password flow)."""
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc, without the Google fonts it would otherwise load."""
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_redoc_html(
            openapi_url=root + str(app.openapi_url),
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/{REDOC_JS}",
            redoc_favicon_url=f"{root}{ASSETS_URL}/{FAVICON}",
            with_google_fonts=False,
        )
        return _local_images_only(page)


def _local_images_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page
