/*
 * unit_config.c: agora.conf parsing and AGORA_* overrides.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agora.h"
#include "tap.h"

struct conf_case {
	const char *text;
	int ok;
	const char *what;
};

static const struct conf_case cases[] = {
	{ "", 1, "empty file" },
	{ "# comment\n\n  # indented comment\n", 1, "comments and blanks" },
	{ "database_url = host=db dbname=agora\n", 1, "value with spaces" },
	{ "max_body_bytes=2048", 1, "no spaces, no final newline" },
	{ "nonsense = 1\n", 0, "unknown key" },
	{ "database_url\n", 0, "missing =" },
	{ "max_body_bytes = 12abc\n", 0, "not a number" },
	{ "max_body_bytes = 10\n", 0, "below the minimum" },
	{ "max_body_bytes = 99999999999999999999\n", 0, "overflow" },
};

struct msg_case {
	const char *text, *err;
};

/* What the messages of a refused file say. */
static const struct msg_case msgs[] = {
	{ "databse_url = x\n",
	    "m.conf:1: unknown key 'databse_url' (did you mean "
	    "'database_url'?)" },
	{ "# c\nmax_body_byte = 2048\n",
	    "m.conf:2: unknown key 'max_body_byte' (did you mean "
	    "'max_body_bytes'?)" },
	{ "stroage = s3\n",
	    "m.conf:1: unknown key 'stroage' (did you mean 'storage'?)" },
	{ "nonsense = 1\n", "m.conf:1: unknown key 'nonsense'" },
	{ "s3_bucketss = b\n",
	    "m.conf:1: unknown key 's3_bucketss' (did you mean "
	    "'s3_bucket'?)" },
	{ "s3_bucketsss = b\n", "m.conf:1: unknown key 's3_bucketsss'" },
	{ "log_requests = 2\n",
	    "m.conf:1: log_requests: value out of range: '2' (a whole "
	    "number from 0 to 1)" },
	{ "order_wait_max = -1\n",
	    "m.conf:1: order_wait_max: value out of range: '-1' (a whole "
	    "number from 0 to 30)" },
	{ "database_url\n", "m.conf:1: expected key = value" },
	{ "[provider]\n",
	    "m.conf:1: expected a section [provider NAME], NAME 1 to 32 of "
	    "a-z, 0-9, _ and -" },
	{ "[provider Big]\n",
	    "m.conf:1: expected a section [provider NAME], NAME 1 to 32 of "
	    "a-z, 0-9, _ and -" },
	{ "[provider a]\n[provider a]\n",
	    "m.conf:2: provider a: a second section" },
	{ "[provider abcdefghijklmnopqrstuvwxyz0123456]\n",
	    "m.conf:1: expected a section [provider NAME], NAME 1 to 32 of "
	    "a-z, 0-9, _ and -" },
	{ "[provider a\n",
	    "m.conf:1: expected a section [provider NAME], NAME 1 to 32 of "
	    "a-z, 0-9, _ and -" },
	{ "[provider a] x\n",
	    "m.conf:1: expected a section [provider NAME], NAME 1 to 32 of "
	    "a-z, 0-9, _ and -" },
	{ "[provider a]\nisuser = https://id.example\n",
	    "m.conf:2: unknown key 'isuser' in a provider section (did you "
	    "mean 'issuer'?)" },
	{ "[provider a]\nmax_body_bytes = 2048\n",
	    "m.conf:2: unknown key 'max_body_bytes' in a provider section" },
};

struct check_case {
	const char *text, *err;
};

