"""Pure feed builders, one module per marketplace: record in, bytes out."""
