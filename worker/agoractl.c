/*
 * agoractl.c: the administrator's command line.
 *
 *   agoractl migrate [--dir DIR]   apply the pending migrations in order
 *   agoractl migrations [--dir DIR] list each migration and its state
 *   agoractl user add|list|set-role|disable|enable ...
 *   agoractl outbox list|retry|stats ...
 *   agoractl analytics prune --before DATE
 *   agoractl seed --products N      a demo catalog, with progress
 *   agoractl check [--dir DIR]      diagnose an install (check.c)
 *   agoractl --help                 what each command does
 *
 * The commands, their arguments and their help are one table (commands[]
 * below), which the usage, --help and the test of the manual page
 * (tests/man_pages.py) all read.
 *
 * Migrations are the files NNNN_name.sql, applied in version order, each
 * in its own transaction together with its row in schema_migrations, under
 * an advisory lock so that two administrators cannot apply one twice.
 * They are forward-only: an applied file whose text changed is an error.
 * agoractl connects with database_admin_url (the owner), or database_url
 * when that is empty.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "shop.h"
#include "agoractl.h"

#define FILE_MAX (16 * 1024 * 1024)
#define LOCK_KEY "7259000001"

#ifndef AGORA_SYSCONFDIR
#define AGORA_SYSCONFDIR "/etc"
#endif

/* The text of path (16 MiB at most), NUL-terminated; NULL when unread. */
char *
ctl_read_file(const char *path, size_t *len)
{
	FILE *f;
	char *buf;

	f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	buf = malloc(FILE_MAX + 1);
	*len = buf != NULL ? fread(buf, 1, FILE_MAX + 1, f) : 0;
	if (buf != NULL && (ferror(f) || *len > FILE_MAX)) {
		free(buf);
		buf = NULL;
	}
	if (buf != NULL)
		buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* "0007_orders.sql" -> version 7; -1 for names that are not migrations. */
static long long
file_version(const char *name)
{
	char digits[5];
	long long v;
	size_t n = strlen(name);

	if (n < 10 || strcmp(name + n - 4, ".sql") != 0 || name[4] != '_')
		return -1;
	memcpy(digits, name, 4);
	digits[4] = '\0';
	if (strspn(digits, "0123456789") != 4 ||
	    agora_parse_ll(digits, 1, 9999, &v) != 0)
		return -1;
	return v;
}

static int
by_version(const void *a, const void *b)
{
	const struct migration *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static int
load_one(struct plan *p, const char *dir, const char *name, long long v)
{
	struct migration *m = &p->m[p->n];
	unsigned char h[crypto_hash_sha256_BYTES];
	char path[4096];
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	m->sql = ctl_read_file(path, &len);
	if (m->sql == NULL) {
		fprintf(stderr, "agoractl: cannot read %s\n", path);
		return -1;
	}
	m->version = v;
	snprintf(m->name, sizeof(m->name), "%.*s", (int)strlen(name) - 4, name);
	crypto_hash_sha256(h, (unsigned char *)m->sql, len);
	sodium_bin2hex(m->sha, sizeof(m->sha), h, sizeof(h));
	p->n++;
	return 0;
}

/* The migrations of dir, in version order; -1 (said on stderr). */
int
ctl_plan_load(struct plan *p, const char *dir)
{
	DIR *d;
	struct dirent *e;
	long long v;
	size_t i;
	int rc = -1;

	d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "agoractl: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((v = file_version(e->d_name)) < 0)
			continue;
		if (p->n == MIGRATIONS_MAX || load_one(p, dir, e->d_name, v))
			goto out;
	}
	qsort(p->m, p->n, sizeof(p->m[0]), by_version);
	for (i = 1; i < p->n; i++)
		if (p->m[i].version == p->m[i - 1].version) {
			fprintf(stderr,
			    "agoractl: two migrations numbered %04lld\n",
			    p->m[i].version);
			goto out;
		}
	rc = 0;
out:
	closedir(d);
	return rc;
}

void
ctl_plan_free(struct plan *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->m[i].sql);
		p->m[i].sql = NULL;
	}
	p->n = 0;
}

