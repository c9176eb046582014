"""Face detection, tracking and crops for the LSE pipelines (light at import: no torch).

* :class:`~tfgbench.face.haar.HaarDetector`: OpenCV's bundled Haar cascade, offline, no weights.
* :class:`~tfgbench.face.s3fd.S3FDDetector`: a port of syncnet_python's S3FD that loads the user's
  ``sfd_face.pth`` (official key names, ``weights_only=True``).
* :mod:`tfgbench.face.track`: run_pipeline's IOU tracking, interpolation and crop_scale crops.

A detector maps RGB uint8 frames ``(T, H, W, 3)`` to one ``(k, 5)`` float array per frame:
``x1, y1, x2, y2, score`` in pixels.
"""

from __future__ import annotations

from pathlib import Path

S3FD_ORIGIN = ("joonson/syncnet_python's download_model.sh (sfd_face.pth, saved to "
               "detectors/s3fd/weights/)")


def find_s3fd(given: str | Path | None = None) -> Path | None:
    """The user's ``sfd_face.pth``: ``given``, ``$TFGBENCH_S3FD``, ``$TFGBENCH_HOME/weights``;
    ``None`` when absent (callers then use the offline Haar detector). A ``given`` file or a set
    ``$TFGBENCH_S3FD`` that is not a file is an error, never a silent switch to Haar."""
    from tfgbench.errors import MissingResourceError
    from tfgbench.paths import BadPathError, find_file

    try:
        return find_file("S3FD face detector weights", given, "TFGBENCH_S3FD", "sfd_face.pth",
                         S3FD_ORIGIN, flag="--s3fd")
    except BadPathError:
        raise  # a $TFGBENCH_S3FD that points nowhere is a mistake, not "use Haar instead"
    except MissingResourceError:
        if given is not None:
            raise
        return None


def get_detector(s3fd_weights: str | Path | None = None, device: str = "cpu"):
    """S3FD when its weights are found (see :func:`find_s3fd`), else the Haar detector.
    The returned object has ``name``, ``sha256`` and ``detect(frames)``."""
    path = find_s3fd(s3fd_weights)
    if path is not None:
        from tfgbench.face.s3fd import S3FDDetector

        return S3FDDetector(path, device=device)
    from tfgbench.face.haar import HaarDetector

    return HaarDetector()
