"""Old import path of the dataset materializer: artifacts stored before the stage layout name it."""

from twinsft.steps.dataset_materializer import DatasetMaterializer

__all__ = ["DatasetMaterializer"]
