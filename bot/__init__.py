"""duplexbot bot package."""
