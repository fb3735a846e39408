/*
 * pdf.c: an order's invoice as a PDF, rendered with libharu.
 *
 * Text is UTF-8 throughout: libharu's base-14 fonts are single-byte, so a
 * TrueType font (DejaVu Sans, invoice_font) is embedded with the UTF-8
 * encoder.  The rendering depends only on the order
 * document and the invoice's number and date: the PDF carries no creation
 * time, so the same order always gives the same bytes.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hpdf.h>

#include "worker.h"

#define PAGE_W 595.28f
#define PAGE_H 841.89f
#define MARGIN 50.0f
#define LINE 15.0f
#define NAME_CHARS 48
#define PDF_MAX (8 * 1024 * 1024)

struct pdf {
	HPDF_Doc doc;
	HPDF_Page page;
	HPDF_Font font;
	float y;
	HPDF_STATUS error; /* the first error libharu reported */
};

static void
pdf_error(HPDF_STATUS error, HPDF_STATUS detail, void *arg)
{
	struct pdf *p = arg;

	if (p->error == 0)
		p->error = error;
}

static void
text_at(struct pdf *p, float x, float size, const char *s)
{
	HPDF_Page_BeginText(p->page);
	HPDF_Page_SetFontAndSize(p->page, p->font, size);
	HPDF_Page_TextOut(p->page, x, p->y, s);
	HPDF_Page_EndText(p->page);
}

/* Right-aligned at x. */
static void
text_right(struct pdf *p, float x, float size, const char *s)
{
	float w;

	HPDF_Page_SetFontAndSize(p->page, p->font, size);
	w = HPDF_Page_TextWidth(p->page, s);
	text_at(p, x - w, size, s);
}

static void
new_page(struct pdf *p)
{
	p->page = HPDF_AddPage(p->doc);
	HPDF_Page_SetSize(p->page, HPDF_PAGE_SIZE_A4, HPDF_PAGE_PORTRAIT);
	p->y = PAGE_H - MARGIN;
}

static void
next_line(struct pdf *p, float by)
{
	p->y -= by;
	if (p->y < MARGIN + 2 * LINE)
		new_page(p);
}

