"""``facerec serve``: identify, verify and enrol over HTTP, and the web page at ``/``.

``app`` builds the application; ``service`` does the work, free of HTTP (the gallery store, the
pipelines, the worker threads); ``routes`` and ``clusters`` are the endpoints over it (the service
injected), ``statuses`` the HTTP answer to each refusal, ``models`` the response types, ``limits``
what a request may carry, ``security`` the gate before the routes, ``docs`` and ``page`` the
documentation and the web page, ``protocol`` uvicorn's connection timeouts."""

from facerec.server.app import create_app, serving
from facerec.server.limits import Limits, check_name, is_loopback

__all__ = ["Limits", "check_name", "create_app", "is_loopback", "serving"]
