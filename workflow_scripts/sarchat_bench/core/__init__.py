"""The small shared core every stage uses: errors, atomic file output and JSON Lines, seeds,
shards, work state kept between attempts, provenance, HTML tables, commands, and whether a
configuration is valid."""
