"""Bytes, knowing nothing of MIB: local files, URLs, file objects, and writing files safely."""
