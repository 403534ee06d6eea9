"""Writing verified images: atomically, under the names ``layout.stored_name`` gives,
to the run's store (``stores``: this host's ``--output``, a shared folder, or S3).

A file is written to a temporary name in the target folder and renamed into place (an
S3 object appears once its upload is complete), so an image under its final name is
always whole, and writing the same image twice is harmless.
"""

from __future__ import annotations

from crawler.config import Policy, WorkerConfig
from crawler.exceptions import OutputUnusable, UsageError
from crawler.stores import IDENTITY, FolderStore, S3Store, open_store


def open_run_store(policy: Policy, config: WorkerConfig) -> FolderStore | S3Store:
    """The store the master's policy names, on this host; a shared one (folder or S3)
    must take a probe write first. Raises OutputUnusable (one line, exit 1) otherwise."""
    try:
        chosen = open_store(policy.store, config.output)
        if chosen.spec:
            chosen.check()
        if isinstance(chosen, FolderStore) and chosen.spec and policy.store_id:
            found = chosen.identity(create=False)
            if found != policy.store_id:
                kind = "another folder's" if found else f"no {IDENTITY}"
                raise OutputUnusable(
                    f"store {chosen.where} here is not the folder the master writes to (it "
                    f"holds {kind}): is the share mounted on this host?"
                )
    except UsageError as exc:
        raise OutputUnusable(str(exc)) from None
    return chosen
