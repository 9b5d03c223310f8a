"""Container images as apps: read an image archive, check it, unpack it safely, build one.

An image arrives as the archive ``podman save`` / ``docker save`` (docker-archive) or
``skopeo copy`` (oci-archive) writes; no registry is involved. :mod:`.archive` reads and verifies
it (digests, sizes, the layers' entries), :mod:`.unpack` applies its layers to a root directory
without ever writing outside it, :mod:`.build` writes an archive from a directory (tests, demo).
"""

from xwpy.image.archive import Image, ImageError, ImageLimits, inspect

__all__ = ["Image", "ImageError", "ImageLimits", "inspect"]
