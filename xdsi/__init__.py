"""xdsi: an IHE XDS-I.b Document Registry, Document Repository and Imaging Document
Source with ATNA auditing.  This package is the composition root: configuration
(``xdsi.config``), ``xdsi serve`` (``xdsi.serve``) and the command line (``xdsi.cli``)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
