"""The search space, one idea a module, each importing only the ones above it in this list:

* ``values``: how values are compared, keyed and stored (``values_key``, ``to_python``);
* ``parameters``: what every parameter is (``HyperParameter``, ``Condition``);
* ``numeric`` (``Int``, ``Float``) and ``categorical`` (``Choice``, ``Boolean``, ``Fixed``): the types;
* ``declarative``: spaces declared in config, and ``PARAMETER_TYPES``, the one registry of types;
* ``hyperparameters``: ``HyperParameters``, the define-by-run ``hp`` (KerasTuner's module of that name).

Imports only ``errors`` and NumPy; no backend.
"""
