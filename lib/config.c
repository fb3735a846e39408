/*
 * config.c: agora.conf and its AGORA_* environment overrides.
 *
 * The file is "key = value" lines; '#' starts a comment line.  Every key is
 * in the table below with its type and default, so a misspelt key is an
 * error at start-up rather than a setting silently ignored.  Each key may be
 * overridden by the environment variable AGORA_ plus the key in upper case.
 * Programs load this once, before the accept loop: inside a FastCGI request
 * the process environment is not what it was at start (libfcgi replaces
 * environ with each request's variables).
 *
 * Secrets (enum agora_secret) may come from files instead: <key>_file
 * names a file holding the value on one line; of a key and its file, the
 * one set last counts (a later line, the environment over the file).  A
 * program reads only the secret files its work needs and wipes the other
 * secrets' values; every string that held a secret is zeroed before it is
 * freed, the text of the file included.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agora.h"

#ifndef AGORA_SYSCONFDIR
#define AGORA_SYSCONFDIR "/etc"
#endif
#ifndef AGORA_PKGDATADIR
#define AGORA_PKGDATADIR "/usr/share/agora"
#endif
#ifndef AGORA_LOCALSTATEDIR
#define AGORA_LOCALSTATEDIR "/var"
#endif
#ifndef AGORA_RUNDIR
#define AGORA_RUNDIR AGORA_LOCALSTATEDIR "/run/agora"
#endif

#define CONF_MAX_BYTES (256 * 1024)
#define SECRET_MAX_BYTES (16 * 1024)
#define KEY_MAX 64

enum ctype { C_STR, C_INT };

struct key {
	const char *name;
	enum ctype type;
	size_t off;
	const char *def;
	long long min, max;
};

#define S(k, d)                                                                \
	{                                                                      \
#k, C_STR, offsetof(struct agora_config, k), d, 0, 0           \
	}
#define F(k, i)                                                                \
	{                                                                      \
#k, C_STR, offsetof(struct agora_config, secret_file[i]), "",  \
		    0, 0                                                       \
	}
#define I(k, d, lo, hi)                                                        \
	{                                                                      \
#k, C_INT, offsetof(struct agora_config, k), d, lo, hi         \
	}

static const struct key keys[] = {
	S(database_url, "dbname=agora"),
	S(database_admin_url, ""),
	F(database_url_file, AGORA_SECRET_DATABASE_URL),
	F(database_admin_url_file, AGORA_SECRET_DATABASE_ADMIN_URL),
	S(database_read_url, ""),
	F(database_read_url_file, AGORA_SECRET_DATABASE_READ_URL),
	I(database_read_max_lag_ms, "1000", 0, 3600000),
	F(webhook_secret_file, AGORA_SECRET_WEBHOOK),
	F(payment_gateway_key_file, AGORA_SECRET_GATEWAY_KEY),
	F(s3_access_key_file, AGORA_SECRET_S3_ACCESS_KEY),
	F(s3_secret_key_file, AGORA_SECRET_S3_SECRET_KEY),
	F(smtp_password_file, AGORA_SECRET_SMTP_PASSWORD),
	F(sms_token_file, AGORA_SECRET_SMS_TOKEN),
	S(memcached_servers, "127.0.0.1:11211"),
	S(storage, "local"),
	S(storage_dir, AGORA_LOCALSTATEDIR "/lib/agora/storage"),
	S(run_dir, AGORA_RUNDIR),
	S(openapi_file, AGORA_PKGDATADIR "/openapi.json"),
	I(max_body_bytes, "1048576", 1024, 64LL * 1024 * 1024),
	I(max_header_bytes, "32768", 1024, 1024 * 1024),
	I(request_memory_bytes, "33554432", 1024 * 1024, 1LL << 32),
	I(db_retry_after, "2", 1, 3600),
	I(db_statement_timeout_ms, "5000", 0, 3600000),
	I(log_requests, "1", 0, 1),
	S(jwt_alg, "HS256"),
	S(jwt_secret_file, AGORA_SYSCONFDIR "/agora/jwt.secret"),
	S(jwt_private_key_file, ""),
	S(jwt_public_key_file, ""),
	S(jwt_issuer, "agora"),
	I(access_token_ttl, "900", 60, 86400),
	I(refresh_token_ttl, "2592000", 3600, 365LL * 86400),
	I(refresh_reuse_grace, "10", 0, 300),
	I(email_verify_ttl, "172800", 3600, 30LL * 86400),
	I(password_reset_ttl, "3600", 300, 86400),
	I(password_reset_max, "3", 1, 100),
	I(notify_unverified, "0", 0, 1),
	I(rate_limit_auth, "20", 0, 1000000),
	I(rate_limit_api, "600", 0, 100000000),
	I(login_failures_max, "5", 1, 1000),
	I(login_failure_window, "900", 60, 86400),
	I(rate_limit_login_closed, "0", 0, 1),
	I(order_expiry_seconds, "1800", 60, 7 * 86400),
	I(order_unpaid_hold_seconds, "600", 60, 7 * 86400),
	I(order_unpaid_max, "5", 1, 1000000),
	I(order_reserved_units_max, "100", 1, 100000000),
	I(order_reserved_units_per_ip, "1000", 1, 100000000),
	I(order_wait_max, "30", 0, 30),
	I(order_waiters_max, "6", 0, 1024),
	I(order_waits_per_user, "4", 0, 10000),
	I(order_waits_per_ip, "8", 0, 10000),
	S(payment_provider, "simulated"),
	S(payment_gateway_url, ""),
	S(payment_gateway_key, ""),
	I(payment_timeout_ms, "10000", 100, 120000),
	S(webhook_secret, ""),
	I(outbox_max_attempts, "10", 1, 100),
	I(outbox_backoff_ms, "2000", 10, 3600000),
	I(outbox_backoff_max_ms, "3600000", 10, 86400000),
	I(worker_lease_seconds, "60", 1, 86400),
	I(worker_batch, "100", 1, 1000),
	I(worker_poll_ms, "5000", 10, 60000),
	S(s3_endpoint, ""),
	S(s3_bucket, "agora"),
	S(s3_region, "us-east-1"),
	S(s3_access_key, ""),
	S(s3_secret_key, ""),
	I(storage_timeout_ms, "10000", 100, 600000),
	I(file_max_bytes, "10485760", 1, 1LL << 31),
	S(public_url, "http://localhost"),
	S(seller_name, "agora"),
	S(seller_address, ""),
	S(invoice_font, "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
	S(notify_channels, "log"),
	S(smtp_url, "smtp://127.0.0.1:25"),
	S(smtp_from, "agora@localhost"),
	S(smtp_user, ""),
	S(smtp_password, ""),
	S(sms_url, ""),
	S(sms_token, ""),
	I(notify_timeout_ms, "10000", 100, 120000),
	I(provider_timeout_ms, "10000", 100, 120000),
	I(analytics_retention_days, "90", 0, 36500),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* The keys of a [provider NAME] section; every one is a string. */
