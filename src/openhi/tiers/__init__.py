"""Storage tiers (guide 23009-23052): Frequent Access and Archive Instant Access, moved by access.

``policy`` (which operations are accesses, when an image set is idle), ``access`` (last access per image set,
coalesced in memory), ``blob_store`` (reads that find a blob in either location), ``moves`` (one image set's
blobs from one location to the other), ``sweep`` (the periodic step), ``locations`` (the archive location).
See docs/storage-tiers.md.
"""
