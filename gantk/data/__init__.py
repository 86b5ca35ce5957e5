"""Datasets for image-to-image translation: formats, validation, augmentation, sampling, preparation."""

from .datasets import GanDataset
from .demo import demo_dataset_dir
from .derive import DerivedSet, combine_folders, derive_input, derive_pairs
from .formats import DataFormat
from .opening import detect_format, get_format, open_dataset
from .io import read_image, read_mask, write_png
from .sampler import ResumableSampler
from .transforms import PairedTransform
from .validate import DatasetSummary, check_dataset

__all__ = [
    "DataFormat",
    "DatasetSummary",
    "DerivedSet",
    "GanDataset",
    "PairedTransform",
    "ResumableSampler",
    "check_dataset",
    "combine_folders",
    "demo_dataset_dir",
    "derive_input",
    "derive_pairs",
    "detect_format",
    "get_format",
    "open_dataset",
    "read_image",
    "read_mask",
    "write_png",
]
