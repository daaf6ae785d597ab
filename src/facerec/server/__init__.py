"""``facerec serve``: identify, verify and enrol over HTTP, and the web page at ``/``.

``app`` builds the application, ``routes`` holds the endpoints (the store and pipelines
injected), ``models`` their response types, ``limits`` what a request may carry."""

from facerec.server.app import create_app, serving
from facerec.server.limits import Limits, check_name, is_loopback

__all__ = ["Limits", "check_name", "create_app", "is_loopback", "serving"]