static int
exec_ok(PGconn *c, const char *sql)
{
	PGresult *res;
	int ok;

	res = PQexec(c, sql);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK ||
	    PQresultStatus(res) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

static void
quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "already exists, skipping" and the like */
}

static PGconn *
connect_admin(void)
{
	struct agora_config cfg;
	char err[512];
	PGconn *c = NULL;

	if (agora_config_load_for(&cfg,
	        AGORA_NEEDS(AGORA_SECRET_DATABASE_URL) |
	            AGORA_NEEDS(AGORA_SECRET_DATABASE_ADMIN_URL),
	        err, sizeof(err)) != 0) {
		fprintf(stderr, "agoractl: configuration: %s\n", err);
		agora_config_free(&cfg);
		return NULL;
	}
	c = PQconnectdb(cfg.database_admin_url[0] != '\0'
	        ? cfg.database_admin_url
	        : cfg.database_url);
	agora_config_free(&cfg);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(
		    stderr, "agoractl: cannot connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, quiet, NULL);
	return c;
}

/*
 * Run fn with a memcached handle for the configured servers: what the
 * programs cache must learn of a change agoractl made.
 */
static void
with_cache(void (*fn)(struct agora_ctx *, const char *, const char *),
    const char *a, const char *b)
{
	struct agora_ctx ctx;
	char err[256];

	memset(&ctx, 0, sizeof(ctx));
	if (agora_config_load_for(&ctx.cfg, 0, err, sizeof(err)) == 0) {
		ctx.cache = agora_cache_new(ctx.cfg.memcached_servers);
		fn(&ctx, a, b);
		agora_cache_free(ctx.cache);
	}
	agora_config_free(&ctx.cfg);
}

/* Cached catalog reads are stale now: bump the catalog version. */
static void
catalog_changed(void)
{
	with_cache(agora_cache_bump, AGORA_CATALOG_VERKEY, NULL);
}

static const char create_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY, name text NOT NULL,"
    " sha256 text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())";

/* The sha256 recorded for version, "" when not applied; NULL on error. */
static const char *
applied_sha(PGconn *c, long long version, char *buf, size_t len)
{
	const char *vals[1];
	char v[24];
	PGresult *res;
	const char *out = NULL;

	snprintf(v, sizeof(v), "%lld", version);
	vals[0] = v;
	res = PQexecParams(c,
	    "SELECT sha256 FROM schema_migrations WHERE version = $1", 1, NULL,
	    vals, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		snprintf(buf, len, "%s",
		    PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
		out = buf;
	} else {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	}
	PQclear(res);
	return out;
}

/*
 * Whether m is applied, pending, or changed since it was applied; an
 * error (said on stderr) when schema_migrations cannot be read.
 */
enum ctl_mig
ctl_migration_state(PGconn *c, const struct migration *m)
{
	char sha[128];
	const char *have;

	have = applied_sha(c, m->version, sha, sizeof(sha));
	if (have == NULL)
		return CTL_MIG_ERROR;
	if (*have == '\0')
		return CTL_MIG_PENDING;
	return strcmp(have, m->sha) == 0 ? CTL_MIG_APPLIED : CTL_MIG_CHANGED;
}

static int
record(PGconn *c, const struct migration *m)
{
	const char *vals[3];
	char v[24];
	PGresult *res;
	int ok;

	snprintf(v, sizeof(v), "%lld", m->version);
	vals[0] = v;
	vals[1] = m->name;
	vals[2] = m->sha;
	res = PQexecParams(c,
	    "INSERT INTO schema_migrations (version, name, sha256) "
	    "VALUES ($1, $2, $3)",
	    3, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	PQclear(res);
	return ok ? 0 : -1;
}

static int
apply(PGconn *c, const struct migration *m)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	printf("applying %s ... ", m->name);
	fflush(stdout);
	if (exec_ok(c, "BEGIN") != 0)
		return -1;
	if (exec_ok(c, m->sql) != 0 || record(c, m) != 0 ||
	    exec_ok(c, "COMMIT") != 0) {
		exec_ok(c, "ROLLBACK");
		printf("failed\n");
		return -1;
	}
	printf("ok (%lld ms)\n", agora_ms_since(&t0));
	return 0;
}

/* Apply (or, with dry, list) each migration of plan in order. */
static int
run(PGconn *c, const struct plan *p, int dry)
{
	enum ctl_mig st;
	size_t i, applied = 0;

	for (i = 0; i < p->n; i++) {
		st = ctl_migration_state(c, &p->m[i]);
		if (st == CTL_MIG_ERROR)
			return -1;
		if (st == CTL_MIG_CHANGED) {
			fprintf(stderr,
			    "agoractl: %s changed after it was applied; "
			    "migrations are forward-only: add a new one\n",
			    p->m[i].name);
			return -1;
		}
		if (dry) {
			printf("%-40s %s\n", p->m[i].name,
			    st == CTL_MIG_APPLIED ? "applied" : "pending");
			continue;
		}
		if (st == CTL_MIG_APPLIED)
			continue;
		if (apply(c, &p->m[i]) != 0)
			return -1;
		applied++;
	}
	if (!dry)
		printf("%lu applied, %lu already up to date\n",
		    (unsigned long)applied, (unsigned long)(p->n - applied));
	return 0;
}

static int
migrate(int argc, char **argv, int dry)
{
	static struct plan plan;
	const char *dir = CTL_SQLDIR;
	PGconn *c = NULL;
	int rc = 1;

	if (argc == 2 && strcmp(argv[0], "--dir") == 0)
		dir = argv[1];
	else if (argc != 0)
		return ctl_usage();
	if (ctl_plan_load(&plan, dir) != 0 || (c = connect_admin()) == NULL)
		goto out;
	if (exec_ok(c, "SELECT pg_advisory_lock(" LOCK_KEY ")") != 0 ||
	    exec_ok(c, create_table) != 0)
		goto out;
	rc = run(c, &plan, dry) == 0 ? 0 : 1;
out:
	PQfinish(c);
	ctl_plan_free(&plan);
	return rc;
}

/* --- users ------------------------------------------------------------ */

static int
role_ok(const char *role)
{
	return strcmp(role, "customer") == 0 || strcmp(role, "admin") == 0;
}

/* One line from stdin, without its newline; NULL when empty or too long. */
static char *
read_password(char *buf, size_t len)
{
	size_t n;

	if (fgets(buf, (int)len, stdin) == NULL)
		return NULL;
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n == len - 1)
		return NULL;
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n > 0 ? buf : NULL;
}

static int
exec_params(
    PGconn *c, const char *sql, int n, const char *const *vals, int print)
{
	PGresult *res;
	int ok, i, j;

	res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
	ok = PQresultStatus(res) == PGRES_TUPLES_OK ||
	    PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok) {
		const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		fprintf(stderr, "agoractl: %s\n",
		    st != NULL && strcmp(st, "23505") == 0
		        ? "an account with this email exists"
		        : PQerrorMessage(c));
	}
	for (i = 0; ok && print && i < PQntuples(res); i++) {
		for (j = 0; j < PQnfields(res); j++)
			printf("%s%s", j ? "\t" : "", PQgetvalue(res, i, j));
		printf("\n");
	}
	PQclear(res);
	return ok ? 0 : 1;
}

