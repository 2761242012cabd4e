"""contrastkit: contrastive representation learning, from exact losses to trained encoders.

Layers (each usable alone; arrows point down): ``cli`` → ``recipes`` → ``train`` →
``evaluate`` / ``index`` → the toolbox (``losses``, ``miners``, ``distances``, ...).

Example:
    >>> import torch
    >>> from contrastkit.losses import info_nce
    >>> z = torch.randn(8, 16)
    >>> loss = info_nce(z, query_ids=torch.arange(4).repeat(2))
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
