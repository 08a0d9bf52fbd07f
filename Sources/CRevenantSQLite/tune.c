#include <sqlite3.h>
#include "revenant_sqlite.h"

int rv_sqlite_tune(void)
{
	/* Memory statistics take a global mutex on every allocation; nothing here reads them. */
	return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