#define P(k, d)                                                                \
	{                                                                      \
#k, C_STR, offsetof(struct agora_provider, k), d, 0, 0         \
	}

static const struct key provider_keys[] = {
	P(type, "oidc"),
	P(display_name, ""),
	P(issuer, ""),
	P(client_id, ""),
	P(client_secret_file, ""),
	P(alg, "RS256"),
	P(scopes, ""),
	P(authorization_endpoint, ""),
	P(token_endpoint, ""),
	P(userinfo_endpoint, ""),
	P(emails_endpoint, ""),
};

#define NPKEYS (sizeof(provider_keys) / sizeof(provider_keys[0]))

/* Where each secret's value lives. */
static const struct secret {
	const char *name;
	size_t off;
} secrets[AGORA_SECRET__MAX] = {
	[AGORA_SECRET_DATABASE_URL] = { "database_url",
	    offsetof(struct agora_config, database_url) },
	[AGORA_SECRET_DATABASE_ADMIN_URL] = { "database_admin_url",
	    offsetof(struct agora_config, database_admin_url) },
	[AGORA_SECRET_WEBHOOK] = { "webhook_secret",
	    offsetof(struct agora_config, webhook_secret) },
	[AGORA_SECRET_GATEWAY_KEY] = { "payment_gateway_key",
	    offsetof(struct agora_config, payment_gateway_key) },
	[AGORA_SECRET_S3_ACCESS_KEY] = { "s3_access_key",
	    offsetof(struct agora_config, s3_access_key) },
	[AGORA_SECRET_S3_SECRET_KEY] = { "s3_secret_key",
	    offsetof(struct agora_config, s3_secret_key) },
	[AGORA_SECRET_SMTP_PASSWORD] = { "smtp_password",
	    offsetof(struct agora_config, smtp_password) },
	[AGORA_SECRET_SMS_TOKEN] = { "sms_token",
	    offsetof(struct agora_config, sms_token) },
	[AGORA_SECRET_DATABASE_READ_URL] = { "database_read_url",
	    offsetof(struct agora_config, database_read_url) },
};

