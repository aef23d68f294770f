"""Cryo-EM file formats: MRC/MRCS image stacks and RELION STAR tables."""
