/*
 * password.c: password hashing with libsodium's Argon2id.
 *
 * Cost: t = 2 passes over 19 MiB (OWASP's Argon2id baseline), about 15 ms
 * of CPU per hash here.  Memory is per concurrent hash, so
 * eight auth processes hashing at once need about 152 MiB.  A stored hash
 * made with other parameters is rehashed at the next successful login.
 * Only "$argon2id$" hashes are ever verified: anything else is refused,
 * never handed to a function that might read it as something weaker.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "agora.h"

#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19U * 1024 * 1024)

static char dummy[crypto_pwhash_STRBYTES];

int
agora_password_hash(const char *pw, size_t len, char *out, size_t outlen)
{
	if (outlen < crypto_pwhash_STRBYTES)
		return -1;
	return crypto_pwhash_str(out, pw, len, PW_OPSLIMIT, PW_MEMLIMIT) == 0
	    ? 0
	    : -1;
}

/*
 * 1 when pw matches stored, else 0.  *rehash is set when stored was made
 * with other parameters than today's.
 */
int
agora_password_verify(
    const char *stored, const char *pw, size_t len, int *rehash)
{
	*rehash = 0;
	if (strncmp(stored, "$argon2id$", 10) != 0) {
		agora_log(
		    "error", "refusing a password hash of unknown scheme");
		return 0;
	}
	if (crypto_pwhash_str_verify(stored, pw, len) != 0)
		return 0;
	*rehash = crypto_pwhash_str_needs_rehash(
	              stored, PW_OPSLIMIT, PW_MEMLIMIT) != 0;
	return 1;
}

/*
 * Spend what a verification costs, for a login whose email is unknown, so
 * that its answer takes as long as a wrong password's.
 */
void
agora_password_dummy(const char *pw, size_t len)
{
	int rehash;

	if (dummy[0] == '\0' &&
	    agora_password_hash("agora-dummy", 11, dummy, sizeof(dummy)) != 0)
		return;
	(void)agora_password_verify(dummy, pw, len, &rehash);
}
