"""Walking a folder of images with symbolic links followed once: each real folder is walked at most once, each real
file listed at most once, and what was skipped is counted with its reason.

Datasets are often assembled from links, and a link that points back up (`ln -s .. up`) makes a plain walk
(`os.walk(followlinks=True)`) list every image below it again at each of dozens of levels, or never end when two
such links branch. Here the folders reached without links come first, so an image keeps its real path when it has
one; then each link is followed in the order the walk met it, unless it leads to a folder that holds it or the
walked folder (a cycle), a folder walked already, or an image listed already.
"""

from __future__ import annotations

import errno
import os
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

from suscli.errors import plural
from suscli.files import printable

# torchvision's ImageFolder reads these (GTSRB's training images are .ppm, many face sets .pgm), and GIF besides
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".pgm", ".bmp", ".webp", ".gif", ".tif", ".tiff"})

# Why an entry was skipped, as the report says it after its count: for one entry, and for more.
CYCLE = ("link to a folder that holds it (a cycle)", "links to a folder that holds them (a cycle)")
SEEN_FOLDER = ("link to a folder listed already", "links to a folder listed already")
SEEN_IMAGE = ("link to an image listed already", "links to an image listed already")
BROKEN = ("broken link", "broken links")
LOOP = ("link that leads back to itself (a loop)", "links that lead back to themselves (a loop)")
UNREADABLE = ("folder that could not be read", "folders that could not be read")
REASONS = (CYCLE, SEEN_FOLDER, SEEN_IMAGE, BROKEN, LOOP, UNREADABLE)  # the order of the report's note


@dataclass
class Walk:
    """The image files found, sorted, and the count of entries skipped per reason."""

    paths: list[Path]
    skipped: Counter[tuple[str, str]] = field(default_factory=Counter)

    def note(self, where: Path) -> str | None:
        """One line for the report, or None when nothing was skipped."""
        if not self.skipped:
            return None
        return f"{printable(where)}: skipped " + ", ".join(
            f"{self.skipped[why]} {plural(self.skipped[why], *why)}" for why in REASONS if self.skipped[why]
        )


def is_image_name(name: str) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def is_hidden(name: str) -> bool:
    """A hidden file or folder, or the `__MACOSX` folder a zip made on macOS unpacks beside the files (it holds their
    `._NAME` resource forks): never an image, nor a class."""
    return name.startswith(".") or name == "__MACOSX"


def walk_images(folder: Path) -> Walk:
    """Every image file under `folder` (hidden files and folders left out, and `__MACOSX`), sorted; links followed once."""
    folder = Path(folder)
    above = {_identity(p) for p in [folder, *folder.resolve().parents]} - {None}  # a link to these walks it again
    walked: set[tuple[int, int]] = set()
    found: list[str] = []
    links: deque[Path] = deque()
    skipped: Counter[tuple[str, str]] = Counter()
    _walk_real(folder, walked, found, links, skipped)
    listed: set[tuple[int, int]] | None = None  # identities of the files found, computed when a file link needs them
    while links:
        link = links.popleft()
        target = _identity(link)
        if target is None:
            skipped[LOOP if _loops(link) else BROKEN] += 1
        elif link.is_dir():
            if target in above or holds(link, link.parent):
                skipped[CYCLE] += 1
            elif target in walked:
                skipped[SEEN_FOLDER] += 1
            else:
                _walk_real(link, walked, found, links, skipped)
        elif is_image_name(link.name):
            if listed is None:
                listed = {i for i in map(_identity, found) if i is not None}
            if target in listed:
                skipped[SEEN_IMAGE] += 1
            else:
                listed.add(target)
                found.append(str(link))
    return Walk([Path(p) for p in sorted(found, key=lambda p: p.split(os.sep))], skipped)  # pathlib's order, faster


def _walk_real(top: Path, walked: set, found: list[str], links: deque[Path], skipped: Counter[tuple[str, str]]) -> None:
    """Walk `top` without following links: images go to `found`, links to `links`, to be followed once the trees
    walked before them are done."""
    stack = [top]
    while stack:
        folder = stack.pop()
        ident = _identity(folder)
        if ident is None or ident in walked:  # reached twice (a bind mount): its files are listed already
            continue
        walked.add(ident)
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            skipped[UNREADABLE] += 1
            continue
        prefix = "" if str(folder) == "." else str(folder) + os.sep  # paths as str(Path) writes them, for their order
        subfolders, met = [], []
        for entry in entries:
            if is_hidden(entry.name):
                continue
            try:
                if entry.is_symlink():
                    met.append(Path(prefix + entry.name))
                elif entry.is_dir(follow_symlinks=False):
                    subfolders.append(Path(prefix + entry.name))
                elif is_image_name(entry.name) and entry.is_file(follow_symlinks=False):
                    found.append(prefix + entry.name)
            except OSError:  # vanished while listed
                continue
        links.extend(sorted(met))  # sorted: the same tree gives the same listing, whatever order the OS lists it in
        stack.extend(sorted(subfolders, reverse=True))


def holds(link: Path, folder: Path) -> bool:
    """Whether the folder `link` leads to holds `folder` (or is it): following the link would walk it again."""
    return Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(link))


def _loops(link: Path) -> bool:
    """Whether `link` leads back to itself (`ln -s x x`, or two links to each other): it was called a broken link, as
    one whose target is missing."""
    try:
        os.stat(link)
    except OSError as e:
        return e.errno == errno.ELOOP
    except ValueError:
        return False
    return False


def _identity(path: Path | str) -> tuple[int, int] | None:
    """(device, inode) of what `path` leads to, links followed; None when it leads nowhere (broken, a loop)."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino
