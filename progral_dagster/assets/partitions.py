"""Partitions shared by the ingestion assets and the share sensor."""

import dagster as dg

# One dynamic partition per file version (path, size, mtime) or acquisition group on the share.
share_files = dg.DynamicPartitionsDefinition(name="share_files")
