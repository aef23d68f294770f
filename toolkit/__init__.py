"""toolkit: learn the orientation of a sample from its 2D projections with Keras 3 VAEs."""
