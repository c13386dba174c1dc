"""Import this to register every serialisable archsearch object with Keras.

Exported models use the ``mish`` activation and the segmentation metrics and
losses; ``keras.saving.load_model`` can only rebuild them once registered.
``import archsearch`` imports this module as soon as Keras is loaded (``registration.py``).
"""

from __future__ import annotations

import archsearch.training.augment_layers  # noqa: F401
import archsearch.training.metrics  # noqa: F401
import archsearch.training.layers  # noqa: F401
