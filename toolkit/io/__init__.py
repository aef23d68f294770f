"""Files: MRC/MRCS image stacks, RELION STAR tables and particles, atomic writes."""