/* "1234.50 EUR" from cents. */
/* At most n characters of a UTF-8 string, with an ellipsis if cut. */
static void
utf8_cut(char *out, size_t len, const char *s, size_t n)
{
	size_t i = 0, chars = 0;

	while (s[i] != '\0' && chars < n) {
		i++;
		while (((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		chars++;
	}
	snprintf(out, len, "%.*s%s", (int)i, s, s[i] != '\0' ? "…" : "");
}

/* The shipping address in the order a letter has it. */
static void
draw_address(struct pdf *p, struct json_object *addr)
{
	char line[512];

	const char *rows[][2] = {
		{ doc_str(addr, "name"), "" },
		{ doc_str(addr, "line1"), "" },
		{ doc_str(addr, "line2"), "" },
		{ doc_str(addr, "postal_code"), doc_str(addr, "city") },
		{ doc_str(addr, "region"), "" },
		{ doc_str(addr, "country"), "" },
	};
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		if (*rows[i][0] == '\0' && *rows[i][1] == '\0')
			continue;
		snprintf(line, sizeof(line), "%.200s%s%.200s", rows[i][0],
		    *rows[i][0] != '\0' && *rows[i][1] != '\0' ? " " : "",
		    rows[i][1]);
		text_at(p, MARGIN + 42, 10, line);
		next_line(p, LINE);
	}
}

static void
draw_head(struct pdf *p, const struct invoice *inv)
{
	const struct agora_config *cfg = inv->cfg;
	struct json_object *addr;
	char line[512];

	snprintf(line, sizeof(line), "Invoice %s", inv->number);
	text_at(p, MARGIN, 20, line);
	next_line(p, 2 * LINE);
	text_at(p, MARGIN, 11, cfg->seller_name);
	snprintf(line, sizeof(line), "Date: %s", inv->date);
	text_right(p, PAGE_W - MARGIN, 10, line);
	next_line(p, LINE);
	if (*cfg->seller_address != '\0') {
		text_at(p, MARGIN, 10, cfg->seller_address);
		next_line(p, LINE);
	}
	next_line(p, LINE);
	snprintf(line, sizeof(line), "Bill to: %s <%s>", inv->customer_name,
	    inv->customer_email);
	text_at(p, MARGIN, 10, line);
	next_line(p, LINE);
	if (json_object_object_get_ex(inv->doc, "shipping_address", &addr) &&
	    json_object_is_type(addr, json_type_object))
		draw_address(p, addr);
	snprintf(line, sizeof(line), "Order %s", doc_str(inv->doc, "id"));
	text_at(p, MARGIN, 10, line);
	next_line(p, 2 * LINE);
}

static void
draw_columns(struct pdf *p)
{
	text_at(p, MARGIN, 10, "Item");
	text_right(p, 380, 10, "Qty");
	text_right(p, 470, 10, "Unit price");
	text_right(p, PAGE_W - MARGIN, 10, "Amount");
	next_line(p, LINE);
}

static void
draw_lines(struct pdf *p, const struct invoice *inv)
{
	const char *cur = doc_str(inv->doc, "currency");
	struct json_object *items, *it;
	char name[256], line[320], amount[64];
	size_t i, n;

	if (!json_object_object_get_ex(inv->doc, "items", &items) ||
	    !json_object_is_type(items, json_type_array))
		return;
	n = json_object_array_length(items);
	draw_columns(p);
	for (i = 0; i < n; i++) {
		it = json_object_array_get_idx(items, i);
		if (p->y < MARGIN + 3 * LINE) {
			new_page(p);
			draw_columns(p);
		}
		utf8_cut(name, sizeof(name), doc_str(it, "name"), NAME_CHARS);
		snprintf(
		    line, sizeof(line), "%s (%s)", name, doc_str(it, "sku"));
		text_at(p, MARGIN, 9, line);
		snprintf(
		    amount, sizeof(amount), "%lld", doc_int(it, "quantity"));
		text_right(p, 380, 9, amount);
		doc_money(amount, sizeof(amount),
		    doc_int(it, "unit_price_cents"), cur);
		text_right(p, 470, 9, amount);
		doc_money(amount, sizeof(amount),
		    doc_int(it, "line_total_cents"), cur);
		text_right(p, PAGE_W - MARGIN, 9, amount);
		next_line(p, LINE);
	}
}

static void
draw_totals(struct pdf *p, const struct invoice *inv)
{
	const char *cur = doc_str(inv->doc, "currency");
	char amount[64];

	next_line(p, LINE / 2);
	text_right(p, 470, 10, "Subtotal");
	doc_money(
	    amount, sizeof(amount), doc_int(inv->doc, "subtotal_cents"), cur);
	text_right(p, PAGE_W - MARGIN, 10, amount);
	next_line(p, LINE);
	text_right(p, 470, 11, "Total");
	doc_money(
	    amount, sizeof(amount), doc_int(inv->doc, "total_cents"), cur);
	text_right(p, PAGE_W - MARGIN, 11, amount);
	next_line(p, 2 * LINE);
	text_at(p, MARGIN, 9, "Paid in full. Thank you for your order.");
}

/* The PDF bytes, into *out (malloc'd). */
static int
pdf_bytes(struct pdf *p, char **out, size_t *len)
{
	HPDF_UINT32 size, got;
	char *buf;

	if (HPDF_SaveToStream(p->doc) != HPDF_OK)
		return -1;
	size = HPDF_GetStreamSize(p->doc);
	if (size == 0 || size > PDF_MAX || (buf = malloc(size)) == NULL)
		return -1;
	got = size;
	if (HPDF_ReadFromStream(p->doc, (HPDF_BYTE *)buf, &got) !=
	        HPDF_STREAM_EOF &&
	    got != size) {
		free(buf);
		return -1;
	}
	*out = buf;
	*len = got;
	return 0;
}

int
invoice_render(const struct invoice *inv, char **out, size_t *len, char *err,
    size_t errlen)
{
	struct pdf p;
	const char *name;
	int rc = -1;

	memset(&p, 0, sizeof(p));
	if ((p.doc = HPDF_New(pdf_error, &p)) == NULL) {
		snprintf(err, errlen, "pdf: out of memory");
		return -1;
	}
	HPDF_SetCompressionMode(p.doc, HPDF_COMP_ALL);
	HPDF_UseUTFEncodings(p.doc);
	HPDF_SetCurrentEncoder(p.doc, "UTF-8");
	name =
	    HPDF_LoadTTFontFromFile(p.doc, inv->cfg->invoice_font, HPDF_TRUE);
	if (name == NULL ||
	    (p.font = HPDF_GetFont(p.doc, name, "UTF-8")) == NULL) {
		snprintf(err, errlen, "pdf: cannot load the font %s (0x%04x)",
		    inv->cfg->invoice_font, (unsigned)p.error);
		goto out;
	}
	new_page(&p);
	draw_head(&p, inv);
	draw_lines(&p, inv);
	draw_totals(&p, inv);
	if (p.error != 0 || pdf_bytes(&p, out, len) != 0) {
		snprintf(err, errlen, "pdf: libharu error 0x%04x",
		    (unsigned)p.error);
		goto out;
	}
	rc = 0;
out:
	HPDF_Free(p.doc);
	return rc;
}
