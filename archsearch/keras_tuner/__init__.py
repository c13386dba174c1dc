"""The KerasTuner compatibility face: ``Tuner`` and its subclasses, ``SklearnTuner`` and ``applications``,
over the same engine, oracles and store as the CLI.
"""
