/*
 * agoractl.h: what agoractl.c and check.c share.
 *
 * The migration plan (the files NNNN_name.sql of a directory) and whether
 * each is applied are agoractl.c's; agoractl check reads them through
 * these, so that check and migrate can never disagree on what "applied"
 * means.
 */
#ifndef AGORACTL_H
#define AGORACTL_H

#include <stddef.h>

#include <libpq-fe.h>
#include <sodium.h>

#ifndef AGORA_PKGDATADIR
#define AGORA_PKGDATADIR "/usr/share/agora"
#endif
/* Where migrate and check read the migrations, unless --dir says. */
#define CTL_SQLDIR AGORA_PKGDATADIR "/sql"

#define MIGRATIONS_MAX 1000

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

char *ctl_read_file(const char *path, size_t *len);
int ctl_plan_load(struct plan *p, const char *dir);
void ctl_plan_free(struct plan *p);
enum ctl_mig ctl_migration_state(PGconn *c, const struct migration *m);
/* The usage on stderr; returns 2, the exit status of a usage error. */
int ctl_usage(void);
/* agoractl check [--dir DIR] (check.c). */
int ctl_check(int argc, char **argv);

#endif /* AGORACTL_H */