/* The key of secret s ("database_url"); its file's key adds "_file". */
const char *
agora_config_secret_name(enum agora_secret s)
{
	return s < AGORA_SECRET__MAX ? secrets[s].name : "?";
}

/* Free a string that may have held a secret, zeroing it first. */
static void
str_free(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

const char *
agora_config_path(void)
{
	const char *p;

	p = getenv("AGORA_CONFIG");
	if (p != NULL && *p != '\0')
		return p;
	return AGORA_SYSCONFDIR "/agora/agora.conf";
}

/* A table of keys: the top level's, or a provider section's. */
struct keytab {
	const struct key *k;
	size_t n;
};

static const struct keytab top_keys = { keys, NKEYS };
static const struct keytab section_keys = { provider_keys, NPKEYS };

static const struct key *
key_find(const struct keytab *t, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strlen(t->k[i].name) == len &&
		    strncmp(t->k[i].name, name, len) == 0)
			return &t->k[i];
	return NULL;
}

/*
 * The edit distance of a[0..alen) and b (insertions, deletions,
 * substitutions and swaps of neighbours each cost 1), or KEY_MAX + 1 when
 * either is longer than KEY_MAX.
 */
static size_t
edit_distance(const char *a, size_t alen, const char *b)
{
	size_t d[3][KEY_MAX + 1], *c, *p, *pp, blen = strlen(b), i, j, v;

	if (alen > KEY_MAX || blen > KEY_MAX)
		return KEY_MAX + 1;
	for (j = 0; j <= blen; j++)
		d[0][j] = j;
	for (i = 1; i <= alen; i++) {
		c = d[i % 3];
		p = d[(i - 1) % 3];
		pp = d[(i + 1) % 3]; /* row i - 2 */
		c[0] = i;
		for (j = 1; j <= blen; j++) {
			v = p[j - 1] + (a[i - 1] != b[j - 1]);
			if (p[j] + 1 < v)
				v = p[j] + 1;
			if (c[j - 1] + 1 < v)
				v = c[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
				v = pp[j - 2] + 1;
			c[j] = v;
		}
	}
	return d[alen % 3][blen];
}

/* The known key closest to name[0..len), if one is 2 edits away or less. */
static const struct key *
key_closest(const struct keytab *t, const char *name, size_t len)
{
	const struct key *best = NULL;
	size_t i, d, best_d = 3;

	for (i = 0; i < t->n; i++) {
		d = edit_distance(name, len, t->k[i].name);
		if (d < best_d) {
			best = &t->k[i];
			best_d = d;
		}
	}
	return best;
}

/* Why name[0..len) is not a key, with the key it may have meant. */
static void
unknown_key(const struct keytab *t, const char *name, size_t len, char *why,
    size_t whylen)
{
	const struct key *near = key_closest(t, name, len);
	int n = len > KEY_MAX ? KEY_MAX : (int)len;
	const char *where = t == &section_keys ? " in a provider section" : "";

	if (near != NULL)
		snprintf(why, whylen,
		    "unknown key '%.*s'%s (did you mean '%s'?)", n, name, where,
		    near->name);
	else
		snprintf(why, whylen, "unknown key '%.*s'%s", n, name, where);
}

/*
 * Why value v[0..len) of integer key k, set as label (the key, or its
 * AGORA_ variable), is refused: the range it must be in.
 */
static void
out_of_range(const struct key *k, const char *label, const char *v, size_t len,
    char *why, size_t whylen)
{
	snprintf(why, whylen,
	    "%s: value out of range: '%.*s' (a whole number from %lld to "
	    "%lld)",
	    label, len > 32 ? 32 : (int)len, v, k->min, k->max);
}

/*
 * A secret's value set after its <key>_file (a later line, or AGORA_<KEY>
 * in the environment) wins over the file: the last one set counts.
 */
static void
forget_file(struct agora_config *cfg, size_t off)
{
	size_t i;

	for (i = 0; i < AGORA_SECRET__MAX; i++)
		if (secrets[i].off == off && cfg->secret_file[i] != NULL) {
			str_free(cfg->secret_file[i]);
			cfg->secret_file[i] = strdup("");
		}
}

/*
 * Set one key of the struct at base (the configuration, or a provider)
 * from text; returns -1 when the value is out of range.
 */
static int
field_set(void *base, const struct key *k, const char *v, size_t len)
{
	char **sp;
	char *copy;
	long long n;

	copy = strndup(v, len);
	if (copy == NULL)
		return -1;
	if (k->type == C_INT) {
		n = 0;
		if (agora_parse_ll(copy, k->min, k->max, &n) != 0) {
			free(copy);
			return -1;
		}
		*(long long *)((char *)base + k->off) = n;
		free(copy);
		return 0;
	}
	sp = (char **)((char *)base + k->off);
	str_free(*sp);
	*sp = copy;
	return 0;
}

static int
key_set(
    struct agora_config *cfg, const struct key *k, const char *v, size_t len)
{
	if (field_set(cfg, k, v, len) != 0)
		return -1;
	if (k->type == C_STR)
		forget_file(cfg, k->off);
	return 0;
}

void
agora_config_defaults(struct agora_config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NKEYS; i++)
		if (key_set(cfg, &keys[i], keys[i].def, strlen(keys[i].def)))
			abort(); /* a default out of its own range is a bug */
}

