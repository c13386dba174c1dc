"""Model families: each module exposes ``build(hp, *, input_shape, num_classes, **params)``; none is imported eagerly."""
