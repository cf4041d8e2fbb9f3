"""Raw-layer sources: one module per NHS publication, each with its file layout, contract and Dagster asset."""