static int
user_add(int argc, char **argv)
{
	const char *email = NULL, *name = NULL, *role = "customer";
	char pw[AGORA_PASSWORD_MAX + 2], hash[AGORA_PASSWORD_HASH_MAX];
	const char *vals[4];
	int i, from_stdin = 0, rc = 1;
	PGconn *c;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = 1;
		else if (i + 1 < argc && strcmp(argv[i], "--email") == 0)
			email = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--name") == 0)
			name = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--role") == 0)
			role = argv[++i];
		else
			return ctl_usage();
	}
	if (email == NULL || name == NULL || !from_stdin || !role_ok(role))
		return ctl_usage();
	if (!agora_email_valid(email, strlen(email))) {
		fprintf(
		    stderr, "agoractl: %s is not an email address\n", email);
		return 1;
	}
	if (read_password(pw, sizeof(pw)) == NULL ||
	    agora_utf8_len(pw, strlen(pw)) < AGORA_PASSWORD_MIN) {
		fprintf(stderr,
		    "agoractl: the password (one line on stdin) "
		    "needs %d to %d characters\n",
		    AGORA_PASSWORD_MIN, AGORA_PASSWORD_MAX);
		return 1;
	}
	if (agora_password_hash(pw, strlen(pw), hash, sizeof(hash)) != 0 ||
	    (c = connect_admin()) == NULL)
		goto out;
	vals[0] = email;
	vals[1] = name;
	vals[2] = role;
	vals[3] = hash;
	rc = exec_params(c,
	    "INSERT INTO users (email, name, role, password_hash) "
	    "VALUES (lower($1), $2, $3, $4) RETURNING id::text, email, role",
	    4, vals, 1);
	PQfinish(c);
