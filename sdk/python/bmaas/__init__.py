"""Python helpers for bmaas.

``bmaas.train`` is for scripts that run as bmaas ``process`` jobs: it reads
the job's environment (BMAAS_HPARAMS, BMAAS_DATA_DIR, BMAAS_OUTPUT_DIR,
BMAAS_CHECKPOINT_DIR, ...) and reports metrics as JSON lines to
BMAAS_METRICS_FILE, which the trainer agent tails. It uses the standard
library only.
"""

from . import train

__all__ = ["train"]
__version__ = "0.1.0"
