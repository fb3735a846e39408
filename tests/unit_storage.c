/*
 * unit_storage.c: file names made safe to store and send, storage keys,
 * and the local storage round trip.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "shop.h"
#include "tap.h"

struct name_case {
	const char *in;
	size_t len; /* 0: strlen(in) */
	const char *want;
};

static const struct name_case names[] = {
	{ "report.pdf", 0, "report.pdf" },
	{ "../../etc/passwd", 0, "passwd" },
	{ "..\\..\\boot.ini", 0, "boot.ini" },
	{ "a\"b.txt", 0, "a_b.txt" },
	{ "x\r\nSet-Cookie: a=1", 0, "x__Set-Cookie: a=1" },
	{ "a\0b.txt", 7, "a_b.txt" },
	{ ".htaccess", 0, "htaccess" },
	{ "..", 0, "file" },
	{ "", 0, "file" },
	{ "dir/", 0, "file" },
	{ "Gr\xc3\xbc\xc3\x9f\x65.pdf", 0, "Gr\xc3\xbc\xc3\x9f\x65.pdf" },
	{ "bad\xff\xfeutf8", 0, "bad__utf8" },
	{ "tab\there\x7f", 0, "tab_here_" },
};

static const char *const keys_ok[] = { "invoices/1.pdf", "uploads/7/ab12", "a",
	"a-b_c.d/e" };
static const char *const keys_bad[] = { "", "/abs", ".hidden", "a/../b", "A",
	"a b", "a\nb", "a%2e", "x/..", "a//.." };

static void
name_tests(void)
{
	char out[256], big[600];
	size_t i, len;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		len = names[i].len ? names[i].len : strlen(names[i].in);
		agora_filename_clean(names[i].in, len, out, sizeof(out));
		tap_ok(strcmp(out, names[i].want) == 0, "name %lu: \"%s\"",
		    (unsigned long)i, out);
	}
	memset(big, 'a', sizeof(big) - 3);
	memcpy(big + sizeof(big) - 3, "\xc3\xa9", 3);
	agora_filename_clean(big, strlen(big), out, sizeof(out));
	tap_ok(strlen(out) == 255, "a long name is cut to 255 bytes");
	memset(big, 'a', 254);
	memcpy(big + 254, "\xc3\xa9", 3);
	agora_filename_clean(big, 256, out, sizeof(out));
	tap_ok(strlen(out) == 254 && agora_utf8_valid(out, strlen(out)),
	    "the cut never splits a UTF-8 character");
}

static void
key_tests(void)
{
	size_t i;

	for (i = 0; i < sizeof(keys_ok) / sizeof(keys_ok[0]); i++)
		tap_ok(agora_storage_key_ok(keys_ok[i]), "key %s is good",
		    keys_ok[i]);
	for (i = 0; i < sizeof(keys_bad) / sizeof(keys_bad[0]); i++)
		tap_ok(!agora_storage_key_ok(keys_bad[i]), "key %lu is refused",
		    (unsigned long)i);
}

static void
cleanup(const char *dir)
{
	char p[512];

	snprintf(p, sizeof(p), "%s/a/b/c.bin", dir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/a/b", dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/a", dir);
	rmdir(p);
	rmdir(dir);
}

static void
local_tests(void)
{
	struct agora_config cfg;
	char dir[] = "/tmp/agora-unit-XXXXXX", err[256], sha[65];
	const char body[] = "one\0two";
	char *data = NULL;
	size_t len = 0;

	agora_config_defaults(&cfg);
	if (mkdtemp(dir) == NULL) {
		tap_ok(0, "mkdtemp");
		return;
	}
	free(cfg.storage_dir);
	cfg.storage_dir = strdup(dir);
	tap_ok(agora_storage_put(&cfg, "local", "a/b/c.bin", body, sizeof(body),
	           "x/y", err, sizeof(err)) == 0,
	    "local put makes the directories");
	tap_ok(agora_storage_get(&cfg, "local", "a/b/c.bin", 1024, &data, &len,
	           err, sizeof(err)) == 0 &&
	        len == sizeof(body) && memcmp(data, body, len) == 0,
	    "local get returns the bytes");
	free(data);
	tap_ok(agora_storage_get(&cfg, "local", "a/b/c.bin", 4, &data, &len,
	           err, sizeof(err)) == -1,
	    "a file over the caller's limit is refused");
	tap_ok(agora_storage_get(&cfg, "local", "a/none", 1024, &data, &len,
	           err, sizeof(err)) == 1,
	    "a missing key: 1");
	tap_ok(agora_storage_put(&cfg, "local", "../x", body, 1, "x/y", err,
	           sizeof(err)) == -1,
	    "a key with .. is refused");
	agora_sha256_hex("abc", 3, sha);
	tap_ok(strcmp(sha,
	           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb4"
	           "10ff61f20015ad") == 0,
	    "sha256 of abc");
	cleanup(dir);
	agora_config_free(&cfg);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	name_tests();
	key_tests();
	local_tests();
	return tap_done();
}
