"""The cloud tuning service's spec, read unchanged: ``spec=hptuning_config.yaml``.

:func:`read_spec` reads either format the service takes — the older ``trainingInput.hyperparameters``
block or the newer ``studySpec`` of a hyperparameter tuning job — and returns a :class:`CloudSpec`:
the Hydra overrides that set archsearch's search space, objective and tuner from it (the CLI puts them
before the user's own, so the command line still wins), one note per field that only means something
on the cloud, and the program arguments the service would pass.  A field archsearch cannot honour is
refused with one :class:`~archsearch.errors.ConfigError` naming it; docs/cloud_spec.md lists them all.
"""

from archsearch.spec.reader import CloudSpec, read_spec

__all__ = ["CloudSpec", "read_spec"]
