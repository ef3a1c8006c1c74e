"""Secret values known at run time (tokens, passwords, keys) and their removal from text.

The masking lives in `oaamap.redact`, the one module every part of oaamap uses; this module keeps
the names the `http` source imports. A `Redactor` masks secrets by value, so a token echoed in a
response body or an API key under an unusual parameter name is hidden too; what it learns also
reaches the run's registry, which the CLI applies to everything it prints. A log filter cleans
urllib3's own debug lines, which print every request line with its query string.
"""

from __future__ import annotations

from ...redact import Redactor, install_log_filter

__all__ = ["Redactor", "install_log_filter"]
