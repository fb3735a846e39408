/*
 * main.c: agoractl, the administrator's command line.
 *
 *   agoractl migrate [--dir DIR]   apply the pending migrations in order
 *   agoractl migrations [--dir DIR] list each migration and its state
 *   agoractl user add|list|set-role|disable|enable ...
 *   agoractl outbox list|retry|stats ...
 *   agoractl analytics prune --before DATE
 *   agoractl seed [--products N] [--orders N] [--events N] [--days D]
 *                                   demo data, with progress
 *   agoractl failover [--force] STANDBY  promote a replica (failover.c)
 *   agoractl check [--dir DIR]      diagnose an install (check.c)
 *   agoractl --help                 what each command does
 *
 * The commands, their arguments and their help are one table (commands[]
 * below), which the usage, --help and the test of the manual page
 * (tests/man_pages.py) all read; each command is a file of this
 * directory, and ctl.h is what they share.
 *
 * agoractl connects with database_admin_url (the owner), or database_url
 * when that is empty.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ctl.h"

#ifndef AGORA_SYSCONFDIR
#define AGORA_SYSCONFDIR "/etc"
#endif

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
	    "apply the pending migrations in order, each in a transaction, "
	    "then the functions files that changed",
	    ctl_migrate },
	{ "migrations", "[--dir DIR]",
	    "list each migration and functions file and its state",
	    ctl_migrations },
	{ "prune-functions", "",
	    "drop the functions of earlier releases, once none of their "
	    "programs runs",
	    ctl_prune_functions },
	{ "user add",
	    "--email EMAIL --name NAME [--role customer|admin] "
	    "--password-stdin",
	    "make an account; the password is one line on standard input",
	    ctl_user_add },
	{ "user list", "", "list the accounts", ctl_user_list },
	{ "user set-role", "EMAIL customer|admin",
	    "change an account's role; its tokens stop working",
	    ctl_user_set_role },
	{ "user disable", "EMAIL",
	    "refuse an account's logins and tokens from now on",
	    ctl_user_disable },
	{ "user enable", "EMAIL", "let a disabled account in again",
	    ctl_user_enable },
	{ "user logout", "EMAIL",
	    "end every session of an account: its refresh and access tokens "
	    "stop working",
	    ctl_user_logout },
	{ "outbox list", "[--status pending|running|dead]",
	    "list the outbox rows, oldest first, 100 at most",
	    ctl_outbox_list },
	{ "outbox retry", "ID|--all-dead",
	    "make a dead outbox row (or every one) due again",
	    ctl_outbox_retry },
	{ "outbox stats", "",
	    "count the outbox rows by state, and the oldest due",
	    ctl_outbox_stats },
	{ "analytics prune", "--before DATE",
	    "delete the analytics events from before DATE (or an RFC 3339 "
	    "time)",
	    ctl_analytics_prune },
	{ "seed", "[--products N] [--orders N] [--events N] [--days D]",
	    "add demo products, orders and analytics events of the last D "
	    "days (30), with progress",
	    ctl_seed },
	{ "failover", "[--force] STANDBY",
	    "promote the replica STANDBY once no primary takes writes",
	    ctl_failover },
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
