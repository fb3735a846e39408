/*
 * seed.c: agoractl seed, a demo catalog loaded with COPY, with progress.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

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
		rc = ctl_exec_params(c,
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

int
ctl_seed(int argc, char **argv)
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
	if ((c = ctl_connect()) == NULL)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* In milliseconds: two seeds in one second get SKUs of their own. */
	snprintf(run, sizeof(run), "%lld", agora_clock_ms(CLOCK_REALTIME));
	snprintf(like, sizeof(like), "SEED-%s-%%", run);
	if (ctl_exec(c, "BEGIN") != 0 || seed_categories(c, ids) != 0 ||
	    copy_products(c, (long)count, atoll(run), ids) != 0)
		goto out;
	fprintf(stderr, "inventory ...\n");
	if (ctl_exec_params(c,
	        "INSERT INTO inventory (product_id, on_hand) SELECT id, "
	        "(random() * 200)::int FROM products WHERE sku LIKE $1",
	        1, vals, 1) != 0 ||
	    ctl_exec(c, "COMMIT") != 0 ||
	    ctl_exec(c, "ANALYZE products") != 0 ||
	    ctl_exec(c, "ANALYZE inventory") != 0)
		goto out;
	ctl_catalog_changed();
	printf("%lld products in %.1f s\n", count,
	    (double)agora_ms_since(&t0) / 1e3);
	rc = 0;
out:
	ctl_disconnect();
	return rc;
}
