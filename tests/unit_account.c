/*
 * unit_account.c: password hashing, email checks, and tokens issued and
 * verified in-process (HS256 with a secret file).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "shop.h"
#include "tap.h"

static void
test_passwords(void)
{
	char h[AGORA_PASSWORD_HASH_MAX];
	int rehash = 1;

	tap_ok(agora_password_hash("secret pass", 11, h, sizeof(h)) == 0 &&
	        strncmp(h, "$argon2id$v=19$m=19456,t=2,p=1$", 31) == 0,
	    "Argon2id with 19 MiB and 2 passes: %.31s", h);
	tap_ok(agora_password_verify(h, "secret pass", 11, &rehash) == 1 &&
	        rehash == 0,
	    "the right password verifies, no rehash needed");
	tap_ok(agora_password_verify(h, "secret pasS", 11, &rehash) == 0,
	    "a wrong password does not");
	tap_ok(agora_password_verify("garbage", "garbage", 7, &rehash) == 0,
	    "a hash of unknown scheme is refused (never read as DES)");
	tap_ok(agora_password_verify(
	           "$2b$10$abcdefghijklmnopqrstuv", "x", 1, &rehash) == 0,
	    "bcrypt hashes are refused too");
	tap_ok(agora_password_verify(
	           "$argon2id$v=19$m=65536,t=3,p=1$"
	           "c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
	           "password", 8, &rehash) == 0,
	    "a malformed Argon2id hash fails cleanly");
	tap_ok(
	    crypto_pwhash_str(h, "old params", 10, 1, 8U * 1024 * 1024) == 0 &&
	        agora_password_verify(h, "old params", 10, &rehash) == 1 &&
	        rehash == 1,
	    "a hash made with other parameters asks for a rehash");
	tap_ok(agora_password_hash("x", 1, h, 10) != 0,
	    "a short output buffer is refused");
}

static void
test_emails(void)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = { { "a@b.co", 1 }, { "first.last+tag@example.com", 1 },
		{ "a@b", 0 }, { "@b.co", 0 }, { "a@.co", 0 }, { "a@b.", 0 },
		{ "a b@c.de", 0 }, { "a@@b.co", 0 }, { "a@b@c.de", 0 },
		{ "a\t@b.co", 0 }, { "", 0 } };
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		tap_ok(agora_email_valid(cases[i].s, strlen(cases[i].s)) ==
		        cases[i].ok,
		    "email \"%s\" is %s", cases[i].s,
		    cases[i].ok ? "valid" : "invalid");
}

static void
test_tokens(void)
{
	struct agora_ctx ctx;
	struct agora_req r;
	char path[] = "/tmp/agora-unit-XXXXXX";
	char *tok, *env[2], hdr[2048];
	int fd;

	memset(&ctx, 0, sizeof(ctx));
	agora_config_defaults(&ctx.cfg);
	fd = mkstemp(path);
	if (fd < 0 || write(fd, "0123456789abcdef0123456789abcdef", 32) != 32)
		tap_ok(0, "a secret file");
	close(fd);
	free(ctx.cfg.jwt_secret_file);
	ctx.cfg.jwt_secret_file = strdup(path);
	agora_auth_init(&ctx);
	tap_ok(ctx.auth != NULL &&
	        strcmp(agora_auth_jwks(&ctx), "{\"keys\":[]}") == 0,
	    "HS256 keys load; the JWKS is empty");
	memset(&r, 0, sizeof(r));
	r.ctx = &ctx;
	r.arena = agora_arena_new(1 << 20);
	tok = agora_token_issue(&r, "42", "admin", "3", "7");
	tap_ok(tok != NULL && strncmp(tok, "eyJ", 3) == 0, "a token is issued");
	snprintf(hdr, sizeof(hdr), "HTTP_AUTHORIZATION=Bearer %s", tok);
	env[0] = hdr;
	env[1] = NULL;
	r.envp = env;
	/* Past the signature and claims, the token's generation is checked
	 * against the user's: with neither memcached nor a database here,
	 * that cannot be told, and the answer is 503, never a pass. */
	ctx.db = agora_db_new("host=/nonexistent connect_timeout=1", NULL, 0);
	tap_ok(agora_auth_request(&r, AGORA_ADMIN) == AGORA_E_UNAVAILABLE &&
	        strcmp(r.user, "42") == 0 && strcmp(r.role, "admin") == 0 &&
	        r.sid != NULL && strcmp(r.sid, "7") == 0,
	    "it verifies, with sub, role and session, up to the generation: "
	    "503 without a database");
	agora_db_free(ctx.db);
	ctx.db = NULL;
	free(ctx.cfg.jwt_issuer);
	ctx.cfg.jwt_issuer = strdup("someone-else");
	r.user = NULL;
	tap_ok(agora_auth_request(&r, AGORA_USER) == AGORA_E_UNAUTHORIZED &&
	        r.status == 401,
	    "another issuer is refused");
	agora_arena_free(r.arena);
	agora_auth_free(&ctx);
	unlink(path);
	free(ctx.cfg.jwt_secret_file);
	ctx.cfg.jwt_secret_file = strdup("/nonexistent/secret");
	agora_auth_init(&ctx);
	tap_ok(ctx.auth == NULL, "a missing secret disables tokens");
	agora_config_free(&ctx.cfg);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	test_passwords();
	test_emails();
	test_tokens();
	return tap_done();
}
