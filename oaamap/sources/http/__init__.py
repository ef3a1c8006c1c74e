"""The `http` source kind: REST JSON APIs with auth, pagination, fan-out, retries and timeouts.

Modules, one concern each:
  plan.py        configuration checks and compilation (stage 3)
  source.py      the planned source and its read: request chains and records (stage 4)
  request.py     the request a chain sends and the page it gets back
  client.py      session, timeouts, retries with backoff, errors
  auth.py        the AUTH_TYPES registry: bearer, basic, api_key, oauth2_client_credentials
  github_app.py  the `github_app` auth kind (JWT RS256 -> installation token, refreshed)
  paginators.py  the PAGINATOR_TYPES registry: link_header, next_url, cursor, offset, page,
                 graphql
  fanout.py      concurrent request chains, results in parent order
  redact.py      secret values masked in every message (and in urllib3's debug log)
  checks.py      plan-time checks of configuration values (shared with the `sql` kind)
"""

from __future__ import annotations

from .. import register_source_kind
from . import github_app  # noqa: F401  (registers `auth: github_app`)
from .auth import AUTH_TYPES, AuthType, register_auth
from .paginators import PAGINATOR_TYPES, Paginator, register_paginator
from .plan import plan_http
from .source import HttpSource

__all__ = [
    "AUTH_TYPES",
    "PAGINATOR_TYPES",
    "AuthType",
    "HttpSource",
    "Paginator",
    "plan_http",
    "register_auth",
    "register_paginator",
]

register_source_kind("http", plan_http)
