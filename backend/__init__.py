"""GridLedger backend: settings, database, REST facade and workers."""
