"""Python SDK of bmaas (standard library only).

``bmaas.Client`` talks to a bmaas server over its REST API: datasets,
models, training jobs, deployments, and predictions over the KServe v2
REST protocol. ``bmaas.train`` is for scripts that run as bmaas
``process`` jobs: it reads the job's environment (BMAAS_HPARAMS,
BMAAS_DATA_DIR, BMAAS_OUTPUT_DIR, BMAAS_CHECKPOINT_DIR, ...) and reports
metrics as JSON lines to BMAAS_METRICS_FILE, which the trainer agent tails.
"""

from . import train
from ._http import BmaasError
from .client import Client

__all__ = ["Client", "BmaasError", "train"]
__version__ = "0.1.0"
