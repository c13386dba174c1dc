"""``hydra/sweeper=archsearch``: archsearch's oracles, store, pruning and report behind Hydra's Sweeper API, so
any Hydra app is tuned by writing its search space in Hydra's own sweep grammar (``params.py``), each trial one
job through the app's configured launcher.
"""
