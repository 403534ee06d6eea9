"""From a harvest to a dataset: the manifest's stored images as WebDataset shards, the
manifest as Parquet, or the images as loose files with their metadata.

``run.export`` is the entry point (``crawler-export`` / ``python -m crawler.export``).
"""
