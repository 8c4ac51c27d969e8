"""Path -> arrays -> signal dictionaries: the acquisition, the scan plan, transforms, frame readers,
signal dictionaries and reference files."""
