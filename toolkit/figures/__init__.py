"""Figures: the drawing functions every task and command uses."""