/* Provider sections that parse but cannot work: agora_config_check. */
static const struct check_case checks[] = {
	{ "[provider g]\nissuer = https://id.example\n",
	    "provider g: needs client_id and client_secret_file" },
	{ "[provider g]\nclient_id = c\nclient_secret_file = /s\n",
	    "provider g: type oidc needs issuer, an https URL (http on this "
	    "host alone)" },
	{ "[provider g]\nissuer = http://id.example\nclient_id = c\n"
	  "client_secret_file = /s\n",
	    "provider g: type oidc needs issuer, an https URL (http on this "
	    "host alone)" },
	{ "[provider g]\nissuer = http://localhost:80@evil.example/\n"
	  "client_id = c\nclient_secret_file = /s\n",
	    "provider g: type oidc needs issuer, an https URL (http on this "
	    "host alone)" },
	{ "[provider g]\nissuer = http://127.0.0.1:@evil.example/\n"
	  "client_id = c\nclient_secret_file = /s\n",
	    "provider g: type oidc needs issuer, an https URL (http on this "
	    "host alone)" },
	{ "[provider g]\nissuer = https://id.example\nclient_id = c\n"
	  "client_secret_file = /s\nscopes = email profile\n",
	    "provider g: scopes must include openid" },
	{ "[provider g]\nissuer = https://id.example\nclient_id = c\n"
	  "client_secret_file = /s\nalg = HS256\n",
	    "provider g: alg must be one of RS256, RS384, RS512, PS256, "
	    "PS384, PS512, ES256, ES384, ES512" },
	{ "[provider h]\ntype = oauth2\nclient_id = c\n"
	  "client_secret_file = /s\ntoken_endpoint = https://h/t\n",
	    "provider h: type oauth2 needs authorization_endpoint, "
	    "token_endpoint and userinfo_endpoint, https URLs (http on "
	    "this host alone)" },
	{ "[provider h]\ntype = saml\n",
	    "provider h: type must be oidc or oauth2" },
};

static void
test_provider_checks(void)
{
	struct agora_config cfg;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		agora_config_defaults(&cfg);
		err[0] = '\0';
		if (agora_config_parse(
		        &cfg, checks[i].text, "c.conf", err, sizeof(err)) == 0)
			agora_config_check(&cfg, err, sizeof(err));
		tap_ok(strcmp(err, checks[i].err) == 0, "check: %s", err);
		agora_config_free(&cfg);
	}
}

static void
test_messages(void)
{
	struct agora_config cfg;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		agora_config_defaults(&cfg);
		err[0] = '\0';
		agora_config_parse(
		    &cfg, msgs[i].text, "m.conf", err, sizeof(err));
		tap_ok(strcmp(err, msgs[i].err) == 0, "message: %s", err);
		agora_config_free(&cfg);
	}
}

/* The lease a worker uses with text's settings is want seconds. */
static void
lease(const char *text, long long want, const char *what)
{
	struct agora_config cfg;
	char err[256] = "";
	long long got = -1;

	agora_config_defaults(&cfg);
	if (agora_config_parse(&cfg, text, "t", err, sizeof(err)) == 0)
		got = agora_worker_lease(&cfg);
	tap_ok(got == want, "%s: a lease of %lld s", what, got);
	agora_config_free(&cfg);
}

