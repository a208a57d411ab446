"""``tripwise.metrics`` (ml-breaker's README path) on an install without prometheus-client:
the import works, ``register()`` names the extra (as ml-breaker does)."""

from __future__ import annotations

import subprocess
import sys

_NO_PROMETHEUS = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "prometheus_client" or name.startswith("prometheus_client."):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
from tripwise.metrics import PrometheusMetrics
try:
    PrometheusMetrics.register()
except ImportError as exc:
    print(exc)
"""


def test_register_without_prometheus_client_names_the_extra() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_PROMETHEUS], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == (
        "PrometheusMetrics needs prometheus-client: pip install 'tripwise[prometheus]' "
        "(from a clone: pip install '.[prometheus]')"
    )


def test_with_prometheus_client_it_is_the_observe_entry_point() -> None:
    from tripwise.metrics import PrometheusMetrics
    from tripwise.observe import PrometheusMetrics as Native

    assert PrometheusMetrics is Native
