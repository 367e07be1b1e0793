"""GigaAM v3 (SaluteDevices) in native PyTorch, loading the published checkpoints safely."""

from .load import GigaAMAsr, is_gigaam, load_gigaam

__all__ = ["GigaAMAsr", "is_gigaam", "load_gigaam"]
