"""Chain indexer: mirrors contract events into SQL (reorg-safe, exactly once)."""
