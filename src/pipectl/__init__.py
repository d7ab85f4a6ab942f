"""pipectl: the control plane for data pipelines (scheduled jobs, a worker, freshness)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from pipectl.client import Client
    from pipectl.worker import Worker

__all__ = ["Client", "Worker", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import pipectl` (and `pipectl --help`) stay cheap.
    if name == "Client":
        from pipectl.client import Client

        return Client
    if name == "Worker":
        from pipectl.worker import Worker

        return Worker
    raise AttributeError(name)
