"""Image files on disk: checking them, decoding them in bulk, and datasets that decode lazily one item at a time."""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import DataFileError
from .base import DatasetInfo, IndexedDataset

IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp", ".webp")
# Below this many files the check takes well under a second, and a progress bar would only be noise.
PROGRESS_MIN_FILES = 5000
# Files per task of the check: large enough to amortise scheduling, small enough for a smooth progress bar.
CHECK_CHUNK = 256
# Opening files is I/O-bound (network file systems, cold caches), so threads overlap the waits despite the GIL.
CHECK_THREADS = 8
# PIL errors that mean "this file is not a usable image" rather than a bug in our code.
IMAGE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
REPLACE_HOW = "replace it with the intact file from the dataset's original archive"
MISSING = "is missing"
# Images per decode task: small enough that the chunks in flight stay well below a GiB at ImageNet sizes.
DECODE_CHUNK = 64
# PIL releases the GIL while it decodes and resizes, so threads scale with the cores.
DECODE_THREADS = min(32, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def list_images(folder: str) -> list[str]:
    """Sorted names of the image files directly inside ``folder`` (extension match is case-insensitive)."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.name.lower().endswith(IMAGE_EXTENSIONS) and e.is_file())


def list_dirs(folder: str) -> list[str]:
    """Sorted names of the sub-folders of ``folder``."""
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir())


def _file_problem(path: str) -> str | None:
    """Why ``path`` is not a usable image, judged from its size and header only, or None if it looks fine."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                return "is empty (0 bytes)"
            # Image.open parses the header and defers decoding; a million full decodes would take hours.
            with Image.open(f) as im:
                width, height = im.size
    except FileNotFoundError:
        return MISSING
    except IsADirectoryError:
        return "is a folder, not an image"
    except Image.UnidentifiedImageError:
        return "is not an image PIL can read (its header is not JPEG/PNG/BMP/WebP)"
    except IMAGE_ERRORS as exc:
        return f"cannot be read ({type(exc).__name__}: {exc})"
    if width < 1 or height < 1:
        return f"has an empty size {width}x{height}"
    return None


def _first_problem(paths: Sequence[str]) -> tuple[int, str] | None:
    for k, path in enumerate(paths):
        problem = _file_problem(path)
        if problem is not None:
            return k, problem
    return None


def check_image_files(dataset: str, paths: Sequence[str], how: str = REPLACE_HOW,
                      missing_how: str | None = None) -> None:
    """Check, before any training, that every file exists, is not empty and has a header PIL recognises.

    Pixel data is not decoded, so the check stays cheap for ImageNet; a file whose body is damaged still passes
    and is reported by ``FileIndexedDataset`` when it is first loaded.

    Args:
        dataset: Registry name, for the message.
        paths: All files of all splits, in a fixed order; the first bad one in that order is reported.
        how: What the user should do about a damaged file.
        missing_how: What to do about a missing file (default: ``how``).

    Raises:
        DataFileError: Names the first bad file and what is wrong with it.
    """
    size = CHECK_CHUNK
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    bar = tqdm(total=len(paths), desc=f"{dataset}: checking image files", unit="file", leave=False,
               disable=None if len(paths) >= PROGRESS_MIN_FILES else True)
    pool = ThreadPoolExecutor(max_workers=min(CHECK_THREADS, len(chunks))) if len(chunks) > 1 else None
    found = None
    try:
        # Both maps yield in submission order, so the report does not depend on which thread finishes first.
        results = pool.map(_first_problem, chunks) if pool else map(_first_problem, chunks)
        for c, (chunk, result) in enumerate(zip(chunks, results)):
            if result is not None:
                found = (c * size + result[0], result[1])
                break
            bar.update(len(chunk))
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    if found is not None:
        index, problem = found
        todo = missing_how if problem == MISSING and missing_how else how
        raise DataFileError.about(dataset, paths[index], problem, todo)


def read_rgb(dataset: str, path: str) -> Image.Image:
    """Decode ``path`` fully as an RGB image.

    Raises:
        DataFileError: The file cannot be decoded (a damaged body passes ``check_image_files``, which reads
            headers only).
    """
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except IMAGE_ERRORS as exc:
        # DataFileError survives the trip back from a DataLoader worker as the same single line.
        raise DataFileError.about(dataset, path, f"cannot be decoded ({type(exc).__name__}: {exc})",
                                  REPLACE_HOW) from None


def fit_square(im: Image.Image, resize: int, side: int, inner: int) -> Image.Image:
    """Resize the shorter side of ``im`` to ``resize`` as ``T.Resize(resize)`` does, then crop a ``side`` square.

    The square sits so that its central ``inner`` crop, at offset ``(side - inner) // 2``, is pixel for pixel
    ``T.CenterCrop(inner)`` of the resized image: stored images then give exactly the evaluation pixels of the
    decode-on-access path. Needs ``inner <= side <= resize`` and an even ``side - inner``.
    """
    import torchvision.transforms.functional as TF

    im = TF.resize(im, resize)
    width, height = im.size
    margin = (side - inner) // 2
    # CenterCrop's own rounding, so that odd leftovers fall on the same side as in the decode path.
    top = int(round((height - inner) / 2.0)) - margin
    left = int(round((width - inner) / 2.0)) - margin
    return im.crop((left, top, left + side, top + side))


def _decode_chunk(dataset: str, paths: Sequence[str], fit: Callable[[Image.Image], Image.Image],
                  side: int) -> np.ndarray:
    out = np.empty((len(paths), 3, side, side), dtype=np.uint8)
    for k, path in enumerate(paths):
        out[k] = np.asarray(fit(read_rgb(dataset, path))).transpose(2, 0, 1)
    return out


def decode_images(dataset: str, paths: Sequence[str], fit: Callable[[Image.Image], Image.Image], side: int, *,
                  desc: str) -> Iterator[np.ndarray]:
    """Decode ``paths`` with a thread pool, yielding uint8 chunks ``[k, 3, side, side]`` in the order of ``paths``.

    Args:
        dataset: Registry name, for messages.
        paths: Image files.
        fit: RGB image -> ``side`` x ``side`` RGB image (e.g. a bound ``fit_square``).
        side: Height and width of every stored image.
        desc: Progress bar label; the bar shows for ``PROGRESS_MIN_FILES`` files or more, on a terminal.

    Raises:
        DataFileError: The first file, in the order of ``paths``, that cannot be decoded.
    """
    chunks = [paths[i:i + DECODE_CHUNK] for i in range(0, len(paths), DECODE_CHUNK)]
    bar = tqdm(total=len(paths), desc=desc, unit="img", leave=False,
               disable=None if len(paths) >= PROGRESS_MIN_FILES else True)
    pool = ThreadPoolExecutor(max_workers=max(1, min(DECODE_THREADS, len(chunks))))
    todo = iter(chunks)
    try:
        # A bounded window of chunks in flight: pool.map would decode ahead of a slow consumer without limit.
        pending = deque(pool.submit(_decode_chunk, dataset, c, fit, side) for c in islice(todo, DECODE_THREADS + 1))
        while pending:
            images = pending.popleft().result()
            pending.extend(pool.submit(_decode_chunk, dataset, c, fit, side) for c in islice(todo, 1))
            bar.update(len(images))
            yield images
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


class PathTable:
    """Many file paths below one root, packed into a byte array.

    A Python list of a million strings gets copied page by page into every forked DataLoader worker as reference
    counts are touched; two numpy arrays do not, and are also much smaller.
    """

    def __init__(self, root: str, rel_paths: Iterable[str]):
        encoded = [os.fsencode(p) for p in rel_paths]
        self.root = root
        self._offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum(np.array([len(b) for b in encoded], dtype=np.int64), out=self._offsets[1:])
        self._blob = np.frombuffer(b"".join(encoded), dtype=np.uint8)

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        raw = self._blob[self._offsets[i]:self._offsets[i + 1]].tobytes()
        return os.path.join(self.root, os.fsdecode(raw))


class FileIndexedDataset(IndexedDataset):
    """Base set given as image files; each item is decoded, converted to RGB and transformed on access.

    Args:
        info: Facts about the dataset.
        paths: One path per base sample.
        labels: ``[N]`` class labels.
        train_transform: PIL image -> normalised tensor, with random augmentation (torchvision transforms draw from
            torch's RNG, so seeded runs repeat).
        eval_transform: PIL image -> normalised tensor, deterministic.
        augment: Initial augmentation setting.
    """

    def __init__(self, info: DatasetInfo, paths: PathTable, labels, *, train_transform: Callable,
                 eval_transform: Callable, augment: bool = False):
        super().__init__(info, labels, augment=augment)
        if len(paths) != self.base_size:
            raise ValueError(f"{len(paths)} paths but {self.base_size} labels")
        self._paths = paths
        self._train_transform = train_transform
        self._eval_transform = eval_transform

    def path(self, sid: int) -> str:
        """File of the base sample with stable id ``sid``."""
        return self._paths[sid]

    def _load(self, sid: int, augment: bool) -> Tensor:
        # The upfront check reads headers only, so a damaged body surfaces here, possibly in a worker process.
        im = read_rgb(self.info.name, self._paths[sid])
        return (self._train_transform if augment else self._eval_transform)(im)
