"""Click commands kept in their own modules; `toolkit.cli` registers them on the `toolkit` group."""
