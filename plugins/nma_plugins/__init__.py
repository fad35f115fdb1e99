"""nma-plugins: first-party components, registered through the entry-point group ``nma``."""
