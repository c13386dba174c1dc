"""archsearch's Hydra sweeper: ``hydra/sweeper=archsearch`` (the code is in archsearch/sweeper)."""
