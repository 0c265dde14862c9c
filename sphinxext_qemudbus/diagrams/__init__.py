"""Diagrams: who may call whom (deployments) and in which order (sequences), as SVG and as text.

Pure Python, below the Sphinx glue and the CLI, which both draw with it:

``lanes``       the drawing model (lanes grouped in frames, rows of arrows and notes) and its layout
``svg``         the layout as SVG, and the stylesheet the SVG needs
``deployment``  a deployment in one scenario as a lane diagram, from the model that writes the policy
``sequence``    a short text naming registry members, checked against the registry, as a lane diagram
"""