static const char *
trim(const char *s, const char *end, const char **tend)
{
	while (s < end && isspace((unsigned char)*s))
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*tend = end;
	return s;
}

/*
 * A "[provider NAME]" line: a new section, whose keys follow.  NAME is
 * what the routes and the database call it: 1 to 32 of [a-z0-9_-].
 */
static int
section_start(struct agora_config *cfg, const char *s, const char *end,
    struct agora_provider **sect, char *why, size_t whylen)
{
	const char *name = s + 10, *nend = end - 1;
	struct agora_provider *p;
	size_t i, len = (size_t)(nend - name);

	if (end - s < 12 || strncmp(s, "[provider ", 10) != 0 ||
	    nend[0] != ']' || len > 32 ||
	    strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_-") < len) {
		snprintf(why, whylen,
		    "expected a section [provider NAME], NAME 1 to 32 of "
		    "a-z, 0-9, _ and -");
		return -1;
	}
	for (i = 0; i < cfg->nproviders; i++)
		if (strlen(cfg->providers[i]->name) == len &&
		    strncmp(cfg->providers[i]->name, name, len) == 0) {
			snprintf(why, whylen, "provider %.*s: a second section",
			    (int)len, name);
			return -1;
		}
	if (cfg->nproviders == AGORA_PROVIDERS_MAX) {
		snprintf(why, whylen, "more than %d provider sections",
		    AGORA_PROVIDERS_MAX);
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		goto oom;
	cfg->providers[cfg->nproviders++] = p;
	for (i = 0; i < NPKEYS; i++)
		if (field_set(p, &provider_keys[i], provider_keys[i].def,
		        strlen(provider_keys[i].def)) != 0)
			goto oom;
	if ((p->name = strndup(name, len)) == NULL)
		goto oom;
	*sect = p;
	return 0;
oom:
	snprintf(why, whylen, "out of memory");
	return -1;
}

/*
 * One line: a comment, a section, or a key of the top level or of the
 * section *sect (NULL before the first).
 */
static int
parse_line(struct agora_config *cfg, struct agora_provider **sect,
    const char *s, const char *end, char *why, size_t whylen)
{
	const struct keytab *t = *sect != NULL ? &section_keys : &top_keys;
	const char *eq, *k, *kend, *v, *vend;
	const struct key *key;

	s = trim(s, end, &end);
	if (s == end || *s == '#')
		return 0;
	if (*s == '[')
		return section_start(cfg, s, end, sect, why, whylen);
	eq = memchr(s, '=', (size_t)(end - s));
	if (eq == NULL) {
		snprintf(why, whylen, "expected key = value");
		return -1;
	}
	k = trim(s, eq, &kend);
	v = trim(eq + 1, end, &vend);
	key = key_find(t, k, (size_t)(kend - k));
	if (key == NULL) {
		unknown_key(t, k, (size_t)(kend - k), why, whylen);
		return -1;
	}
	if ((*sect != NULL ? field_set(*sect, key, v, (size_t)(vend - v))
	                   : key_set(cfg, key, v, (size_t)(vend - v))) != 0) {
		if (key->type == C_INT)
			out_of_range(
			    key, key->name, v, (size_t)(vend - v), why, whylen);
		else
			snprintf(why, whylen, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Parse the text of a configuration file into cfg, on top of what is
 * there.  name is used in messages only.  The top-level keys come first:
 * a section runs to the end of the file or to the next section.
 */
int
agora_config_parse(struct agora_config *cfg, const char *text, const char *name,
    char *err, size_t errlen)
{
	struct agora_provider *sect = NULL;
	const char *p, *nl;
	char why[256];
	int line;

	for (p = text, line = 1; *p != '\0'; line++) {
		nl = strchr(p, '\n');
		if (nl == NULL)
			nl = p + strlen(p);
		if (parse_line(cfg, &sect, p, nl, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", name, line, why);
			return -1;
		}
		p = *nl == '\n' ? nl + 1 : nl;
	}
	return 0;
}

/*
 * Apply AGORA_<KEY> overrides found in envp.  A value out of range is an
 * error, as it is in the file.
 */
int
agora_config_env(
    struct agora_config *cfg, char *const *envp, char *err, size_t errlen)
{
	char var[KEY_MAX + 8];
	size_t i, j, n;
	const char *v;

	for (i = 0; i < NKEYS; i++) {
		n = (size_t)snprintf(var, sizeof(var), "AGORA_");
		for (j = 0; keys[i].name[j] != '\0' && n + 1 < sizeof(var); j++)
			var[n++] =
			    (char)toupper((unsigned char)keys[i].name[j]);
		var[n++] = '=';
		var[n] = '\0';
		for (j = 0; envp != NULL && envp[j] != NULL; j++) {
			if (strncmp(envp[j], var, n) != 0)
				continue;
			v = envp[j] + n;
			if (key_set(cfg, &keys[i], v, strlen(v)) == 0)
				continue;
			var[n - 1] = '\0';
			if (keys[i].type == C_INT)
				out_of_range(
				    &keys[i], var, v, strlen(v), err, errlen);
			else
				snprintf(err, errlen, "%s: out of memory", var);
			return -1;
		}
	}
	return 0;
}

static int
is_url(const char *s)
{
	return agora_url_safe(s);
}

/* An ID token's algorithm that libcjose verifies with a public key. */
static int
alg_ok(const char *alg)
{
	static const char *const algs[] = { "RS256", "RS384", "RS512", "PS256",
		"PS384", "PS512", "ES256", "ES384", "ES512" };
	size_t i;

	for (i = 0; i < AGORA_NELEM(algs); i++)
		if (strcmp(alg, algs[i]) == 0)
			return 1;
	return 0;
}

/* Whether the space-separated scopes hold "openid". */
static int
has_openid(const char *scopes)
{
	const char *p = scopes;

	while ((p = strstr(p, "openid")) != NULL) {
		if ((p == scopes || p[-1] == ' ') &&
		    (p[6] == ' ' || p[6] == '\0'))
			return 1;
		p += 6;
	}
	return 0;
}

/* What a provider section lacks, or NULL. */
static const char *
provider_lack(const struct agora_provider *p)
{
	int oidc = strcmp(p->type, "oidc") == 0;

	if (!oidc && strcmp(p->type, "oauth2") != 0)
		return "type must be oidc or oauth2";
	if (*p->client_id == '\0' || *p->client_secret_file == '\0')
		return "needs client_id and client_secret_file";
	if (oidc && !is_url(p->issuer))
		return "type oidc needs issuer, an https URL (http on this "
		       "host alone)";
	if (oidc && !alg_ok(p->alg))
		return "alg must be one of RS256, RS384, RS512, PS256, PS384, "
		       "PS512, ES256, ES384, ES512";
	if (!oidc &&
	    (!is_url(p->authorization_endpoint) || !is_url(p->token_endpoint) ||
	        !is_url(p->userinfo_endpoint)))
		return "type oauth2 needs authorization_endpoint, "
		       "token_endpoint and userinfo_endpoint, https URLs (http "
		       "on this host alone)";
	if (oidc && *p->scopes != '\0' && !has_openid(p->scopes))
		return "scopes must include openid";
	if (*p->emails_endpoint != '\0' && !is_url(p->emails_endpoint))
		return "emails_endpoint must be an https URL (http on this "
		       "host alone)";
	return NULL;
}

static int
providers_check(const struct agora_config *cfg, char *err, size_t errlen)
{
	const char *lack;
	size_t i;

	for (i = 0; i < cfg->nproviders; i++)
		if ((lack = provider_lack(cfg->providers[i])) != NULL) {
			snprintf(err, errlen, "provider %s: %s",
			    cfg->providers[i]->name, lack);
			return -1;
		}
	return 0;
}

const struct agora_provider *
agora_provider_find(const struct agora_config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nproviders; i++)
		if (strcmp(cfg->providers[i]->name, name) == 0)
			return cfg->providers[i];
	return NULL;
}

/* notify_channels: a comma-separated list of log, email and sms. */
static int
channels_check(const struct agora_config *cfg, char *err, size_t errlen)
{
	const char *p = cfg->notify_channels, *end;
	size_t n;

	for (; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		end = p + strcspn(p, ",");
		n = (size_t)(end - p);
		if (!((n == 3 && strncmp(p, "log", n) == 0) ||
		        (n == 5 && strncmp(p, "email", n) == 0) ||
		        (n == 3 && strncmp(p, "sms", n) == 0))) {
			snprintf(err, errlen,
			    "notify_channels is a comma-separated list of "
			    "log, email and sms");
			return -1;
		}
	}
	if (strstr(cfg->notify_channels, "sms") != NULL &&
	    strncmp(cfg->sms_url, "http", 4) != 0) {
		snprintf(err, errlen, "notify_channels sms needs sms_url");
		return -1;
	}
	return 0;
}

/*
 * The lease a worker needs, in seconds.  A worker extends its lease before
 * a row once a third of it has passed since the last extension, so one
 * row's work must end within two thirds of it: else another worker claims
 * the row while its call to the gateway, the mail server or the storage is
 * still running, and makes the call again.  Twice the longest timeout keeps
 * a margin for the database statements around the call.
 */
long long
agora_worker_lease(const struct agora_config *cfg)
{
	long long t = cfg->payment_timeout_ms, need;

	if (cfg->notify_timeout_ms > t)
		t = cfg->notify_timeout_ms;
	if (cfg->storage_timeout_ms > t)
		t = cfg->storage_timeout_ms;
	need = (2 * t + 999) / 1000;
	return cfg->worker_lease_seconds > need ? cfg->worker_lease_seconds
	                                        : need;
}

int
agora_config_check(const struct agora_config *cfg, char *err, size_t errlen)
{
	if (strcmp(cfg->storage, "local") != 0 &&
	    strcmp(cfg->storage, "s3") != 0) {
		snprintf(err, errlen, "storage must be local or s3");
		return -1;
	}
	if (strcmp(cfg->jwt_alg, "HS256") != 0 &&
	    strcmp(cfg->jwt_alg, "RS256") != 0 &&
	    strcmp(cfg->jwt_alg, "ES256") != 0) {
		snprintf(err, errlen, "jwt_alg must be HS256, RS256 or ES256");
		return -1;
	}
	if (strcmp(cfg->payment_provider, "simulated") != 0 &&
	    strcmp(cfg->payment_provider, "http") != 0) {
		snprintf(
		    err, errlen, "payment_provider must be simulated or http");
		return -1;
	}
	if (strcmp(cfg->payment_provider, "http") == 0 &&
	    strncmp(cfg->payment_gateway_url, "http", 4) != 0) {
		snprintf(err, errlen,
		    "payment_provider http needs payment_gateway_url");
		return -1;
	}
	if (strcmp(cfg->storage, "s3") == 0 &&
	    strncmp(cfg->s3_endpoint, "http", 4) != 0) {
		snprintf(err, errlen, "storage s3 needs s3_endpoint");
		return -1;
	}
	if (channels_check(cfg, err, errlen) != 0)
		return -1;
	if (providers_check(cfg, err, errlen) != 0)
		return -1;
	if (cfg->analytics_retention_days > 0 &&
	    cfg->analytics_retention_days < 30) {
		snprintf(err, errlen,
		    "analytics_retention_days is 0 (keep all) or at least 30");
		return -1;
	}
	if (cfg->request_memory_bytes <
	    2 * cfg->file_max_bytes + AGORA_UPLOAD_SLACK_BYTES) {
		snprintf(err, errlen,
		    "request_memory_bytes must be at least twice "
		    "file_max_bytes");
		return -1;
	}
	if (cfg->request_memory_bytes < 2 * cfg->max_body_bytes) {
		snprintf(err, errlen,
		    "request_memory_bytes must be at least twice "
		    "max_body_bytes");
		return -1;
	}
	return 0;
}

/* Read one secret's file into *value: its one line, without the newline. */
static int
secret_read(const struct secret *s, const char *path, char **value, char *err,
    size_t errlen)
{
	char *text, why[256];
	size_t n;

	text = agora_read_file(path, CONF_MAX_BYTES, &n, why, sizeof(why));
	if (text == NULL) {
		snprintf(err, errlen, "%s_file: %s", s->name, why);
		return -1;
	}
	if (strlen(text) != n) {
		snprintf(err, errlen, "%s_file %s: holds a NUL", s->name, path);
		explicit_bzero(text, n);
		free(text);
		return -1;
	}
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		text[--n] = '\0';
	if (n == 0 || n > SECRET_MAX_BYTES || strpbrk(text, "\r\n") != NULL) {
		snprintf(err, errlen, "%s_file %s: must hold one line", s->name,
		    path);
		str_free(text);
		return -1;
	}
	str_free(*value);
	*value = text;
	return 0;
}

/* Each provider's client secret, from its client_secret_file. */
static int
provider_secrets(struct agora_config *cfg, char *err, size_t errlen)
{
	struct agora_provider *p;
	struct secret s;
	char name[64];
	size_t i;

	for (i = 0; i < cfg->nproviders; i++) {
		p = cfg->providers[i];
		snprintf(
		    name, sizeof(name), "provider %s: client_secret", p->name);
		s.name = name;
		s.off = 0;
		if (*p->client_secret_file != '\0' &&
		    secret_read(&s, p->client_secret_file, &p->client_secret,
		        err, errlen) != 0)
			return -1;
	}
	return 0;
}

/*
 * Load the secrets in needs (AGORA_NEEDS bits) from their files, where
 * <key>_file is set, and wipe the others: their values become "", their
 * files are never opened.  Returns -1 with err naming the key.
 */
int
agora_config_secrets(
    struct agora_config *cfg, unsigned needs, char *err, size_t errlen)
{
	char **value;
	size_t i;

	for (i = 0; i < AGORA_SECRET__MAX; i++) {
		value = (char **)((char *)cfg + secrets[i].off);
		if (!(needs & AGORA_NEEDS(i))) {
			str_free(*value);
			*value = strdup("");
		} else if (cfg->secret_file[i] != NULL &&
		    *cfg->secret_file[i] != '\0' &&
		    secret_read(&secrets[i], cfg->secret_file[i], value, err,
		        errlen) != 0) {
			return -1;
		}
		if (*value == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	if ((needs & AGORA_NEEDS_PROVIDERS) &&
	    provider_secrets(cfg, err, errlen) != 0)
		return -1;
	if (strcmp(cfg->storage, "s3") == 0 &&
	    (needs & AGORA_NEEDS_STORAGE) == AGORA_NEEDS_STORAGE &&
	    (*cfg->s3_access_key == '\0' || *cfg->s3_secret_key == '\0')) {
		snprintf(err, errlen,
		    "storage s3 needs s3_access_key and s3_secret_key");
		return -1;
	}
	return 0;
}

/* agora_config_load_for every secret: for the worker and agoractl. */
int
agora_config_load(struct agora_config *cfg, char *err, size_t errlen)
{
	return agora_config_load_for(cfg, AGORA_NEEDS_ALL, err, errlen);
}

/*
 * Load the configuration with the secrets in needs (AGORA_NEEDS bits),
 * the others wiped.
 */
int
agora_config_load_for(
    struct agora_config *cfg, unsigned needs, char *err, size_t errlen)
{
	extern char **environ;
	const char *path;
	char *text;
	size_t len;
	int missing, rc;

	rc = -1;
	agora_config_defaults(cfg);
	path = agora_config_path();
	text = agora_read_file(path, CONF_MAX_BYTES, &len, err, errlen);
	missing = text == NULL && errno == ENOENT;
	/* Without AGORA_CONFIG, a missing file means defaults. */
	if (text == NULL && !(missing && getenv("AGORA_CONFIG") == NULL))
		goto out;
	if (text != NULL && agora_config_parse(cfg, text, path, err, errlen))
		goto out;
	if (agora_config_env(cfg, environ, err, errlen) != 0)
		goto out;
	if (agora_config_secrets(cfg, needs, err, errlen) != 0)
		goto out;
	if (agora_config_check(cfg, err, errlen) != 0)
		goto out;
	rc = 0;
out:
	str_free(text);
	return rc;
}

static void
provider_free(struct agora_provider *p)
{
	size_t i;

	for (i = 0; i < NPKEYS; i++)
		str_free(*(char **)((char *)p + provider_keys[i].off));
	str_free(p->name);
	str_free(p->client_secret);
	free(p);
}

void
agora_config_free(struct agora_config *cfg)
{
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].type != C_STR)
			continue;
		str_free(*(char **)((char *)cfg + keys[i].off));
		*(char **)((char *)cfg + keys[i].off) = NULL;
	}
	for (i = 0; i < cfg->nproviders; i++)
		provider_free(cfg->providers[i]);
	cfg->nproviders = 0;
}

/*
 * A URL agora may send secrets to, or take keys from: HTTPS, or plain
 * HTTP to this host alone (127.0.0.1, [::1], localhost), where no one
 * else is on the way.
 */
int
agora_url_safe(const char *s)
{
	static const char *const local[] = { "127.0.0.1", "[::1]",
		"localhost" };
	size_t i, n;

	if (strncmp(s, "https://", 8) == 0)
		return s[8] != '\0';
	if (strncmp(s, "http://", 7) != 0)
		return 0;
	for (i = 0; i < AGORA_NELEM(local); i++) {
		n = strlen(local[i]);
		if (strncmp(s + 7, local[i], n) != 0)
			continue;
		s += 7 + n;
		/* A port, then the path: never "localhost:80@elsewhere". */
		if (*s == ':')
			s += 1 + strspn(s + 1, "0123456789");
		return *s == '/' || *s == '\0';
	}
	return 0;
}

int
agora_id_ok(const char *s)
{
	long long n;
	size_t len;

	if (s == NULL || *s < '1' || *s > '9')
		return 0;
	len = strlen(s);
	return len <= 19 && strspn(s, "0123456789") == len &&
	    agora_parse_ll(s, 1, INT64_MAX, &n) == 0;
}

int
agora_parse_ll(const char *s, long long min, long long max, long long *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}