/* A temporary file holding text; its path, which the caller unlinks. */
static const char *
temp_file(char path[32], const char *text)
{
	int fd;

	snprintf(path, 32, "/tmp/agora-unit-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		tap_ok(0, "a temporary file");
	close(fd);
	return path;
}

/*
 * Two provider sections after the top-level keys; a client secret is read
 * only by a program that needs it (the auth program).
 */
static void
test_provider_secrets(const char *secret)
{
	struct agora_config cfg;
	const struct agora_provider *g, *h;
	char conf[768], err[256] = "";

	agora_config_defaults(&cfg);
	snprintf(conf, sizeof(conf),
	    "public_url = https://shop.example\n"
	    "[provider google]\ndisplay_name = Google\n"
	    "issuer = https://accounts.example\nclient_id = abc\n"
	    "client_secret_file = %s\n"
	    "  [provider gh]  \ntype = oauth2\nclient_id = def\n"
	    "client_secret_file = %s\n"
	    "authorization_endpoint = https://gh/authorize\n"
	    "token_endpoint = https://gh/token\n"
	    "userinfo_endpoint = https://gh/user\n"
	    "emails_endpoint = https://gh/user/emails\n",
	    secret, secret);
	tap_ok(agora_config_parse(&cfg, conf, "t", err, sizeof(err)) == 0 &&
	        agora_config_check(&cfg, err, sizeof(err)) == 0,
	    "two provider sections: %s", err);
	g = agora_provider_find(&cfg, "google");
	h = agora_provider_find(&cfg, "gh");
	tap_ok(g != NULL && h != NULL &&
	        agora_provider_find(&cfg, "g") == NULL &&
	        strcmp(g->type, "oidc") == 0 && strcmp(g->alg, "RS256") == 0 &&
	        strcmp(g->display_name, "Google") == 0 &&
	        strcmp(h->type, "oauth2") == 0 &&
	        strcmp(cfg.public_url, "https://shop.example") == 0,
	    "each section's keys, and the defaults (oidc, RS256)");
	tap_ok(agora_config_secrets(&cfg, AGORA_NEEDS_ALL, err, sizeof(err)) ==
	            0 &&
	        g != NULL && g->client_secret == NULL,
	    "the client secrets are not read for the other programs");
	tap_ok(agora_config_secrets(
	           &cfg, AGORA_NEEDS_PROVIDERS, err, sizeof(err)) == 0 &&
	        g != NULL && g->client_secret != NULL &&
	        strcmp(g->client_secret, "from a file") == 0,
	    "the auth program reads them from their files: %s", err);
	agora_config_free(&cfg);
}

/* Secrets from files, and the ones a program does not need wiped. */
static void
test_secrets(void)
{
	static char from_env[] = "AGORA_WEBHOOK_SECRET=from env";
	char *env_secret[] = { from_env, NULL };
	struct agora_config cfg;
	char conf[512], err[256] = "", one[32], two[32];
	const unsigned webhook = AGORA_NEEDS(AGORA_SECRET_WEBHOOK);

	temp_file(one, "from a file\n");
	temp_file(two, "line one\nline two\n");
	agora_config_defaults(&cfg);
	snprintf(conf, sizeof(conf),
	    "webhook_secret = inline\nwebhook_secret_file = %s\n"
	    "smtp_password = hunter2\nsms_token_file = /nonexistent/token\n",
	    one);
	agora_config_parse(&cfg, conf, "t", err, sizeof(err));
	tap_ok(agora_config_secrets(&cfg, webhook, err, sizeof(err)) == 0 &&
	        strcmp(cfg.webhook_secret, "from a file") == 0,
	    "a needed secret comes from its file, which wins: %s", err);
	tap_ok(strcmp(cfg.smtp_password, "") == 0 &&
	        strcmp(cfg.sms_token, "") == 0,
	    "secrets not needed are wiped, and their files never opened");
	agora_config_free(&cfg);
	agora_config_defaults(&cfg);
	snprintf(conf, sizeof(conf), "webhook_secret_file = %s\n", one);
	agora_config_parse(&cfg, conf, "t", err, sizeof(err));
	agora_config_env(&cfg, env_secret, err, sizeof(err));
	tap_ok(agora_config_secrets(&cfg, webhook, err, sizeof(err)) == 0 &&
	        strcmp(cfg.webhook_secret, "from env") == 0,
	    "a value set after the file (the environment) wins");
	agora_config_free(&cfg);
	agora_config_defaults(&cfg);
	agora_config_parse(&cfg, "sms_token_file = /nonexistent/token\n", "t",
	    err, sizeof(err));
	tap_ok(agora_config_secrets(&cfg, AGORA_NEEDS_ALL, err, sizeof(err)) ==
	            -1 &&
	        strstr(err, "/nonexistent/token") != NULL,
	    "a needed secret's missing file is an error: %s", err);
	agora_config_free(&cfg);
	agora_config_defaults(&cfg);
	snprintf(conf, sizeof(conf), "webhook_secret_file = %s\n", two);
	agora_config_parse(&cfg, conf, "t", err, sizeof(err));
	tap_ok(agora_config_secrets(&cfg, webhook, err, sizeof(err)) == -1 &&
	        strstr(err, "one line") != NULL,
	    "a secret's file holds one line: %s", err);
	agora_config_free(&cfg);
	agora_config_defaults(&cfg);
	agora_config_parse(&cfg, "storage = s3\ns3_endpoint = http://s3\n", "t",
	    err, sizeof(err));
	tap_ok(agora_config_secrets(&cfg, 0, err, sizeof(err)) == 0 &&
	        agora_config_secrets(
	            &cfg, AGORA_NEEDS_STORAGE, err, sizeof(err)) == -1,
	    "S3 keys are required only where storage is used: %s", err);
	agora_config_free(&cfg);
	test_provider_secrets(one);
	unlink(one);
	unlink(two);
}

int
main(void)
{
	struct agora_config cfg;
	char err[256];
	size_t i;
	int rc;
	static char e1[] = "AGORA_MAX_BODY_BYTES=4096",
	            e2[] = "AGORA_DATABASE_URL=dbname=fromenv",
	            e3[] = "AGORA_NOPE=1", e4[] = "OTHER=1",
	            e5[] = "AGORA_MAX_BODY_BYTES=-1";
	char *env[] = { e1, e2, e3, e4, NULL };

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		agora_config_defaults(&cfg);
		err[0] = '\0';
		rc = agora_config_parse(
		    &cfg, cases[i].text, "test.conf", err, sizeof(err));
		tap_ok((rc == 0) == cases[i].ok, "%s: %s %s", cases[i].what,
		    cases[i].ok ? "accepted" : "rejected", err);
		agora_config_free(&cfg);
	}
	agora_config_defaults(&cfg);
	agora_config_parse(
	    &cfg, "\n\nmax_body_bytes = x\n", "a.conf", err, sizeof(err));
	tap_ok(strcmp(err,
	           "a.conf:3: max_body_bytes: value out of range: 'x' (a "
	           "whole number from 1024 to 67108864)") == 0,
	    "errors name the file, line, key and allowed range: %s", err);
	test_messages();
	test_provider_checks();
	agora_config_parse(&cfg,
	    "database_url = dbname=fromfile\nmax_body_bytes = 2048\n", "t.conf",
	    err, sizeof(err));
	tap_ok(cfg.max_body_bytes == 2048 &&
	        !strcmp(cfg.database_url, "dbname=fromfile"),
	    "the file overrides defaults");
	tap_ok(agora_config_env(&cfg, env, err, sizeof(err)) == 0 &&
	        cfg.max_body_bytes == 4096 &&
	        !strcmp(cfg.database_url, "dbname=fromenv"),
	    "AGORA_* overrides the file");
	tap_ok(agora_config_check(&cfg, err, sizeof(err)) == 0,
	    "the result is consistent");
	env[0] = e5;
	tap_ok(agora_config_env(&cfg, env, err, sizeof(err)) != 0 &&
	        strcmp(err,
	            "AGORA_MAX_BODY_BYTES: value out of range: '-1' (a whole "
	            "number from 1024 to 67108864)") == 0,
	    "an AGORA_* value out of range is an error: %s", err);
	agora_config_free(&cfg);
	agora_config_defaults(&cfg);
	tap_ok(cfg.max_body_bytes == 1048576 && !strcmp(cfg.storage, "local"),
	    "defaults: 1 MiB bodies, local storage");
	agora_config_parse(&cfg, "storage = ftp\n", "t", err, sizeof(err));
	tap_ok(agora_config_check(&cfg, err, sizeof(err)) != 0,
	    "storage must be local or s3");
	agora_config_free(&cfg);
	test_secrets();
	lease("", 60, "the default lease outlasts the default timeouts");
	lease("storage_timeout_ms = 30001\n", 61,
	    "a storage call that may outlast two thirds of the lease");
	lease("notify_timeout_ms = 45000\n", 90, "the same for a notification");
	lease("payment_timeout_ms = 30500\n", 61, "the same for a charge");
	lease("storage_timeout_ms = 600000\nworker_lease_seconds = 1500\n",
	    1500, "a lease longer than it needs is kept");
	return tap_done();
}
