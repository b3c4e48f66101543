"""Base models: presets and module inventories (built once on the meta device, cached)."""
