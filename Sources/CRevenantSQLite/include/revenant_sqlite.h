#ifndef REVENANT_SQLITE_H
#define REVENANT_SQLITE_H

/* Process-wide SQLite settings, applied before the first connection opens (sqlite3_config is
 * variadic, so Swift cannot call it). Returns the SQLite result code. */
int rv_sqlite_tune(void);

#endif
