"""The Hydra app: search, retrain, resume, the run-folder preflight and the sweep callback, plus the console
and progress listeners -- the only code that writes to the terminal.
"""
