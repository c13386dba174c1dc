"""The bottom layer every other package stands on: a trial and its statuses, the objective, search events,
the store (the one owner of ``trials.db``), checkpoints, the run-folder lock, atomic files, disk checks
and Ctrl-C safe points.  Imports nothing of archsearch above it, and no backend, Hydra or OmegaConf.
"""
