"""One construct per concern: storage, queueing, signing, notifications, functions, api.

The package is deliberately not called `constructs`: running `python infra/app.py` puts `infra/`
on `sys.path`, and a local `constructs` package would then shadow the `constructs` library that
every CDK module imports.
"""

from infra.components.api import Api, Route
from infra.components.functions import Functions, FunctionSpec
from infra.components.notifications import Notifications
from infra.components.queueing import Queueing
from infra.components.signing import Signing
from infra.components.storage import Storage

__all__ = [
    "Api",
    "FunctionSpec",
    "Functions",
    "Notifications",
    "Queueing",
    "Route",
    "Signing",
    "Storage",
]
