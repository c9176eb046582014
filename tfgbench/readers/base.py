"""The lip-reader contract used by the WER metric.

Preprocessing (crop, resize, grayscale, normalisation) belongs to the WER *protocol*, not to the
reader: the metric hands a reader ready tensors and gets text back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import torch


class LipReader(ABC):
    """A lip-reading evaluator.

    Attributes:
        teacher_forced: the reader decodes with the reference transcript as decoder input
            (argmax per position, TalkLip's observer 2); ``transcribe`` then requires references.
        sha256: sha256 of the weights file, recorded with every result row.
    """

    teacher_forced: ClassVar[bool] = False
    sha256: str = "none"

    @abstractmethod
    def transcribe(self, videos: Sequence[torch.Tensor],
                   references: Sequence[str] | None = None) -> list[str]:
        """Transcribe a batch of preprocessed clips.

        Args:
            videos: each ``(T, H, W)`` float32 grayscale, already cropped and normalised by the
                protocol; lengths may differ (the reader pads and masks).
            references: reference transcripts, used only by teacher-forced readers.

        Returns:
            One hypothesis string per clip (lower case words separated by single spaces).
        """