out:
	sodium_memzero(pw, sizeof(pw));
	return rc;
}

/*
 * set-role EMAIL ROLE, disable EMAIL, enable EMAIL: verb is the command,
 * role NULL but for set-role.
 */
static int
user_change(const char *verb, const char *email, const char *role)
{
	const char *vals[3] = { email, role, NULL };
	PGresult *res;
	PGconn *c;
	int rc = 1;

	if (role == NULL)
		vals[2] = strcmp(verb, "disable") == 0 ? "true" : "false";
	if ((c = connect_admin()) == NULL)
		return 1;
	/* As an admin's PATCH /users/{id} does it (sql/0016), as the system. */
	res = PQexecParams(c,
	    "SELECT id, token_gen::text FROM user_admin_update(NULL, NULL, "
	    "(SELECT id FROM users WHERE email = lower($1)), $2, $3::bool)",
	    3, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	else if (PQntuples(res) == 0)
		fprintf(stderr, "agoractl: no such user: %s\n", email);
	else
		rc = 0;
	if (rc == 0) {
		/* The user's access tokens stop working at once. */
		with_cache(agora_token_gen_set, PQgetvalue(res, 0, 0),
		    PQgetvalue(res, 0, 1));
		if (role != NULL)
			printf("%s is now %s\n", email, role);
		else
			printf("%s is %sd\n", email, verb);
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}

static int
user_set_role(int argc, char **argv)
{
	if (argc != 2 || !role_ok(argv[1]))
		return ctl_usage();
	return user_change("set-role", argv[0], argv[1]);
}

static int
user_disable(int argc, char **argv)
{
	if (argc != 1)
		return ctl_usage();
	return user_change("disable", argv[0], NULL);
}

static int
user_enable(int argc, char **argv)
{
	if (argc != 1)
		return ctl_usage();
	return user_change("enable", argv[0], NULL);
}

static int
user_list(int argc, char **argv)
{
	PGconn *c;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_usage();
	if ((c = connect_admin()) == NULL)
		return 1;
	rc = exec_params(c,
	    "SELECT id::text, email, role, name, "
	    "agora_time(created_at), CASE WHEN disabled_at IS NULL "
	    "THEN 'enabled' ELSE 'disabled' END "
	    "FROM users ORDER BY users.id",
	    0, NULL, 1);
	PQfinish(c);
	return rc;
}

/* --- seed ------------------------------------------------------------- */

struct kind {
	const char *top, *slug, *leaf, *noun;
};

/* Eight departments of three leaves each; the noun names the products. */
static const struct kind kinds[] = {
	{ "Electronics", "laptops", "Laptops", "Laptop" },
	{ "Electronics", "phones", "Phones", "Phone" },
	{ "Electronics", "headphones", "Headphones", "Headphones" },
	{ "Home", "lamps", "Lamps", "Lamp" },
	{ "Home", "chairs", "Chairs", "Chair" },
	{ "Home", "rugs", "Rugs", "Rug" },
	{ "Kitchen", "knives", "Knives", "Knife" },
	{ "Kitchen", "kettles", "Kettles", "Kettle" },
	{ "Kitchen", "pans", "Pans", "Pan" },
	{ "Sports", "bikes", "Bikes", "Bike" },
	{ "Sports", "tents", "Tents", "Tent" },
	{ "Sports", "shoes", "Running shoes", "Running Shoe" },
	{ "Garden", "hoses", "Hoses", "Hose" },
	{ "Garden", "planters", "Planters", "Planter" },
	{ "Garden", "shears", "Shears", "Shears" },
	{ "Books", "novels", "Novels", "Novel" },
	{ "Books", "cookbooks", "Cookbooks", "Cookbook" },
	{ "Books", "atlases", "Atlases", "Atlas" },
	{ "Toys", "puzzles", "Puzzles", "Puzzle" },
	{ "Toys", "kites", "Kites", "Kite" },
	{ "Toys", "blocks", "Building blocks", "Block Set" },
	{ "Office", "desks", "Desks", "Desk" },
	{ "Office", "pens", "Pens", "Pen" },
	{ "Office", "notebooks", "Notebooks", "Notebook" },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

static const char *const brands[] = { "Acme", "Borealis", "Cobalt", "Dunmore",
	"Evergreen", "Fjord", "Granite", "Halcyon", "Ironwood", "Juniper",
	"Kestrel", "Lumen" };
static const char *const adjectives[] = { "Compact", "Classic", "Pro", "Ultra",
	"Lightweight", "Rugged", "Deluxe", "Everyday", "Quiet", "Smart",
	"Vintage", "Travel" };
static const char *const colors[] = { "red", "blue", "green", "black", "white",
	"grey", "orange", "purple" };
static const char *const sizes[] = { "S", "M", "L", "XL" };
static const char *const materials[] = { "steel", "aluminium", "oak", "cotton",
	"wool", "plastic", "glass", "leather" };

#define PICK(a) ((a)[randombytes_uniform(sizeof(a) / sizeof((a)[0]))])

/* The 8 departments and 24 leaves; leaf category ids into ids. */
static int
seed_categories(PGconn *c, char ids[NKINDS][24])
{
	const char *vals[3];
	char slug[64];
	PGresult *res;
	size_t i;
	int rc = 0;

	for (i = 0; i < NKINDS && rc == 0; i++) {
		snprintf(slug, sizeof(slug), "%s", kinds[i].top);
		for (char *p = slug; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
		vals[0] = kinds[i].top;
		vals[1] = slug;
		rc = exec_params(c,
		    "INSERT INTO categories (name, slug) VALUES ($1, $2) "
		    "ON CONFLICT (slug) DO NOTHING",
		    2, vals, 1);
		vals[0] = kinds[i].leaf;
		vals[1] = kinds[i].slug;
		vals[2] = slug;
		res = PQexecParams(c,
		    "WITH ins AS (INSERT INTO categories (name, slug, "
		    "parent_id) "
		    "SELECT $1, $2, id FROM categories WHERE slug = $3 "
		    "ON CONFLICT (slug) DO NOTHING RETURNING id) "
		    "SELECT id::text FROM ins UNION ALL "
		    "SELECT id::text FROM categories WHERE slug = $2",
		    3, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    PQntuples(res) < 1)
			rc = 1;
		else
			snprintf(ids[i], 24, "%s", PQgetvalue(res, 0, 0));
		PQclear(res);
	}
	return rc;
}

/* One product as a COPY text line. */
static int
product_line(char *buf, size_t len, long long run, long n, const char *cat,
    const struct kind *k)
{
	const char *brand = PICK(brands), *adj = PICK(adjectives);
	const char *color = PICK(colors), *material = PICK(materials);

	return snprintf(buf, len,
	    "SEED-%lld-%ld\t%s %s %s %ld\tThe %s %s by %s: a %s %s %s made of "
	    "%s, built for everyday use and backed by a two-year warranty.\t"
	    "%u\tUSD\t%s\t{\"color\": \"%s\", \"size\": \"%s\", "
	    "\"material\": \"%s\", \"brand\": \"%s\"}\n",
	    run, n, brand, adj, k->noun, 100 + n % 900, adj, k->noun, brand,
	    color, adj, k->noun, material, 99 + randombytes_uniform(250000),
	    cat, color, PICK(sizes), material, brand);
}

static int
copy_products(PGconn *c, long count, long long run, char ids[NKINDS][24])
{
	char line[1024];
	PGresult *res;
	size_t k;
	long n;
	int len, rc = 0;

	res = PQexec(c,
	    "COPY products (sku, name, description, price_cents, "
	    "currency, category_id, attributes) FROM STDIN");
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
		PQclear(res);
		return 1;
	}
	PQclear(res);
	for (n = 1; n <= count && rc == 0; n++) {
		k = randombytes_uniform(NKINDS);
		len =
		    product_line(line, sizeof(line), run, n, ids[k], &kinds[k]);
		if (len < 0 || (size_t)len >= sizeof(line) ||
		    PQputCopyData(c, line, len) != 1)
			rc = 1;
		if (n % 10000 == 0 || n == count)
			fprintf(stderr, "\rproducts: %ld/%ld", n, count);
	}
	fprintf(stderr, "\n");
	if (PQputCopyEnd(c, rc ? "aborted" : NULL) != 1)
		rc = 1;
	res = PQgetResult(c);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
		rc = 1;
	}
	PQclear(res);
	return rc;
}

static int
seed(int argc, char **argv)
{
	static char ids[NKINDS][24];
	struct timespec t0;
	long long count;
	char run[24], like[48];
	const char *vals[1] = { like };
	PGconn *c;
	int rc = 1;

	if (argc != 2 || strcmp(argv[0], "--products") != 0 ||
	    agora_parse_ll(argv[1], 1, 10000000, &count) != 0)
		return ctl_usage();
	if ((c = connect_admin()) == NULL)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* In milliseconds: two seeds in one second get SKUs of their own. */
	snprintf(run, sizeof(run), "%lld", agora_clock_ms(CLOCK_REALTIME));
	snprintf(like, sizeof(like), "SEED-%s-%%", run);
	if (exec_ok(c, "BEGIN") != 0 || seed_categories(c, ids) != 0 ||
	    copy_products(c, (long)count, atoll(run), ids) != 0)
		goto out;
	fprintf(stderr, "inventory ...\n");
	if (exec_params(c,
	        "INSERT INTO inventory (product_id, on_hand) SELECT id, "
	        "(random() * 200)::int FROM products WHERE sku LIKE $1",
	        1, vals, 1) != 0 ||
	    exec_ok(c, "COMMIT") != 0 || exec_ok(c, "ANALYZE products") != 0 ||
	    exec_ok(c, "ANALYZE inventory") != 0)
		goto out;
	catalog_changed();
	printf("%lld products in %.1f s\n", count,
	    (double)agora_ms_since(&t0) / 1e3);
	rc = 0;
out:
	PQfinish(c);
	return rc;
}

/* agoractl outbox list [--status S]: the rows, oldest first, 100 at most. */
static int
outbox_list(int argc, char **argv)
{
	const char *vals[1] = { NULL };
	PGconn *c;
	int rc;

	if (argc == 2 && strcmp(argv[0], "--status") == 0)
		vals[0] = argv[1];
	else if (argc != 0)
		return ctl_usage();
	if ((c = connect_admin()) == NULL)
		return 1;
	printf("id\ttopic\taggregate\tstate\tattempts\tnext_attempt_at\t"
	       "last_error\n");
	rc = exec_params(c,
	    "SELECT id, topic, aggregate_id, state, attempts, "
	    "agora_time(next_attempt_at), COALESCE(last_error, '') "
	    "FROM outbox WHERE $1::text IS NULL OR state = $1 "
	    "ORDER BY id LIMIT 100",
	    1, vals, 1);
	PQfinish(c);
	return rc;
}

/* agoractl outbox retry ID|--all-dead: dead rows become due now. */
static int
outbox_retry(int argc, char **argv)
{
	const char *vals[1] = { NULL };
	PGresult *res;
	PGconn *c;
	int rc = 1;

	if (argc != 1)
		return ctl_usage();
	if (strcmp(argv[0], "--all-dead") != 0)
		vals[0] = argv[0];
	if (vals[0] != NULL && !agora_id_ok(vals[0]))
		return ctl_usage();
	if ((c = connect_admin()) == NULL)
		return 1;
	res = PQexecParams(c,
	    "WITH r AS (UPDATE outbox SET state = 'pending', attempts = 0, "
	    "next_attempt_at = now() WHERE state = 'dead' "
	    "AND ($1::bigint IS NULL OR id = $1::bigint) RETURNING id) "
	    "SELECT count(*), pg_notify('agora_outbox', '') FROM r",
	    1, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
	else if (vals[0] != NULL && strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		fprintf(stderr, "agoractl: no dead outbox row %s\n", vals[0]);
	else {
		printf("%s rows queued again\n", PQgetvalue(res, 0, 0));
		rc = 0;
	}
	PQclear(res);
	PQfinish(c);
	return rc;
}

/* agoractl outbox stats: cheap counts, through the partial index. */
static int
outbox_stats(int argc, char **argv)
{
	PGconn *c;
	int rc;

	(void)argv;
	if (argc != 0)
		return ctl_usage();
	if ((c = connect_admin()) == NULL)
		return 1;
	printf("pending\trunning\tdead\toldest_due_seconds\t"
	       "dead_tuples\n");
	return exec_params(c,
	    "SELECT count(*) FILTER (WHERE state = 'pending'), "
	    "count(*) FILTER (WHERE state = 'running'), "
	    "(SELECT count(*) FROM outbox WHERE state = 'dead'), "
	    "COALESCE(round(extract(epoch FROM now() - min(next_attempt_at) "
	    "FILTER (WHERE state = 'pending')))::text, '-'), "
	    "(SELECT n_dead_tup FROM pg_stat_user_tables "
	    "WHERE relname = 'outbox') "
	    "FROM outbox WHERE state <> 'dead'",
	    0, NULL, 1);
	PQfinish(c);
	return rc;
}

/* --- analytics ------------------------------------------------------- */

/*
 * analytics prune --before TIME: delete the events from before TIME (a
 * date or an RFC 3339 time), a batch per transaction, with progress on
 * standard error.  agora-worker does the same by itself for the events
 * older than analytics_retention_days.
 */
static int
analytics_prune(int argc, char **argv)
{
	const char *vals[2] = { NULL, AGORA_STR(AGORA_PRUNE_BATCH) };
	long long total = 0, n = 0;
	PGresult *res;
	PGconn *c;
	int rc = 0;

	if (argc != 2 || strcmp(argv[0], "--before") != 0)
		return ctl_usage();
	vals[0] = argv[1];
	if ((c = connect_admin()) == NULL)
		return 1;
	do {
		res = PQexecParams(c,
		    "SELECT analytics_prune_before($1::timestamptz, $2::int)",
		    2, NULL, vals, NULL, NULL, 0);
		if (PQresultStatus(res) != PGRES_TUPLES_OK ||
		    agora_parse_ll(PQgetvalue(res, 0, 0), 0, INT64_MAX, &n)) {
			fprintf(stderr, "agoractl: %s", PQerrorMessage(c));
			rc = 1;
		} else {
			total += n;
			fprintf(
			    stderr, "\ragoractl: %lld events deleted", total);
		}
		PQclear(res);
	} while (rc == 0 && n == AGORA_PRUNE_BATCH);
	fprintf(stderr, "\n");
	if (rc == 0)
		printf("%lld analytics events from before %s deleted\n", total,
		    argv[1]);
	PQfinish(c);
	return rc;
}

static int
migrate_apply(int argc, char **argv)
{
	return migrate(argc, argv, 0);
}

static int
migrate_list(int argc, char **argv)
{
	return migrate(argc, argv, 1);
}

/* --- the commands ---------------------------------------------------- */

/*
 * Every command: its words, its arguments, what it does (for --help and
 * agoractl(8)), and the function that runs it with the arguments after
 * its words.
 */
static const struct command {
	const char *name, *args, *help;
	int (*run)(int, char **);
} commands[] = {
	{ "migrate", "[--dir DIR]",
	    "apply the pending migrations in order, each in a transaction",
	    migrate_apply },
	{ "migrations", "[--dir DIR]",
	    "list each migration, applied or pending", migrate_list },
	{ "user add",
	    "--email EMAIL --name NAME [--role customer|admin] "
	    "--password-stdin",
	    "make an account; the password is one line on standard input",
	    user_add },
	{ "user list", "", "list the accounts", user_list },
	{ "user set-role", "EMAIL customer|admin",
	    "change an account's role; its tokens stop working",
	    user_set_role },
	{ "user disable", "EMAIL",
	    "refuse an account's logins and tokens from now on", user_disable },
	{ "user enable", "EMAIL", "let a disabled account in again",
	    user_enable },
	{ "outbox list", "[--status pending|running|dead]",
	    "list the outbox rows, oldest first, 100 at most", outbox_list },
	{ "outbox retry", "ID|--all-dead",
	    "make a dead outbox row (or every one) due again", outbox_retry },
	{ "outbox stats", "",
	    "count the outbox rows by state, and the oldest due",
	    outbox_stats },
	{ "analytics prune", "--before DATE",
	    "delete the analytics events from before DATE (or an RFC 3339 "
	    "time)",
	    analytics_prune },
	{ "seed", "--products N",
	    "add a demo catalog of N products, with progress", seed },
	{ "check", "[--dir DIR]",
	    "check the configuration, secrets, database, memcached, storage "
	    "and outbox; exit 1 on a failure",
	    ctl_check },
};

static void
synopsis(FILE *f)
{
	size_t i;

	for (i = 0; i < AGORA_NELEM(commands); i++)
		fprintf(f, "%s agoractl %s%s%s\n", i == 0 ? "usage:" : "      ",
		    commands[i].name, *commands[i].args != '\0' ? " " : "",
		    commands[i].args);
	fprintf(f, "       agoractl -h|--help\n");
}

int
ctl_usage(void)
{
	synopsis(stderr);
	return 2;
}

static int
help(void)
{
	size_t i;

	printf("agoractl: the administration command of agora.\n\n");
	synopsis(stdout);
	printf("\ncommands:\n");
	for (i = 0; i < AGORA_NELEM(commands); i++)
		printf("  %-16s %s\n", commands[i].name, commands[i].help);
	printf("  %-16s %s\n", "-h, --help", "print this help and exit");
	printf("\nconfiguration: the file AGORA_CONFIG names, else %s;\n"
	       "AGORA_<KEY> variables override its keys.  agoractl connects "
	       "with\ndatabase_admin_url (the owner), or database_url when "
	       "that is empty.\n",
	    AGORA_SYSCONFDIR "/agora/agora.conf");
	return 0;
}

/* The command named by argv[1] (and argv[2]); its words in *words. */
static const struct command *
command_find(int argc, char **argv, int *words)
{
	size_t i, n;

	for (i = 0; i < AGORA_NELEM(commands); i++) {
		n = strcspn(commands[i].name, " ");
		if (strncmp(argv[1], commands[i].name, n) != 0 ||
		    argv[1][n] != '\0')
			continue;
		if (commands[i].name[n] == '\0') {
			*words = 1;
			return &commands[i];
		}
		if (argc > 2 &&
		    strcmp(argv[2], commands[i].name + n + 1) == 0) {
			*words = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* Whether word is the first of two-word commands ("user"). */
static int
is_group(const char *word)
{
	size_t i, n;

	for (i = 0; i < AGORA_NELEM(commands); i++) {
		n = strcspn(commands[i].name, " ");
		if (commands[i].name[n] == ' ' &&
		    strncmp(word, commands[i].name, n) == 0 && word[n] == '\0')
			return 1;
	}
	return 0;
}

static int
is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int
main(int argc, char **argv)
{
	const struct command *cmd;
	int words;

	if (argc >= 2 && is_help(argv[1]))
		return help();
	if (argc < 2)
		return ctl_usage();
	if ((cmd = command_find(argc, argv, &words)) == NULL) {
		/* "user bogus" names both words, "bogus" one. */
		words = argc > 2 && is_group(argv[1]);
		if (argc == 2 && is_group(argv[1]))
			fprintf(stderr, "agoractl: '%s' needs a command\n",
			    argv[1]);
		else
			fprintf(stderr, "agoractl: unknown command '%s%s%s'\n",
			    argv[1], words ? " " : "", words ? argv[2] : "");
		return ctl_usage();
	}
	if (argc > words + 1 && is_help(argv[words + 1]))
		return help();
	if (sodium_init() < 0)
		return 1;
	agora_log_init("agoractl");
	return cmd->run(argc - words - 1, argv + words + 1);
}
