"""RFT datasets: the JSONL line model, a loader that reports every bad line, and splitting."""

from .loader import DatasetError, load_dataset
from .schema import ChatMessage, DatasetLine

__all__ = ["ChatMessage", "DatasetError", "DatasetLine", "load_dataset"]
