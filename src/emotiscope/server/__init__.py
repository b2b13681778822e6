"""The web service ([serve] extra): `create_app()` builds the FastAPI app.

Routes: POST /v1/analyze, POST /v1/analyze/batch, GET /v1/model, GET /healthz, the browser
page at /, and the API document at /openapi.json (rendered at /docs, no CDN).
"""

from .app import ServerConfig, create_app

__all__ = ["ServerConfig", "create_app"]
