"""The HTTP control API (FastAPI on uvicorn): ``python -m coordinator serve``.

``coordinator.api.app.create_app`` builds the application; ``coordinator.api.smoke``
checks a running one. Nothing is imported here, so the smoke check and the other
commands do not pay for importing FastAPI.
"""
