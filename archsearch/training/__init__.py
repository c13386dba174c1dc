"""The Keras trial runner and what it needs: building, compiling and fitting one trial, metrics, optimizers,
the ``HyperModel`` base, Keras registration, retraining against a baseline.  The only package (with
``keras_tuner``, ``export`` and ``hypermodels``) that imports Keras.
"""
