"""The search space: parameter types, the define-by-run ``hp`` object and spaces declared in config.
Imports only ``core`` and ``errors``; no backend.
"""
