"""Ready-made image hypermodels under KerasTuner's names: ``kt.applications.HyperResNet``, ...,
and its image augmentation hypermodel ``HyperImageAugment``.

Each takes KerasTuner's arguments (``input_shape`` or ``input_tensor``, ``classes``, ``include_top``)
and declares KerasTuner's hyperparameters, names, ranges and defaults included, so a search
written for ``keras_tuner.applications`` runs unchanged.  Keras is imported only when a model is
built.  The CLI reaches the same networks as model families (``model=resnet``, ``model=xception``,
``model=efficientnet``; ``hypermodels/``).
"""

from archsearch.keras_tuner.applications.augment import HyperImageAugment
from archsearch.keras_tuner.applications.efficientnet import HyperEfficientNet
from archsearch.keras_tuner.applications.resnet import HyperResNet
from archsearch.keras_tuner.applications.xception import HyperXception

__all__ = ["HyperEfficientNet", "HyperImageAugment", "HyperResNet", "HyperXception"]
