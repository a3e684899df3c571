"""Checkpoints where they live (``https://``, ``s3://``, ``hf://``), read by byte ranges through fsspec.

The static reader sees a ``RangeBuffer``: the seek/read and ``len``/slicing of a local file or map,
served by Range requests with read-ahead and a block cache, so the tree of a 20 GB remote file
costs a few requests. Importing this package imports no file-system library; opening a URL does.
"""
