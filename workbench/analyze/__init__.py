"""Analysis: gradient saliency, faithfulness checks, embeddings and FC-layer importance.

Each command of `workbench analyze` is one function here; each takes a run folder, an ``nn.Module``
or a ``package.module:factory`` string and returns a summary dict (writing files only when given
``out``)::

    from workbench.analyze import saliency, check, embeddings, fc_importance
    saliency("runs/bench-teachers/gazenet", method="ig", n=16, out="runs/analysis/gazenet-saliency")
"""

from workbench.analyze.attribution import METHODS, attribute
from workbench.analyze.embeddings import embeddings
from workbench.analyze.faithfulness import check
from workbench.analyze.fc_importance import fc_importance, load_fc_importance
from workbench.analyze.saliency import saliency

__all__ = ["METHODS", "attribute", "check", "embeddings", "fc_importance", "load_fc_importance", "saliency"]
