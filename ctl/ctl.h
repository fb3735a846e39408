/*
 * ctl.h: what the files of agoractl share.
 *
 * The migration plan (the files NNNN_name.sql of a directory) and whether
 * each is applied are migrate.c's; agoractl check reads them through
 * these, so that check and migrate can never disagree on what "applied"
 * means.
 */
#ifndef AGORA_CTL_H
#define AGORA_CTL_H

#include <stddef.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "shop.h"

#ifndef AGORA_PKGDATADIR
#define AGORA_PKGDATADIR "/usr/share/agora"
#endif
/* Where migrate and check read the migrations, unless --dir says. */
#define CTL_SQLDIR AGORA_PKGDATADIR "/sql"

#define MIGRATIONS_MAX 1000
/* The largest migration, functions or configuration file read whole. */
#define CTL_FILE_MAX (16 * 1024 * 1024)

struct migration {
	long long version;
	char name[256];
	char sha[2 * crypto_hash_sha256_BYTES + 1];
	char *sql;
};

struct plan {
	struct migration m[MIGRATIONS_MAX];
	size_t n;
};

enum ctl_mig {
	CTL_MIG_ERROR = -1, /* schema_migrations unreadable (on stderr) */
	CTL_MIG_PENDING,
	CTL_MIG_APPLIED,
	CTL_MIG_CHANGED /* applied, but its file changed since */
};

int ctl_plan_load(struct plan *p, const char *dir);
void ctl_plan_free(struct plan *p);
enum ctl_mig ctl_migration_state(PGconn *c, const struct migration *m);
/* The functions files (sql/functions: migrate.c) and whether one is
 * applied as it is now: 1, 0, or -1 (said on stderr). */
int ctl_functions_load(struct plan *p, const char *dir);
int ctl_functions_current(PGconn *c, const struct migration *m);
/* The usage on stderr; returns 2, the exit status of a usage error. */
int ctl_usage(void);

/*
 * common.c.  connect: to database_admin_url (the owner), or database_url
 * when that is empty, through libagora's db layer (lib/db.c), so that the
 * session is the programs' (the release's functions first on the
 * search_path); NULL, said on stderr, when it cannot.  exec and
 * exec_params: 0 when the statement ran, else the error on stderr (and
 * 1 from exec_params, -1 from exec); print writes the rows tab-separated.
 */
PGconn *ctl_connect(void);
/* The configuration with both database URLs' secrets read; 0, or -1
 * (said on stderr, cfg freed). */
int ctl_config_load(struct agora_config *cfg);
/* Close what ctl_connect opened; nothing when it opened nothing. */
void ctl_disconnect(void);
int ctl_exec(PGconn *c, const char *sql);
int ctl_exec_params(
    PGconn *c, const char *sql, int n, const char *const *vals, int print);
/* Run fn with a handle on the configured memcached servers, so that what
 * the programs cache learns of a change agoractl made. */
void ctl_with_cache(void (*fn)(struct agora_ctx *, const char *, const char *),
    const char *a, const char *b);
/* Connect, print header (unless NULL), then the rows of sql with vals,
 * tab-separated; 0, or 1 (said on stderr). */
int ctl_print(
    const char *header, const char *sql, int n, const char *const *vals);
/* Cached catalog reads are stale now: bump the catalog version. */
void ctl_catalog_changed(void);

/* The commands, each with the arguments after its words. */
int ctl_migrate(int argc, char **argv);
int ctl_migrations(int argc, char **argv);
int ctl_prune_functions(int argc, char **argv);
int ctl_user_add(int argc, char **argv);
int ctl_user_list(int argc, char **argv);
int ctl_user_set_role(int argc, char **argv);
int ctl_user_disable(int argc, char **argv);
int ctl_user_enable(int argc, char **argv);
int ctl_user_logout(int argc, char **argv);
int ctl_outbox_list(int argc, char **argv);
int ctl_outbox_retry(int argc, char **argv);
int ctl_outbox_stats(int argc, char **argv);
int ctl_analytics_prune(int argc, char **argv);
int ctl_seed(int argc, char **argv);
int ctl_check(int argc, char **argv);
int ctl_failover(int argc, char **argv);

#endif /* AGORA_CTL_H */
