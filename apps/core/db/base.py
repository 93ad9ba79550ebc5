"""The database backend: django-tenants' schema-switching backend, also safe behind PgBouncer in
transaction pooling mode (`DATABASES["default"]["TRANSACTION_POOLING"] = True`).

django-tenants points a connection at a store with a session-level `SET search_path`, issued
once and then trusted. Behind a transaction pooler a session setting lands on whichever server
connection ran that one statement; the next statement may run on another server connection,
set by another client for another store. So in pooling mode:

- every statement runs inside a transaction (one is opened around a statement issued in
  autocommit mode), and each transaction starts with `SET LOCAL search_path` for the schema
  selected at that moment, again whenever the schema changes inside it, and again after a
  rollback to a savepoint (which undoes a `SET LOCAL` made after it). `SET LOCAL` ends with the
  transaction, so nothing is left behind on the pooled server connection;
- psycopg's automatic prepared statements are off (a statement prepared on one server
  connection does not exist on the next); server-side cursors are off (settings).

Without pooling this is django-tenants' backend unchanged. The cost in pooling mode is a
`BEGIN`, a `SET LOCAL` and a `COMMIT` around a statement issued outside a transaction.
"""

from __future__ import annotations

from django.db import transaction
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from django_tenants.utils import quote_schema_name


class DatabaseWrapper(TenantDatabaseWrapper):
    def __init__(self, settings_dict, *args, **kwargs):
        super().__init__(settings_dict, *args, **kwargs)
        self.transaction_pooling = bool(settings_dict.get("TRANSACTION_POOLING"))
        # The search_path already SET LOCAL in the current transaction, or None.
        self._local_search_path = None
        if self.transaction_pooling:
            self.execute_wrappers.append(self._execute_with_local_search_path)

    def get_connection_params(self):
        params = super().get_connection_params()
        if self.transaction_pooling:
            params["prepare_threshold"] = None
        return params

    def _handle_search_path(self, cursor=None):
        if not self.transaction_pooling:
            super()._handle_search_path(cursor)

    def _execute_with_local_search_path(self, execute, sql, params, many, context):
        if self.in_atomic_block or not self.get_autocommit():
            self._set_local_search_path(context["cursor"])
            return execute(sql, params, many, context)
        with transaction.atomic(using=self.alias):
            self._set_local_search_path(context["cursor"])
            return execute(sql, params, many, context)

    def _set_local_search_path(self, cursor) -> None:
        paths = ",".join(quote_schema_name(s) for s in self._get_cursor_search_paths())
        if paths != self._local_search_path:
            # The raw cursor: this statement is not the caller's, and must not re-enter here.
            cursor.cursor.execute(f"SET LOCAL search_path = {paths}")
            self._local_search_path = paths

    # Forgotten after the statement, not before: the rollback to a savepoint goes through the
    # execute wrapper itself, which would otherwise SET LOCAL again just before it is undone.
    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._local_search_path = None

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._local_search_path = None

    def _savepoint_rollback(self, sid):
        try:
            return super()._savepoint_rollback(sid)
        finally:
            self._local_search_path = None

    def close(self):
        self._local_search_path = None
        super().close()
