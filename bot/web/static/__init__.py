"""Static assets of the pages (a package only so that wheels carry these files)."""
