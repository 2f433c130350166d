"""topkima."""
