"""RFT datasets: the JSONL line model, a loader that reports every bad line, and splitting."""

from rftkit.trainer.data.loader import DatasetError, load_dataset
from rftkit.trainer.data.schema import ChatMessage, DatasetLine

__all__ = ["ChatMessage", "DatasetError", "DatasetLine", "load_dataset"]
