"""The MIB format, pure bytes <-> records: frame headers, the ``.hdr``, MPX framing, frame geometry,
decoding and encoding (docs/format.md)."""
