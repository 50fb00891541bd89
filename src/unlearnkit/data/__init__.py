"""Data: sources, splits, loaders and the competition-layout reader and writer."""

from .base import IMAGE_SHAPE, ImageSet, SourceData
from .loaders import TensorLoader, make_loader, unpack

__all__ = ["IMAGE_SHAPE", "ImageSet", "SourceData", "TensorLoader", "make_loader", "unpack"]
