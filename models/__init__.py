"""duplexbot models package."""
