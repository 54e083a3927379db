"""Drivers of the side-by-side comparison: ``<name>_driver`` modules run by each system's
own interpreter (never arqd's, but for arqd itself), and the ``install`` step.

Importing this package must stay free of arqd and of any peer library: peer environments
import it too.
"""
