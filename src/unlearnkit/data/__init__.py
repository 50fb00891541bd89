"""Data: sources, splits, loaders and the competition-layout reader and writer."""

from .base import IMAGE_SHAPE, ImageSet, SourceData
from .competition import export_competition, read_competition
from .loaders import TensorLoader, make_loader, unpack
from .sources import data_root, get_source, source_names
from .splits import Split, make_split, parse_scenario

__all__ = [
    "IMAGE_SHAPE", "ImageSet", "SourceData", "TensorLoader", "make_loader", "unpack",
    "data_root", "get_source", "source_names",
    "Split", "make_split", "parse_scenario",
    "export_competition", "read_competition",
]
