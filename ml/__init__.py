"""ShelfSense recommendation engine: pure Python (numpy, scipy, implicit, LightGBM, scikit-learn).

No Django here, ever: ``apps.recommendations`` is the only caller. The public surface is

* :mod:`ml.data` -- ``Interactions``, ``Catalog``, ``EventWeights``, ``EVENT_TYPES``;
* :mod:`ml.pipeline` -- ``TrainingConfig``, ``train`` and ``TrainingResult``;
* :mod:`ml.model` -- ``RecommenderModel`` (the saved/loaded artifact) and ``Recommendations``;
* :mod:`ml.evaluation` -- the per-user time split and ranking metrics;
* :mod:`ml.datasets.movielens` -- the offline MovieLens-100K loader used by demos and benches.
"""

import os

# implicit's ALS is multi-threaded itself; a multi-threaded BLAS underneath it oversubscribes the
# cores and makes it several times slower (implicit warns about this). Must happen before numpy
# is first imported anywhere, hence here; setdefault leaves an operator's explicit choice alone.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
# Store machines are shared with web workers and databases: OpenMP threads (implicit, LightGBM)
# that spin while waiting steal the cores those need, and under load make training several times
# slower. Sleeping waiters cost little here because the parallel regions are coarse.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
