/*
 * config.c: libFuzzer driver for agora.conf parsing: the input as the
 * text of a file (agora_config_parse, then the checks programs make at
 * start-up), and its lines as AGORA_* environment overrides
 * (agora_config_env).  A failure always says why; whatever is parsed is
 * freed without a leak, and a parse that fails leaves a configuration
 * that can still be freed.
 */
#include "config.h"

#include "fuzz.h"

#define ENV_MAX 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void
env(char *text)
{
	struct agora_config cfg;
	char *envp[ENV_MAX + 1], *p, err[256] = "";
	size_t n = 0;

	for (p = text; p != NULL && *p != '\0' && n < ENV_MAX;) {
		envp[n++] = p;
		p = strchr(p, '\n');
		if (p != NULL)
			*p++ = '\0';
	}
	envp[n] = NULL;
	agora_config_defaults(&cfg);
	if (agora_config_env(&cfg, envp, err, sizeof(err)) != 0 &&
	    err[0] == '\0')
		abort();
	agora_config_free(&cfg);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agora_config cfg;
	char *text = fuzz_string(data, size), err[256] = "";

	agora_config_defaults(&cfg);
	if (agora_config_parse(&cfg, text, "fuzz.conf", err, sizeof(err)) !=
	    0) {
		if (strncmp(err, "fuzz.conf:", 10) != 0)
			abort();
	} else {
		err[0] = '\0';
		if (agora_config_check(&cfg, err, sizeof(err)) != 0 &&
		    err[0] == '\0')
			abort();
		(void)agora_worker_lease(&cfg);
	}
	agora_config_free(&cfg);
	env(text);
	free(text);
	return 0;
}
