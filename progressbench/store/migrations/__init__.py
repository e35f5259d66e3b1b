"""The store's schema migrations (alembic), run by ``progressbench.store.schema`` on open.

A change to ``progressbench.store.tables`` needs a revision here (``versions/rNNNN_*.py``, its
``down_revision`` the previous one) and its id appended to ``schema.REVISIONS``; the tests check
that upgrading from the baseline gives exactly the tables' schema.
"""
