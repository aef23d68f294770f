"""3D reconstruction: making maps and measuring them in Fourier space (FSC)."""
