"""What changed between two versions of a document, and whether it breaks clients.

Pure functions over parsed documents: no HTTP, no SQL. The workers call ``diff``.
"""

from .diff import diff

__all__ = ["diff"]
